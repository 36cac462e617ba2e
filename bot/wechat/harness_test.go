package wechat

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qunshao/qunshao/bot"
)

// recSink records every event after checking it as the store would.
type recSink struct {
	t  *testing.T
	mu sync.Mutex
	ev []*bot.Event
}

func (s *recSink) Submit(_ context.Context, ev *bot.Event) error {
	if err := ev.Validate(); err != nil {
		s.t.Errorf("invalid event submitted: %v (%+v)", err, ev)
		return err
	}
	c := *ev
	s.mu.Lock()
	s.ev = append(s.ev, &c)
	s.mu.Unlock()
	return nil
}

func (s *recSink) events() []*bot.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*bot.Event(nil), s.ev...)
}

// wait returns the first event matching pred, waiting for it.
func (s *recSink) wait(pred func(*bot.Event) bool, what string) *bot.Event {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, ev := range s.events() {
			if pred(ev) {
				return ev
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	s.t.Fatalf("timed out waiting for %s; have %d events\n%s", what, len(s.events()), buf[:runtime.Stack(buf, true)])
	return nil
}

func (s *recSink) all(pred func(*bot.Event) bool) []*bot.Event {
	var out []*bot.Event
	for _, ev := range s.events() {
		if pred(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// syncBuf is a goroutine-safe buffer for the QR writer and logs.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// harness runs one account against a fake server.
type harness struct {
	t    *testing.T
	f    *fakeWX
	dir  string
	acc  Account
	sink *recSink
	qr   *syncBuf
	logs *syncBuf
	r    *runner
}

func newHarness(t *testing.T, f *fakeWX, o options) *harness {
	dir := t.TempDir()
	h := &harness{t: t, f: f, dir: dir, sink: &recSink{t: t}, qr: &syncBuf{}, logs: &syncBuf{}}
	h.acc = Account{Name: "ops", StorageFile: filepath.Join(dir, "wechat-ops.json"), Desktop: true}
	o.transport = f.transport()
	if o.rosterEvery == 0 {
		o.rosterEvery = time.Hour
	}
	if o.saveEvery == 0 {
		o.saveEvery = 20 * time.Millisecond
	}
	if o.retryMin == 0 {
		o.retryMin = 5 * time.Millisecond
	}
	if o.drainGrace == 0 {
		o.drainGrace = time.Second
	}
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.r = newRunner(h.acc, log, h.qr, o)
	return h
}

// run starts Run and returns a stop function that cancels it and returns
// its error.
func (h *harness) run() (stop func() error, done <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	var err error
	finished := make(chan struct{})
	out := make(chan error, 1)
	go func() {
		err = h.r.Run(ctx, h.sink)
		out <- err
		close(finished)
	}()
	// A failed test must not leave its run behind for the next one.
	h.t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(30 * time.Second):
		}
		if h.t.Failed() {
			h.t.Logf("runner log:\n%s", h.logs.String())
		}
	})
	return func() error {
		cancel()
		select {
		case <-finished:
			return err
		case <-time.After(30 * time.Second):
			h.t.Fatal("Run did not return after cancel")
			return nil
		}
	}, out
}

func (h *harness) status() bot.Status {
	st := h.r.Status()
	if len(st) != 1 {
		h.t.Fatalf("want one status, got %d", len(st))
	}
	return st[0]
}

func (h *harness) waitState(want bot.State) bot.Status {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if st := h.status(); st.State == want {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.t.Fatalf("state is %s, want %s (last error %q)", h.status().State, want, h.status().LastError)
	return bot.Status{}
}

// login runs the QR flow: the code is shown, then confirmed on the "phone".
func (h *harness) login() {
	h.t.Helper()
	st := h.waitState(bot.StateLoginRequired)
	if !strings.HasPrefix(st.LoginURL, "https://login.weixin.qq.com/l/QR") {
		h.t.Fatalf("LoginURL = %q", st.LoginURL)
	}
	h.f.confirm()
	h.waitState(bot.StateOnline)
}

// roster waits for a roster of the fake group g in the current session.
func (h *harness) roster(g string, pred func(*bot.Event) bool) *bot.Event {
	h.t.Helper()
	return h.sink.wait(func(ev *bot.Event) bool {
		if ev.Kind != bot.KindRoster || !bytes.Contains(ev.Raw, []byte(h.f.groupName(g))) {
			return false
		}
		return pred == nil || pred(ev)
	}, "roster of "+g)
}

// memberBySession finds a roster member by its session UserName.
func memberBySession(ev *bot.Event, userName string) (bot.Member, bool) {
	for _, m := range ev.Roster.Members {
		if m.SessionID == userName {
			return m, true
		}
	}
	return bot.Member{}, false
}

// checkNoLeak fails when goroutines of this package or of openwechat
// outlive Run.
func checkNoLeak(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	var stacks string
	for time.Now().Before(deadline) {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		leaked := false
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "eatmoreapple/openwechat") ||
				strings.Contains(g, "qunshao/bot/wechat.(*session)") ||
				strings.Contains(g, "qunshao/bot/wechat.(*runner)") ||
				strings.Contains(g, "qunshao/bot/wechat.graceContext") {
				leaked = true
			}
		}
		if !leaked {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("goroutines outlived Run:\n%s", stacks)
}
