package alert_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/qunshao/qunshao/alert"
	"github.com/qunshao/qunshao/alert/webhook"
	"github.com/qunshao/qunshao/storage"
	"github.com/qunshao/qunshao/storage/storagetest"
)

// hook is a webhook endpoint on 127.0.0.1 whose behaviour the test
// scripts: each request gets the next answer (the last one repeats).
type hook struct {
	*httptest.Server
	mu       sync.Mutex
	answers  []func(w http.ResponseWriter, r *http.Request) bool // true: the body was accepted
	requests int
	accepted map[string]int // delivery id → times accepted
	alerts   map[int64]int  // alert id → times accepted in a firing notification
}

func newHook(t *testing.T, answers ...func(w http.ResponseWriter, r *http.Request) bool) *hook {
	h := &hook{answers: answers, accepted: map[string]int{}, alerts: map[int64]int{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify("s3cret", r.Header, body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		h.mu.Lock()
		a := h.answers[min(h.requests, len(h.answers)-1)]
		h.requests++
		h.mu.Unlock()
		if !a(w, r) {
			return
		}
		var b webhook.Body
		if err := json.Unmarshal(body, &b); err != nil {
			t.Errorf("webhook body: %v", err)
			return
		}
		h.mu.Lock()
		h.accepted[b.ID]++
		for _, al := range b.Alerts {
			if al.Status == "firing" {
				h.alerts[al.ID]++
			}
		}
		h.mu.Unlock()
	}))
	t.Cleanup(h.Close)
	return h
}

func ok(w http.ResponseWriter, _ *http.Request) bool { w.WriteHeader(http.StatusOK); return true }

func status(code int) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, _ *http.Request) bool { w.WriteHeader(code); return false }
}

// lostAnswer accepts the notification, then drops the connection before
// answering: the sender cannot know, and sends it again.
func lostAnswer(w http.ResponseWriter, _ *http.Request) bool {
	c, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		c.Close()
	}
	return true
}

func (h *hook) snapshot() (requests int, accepted map[string]int, alerts map[int64]int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	acc := map[string]int{}
	for k, v := range h.accepted {
		acc[k] = v
	}
	al := map[int64]int{}
	for k, v := range h.alerts {
		al[k] = v
	}
	return h.requests, acc, al
}

func webhookConfig(url string) alert.Config {
	cfg := alert.DefaultConfig()
	cfg.AllowPrivateTargets = true // the test server is on 127.0.0.1
	cfg.Receivers = []alert.Receiver{{Name: "default"}, {Name: "ops", Webhook: []webhook.Config{{URL: url, Secret: "s3cret"}}}}
	cfg.Route.Receiver = "ops"
	cfg.Route.GroupBy = []string{"..."}
	cfg.Delivery.Timeout = 2 * time.Second
	cfg.Delivery.MinBackoff = time.Second
	cfg.Delivery.MaxBackoff = 10 * time.Second
	return cfg
}

// newHookHarness builds an engine whose receivers come from the
// configuration (the real webhook integration).
func newHookHarness(t *testing.T, st *storage.Store, cfg alert.Config) *harness {
	h := &harness{t: t, st: st, clock: alert.NewFakeClock(t0), cfg: cfg, recs: map[string]*recorder{}}
	w, err := st.NewWriter(storage.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(context.Background()) })
	h.w = w
	h.restartFromConfig()
	return h
}

func (h *harness) restartFromConfig() {
	h.t.Helper()
	eng, err := alert.New(context.Background(), alert.Options{Config: h.cfg, Store: h.st, Clock: h.clock, FromStart: true})
	if err != nil {
		h.t.Fatal(err)
	}
	h.eng = eng
}

// deliverFor runs delivery rounds, moving the fake clock on by step after
// each, n times.
func (h *harness) deliverFor(n int, step time.Duration) {
	h.t.Helper()
	for i := 0; i < n; i++ {
		if _, err := h.eng.Sender().DeliverDue(context.Background()); err != nil {
			h.t.Fatal(err)
		}
		h.clock.Advance(step)
	}
}

func (h *harness) outboxStates() map[string]int64 {
	h.t.Helper()
	c, err := h.st.OutboxCounts(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// A receiver that answers 503 for a while (and once takes a notification
// but loses the answer) gets every alert, at most one duplicate each.
func TestDeliveryRetriesUntilDelivered(t *testing.T) {
	answers := []func(http.ResponseWriter, *http.Request) bool{lostAnswer}
	for i := 0; i < 25; i++ {
		answers = append(answers, status(http.StatusServiceUnavailable))
	}
	answers = append(answers, ok)
	srv := newHook(t, answers...)
	h := newHookHarness(t, storagetest.Open(t, storagetest.SQLiteConfig(t)), webhookConfig(srv.URL))
	const groups = 8
	for i := 0; i < groups; i++ {
		h.detect(det{group: strconv.Itoa(1000 + i), sender: "1", label: "attack_task", text: "拍"})
	}
	h.advance(5 * time.Second)
	if c := h.outboxStates(); c[storage.OutboxPending] != groups {
		t.Fatalf("outbox %v", c)
	}
	h.deliverFor(40, 10*time.Second)
	requests, accepted, alerts := srv.snapshot()
	if c := h.outboxStates(); c[storage.OutboxSent] != groups || c[storage.OutboxPending] != 0 {
		t.Fatalf("outbox after retries %v (%d requests)", c, requests)
	}
	if len(alerts) != groups {
		t.Fatalf("%d alerts delivered, want %d", len(alerts), groups)
	}
	dups := 0
	for id, n := range accepted {
		if n > 2 {
			t.Errorf("notification %s accepted %d times", id, n)
		}
		dups += n - 1
	}
	if dups != 1 {
		t.Errorf("%d duplicates, want exactly the one whose answer was lost", dups)
	}
	if s := h.eng.Sender().Stats(); s.Delivered != groups || s.Retried < 25 {
		t.Errorf("sender stats %+v", s)
	}
}

// A 400 is not retried: the notification becomes a dead letter at once,
// and can be put back in the queue.
func TestDelivery400IsNotRetried(t *testing.T) {
	srv := newHook(t, status(http.StatusBadRequest), ok)
	h := newHookHarness(t, storagetest.Open(t, storagetest.SQLiteConfig(t)), webhookConfig(srv.URL))
	h.detect(det{sender: "1", label: "attack_task", text: "拍"})
	h.advance(5 * time.Second)
	h.deliverFor(10, time.Minute)
	if n, _, _ := srv.snapshot(); n != 1 {
		t.Fatalf("%d requests, want 1 (no retry after 400)", n)
	}
	dead, err := h.st.OutboxEntries(context.Background(), storage.OutboxFilter{State: storage.OutboxDead})
	if err != nil || len(dead) != 1 || dead[0].Attempts != 1 || dead[0].LastError == "" {
		t.Fatalf("dead letters %+v %v", dead, err)
	}
	if n, err := h.st.RequeueDead(context.Background(), nil, h.clock.Now().UnixMicro()); err != nil || n != 1 {
		t.Fatalf("requeue: %d %v", n, err)
	}
	h.deliverFor(1, time.Second)
	if c := h.outboxStates(); c[storage.OutboxSent] != 1 {
		t.Fatalf("after requeue %v", c)
	}
}

// 429 honours Retry-After.
func TestDelivery429HonoursRetryAfter(t *testing.T) {
	srv := newHook(t, func(w http.ResponseWriter, _ *http.Request) bool {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusTooManyRequests)
		return false
	}, ok)
	h := newHookHarness(t, storagetest.Open(t, storagetest.SQLiteConfig(t)), webhookConfig(srv.URL))
	h.detect(det{sender: "1", label: "attack_task", text: "拍"})
	h.advance(5 * time.Second)
	h.deliverFor(12, 10*time.Second) // 110 s
	if n, _, _ := srv.snapshot(); n != 1 {
		t.Fatalf("%d requests within Retry-After", n)
	}
	h.deliverFor(2, 10*time.Second)
	if n, _, alerts := srv.snapshot(); n != 2 || len(alerts) != 1 {
		t.Fatalf("after Retry-After: %d requests, %d alerts", n, len(alerts))
	}
}

// Giving up after max_age leaves a dead letter.
func TestDeliveryGivesUpAfterMaxAge(t *testing.T) {
	srv := newHook(t, status(http.StatusBadGateway))
	cfg := webhookConfig(srv.URL)
	cfg.Delivery.MaxAge = 10 * time.Minute
	h := newHookHarness(t, storagetest.Open(t, storagetest.SQLiteConfig(t)), cfg)
	h.detect(det{sender: "1", label: "attack_task", text: "拍"})
	h.advance(5 * time.Second)
	h.deliverFor(80, 10*time.Second)
	if c := h.outboxStates(); c[storage.OutboxDead] != 1 || c[storage.OutboxPending] != 0 {
		t.Fatalf("outbox %v", c)
	}
}

// qunshao stopped in the middle of retrying (store closed), started again
// on the same database: the notification is still delivered, once.
func TestDeliverySurvivesRestart(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, b storagetest.Backend) {
		var mu sync.Mutex
		down := true
		srv := newHook(t, func(w http.ResponseWriter, r *http.Request) bool {
			mu.Lock()
			defer mu.Unlock()
			if down {
				return status(http.StatusServiceUnavailable)(w, r)
			}
			return ok(w, r)
		})
		cfg := b.Config(t)
		st1 := storagetest.Open(t, cfg)
		h := newHookHarness(t, st1, webhookConfig(srv.URL))
		h.detect(det{sender: "1", label: "attack_task", text: "拍"})
		h.advance(5 * time.Second)
		h.deliverFor(3, 2*time.Second)
		if n, _, _ := srv.snapshot(); n < 2 {
			t.Fatalf("%d attempts before the stop", n)
		}
		// Stop mid-retry.
		h.w.Close(context.Background())
		st1.Close()

		mu.Lock()
		down = false
		mu.Unlock()
		st2, err := storage.Open(context.Background(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st2.Close() })
		h.st = st2
		h.restartFromConfig()
		h.step()
		h.deliverFor(3, 20*time.Second)
		if c := h.outboxStates(); c[storage.OutboxSent] != 1 || c[storage.OutboxPending] != 0 {
			t.Fatalf("after restart %v", c)
		}
		_, accepted, alerts := srv.snapshot()
		if len(accepted) != 1 || len(alerts) != 1 {
			t.Fatalf("delivered %v %v", accepted, alerts)
		}
		// The rebuilt engine did not queue the same notification again.
		h.advance(10 * time.Minute)
		if n := len(h.outbox()); n != 1 {
			t.Fatalf("%d notifications after restart, want 1", n)
		}
	})
}

// The whole loop on the wall clock: a detection stored and announced is
// delivered within moments.
func TestRunDeliversPromptly(t *testing.T) {
	got := make(chan struct{}, 10)
	srv := newHook(t, func(w http.ResponseWriter, r *http.Request) bool {
		got <- struct{}{}
		return ok(w, r)
	})
	cfg := webhookConfig(srv.URL)
	cfg.Route.GroupWait = 0
	st := storagetest.Open(t, storagetest.SQLiteConfig(t))
	h := newHookHarness(t, st, cfg)
	eng, err := alert.New(context.Background(), alert.Options{Config: cfg, Store: st, FromStart: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	h.detect(det{sender: "1", label: "extortion", text: "给钱"})
	eng.Notify()
	// A liveness bound only (latency is measured by the benchmarks, not
	// asserted): generous enough for a loaded CI machine.
	select {
	case <-got:
	case <-time.After(60 * time.Second):
		t.Fatal("not delivered within 60s")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_ = fmt.Sprint
}
