package alert_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/qunshao/qunshao/alert"
	"github.com/qunshao/qunshao/alert/notify"
	"github.com/qunshao/qunshao/alert/webhook"
	"github.com/qunshao/qunshao/bot"
	"github.com/qunshao/qunshao/configs"
	"github.com/qunshao/qunshao/detect"
	"github.com/qunshao/qunshao/pipeline"
	"github.com/qunshao/qunshao/storage"
	"github.com/qunshao/qunshao/storage/storagetest"
)

// benchStore is SQLite, or the server named by QUNSHAO_BENCH_DRIVER
// (postgres or mysql, with the storagetest DSN variables set).
func benchStore(b *testing.B) *storage.Store {
	switch os.Getenv("QUNSHAO_BENCH_DRIVER") {
	case "postgres":
		return storagetest.Open(b, storagetest.PostgresConfig(b))
	case "mysql":
		return storagetest.Open(b, storagetest.MySQLConfig(b))
	}
	return storagetest.Open(b, storagetest.SQLiteConfig(b))
}

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Float64s(xs)
	return xs[min(len(xs)-1, int(p*float64(len(xs))))]
}

// BenchmarkDetectionToOutbox measures how long a detection takes to reach
// the alert history and, for a detection that starts an alert, the outbox,
// while the pipeline ingests messages at QUNSHAO_BENCH_RATE per second
// (default 5000), a new group every QUNSHAO_BENCH_GROUP_EVERY messages
// (default 20: a stress test with some 900 new alerts a second). Latencies
// run from the verdict (Detection.DetectedUS); "stored" is the pipeline's
// part (until the detection is committed and the engine woken), "engine"
// the alert engine's (from then to the outbox), for the alerts that open
// an aggregation group (default grouping; group_wait is 0, so the latency
// is the engine's, not a configured wait). The sender delivers to a
// webhook on 127.0.0.1 meanwhile.
//
//	go test ./alert -run '^$' -bench DetectionToOutbox -benchtime 50000x
func BenchmarkDetectionToOutbox(b *testing.B) {
	raw, err := fs.ReadFile(configs.Files, detect.TrainingFile)
	if err != nil {
		b.Fatal(err)
	}
	lines, err := detect.ReadLabelled(bytes.NewReader(raw), detect.TrainingFile)
	if err != nil {
		b.Fatal(err)
	}
	c, _ := configs.Default()
	det, err := detect.Build(c.Detect, configs.Files)
	if err != nil {
		b.Fatal(err)
	}
	rate := 5000
	if v, err := strconv.Atoi(os.Getenv("QUNSHAO_BENCH_RATE")); err == nil && v > 0 {
		rate = v
	}
	perGroup := 20
	if v, err := strconv.Atoi(os.Getenv("QUNSHAO_BENCH_GROUP_EVERY")); err == nil && v > 0 {
		perGroup = v
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	st := benchStore(b)
	cfg := alert.DefaultConfig()
	cfg.AllowPrivateTargets = true
	cfg.Receivers = []alert.Receiver{{Name: "default"}, {Name: "hook", Webhook: []webhook.Config{{URL: srv.URL, Secret: "s"}}}}
	cfg.Route.Receiver = "hook"
	cfg.Route.GroupWait = 0
	cfg.Route.GroupInterval = 10 * time.Second
	cfg.PollInterval = time.Second

	var mu sync.Mutex
	var commit []float64
	eng, err := alert.New(context.Background(), alert.Options{Config: cfg, Store: st, FromStart: true,
		OnCommitted: func(ds []storage.Detection) {
			now := time.Now().UnixMicro()
			mu.Lock()
			for _, d := range ds {
				commit = append(commit, float64(now-d.DetectedUS)/1000)
			}
			mu.Unlock()
		}})
	if err != nil {
		b.Fatal(err)
	}
	// QUNSHAO_BENCH_NOALERT=1 measures the pipeline alone, for comparison.
	noAlert := os.Getenv("QUNSHAO_BENCH_NOALERT") != ""
	var storedLag []float64
	storedAt := map[int64]int64{}
	popts := pipeline.Options{OnVerdict: func(d *storage.Detection, v *detect.Verdict) {
		now := time.Now().UnixMicro()
		mu.Lock()
		storedLag = append(storedLag, float64(now-d.DetectedUS)/1000)
		storedAt[d.ID] = now
		mu.Unlock()
		eng.OnVerdict(d, v)
	}}
	if noAlert {
		popts.OnVerdict = nil
	}
	p, err := pipeline.New(st, det, popts)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	if noAlert {
		done <- nil
	} else {
		go func() { done <- eng.Run(ctx) }()
	}

	b.ResetTimer()
	start := time.Now()
	const tick = 10 * time.Millisecond
	perTick := max(1, rate/100)
	var tickets []*storage.Ticket
	for i := 0; i < b.N; i++ {
		if i%perTick == 0 {
			if d := time.Until(start.Add(time.Duration(i/perTick) * tick)); d > 0 {
				time.Sleep(d)
			}
		}
		l := lines[i%len(lines)]
		g := strconv.Itoa(i / perGroup)
		ev := &bot.Event{Kind: bot.KindMessage, Platform: bot.QQ, Bot: "1", GroupID: "bench" + g, Time: start.Add(time.Duration(i) * time.Millisecond),
			Message: &bot.Message{ID: strconv.Itoa(i), Sender: bot.Member{ID: "u" + strconv.Itoa(i%7), Role: bot.Role(l.Role)}, Text: l.Text,
				Segments: []bot.Segment{{Type: bot.SegText, Text: l.Text}}}}
		t, err := p.Submit(context.Background(), ev)
		if err != nil {
			b.Fatal(err)
		}
		tickets = append(tickets, t)
	}
	for _, t := range tickets {
		if _, err := t.Wait(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	ingest := time.Since(start)
	if err := p.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	stored := p.Stats().Stored
	for deadline := time.Now().Add(time.Minute); !noAlert && eng.Stats().Detections < stored && time.Now().Before(deadline); {
		eng.Notify()
		time.Sleep(20 * time.Millisecond)
	}
	b.StopTimer()
	cancel()
	<-done

	// Detection → outbox, for the first notification of each alert.
	es, err := st.OutboxEntries(context.Background(), storage.OutboxFilter{Limit: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	firstQueued := map[int64]int64{}
	for _, e := range es {
		var n notify.Notification
		if err := json.Unmarshal([]byte(e.Payload), &n); err != nil {
			b.Fatal(err)
		}
		for _, a := range n.Alerts {
			if q, ok := firstQueued[a.ID]; !ok || e.CreatedUS < q {
				firstQueued[a.ID] = e.CreatedUS
			}
		}
	}
	as, err := st.Alerts(context.Background(), storage.AlertFilter{Limit: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	detected := map[int64]int64{}
	ds, _ := st.DetectionsAfter(context.Background(), 0, 1<<30)
	for _, d := range ds {
		detected[d.ID] = d.DetectedUS
	}
	mu.Lock()
	defer mu.Unlock()
	// Only alerts that open an aggregation group: one that joins a group
	// already notified waits group_interval by design.
	sort.Slice(as, func(i, j int) bool { return as[i].ID < as[j].ID })
	opened := map[string]bool{}
	var outbox, engine []float64
	for _, a := range as {
		if k := a.Category + "|" + a.GroupKey; opened[k] {
			continue
		} else {
			opened[k] = true
		}
		if q, ok := firstQueued[a.ID]; ok {
			outbox = append(outbox, float64(q-detected[a.FirstDetectionID])/1000)
			if s, ok := storedAt[a.FirstDetectionID]; ok {
				engine = append(engine, float64(q-s)/1000)
			}
		}
	}
	b.ReportMetric(float64(b.N)/ingest.Seconds(), "msg/s")
	b.ReportMetric(percentile(commit, 0.5), "alert-p50-ms")
	b.ReportMetric(percentile(commit, 0.99), "alert-p99-ms")
	b.ReportMetric(percentile(outbox, 0.5), "outbox-p50-ms")
	b.ReportMetric(percentile(outbox, 0.99), "outbox-p99-ms")
	b.ReportMetric(float64(len(as)), "alerts")
	b.ReportMetric(percentile(storedLag, 0.5), "stored-p50-ms")
	b.ReportMetric(percentile(storedLag, 0.99), "stored-p99-ms")
	b.ReportMetric(percentile(engine, 0.5), "engine-p50-ms")
	b.ReportMetric(percentile(engine, 0.99), "engine-p99-ms")
	if testing.Verbose() {
		fmt.Printf("%d messages in %s, %d detections, %d alerts, %d notifications, sender %+v\n", b.N, ingest.Round(time.Millisecond),
			stored, len(as), len(es), eng.Sender().Stats())
	}
}

// BenchmarkDispatcher measures alerts per second through the engine (one
// detection → a new alert → its own notification in the outbox) and
// notifications per second the sender delivers to a webhook on 127.0.0.1.
//
//	go test ./alert -run '^$' -bench Dispatcher -benchtime 20000x
func BenchmarkDispatcher(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	st := benchStore(b)
	cfg := webhookConfig(srv.URL)
	cfg.Route.GroupWait = 0
	cfg.InhibitRules = nil
	clock := alert.NewFakeClock(t0)
	eng, err := alert.New(context.Background(), alert.Options{Config: cfg, Store: st, Clock: clock, FromStart: true})
	if err != nil {
		b.Fatal(err)
	}
	// Detections of b.N groups, each its own alert.
	rules, _ := json.Marshal([]detect.RuleHit{{ID: "task.stock_lock", Category: "attack_task", Severity: "high"}})
	var ds []*storage.Detection
	for i := 0; i < b.N; i++ {
		ds = append(ds, &storage.Detection{GroupKey: fmt.Sprintf("qq:%d", 100000+i), ChainSeq: 1, MsgID: "m", SenderID: "1",
			SenderRole: "owner", OccurredUS: t0.UnixMicro(), Label: "attack_task", Score: 0.9, Severity: "high", Rules: string(rules),
			Entities: "[]", Explanation: "{}", ModelVersion: "b", RulesVersion: "b", DetectedUS: t0.UnixMicro()})
	}
	for len(ds) > 0 {
		n := min(len(ds), 1000)
		if err := st.InsertDetections(context.Background(), ds[:n]); err != nil {
			b.Fatal(err)
		}
		ds = ds[n:]
	}
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	if _, err := eng.Process(ctx); err != nil {
		b.Fatal(err)
	}
	if err := eng.Tick(ctx); err != nil {
		b.Fatal(err)
	}
	queued := time.Since(start)
	start = time.Now()
	for eng.Sender().Stats().Delivered < int64(b.N) {
		n, err := eng.Sender().DeliverDue(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 { // a retry after a timeout on a loaded machine
			clock.Advance(cfg.Delivery.MaxBackoff)
		}
	}
	sent := time.Since(start)
	b.StopTimer()
	if s := eng.Stats(); s.Notifications != int64(b.N) || eng.Sender().Stats().Delivered != int64(b.N) {
		b.Fatalf("stats %+v %+v", s, eng.Sender().Stats())
	}
	b.ReportMetric(float64(b.N)/queued.Seconds(), "alerts-queued/s")
	b.ReportMetric(float64(b.N)/sent.Seconds(), "delivered/s")
}
