package onebot

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/qunshao/qunshao/bot"
	"github.com/qunshao/qunshao/bot/supervisor"
)

// Connection roles a reverse WebSocket declares in X-Client-Role. A
// Universal connection carries events and API calls; implementations that
// split them open an Event and an API connection.
const (
	roleUniversal = "universal"
	roleEvent     = "event"
	roleAPI       = "api"
)

// reverseRunner is the reverse-WebSocket listener. Any number of bot
// accounts connect to it, each on its own connection (or Event/API pair);
// a second connection for the same account replaces the first.
type reverseRunner struct {
	ep  *endpoint
	cfg ReverseWS

	mu     sync.Mutex
	events map[string]*wsConn // account -> connection carrying its events
	apis   map[string]*wsConn // account -> connection answering its API calls
	change chan struct{}      // closed (and replaced) whenever apis changes
}

var _ supervisor.Runner = (*reverseRunner)(nil)

func newReverseRunner(cfg Config, ep *endpoint) *reverseRunner {
	return &reverseRunner{
		ep: ep, cfg: cfg.ReverseWS,
		events: map[string]*wsConn{},
		apis:   map[string]*wsConn{},
		change: make(chan struct{}),
	}
}

func (r *reverseRunner) Name() string         { return r.ep.runner }
func (r *reverseRunner) Status() []bot.Status { return r.ep.book.Snapshot() }

// Run listens until ctx ends. It returns an error only when the listener
// cannot be opened or fails; connected bots are served until then and
// every connection's goroutines have stopped when Run returns.
func (r *reverseRunner) Run(ctx context.Context, sink bot.Sink) error {
	ln, err := net.Listen("tcp", r.cfg.Listen)
	if err != nil {
		err = fmt.Errorf("onebot reverse_ws.listen %s: %w", r.cfg.Listen, err)
		r.ep.book.Error(r.ep.key, "listen", err)
		r.ep.book.SetState(r.ep.key, bot.StateError)
		return err
	}
	r.ep.log.Info("OneBot reverse WebSocket listening", "runner", r.ep.runner, "addr", ln.Addr().String(), "path", r.cfg.Path)
	return serveListener(ctx, r.ep, ln, func(runCtx context.Context, conns *tracker) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			r.serveHTTP(runCtx, sink, conns, w, req)
		})
	})
}

// serveListener serves HTTP on ln until ctx ends, then shuts down: the
// server stops accepting, handlers that hijacked their connection
// (WebSockets) are cancelled through runCtx, and Run waits for them all.
func serveListener(ctx context.Context, ep *endpoint, ln net.Listener, handler func(runCtx context.Context, conns *tracker) http.Handler) error {
	if ep.onListen != nil {
		ep.onListen(ln.Addr().String())
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	conns := &tracker{}
	srv := &http.Server{
		Handler:           handler(runCtx, conns),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	ep.book.SetState(ep.key, bot.StateOnline)
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		errc = nil
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	if srv.Shutdown(sctx) != nil {
		_ = srv.Close()
	}
	scancel()
	cancel()
	conns.closeAndWait()
	if errc != nil {
		<-errc
	}
	if ctx.Err() != nil {
		ep.book.SetState(ep.key, bot.StateStopped)
		return nil
	}
	ep.book.SetState(ep.key, bot.StateError)
	if err == nil {
		err = errors.New("listener stopped")
	}
	ep.book.Error(ep.key, "listen", err)
	return fmt.Errorf("onebot %s: %w", ep.runner, err)
}

// tracker counts running handlers and refuses new ones once closing, so
// that waiting for them cannot race with one starting.
type tracker struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (t *tracker) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	return true
}

func (t *tracker) leave() { t.wg.Done() }

func (t *tracker) closeAndWait() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.wg.Wait()
}

// route maps a request path to the connection role it implies: the
// configured path, or it with /api, /event or /universal appended (how
// go-cqhttp-style split connections are often configured).
func (r *reverseRunner) route(path string) (string, bool) {
	base := strings.TrimSuffix(r.cfg.Path, "/")
	switch strings.TrimSuffix(path, "/") {
	case base, base + "/universal":
		return roleUniversal, true
	case base + "/event":
		return roleEvent, true
	case base + "/api":
		return roleAPI, true
	}
	return "", false
}

func (r *reverseRunner) serveHTTP(runCtx context.Context, sink bot.Sink, conns *tracker, w http.ResponseWriter, req *http.Request) {
	if !conns.enter() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer conns.leave()
	role, ok := r.route(req.URL.Path)
	if !ok {
		http.NotFound(w, req)
		return
	}
	// Authenticate before looking at anything else the peer claims.
	if !authorized(req, r.cfg.AccessToken) {
		r.ep.note("auth_failed", errors.New("wrong or missing access token"),
			"refused a OneBot connection with a wrong or missing access token", "remote", req.RemoteAddr)
		w.Header().Set("WWW-Authenticate", `Bearer realm="qunshao"`)
		http.Error(w, "wrong or missing access token", http.StatusUnauthorized)
		return
	}
	if h := strings.ToLower(strings.TrimSpace(req.Header.Get("X-Client-Role"))); h != "" {
		switch h {
		case roleUniversal, roleEvent, roleAPI:
			role = h
		default:
			r.ep.note("bad_handshake", nil, "refused a OneBot connection with an unknown X-Client-Role", "remote", req.RemoteAddr)
			http.Error(w, "X-Client-Role must be Universal, Event or API", http.StatusBadRequest)
			return
		}
	}
	self := strings.TrimSpace(req.Header.Get("X-Self-ID"))
	if !validQQ(self) {
		r.ep.note("bad_handshake", nil, "refused a OneBot connection without a usable X-Self-ID", "remote", req.RemoteAddr)
		http.Error(w, "X-Self-ID must be the bot's QQ number", http.StatusBadRequest)
		return
	}
	// Accept keeps the library's Origin check: a web page in an
	// operator's browser must not be able to connect and inject events.
	ws, err := websocket.Accept(w, req, nil)
	if err != nil {
		r.ep.note("bad_handshake", nil, "OneBot WebSocket handshake failed", "remote", req.RemoteAddr, "err", err)
		return
	}
	c := newWSConn(ws, r.ep, func() string { return self })
	var api apiCaller
	if role != roleAPI {
		api = accountAPI{r: r, account: self}
	}
	s := newSession(runCtx, r.ep, sink, self, api, true)
	for _, old := range r.register(self, role, c) {
		select {
		case old.kick <- "replaced by a newer connection for the same account":
		default:
		}
	}
	r.ep.book.SetState(self, bot.StateOnline)
	log := r.ep.log.With("runner", r.ep.runner, "account", self, "role", role)
	log.Info("OneBot bot connected", "remote", req.RemoteAddr)
	err = c.serve(runCtx, s)
	if r.unregister(self, c) && runCtx.Err() == nil {
		r.ep.book.SetState(self, bot.StateOffline)
	}
	if runCtx.Err() != nil {
		r.ep.book.SetState(self, bot.StateStopped)
	}
	log.Info("OneBot bot disconnected", "err", err)
}

// register records a new connection and returns the ones it replaces.
func (r *reverseRunner) register(account, role string, c *wsConn) []*wsConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	var old []*wsConn
	oldEvent, oldAPI := r.events[account], r.apis[account]
	switch role {
	case roleUniversal:
		if oldEvent != nil {
			old = append(old, oldEvent)
		}
		if oldAPI != nil && oldAPI != oldEvent {
			old = append(old, oldAPI)
		}
		r.events[account], r.apis[account] = c, c
	case roleEvent:
		if oldEvent != nil {
			old = append(old, oldEvent)
			if oldAPI == oldEvent {
				delete(r.apis, account)
			}
		}
		r.events[account] = c
	case roleAPI:
		// A Universal connection keeps carrying events; only the API
		// calls move to the new connection.
		if oldAPI != nil && oldAPI != oldEvent {
			old = append(old, oldAPI)
		}
		r.apis[account] = c
	}
	close(r.change)
	r.change = make(chan struct{})
	return old
}

// unregister forgets a connection that ended and reports whether the
// account has no event connection left.
func (r *reverseRunner) unregister(account string, c *wsConn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.events[account] == c {
		delete(r.events, account)
	}
	if r.apis[account] == c {
		delete(r.apis, account)
		close(r.change)
		r.change = make(chan struct{})
	}
	return r.events[account] == nil
}

func (r *reverseRunner) apiConn(account string) (*wsConn, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.apis[account], r.change
}

// accountAPI calls actions on whichever connection currently answers an
// account's API calls, waiting (up to APITimeout) for one to appear: an
// Event connection's partner API connection may arrive a moment later.
type accountAPI struct {
	r       *reverseRunner
	account string
}

func (a accountAPI) call(ctx context.Context, action string, params map[string]any) (*apiResponse, error) {
	if !readOnlyAction(action) {
		return nil, fmt.Errorf("%s: %w", action, errNotReadOnly)
	}
	t := time.NewTimer(a.r.ep.cfg.APITimeout)
	defer t.Stop()
	for {
		c, change := a.r.apiConn(a.account)
		if c != nil {
			return c.call(ctx, action, params)
		}
		select {
		case <-change:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
			return nil, fmt.Errorf("%s: %w", action, errNoAPI)
		}
	}
}

// authorized checks OneBot's access token: "Authorization: Bearer <token>"
// (go-cqhttp also sends "Token <token>") or an access_token query
// parameter. No configured token lets everyone in (loopback only; see
// Config.Validate).
func authorized(req *http.Request, token string) bool {
	if token == "" {
		return true
	}
	got := ""
	if h := req.Header.Get("Authorization"); h != "" {
		scheme, val, _ := strings.Cut(strings.TrimSpace(h), " ")
		if strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "Token") {
			got = strings.TrimSpace(val)
		}
	} else {
		got = req.URL.Query().Get("access_token")
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}
