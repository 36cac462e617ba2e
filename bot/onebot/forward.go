package onebot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/coder/websocket"
	"github.com/qunshao/qunshao/bot"
	"github.com/qunshao/qunshao/bot/supervisor"
)

// forwardRunner dials one OneBot WebSocket server (NapCat's "WebSocket
// server", go-cqhttp's ws). Run serves one connection; when it drops, Run
// returns and the supervisor dials again after its backoff, and the new
// connection syncs rosters and backfills like a new one.
type forwardRunner struct {
	ep  *endpoint
	cfg ForwardWS

	mu   sync.Mutex
	last string // the account the previous connection served
}

var _ supervisor.Runner = (*forwardRunner)(nil)

func (r *forwardRunner) Name() string         { return r.ep.runner }
func (r *forwardRunner) Status() []bot.Status { return r.ep.book.Snapshot() }

func (r *forwardRunner) Run(ctx context.Context, sink bot.Sink) error {
	r.mu.Lock()
	key := r.last
	r.mu.Unlock()
	if key == "" {
		key = r.ep.key
	}
	r.ep.book.SetState(key, bot.StateConnecting)
	hdr := http.Header{}
	if r.cfg.AccessToken != "" {
		hdr.Set("Authorization", "Bearer "+r.cfg.AccessToken)
	}
	dctx, cancel := context.WithTimeout(ctx, r.ep.cfg.APITimeout)
	ws, resp, err := websocket.Dial(dctx, r.cfg.URL, &websocket.DialOptions{HTTPHeader: hdr})
	cancel()
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if ctx.Err() != nil {
			r.ep.book.SetState(key, bot.StateStopped)
			return nil
		}
		err = scrubURL(err, r.cfg.URL)
		kind := "connect"
		if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			kind = "auth_failed"
		}
		r.ep.book.Error(key, kind, err)
		r.ep.book.SetState(key, bot.StateOffline)
		return fmt.Errorf("onebot forward_ws %s: %w", redactURL(r.cfg.URL), err)
	}
	var s *session
	c := newWSConn(ws, r.ep, func() string { return s.key() })
	s = newSession(ctx, r.ep, sink, "", c, true)
	s.learn = true
	r.ep.book.SetState(key, bot.StateOnline)
	r.ep.log.Info("OneBot forward WebSocket connected", "runner", r.ep.runner)
	err = c.serve(ctx, s)
	if a := s.accountID(); a != "" {
		r.mu.Lock()
		r.last = a
		r.mu.Unlock()
	}
	if ctx.Err() != nil {
		r.ep.book.SetState(s.key(), bot.StateStopped)
		return nil
	}
	r.ep.book.SetState(s.key(), bot.StateOffline)
	if err == nil {
		err = errors.New("closed")
	}
	err = scrubURL(err, r.cfg.URL)
	r.ep.book.Error(s.key(), "disconnected", err)
	return fmt.Errorf("onebot forward_ws %s: connection lost: %w", redactURL(r.cfg.URL), err)
}

// scrubURL removes a URL's query and credentials (where access tokens
// live) from an error message that quotes the URL.
func scrubURL(err error, raw string) error {
	msg := err.Error()
	u, perr := url.Parse(raw)
	if perr != nil {
		return err
	}
	changed := false
	for _, secret := range []string{u.RawQuery, u.User.String()} {
		if secret != "" && strings.Contains(msg, secret) {
			msg = strings.ReplaceAll(msg, secret, "REDACTED")
			changed = true
		}
	}
	if !changed {
		return err
	}
	return errors.New(msg)
}
