package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/qunshao/qunshao/alert"
	"github.com/qunshao/qunshao/alert/terminal"
	"github.com/qunshao/qunshao/detect"
	"github.com/qunshao/qunshao/storage"
)

// demoAlerts is the alert engine of a demo run: it prints notifications on
// the terminal as they fire, so a newcomer sees the chain from message to
// alert.
type demoAlerts struct {
	eng     *alert.Engine
	tracker atomic.Pointer[detect.Tracker]
	cancel  context.CancelFunc
	done    chan error
}

// startAlerts runs an engine on the demo store whose only receiver is the
// terminal. Alerts go out at once (group_wait 0); what joins a group after
// its first notification waits group_interval, or the end of the replay.
func startAlerts(ctx context.Context, st *storage.Store, base alert.Config, out io.Writer, log *slog.Logger) (*demoAlerts, error) {
	cfg := base
	cfg.Enabled = true
	cfg.TimeIntervals = nil
	// Low-severity alerts (a lone message the classifier finds suspicious)
	// are kept in the history without a notification: a route to a
	// receiver without integrations, as an operator would set it up.
	cfg.Receivers = []alert.Receiver{{Name: "terminal", Terminal: []terminal.Config{{}}}, {Name: "history"}}
	cfg.Route = alert.RootRoute{Receiver: "terminal", GroupBy: []string{"category", "platform", "group"},
		GroupWait: 0, GroupInterval: 2 * time.Second, RepeatInterval: 4 * time.Hour,
		Routes: []alert.Route{{Matchers: []string{`severity=~"info|low"`}, Receiver: "history"}}}
	d := &demoAlerts{done: make(chan error, 1)}
	eng, err := alert.New(ctx, alert.Options{Config: cfg, Store: st, Terminal: out, Log: log, FromStart: true,
		Organizers: func(group string) []detect.Organizer {
			if t := d.tracker.Load(); t != nil {
				return t.Organizers(group)
			}
			return nil
		}})
	if err != nil {
		return nil, fmt.Errorf("demo alerts: %w", err)
	}
	d.eng = eng
	rctx, cancel := context.WithCancel(ctx)
	d.cancel = cancel
	go func() { d.done <- eng.Run(rctx) }()
	return d, nil
}

// onVerdict wakes the engine (pipeline.Options.OnVerdict).
func (d *demoAlerts) onVerdict(ds *storage.Detection, v *detect.Verdict) {
	if d != nil {
		d.eng.OnVerdict(ds, v)
	}
}

// finish takes in every detection, sends what is still waiting in a group
// and stops the engine.
func (d *demoAlerts) finish(ctx context.Context) (alert.Stats, error) {
	err := d.eng.Drain(ctx)
	d.cancel()
	if rerr := <-d.done; err == nil {
		err = rerr
	}
	return d.eng.Stats(), err
}
