package supervisor

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qunshao/qunshao/bot"
)

type flaky struct {
	name  string
	fails int32 // fail this many times, then deliver and block
	runs  atomic.Int32
	book  StatusBook
	ev    *bot.Event
}

func (f *flaky) Name() string         { return f.name }
func (f *flaky) Status() []bot.Status { return f.book.Snapshot() }
func (f *flaky) Run(ctx context.Context, sink bot.Sink) error {
	n := f.runs.Add(1)
	f.book.SetState("acct", bot.StateConnecting)
	if n <= f.fails {
		f.book.Error("acct", "connect", errors.New("refused"))
		if n == 1 {
			panic("adapter bug")
		}
		return errors.New("connection refused")
	}
	f.book.SetState("acct", bot.StateOnline)
	if f.ev != nil {
		if err := sink.Submit(ctx, f.ev); err != nil {
			return err
		}
		f.book.Event("acct")
	}
	<-ctx.Done()
	f.book.SetState("acct", bot.StateStopped)
	return nil
}

func TestSupervisorRestartsWithBackoffAndFilters(t *testing.T) {
	var mu sync.Mutex
	var got []*bot.Event
	sink := bot.SinkFunc(func(_ context.Context, ev *bot.Event) error {
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
		return nil
	})
	t0 := time.Now()
	watched := &flaky{name: "a", fails: 3, ev: &bot.Event{Platform: bot.QQ, GroupID: "1"}, book: StatusBook{Base: bot.Status{Platform: bot.QQ, Runner: "a"}}}
	denied := &flaky{name: "b", ev: &bot.Event{Platform: bot.QQ, GroupID: "2"}, book: StatusBook{Base: bot.Status{Platform: bot.QQ, Runner: "b"}}}
	var statuses atomic.Int32
	s := New([]Runner{watched, denied}, sink, Options{
		Groups:     GroupFilter{Deny: []string{"qq:2"}},
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
		OnStatus: func([]bot.Status) { statuses.Add(1) }, StatusEvery: 10 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 1 && s.Filtered() == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events %d, filtered %d, runs %d", n, s.Filtered(), watched.runs.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if watched.runs.Load() != 4 || s.Restarts()["a"] != 3 {
		t.Fatalf("runs %d restarts %v", watched.runs.Load(), s.Restarts())
	}
	// Backoff: 10ms, 20ms, 40ms (+ up to 50% jitter) between the attempts.
	if el := time.Since(t0); el < 70*time.Millisecond {
		t.Fatalf("three restarts took only %s: no backoff", el)
	}
	st := s.Statuses()
	if len(st) != 2 || st[0].State != bot.StateOnline || st[0].Errors != 3 || st[0].Events != 1 || st[0].Counters["connect"] != 3 {
		t.Fatalf("statuses = %+v", st)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("supervisor did not stop")
	}
	if statuses.Load() < 2 {
		t.Fatal("status was not reported")
	}
	if s.Statuses()[0].State != bot.StateStopped {
		t.Fatalf("state after stop = %s", s.Statuses()[0].State)
	}
}

func TestGroupFilter(t *testing.T) {
	for _, c := range []struct {
		f    GroupFilter
		p    bot.Platform
		id   string
		want bool
	}{
		{GroupFilter{}, bot.QQ, "1", true},
		{GroupFilter{Allow: []string{"qq:1"}}, bot.QQ, "1", true},
		{GroupFilter{Allow: []string{"qq:1"}}, bot.WeChat, "1", false},
		{GroupFilter{Allow: []string{"1"}}, bot.WeChat, "1", true},
		{GroupFilter{Allow: []string{"1"}, Deny: []string{"wechat:1"}}, bot.WeChat, "1", false},
		{GroupFilter{Deny: []string{"2"}}, bot.QQ, "1", true},
	} {
		if got := c.f.Watches(c.p, c.id); got != c.want {
			t.Errorf("%+v watches %s:%s = %v", c.f, c.p, c.id, got)
		}
	}
}
