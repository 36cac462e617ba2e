package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qunshao/qunshao/alert/notify"
	"github.com/qunshao/qunshao/storage"
)

// Sender delivers the outbox: it claims due notifications, hands them to
// their receiver integration, and records the outcome. Failures are
// retried with exponential backoff and jitter (a service's Retry-After
// wins); 4xx answers and refused destinations are not retried. A
// notification that cannot be delivered within delivery.max_attempts or
// delivery.max_age becomes a dead letter. Everything is in the store, so
// a restarted qunshao resumes where the last one stopped.
type Sender struct {
	st           *storage.Store
	cfg          Delivery
	integrations map[string]notify.Receiver
	clock        Clock
	log          *slog.Logger
	poll         time.Duration
	wake         chan struct{}

	rmu sync.Mutex
	rnd *rand.Rand

	delivered, retried, dead atomic.Int64
}

// SenderStats are running totals.
type SenderStats struct {
	Delivered, Retried, Dead int64
}

func newSender(st *storage.Store, cfg Delivery, ints Integrations, clock Clock, log *slog.Logger, poll time.Duration) *Sender {
	m := map[string]notify.Receiver{}
	for name, list := range ints {
		for _, in := range list {
			m[name+"/"+in.Name] = in.Receiver
		}
	}
	return &Sender{st: st, cfg: cfg, integrations: m, clock: clock, log: log, poll: poll,
		wake: make(chan struct{}, 1), rnd: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x9e3779b97f4a7c15))}
}

// Wake makes Run look for due notifications now.
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Stats returns running totals.
func (s *Sender) Stats() SenderStats {
	return SenderStats{Delivered: s.delivered.Load(), Retried: s.retried.Load(), Dead: s.dead.Load()}
}

// Run delivers until ctx ends.
func (s *Sender) Run(ctx context.Context) {
	for {
		n, err := s.DeliverDue(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.log.Error("alert delivery", "err", err)
		}
		if n > 0 && err == nil {
			continue
		}
		wait := s.poll
		if due, ok, err := s.st.NextOutboxDue(ctx); err == nil && ok {
			if d := time.Duration(due-s.clock.Now().UnixMicro()) * time.Microsecond; d < wait {
				wait = max(d, time.Millisecond)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-s.clock.After(wait):
		}
	}
}

// DeliverDue makes one delivery round: it claims the notifications due
// now, attempts each once in parallel, and records the outcomes in one
// transaction. It returns how many it attempted.
func (s *Sender) DeliverDue(ctx context.Context) (int, error) {
	now := s.clock.Now()
	lease := now.Add(s.cfg.Timeout*2 + 30*time.Second)
	entries, err := s.st.ClaimOutbox(ctx, now.UnixMicro(), lease.UnixMicro(), s.cfg.Workers*8)
	if err != nil {
		return 0, err
	}
	if len(entries) == 0 {
		return 0, nil
	}
	sem := make(chan struct{}, s.cfg.Workers)
	var wg sync.WaitGroup
	outs := make([]*storage.OutboxOutcome, len(entries))
	for i := range entries {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			outs[i] = s.deliver(ctx, &entries[i])
		}()
	}
	wg.Wait()
	var rec []storage.OutboxOutcome
	for _, o := range outs {
		if o != nil {
			rec = append(rec, *o)
		}
	}
	// Recording must not be lost to a cancelled run: a receiver that has a
	// notification would otherwise get it again.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return len(entries), s.st.RecordOutboxOutcomes(rctx, rec)
}

// deliver attempts one notification and says what to record; nil when the
// attempt was cut short by shutdown (the lease runs out and the next run
// retries).
func (s *Sender) deliver(ctx context.Context, e *storage.OutboxEntry) *storage.OutboxOutcome {
	out := &storage.OutboxOutcome{ID: e.ID, Attempts: e.Attempts + 1}
	var n notify.Notification
	if err := json.Unmarshal([]byte(e.Payload), &n); err != nil {
		s.dead.Add(1)
		out.State, out.LastError = storage.OutboxDead, "payload is not a notification: "+err.Error()
		return out
	}
	rc := s.integrations[e.Receiver+"/"+e.Integration]
	if rc == nil {
		s.dead.Add(1)
		s.log.Error("alert notification dead: receiver no longer configured", "id", e.ID, "receiver", e.Receiver, "integration", e.Integration)
		out.State, out.LastError = storage.OutboxDead, fmt.Sprintf("receiver %s %s is no longer configured", e.Receiver, e.Integration)
		return out
	}
	actx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	err := rc.Notify(actx, &n)
	cancel()
	now := s.clock.Now()
	if err == nil {
		s.delivered.Add(1)
		s.log.Debug("alert notification delivered", "id", e.ID, "receiver", e.Receiver, "integration", e.Integration, "attempts", out.Attempts)
		out.State, out.SentUS = storage.OutboxSent, now.UnixMicro()
		return out
	}
	if ctx.Err() != nil {
		return nil
	}
	out.LastError = err.Error()
	retry, after := notify.Classify(err)
	age := now.Sub(time.UnixMicro(e.CreatedUS))
	if !retry || (s.cfg.MaxAttempts > 0 && out.Attempts >= s.cfg.MaxAttempts) || age >= s.cfg.MaxAge {
		s.dead.Add(1)
		why := "permanent error"
		if retry {
			why = "gave up retrying"
		}
		s.log.Error("alert notification dead", "id", e.ID, "receiver", e.Receiver, "integration", e.Integration,
			"attempts", out.Attempts, "why", why, "err", err)
		out.State = storage.OutboxDead
		return out
	}
	wait := s.backoff(out.Attempts)
	if after > 0 {
		wait = min(after, time.Hour)
	}
	s.retried.Add(1)
	s.log.Warn("alert notification failed, will retry", "id", e.ID, "receiver", e.Receiver, "integration", e.Integration,
		"attempts", out.Attempts, "retry_in", wait.Round(time.Millisecond), "err", err)
	out.State, out.NextUS = storage.OutboxPending, now.Add(wait).UnixMicro()
	return out
}

// backoff is min_backoff·2^(attempts-1), capped at max_backoff, with
// "equal jitter": half of it fixed, half random, so that many failed
// notifications do not come back at the same instant.
func (s *Sender) backoff(attempts int) time.Duration {
	d := s.cfg.MinBackoff
	for i := 1; i < attempts && d < s.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.cfg.MaxBackoff)
	s.rmu.Lock()
	j := time.Duration(s.rnd.Int64N(int64(d/2) + 1))
	s.rmu.Unlock()
	return d/2 + j
}
