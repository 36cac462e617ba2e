package onebot

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/qunshao/qunshao/bot"
	"github.com/qunshao/qunshao/bot/supervisor"
)

// maxHTTPAccounts bounds the accounts one HTTP POST receiver keeps a
// session (and a worker) for; events of further accounts are still
// submitted, without rosters.
const maxHTTPAccounts = 64

// httpRunner receives events a OneBot implementation POSTs (its "HTTP
// client" / http_post setting) and calls the API at api_url.
type httpRunner struct {
	ep     *endpoint
	cfg    HTTPPost
	caller *httpCaller // nil without api_url

	mu       sync.Mutex
	sessions map[string]*session
	anon     *session // events whose account is unusable or over the limit
}

var _ supervisor.Runner = (*httpRunner)(nil)

func newHTTPRunner(cfg Config, ep *endpoint) *httpRunner {
	r := &httpRunner{ep: ep, cfg: cfg.HTTPPost}
	if cfg.HTTPPost.APIURL != "" {
		r.caller = &httpCaller{
			base:     cfg.HTTPPost.APIURL,
			token:    cfg.HTTPPost.AccessToken,
			client:   &http.Client{Timeout: cfg.APITimeout, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}},
			timeout:  cfg.APITimeout,
			maxFrame: int64(cfg.MaxFrameBytes),
		}
	}
	return r
}

func (r *httpRunner) Name() string         { return r.ep.runner }
func (r *httpRunner) Status() []bot.Status { return r.ep.book.Snapshot() }

func (r *httpRunner) Run(ctx context.Context, sink bot.Sink) error {
	ln, err := net.Listen("tcp", r.cfg.Listen)
	if err != nil {
		err = fmt.Errorf("onebot http_post.listen %s: %w", r.cfg.Listen, err)
		r.ep.book.Error(r.ep.key, "listen", err)
		r.ep.book.SetState(r.ep.key, bot.StateError)
		return err
	}
	if r.caller == nil {
		r.ep.log.Warn("OneBot HTTP POST without http_post.api_url: no rosters, backfill or forward expansion; roles rest on what messages report",
			"runner", r.ep.runner)
	}
	r.ep.log.Info("OneBot HTTP POST receiver listening", "runner", r.ep.runner, "addr", ln.Addr().String(), "path", r.cfg.Path)
	r.mu.Lock()
	r.sessions = map[string]*session{}
	r.anon = nil
	r.mu.Unlock()
	defer func() {
		if r.caller != nil {
			if t, ok := r.caller.client.Transport.(*http.Transport); ok {
				t.CloseIdleConnections()
			}
		}
	}()
	return serveListener(ctx, r.ep, ln, func(runCtx context.Context, conns *tracker) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			r.serveHTTP(runCtx, sink, conns, w, req)
		})
	})
}

func (r *httpRunner) serveHTTP(runCtx context.Context, sink bot.Sink, conns *tracker, w http.ResponseWriter, req *http.Request) {
	if !conns.enter() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer conns.leave()
	if strings.TrimSuffix(req.URL.Path, "/") != strings.TrimSuffix(r.cfg.Path, "/") {
		http.NotFound(w, req)
		return
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	// Bots do not send Origin; browsers do. Refusing it keeps a web page
	// in an operator's browser from posting forged events to loopback.
	if req.Header.Get("Origin") != "" {
		r.ep.note("auth_failed", errors.New("request from a browser (Origin header)"), "refused an OneBot POST from a browser", "remote", req.RemoteAddr)
		http.Error(w, "browser requests are not accepted", http.StatusForbidden)
		return
	}
	if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		r.ep.note("malformed_frame", nil, "refused an OneBot POST that is not application/json", "remote", req.RemoteAddr)
		http.Error(w, "Content-Type must be application/json", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, int64(r.ep.cfg.MaxFrameBytes)))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			r.ep.note("oversize_frame", nil, "refused an OneBot POST larger than max_frame_bytes", "remote", req.RemoteAddr)
			http.Error(w, "event larger than max_frame_bytes", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "read failed", http.StatusBadRequest)
		return
	}
	if r.cfg.Secret != "" && !validSignature(r.cfg.Secret, body, req.Header.Get("X-Signature")) {
		r.ep.note("auth_failed", errors.New("wrong or missing X-Signature"), "refused an OneBot POST with a wrong or missing signature", "remote", req.RemoteAddr)
		http.Error(w, "wrong or missing X-Signature", http.StatusUnauthorized)
		return
	}
	recv := time.Now()
	header := strings.TrimSpace(req.Header.Get("X-Self-ID"))
	if !validQQ(header) {
		header = ""
	}
	d, err := decodeFrame(body, header, recv)
	if err != nil {
		s := r.session(runCtx, sink, conns, header)
		s.note("malformed_frame", "malformed OneBot frame refused", "bytes", len(body), "err", err)
		http.Error(w, "malformed event", http.StatusBadRequest)
		return
	}
	s := r.session(runCtx, sink, conns, d.selfID)
	if err := s.deliver(d); err != nil {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	// An empty answer: a body would be read as a "quick operation" (a
	// reply, a kick), and qunshao never acts in a group.
	w.WriteHeader(http.StatusNoContent)
}

// session returns the account's session, starting it (and its worker) on
// the account's first event.
func (r *httpRunner) session(runCtx context.Context, sink bot.Sink, conns *tracker, account string) *session {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.sessions[account]; s != nil {
		return s
	}
	if !validQQ(account) || len(r.sessions) >= maxHTTPAccounts {
		if r.anon == nil {
			r.anon = newSession(runCtx, r.ep, sink, "", nil, false)
			r.start(runCtx, conns, r.anon, "")
		}
		return r.anon
	}
	var api apiCaller
	if r.caller != nil {
		api = r.caller
	}
	s := newSession(runCtx, r.ep, sink, account, api, false)
	s.verifyLogin = api != nil
	r.sessions[account] = s
	r.ep.book.SetState(account, bot.StateOnline)
	r.start(runCtx, conns, s, account)
	return s
}

// start runs a session's worker until the runner stops.
func (r *httpRunner) start(runCtx context.Context, conns *tracker, s *session, account string) {
	if !conns.enter() {
		s.release()
		return
	}
	go func() {
		defer conns.leave()
		s.work(runCtx)
		if account != "" {
			r.ep.book.SetState(account, bot.StateStopped)
		}
	}()
}

// validSignature checks X-Signature: "sha1=" and the hex HMAC-SHA1 of the
// body keyed with the secret (OneBot v11's http_post signature).
func validSignature(secret string, body []byte, header string) bool {
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(header), "sha1=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}
