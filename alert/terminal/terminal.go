// Package terminal prints alert notifications on a terminal (the demo's
// receiver, and handy when trying out routes): the plain-text rendering,
// with every control character from chat text already escaped.
package terminal

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/qunshao/qunshao/alert/notify"
)

// Config is one terminal_configs entry.
type Config struct {
	SendResolved *bool `yaml:"send_resolved,omitempty"`
}

// Receiver writes notifications to a writer.
type Receiver struct {
	cfg  Config
	deps notify.Deps
	mu   *sync.Mutex
	out  io.Writer
}

var _ notify.Receiver = (*Receiver)(nil)

// New builds a receiver writing to out; mu, if shared, keeps several
// receivers on one terminal from interleaving.
func New(cfg Config, deps notify.Deps, out io.Writer, mu *sync.Mutex) *Receiver {
	if mu == nil {
		mu = &sync.Mutex{}
	}
	return &Receiver{cfg: cfg, deps: deps, out: out, mu: mu}
}

// Notify prints the notification.
func (r *Receiver) Notify(_ context.Context, n *notify.Notification) error {
	if !notify.SendResolved(r.cfg.SendResolved) {
		var ok bool
		if n, ok = n.WithoutResolved(); !ok {
			return nil
		}
	}
	text, err := r.deps.Templates.Text(n)
	if err != nil {
		return notify.Permanent(err)
	}
	var b strings.Builder
	b.WriteString("\n")
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		b.WriteString("  🔔 " + line + "\n")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err = fmt.Fprint(r.out, b.String())
	return err
}
