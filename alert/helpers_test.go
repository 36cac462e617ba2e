package alert_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qunshao/qunshao/alert"
	"github.com/qunshao/qunshao/alert/notify"
	"github.com/qunshao/qunshao/bot"
	"github.com/qunshao/qunshao/detect"
	"github.com/qunshao/qunshao/nlp"
	"github.com/qunshao/qunshao/storage"
	"github.com/qunshao/qunshao/storage/storagetest"
)

var t0 = time.Date(2025, 11, 10, 2, 0, 0, 0, time.UTC) // 10:00 in Beijing, a Monday

// recorder is a receiver integration that keeps what it is given.
type recorder struct {
	mu   sync.Mutex
	got  []*notify.Notification
	fail error
}

func (r *recorder) Notify(_ context.Context, n *notify.Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.got = append(r.got, n)
	return nil
}

func (r *recorder) all() []*notify.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*notify.Notification(nil), r.got...)
}

// harness is an engine on a fresh store with a fake clock.
type harness struct {
	t     *testing.T
	st    *storage.Store
	clock *alert.FakeClock
	eng   *alert.Engine
	w     *storage.Writer
	cfg   alert.Config
	recs  map[string]*recorder
	seq   int
	opts  func(*alert.Options)
}

func testConfig() alert.Config {
	c := alert.DefaultConfig()
	c.Receivers = []alert.Receiver{{Name: "default"}, {Name: "ops"}, {Name: "pager"}, {Name: "legal"}}
	c.Route.Receiver = "ops"
	c.ConsoleURL = "https://console.example/"
	return c
}

func newHarness(t *testing.T, cfg alert.Config, opts ...func(*alert.Options)) *harness {
	t.Helper()
	return newHarnessOn(t, storagetest.Open(t, storagetest.SQLiteConfig(t)), cfg, opts...)
}

func newHarnessOn(t *testing.T, st *storage.Store, cfg alert.Config, opts ...func(*alert.Options)) *harness {
	t.Helper()
	h := &harness{t: t, st: st, clock: alert.NewFakeClock(t0), cfg: cfg, recs: map[string]*recorder{}}
	w, err := st.NewWriter(storage.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(context.Background()) })
	h.w = w
	h.opts = func(o *alert.Options) {
		for _, f := range opts {
			f(o)
		}
	}
	h.start()
	return h
}

// start (re)creates the engine on the harness's store.
func (h *harness) start() {
	h.t.Helper()
	ints := alert.Integrations{}
	for _, r := range h.cfg.Receivers {
		rec := h.recs[r.Name]
		if rec == nil {
			rec = &recorder{}
			h.recs[r.Name] = rec
		}
		ints[r.Name] = []alert.Integration{{Name: "rec[0]", SendResolved: true, Receiver: rec}}
	}
	o := alert.Options{Config: h.cfg, Store: h.st, Receivers: ints, Clock: h.clock, FromStart: true}
	h.opts(&o)
	eng, err := alert.New(context.Background(), o)
	if err != nil {
		h.t.Fatal(err)
	}
	h.eng = eng
}

// event stores a chat event at the fake time plus offset.
func (h *harness) event(ev *bot.Event) storage.Result {
	h.t.Helper()
	ctx := context.Background()
	tk, err := h.w.Submit(ctx, ev)
	if err != nil {
		h.t.Fatal(err)
	}
	r, err := tk.Wait(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func roster(group string, at time.Time, members ...bot.Member) *bot.Event {
	return &bot.Event{Kind: bot.KindRoster, Platform: bot.QQ, Bot: "10001", GroupID: group, GroupName: "群" + group, Time: at,
		Roster: &bot.Roster{Members: members, Complete: true}}
}

// det describes a flagged message.
type det struct {
	group, sender, text, label, severity string
	marks                                []string // substrings the rules matched
	shop                                 string   // a shop entity, if any
	link                                 string
}

// detect stores the message and its detection, as the pipeline would.
func (h *harness) detect(d det) storage.Detection {
	h.t.Helper()
	h.seq++
	if d.severity == "" {
		d.severity = "high"
	}
	if d.group == "" {
		d.group = "100"
	}
	id := fmt.Sprintf("m%d", h.seq)
	now := h.clock.Now()
	r := h.event(&bot.Event{Kind: bot.KindMessage, Platform: bot.QQ, Bot: "10001", GroupID: d.group, GroupName: "群" + d.group,
		Time: now, Message: &bot.Message{ID: id, Sender: bot.Member{ID: d.sender, Nick: "昵称" + d.sender}, Text: d.text,
			Segments: []bot.Segment{{Type: bot.SegText, Text: d.text}}}})
	recs, err := h.st.Records(context.Background(), storage.RecordFilter{GroupKey: "qq:" + d.group, MsgID: id})
	if err != nil || len(recs) != 1 {
		h.t.Fatalf("stored message: %v %d", err, len(recs))
	}
	var spans []nlp.Span
	runes := []rune(d.text)
	for _, m := range d.marks {
		i := strings.Index(d.text, m)
		if i < 0 {
			h.t.Fatalf("mark %q not in %q", m, d.text)
		}
		start := len([]rune(d.text[:i]))
		spans = append(spans, nlp.Span{Start: start, End: start + len([]rune(m))})
	}
	_ = runes
	hits := []detect.RuleHit{{ID: "test." + d.label, Category: d.label, Severity: d.severity, Spans: spans}}
	var ents []nlp.Entity
	if d.shop != "" {
		i := strings.Index(d.text, d.shop)
		start := max(0, len([]rune(d.text[:max(i, 0)])))
		ents = append(ents, nlp.Entity{Type: nlp.EntShop, Value: d.shop, Span: nlp.Span{Start: start, End: start + len([]rune(d.shop))}})
	}
	if d.link != "" {
		ents = append(ents, nlp.Entity{Type: nlp.EntShortLink, Value: d.link})
	}
	rb, _ := json.Marshal(hits)
	eb, _ := json.Marshal(ents)
	ds := &storage.Detection{GroupKey: "qq:" + d.group, ChainSeq: r.Seq, MsgID: id, SenderID: d.sender,
		SenderRole: recs[0].ActorRole, OccurredUS: now.UnixMicro(), Label: d.label, Score: 0.95, Severity: d.severity,
		Rules: string(rb), Entities: string(eb), Explanation: "{}", ModelVersion: "test", RulesVersion: "test",
		Risk: 0.9, DetectedUS: time.Now().UnixMicro()}
	if err := h.st.InsertDetections(context.Background(), []*storage.Detection{ds}); err != nil {
		h.t.Fatal(err)
	}
	return *ds
}

// step lets the engine read detections and flush what is due.
func (h *harness) step() {
	h.t.Helper()
	ctx := context.Background()
	if _, err := h.eng.Process(ctx); err != nil {
		h.t.Fatal(err)
	}
	if err := h.eng.Tick(ctx); err != nil {
		h.t.Fatal(err)
	}
}

// advance lets the engine see new detections now (the pipeline wakes it
// when they are stored), moves the clock and steps.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	if _, err := h.eng.Process(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.clock.Advance(d)
	h.step()
}

// outbox lists the queued notifications, oldest first.
func (h *harness) outbox() []*notify.Notification {
	h.t.Helper()
	es, err := h.st.OutboxEntries(context.Background(), storage.OutboxFilter{Limit: 1000})
	if err != nil {
		h.t.Fatal(err)
	}
	out := make([]*notify.Notification, 0, len(es))
	for i := len(es) - 1; i >= 0; i-- {
		var n notify.Notification
		if err := json.Unmarshal([]byte(es[i].Payload), &n); err != nil {
			h.t.Fatal(err)
		}
		out = append(out, &n)
	}
	return out
}

// expectNew checks the notifications queued since the last call.
func (h *harness) expectNew(seen *int, want int, why string) []*notify.Notification {
	h.t.Helper()
	all := h.outbox()
	got := all[*seen:]
	if len(got) != want {
		var desc []string
		for _, n := range got {
			desc = append(desc, describe(n))
		}
		h.t.Fatalf("%s: %d new notifications, want %d: %v", why, len(got), want, desc)
	}
	*seen = len(all)
	return got
}

func describe(n *notify.Notification) string {
	var parts []string
	for _, a := range n.Alerts {
		parts = append(parts, fmt.Sprintf("%d:%s/%s/%s", a.ID, a.Category, a.GroupKey, a.Status))
	}
	return fmt.Sprintf("%s %s [%s]", n.Receiver, n.Status, strings.Join(parts, " "))
}

func alertIDs(n *notify.Notification) []int64 {
	var out []int64
	for _, a := range n.Alerts {
		out = append(out, a.ID)
	}
	return out
}

func mustAlerts(t *testing.T, st *storage.Store, f storage.AlertFilter) []storage.Alert {
	t.Helper()
	as, err := st.Alerts(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return as
}
