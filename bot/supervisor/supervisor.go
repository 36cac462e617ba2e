// Package supervisor keeps qunshao's bot accounts running: it starts every
// configured runner (a OneBot listener or connection, a MiraiGo account, a
// web-WeChat account), restarts one that fails with exponential backoff and
// jitter, applies the group allow and deny lists, and keeps each account's
// status for operators.
//
// Events go to the sink before anything else happens to them; a sink that
// blocks (a slow store) holds the runners back instead of losing events.
package supervisor

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/qunshao/qunshao/bot"
)

// Runner is one adapter instance: a bot account, a connection, or a
// listener that several accounts connect to.
type Runner interface {
	// Name identifies the runner in logs and status, e.g.
	// "onebot:reverse-ws", "qq:123456", "wechat:ops".
	Name() string
	// Run connects and delivers events to sink until ctx ends (then it
	// returns nil or ctx.Err()) or the connection fails (it returns the
	// error and the supervisor restarts it after a backoff).
	Run(ctx context.Context, sink bot.Sink) error
	// Status reports the accounts the runner serves; safe to call while
	// Run runs.
	Status() []bot.Status
}

// ErrNeedsOperator is wrapped by a runner's error when retrying cannot
// help until a person acts (scan a QR code, refresh a password): the
// supervisor still retries, slowly, and reports it loudly.
var ErrNeedsOperator = errors.New("operator action needed")

// GroupFilter decides which groups are watched. Entries are group keys
// ("qq:738291046", "wechat:123@chatroom") or bare group ids.
type GroupFilter struct {
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
}

// Watches reports whether events from a group are kept: denied groups
// never, and when Allow is set, only allowed ones.
func (f GroupFilter) Watches(p bot.Platform, groupID string) bool {
	key := bot.GroupKey(p, groupID)
	match := func(list []string) bool {
		return slices.ContainsFunc(list, func(s string) bool { return s == key || s == groupID })
	}
	if match(f.Deny) {
		return false
	}
	return len(f.Allow) == 0 || match(f.Allow)
}

// Options configure a supervisor.
type Options struct {
	Groups GroupFilter
	// MinBackoff and MaxBackoff bound the restart delay; it doubles after
	// each failure and resets once a run lasted StableAfter.
	MinBackoff, MaxBackoff, StableAfter time.Duration
	// OnStatus, if set, receives every runner's status every StatusEvery
	// (the store keeps it for `qunshao bots`).
	OnStatus    func([]bot.Status)
	StatusEvery time.Duration
	Log         *slog.Logger
}

// Supervisor runs runners.
type Supervisor struct {
	runners []Runner
	sink    bot.Sink
	opts    Options
	log     *slog.Logger

	mu       sync.Mutex
	restarts map[string]int
	filtered int64
}

// New returns a supervisor for runners delivering to sink.
func New(runners []Runner, sink bot.Sink, opts Options) *Supervisor {
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Minute
	}
	if opts.StableAfter <= 0 {
		opts.StableAfter = time.Minute
	}
	if opts.StatusEvery <= 0 {
		opts.StatusEvery = 10 * time.Second
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{runners: runners, sink: sink, opts: opts, log: log, restarts: map[string]int{}}
}

// filter drops events of groups that are not watched.
func (s *Supervisor) filter(ctx context.Context, ev *bot.Event) error {
	if !s.opts.Groups.Watches(ev.Platform, ev.GroupID) {
		s.mu.Lock()
		s.filtered++
		s.mu.Unlock()
		return nil
	}
	return s.sink.Submit(ctx, ev)
}

// Run runs every runner until ctx ends, then waits for them to return.
func (s *Supervisor) Run(ctx context.Context) {
	var wg sync.WaitGroup
	sink := bot.SinkFunc(s.filter)
	for _, r := range s.runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.keep(ctx, r, sink)
		}()
	}
	if s.opts.OnStatus != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(s.opts.StatusEvery)
			defer t.Stop()
			for {
				s.opts.OnStatus(s.Statuses())
				select {
				case <-ctx.Done():
					s.opts.OnStatus(s.Statuses())
					return
				case <-t.C:
				}
			}
		}()
	}
	wg.Wait()
}

// keep runs one runner, restarting it with backoff until ctx ends.
func (s *Supervisor) keep(ctx context.Context, r Runner, sink bot.Sink) {
	backoff := s.opts.MinBackoff
	for {
		start := time.Now()
		err := s.run(ctx, r, sink)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) >= s.opts.StableAfter {
			backoff = s.opts.MinBackoff
		}
		s.mu.Lock()
		s.restarts[r.Name()]++
		s.mu.Unlock()
		wait := backoff + rand.N(backoff/2+1) // jitter: reconnecting bots do not stampede
		if errors.Is(err, ErrNeedsOperator) {
			s.log.Error("bot needs an operator; retrying slowly", "runner", r.Name(), "err", err, "retry_in", wait)
		} else {
			s.log.Warn("bot stopped; restarting", "runner", r.Name(), "err", err, "retry_in", wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(backoff*2, s.opts.MaxBackoff)
	}
}

// run calls r.Run and turns a panic into an error: one broken adapter must
// not take the others down.
func (s *Supervisor) run(ctx context.Context, r Runner, sink bot.Sink) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("bot runner panicked", "runner", r.Name(), "panic", p)
			err = errors.New("runner panicked")
		}
	}()
	err = r.Run(ctx, sink)
	if err == nil && ctx.Err() == nil {
		err = errors.New("runner returned without an error")
	}
	return err
}

// Restarts returns how often each runner was restarted.
func (s *Supervisor) Restarts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.restarts))
	for k, v := range s.restarts {
		out[k] = v
	}
	return out
}

// Filtered returns how many events were dropped by the group filter.
func (s *Supervisor) Filtered() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.filtered
}

// Statuses returns every account's status, sorted.
func (s *Supervisor) Statuses() []bot.Status {
	var out []bot.Status
	for _, r := range s.runners {
		out = append(out, r.Status()...)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return strings.Compare(string(a.Platform)+a.Account+a.Runner, string(b.Platform)+b.Account+b.Runner) < 0
	})
	return out
}
