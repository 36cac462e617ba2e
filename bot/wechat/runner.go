package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eatmoreapple/openwechat"
	"github.com/qunshao/qunshao/bot"
	"github.com/qunshao/qunshao/bot/supervisor"
)

// options are the runner's knobs that are not configuration: the defaults
// are what production uses; tests point the transport at a fake server and
// shorten the intervals.
type options struct {
	// transport carries openwechat's requests; nil means a clone of
	// http.DefaultTransport (the real WeChat endpoints, proxies from the
	// environment).
	transport       http.RoundTripper
	now             func() time.Time
	rosterEvery     time.Duration // full roster refresh
	saveEvery       time.Duration // identity file flush
	retryMin        time.Duration // first sync retry delay
	maxSyncFailures int           // consecutive sync failures before the session restarts
	drainGrace      time.Duration // time to deliver what was received after shutdown starts
	maxText         int           // text bytes kept in Message.Text (the raw keeps all)
	maxCapture      int64         // largest webwxsync response held to keep raw bytes
}

func (o *options) fill() {
	if o.now == nil {
		o.now = time.Now
	}
	if o.rosterEvery <= 0 {
		o.rosterEvery = 30 * time.Minute
	}
	if o.saveEvery <= 0 {
		o.saveEvery = time.Minute
	}
	if o.retryMin <= 0 {
		o.retryMin = time.Second
	}
	if o.maxSyncFailures <= 0 {
		o.maxSyncFailures = 8
	}
	if o.drainGrace <= 0 {
		o.drainGrace = 10 * time.Second
	}
	if o.maxText <= 0 {
		o.maxText = 1 << 20
	}
	if o.maxCapture <= 0 {
		o.maxCapture = defaultMaxCapture
	}
}

// NewRunners returns one supervisor runner per configured account. QR codes
// are printed to qr (a terminal; nil prints none) and exposed as
// Status.LoginURL.
func NewRunners(cfg Config, log *slog.Logger, qr io.Writer) ([]supervisor.Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("wechat config: %w", err)
	}
	out := make([]supervisor.Runner, 0, len(cfg.Accounts))
	for _, a := range cfg.Accounts {
		out = append(out, newRunner(a, log, qr, options{}))
	}
	return out, nil
}

// runner serves one WeChat account through web WeChat.
type runner struct {
	acc   Account
	log   *slog.Logger
	qr    io.Writer
	opts  options
	book  *supervisor.StatusBook
	ids   *identityStore
	spool *spool

	running atomic.Bool
}

var _ supervisor.Runner = (*runner)(nil)

func newRunner(acc Account, log *slog.Logger, qr io.Writer, o options) *runner {
	o.fill()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &runner{
		acc:   acc,
		log:   log,
		qr:    qr,
		opts:  o,
		book:  &supervisor.StatusBook{Base: bot.Status{Platform: bot.WeChat, Runner: "wechat:" + acc.Name, Transport: "web-wechat"}, Now: o.now},
		ids:   newIdentityStore(acc.identitiesFile(), o.now),
		spool: &spool{path: acc.undeliveredFile(), now: o.now},
	}
	r.book.SetState(acc.Name, bot.StateStarting)
	return r
}

func (r *runner) Name() string { return "wechat:" + r.acc.Name }

// Status reports the account; Account is the configured name (the WeChat
// account's uin is the Bot of its events).
func (r *runner) Status() []bot.Status { return r.book.Snapshot() }

// Run logs the account in (hot login from the storage file, else a QR code)
// and delivers its group events until ctx ends or WeChat ends the session.
func (r *runner) Run(ctx context.Context, sink bot.Sink) error {
	if sink == nil {
		return errors.New("wechat: nil sink")
	}
	if !r.running.CompareAndSwap(false, true) {
		return fmt.Errorf("wechat %s: already running", r.acc.Name)
	}
	defer r.running.Store(false)
	acct := r.acc.Name
	if err := r.ids.load(); err != nil {
		r.book.Error(acct, "identity_load_failed", err)
		r.log.Error("wechat identity mapping unreadable", "account", acct, "err", err)
	}
	defer func() { _ = r.spool.close() }()
	r.book.SetState(acct, bot.StateConnecting)

	// stopCtx ends every request of this run; openwechat's own context is
	// never cancelled from outside (see errStopped).
	stopCtx, stop := context.WithCancel(ctx)
	defer stop()
	submitCtx, endSubmit := graceContext(ctx, r.opts.drainGrace)
	defer endSubmit()

	base := r.opts.transport
	if base == nil {
		base = http.DefaultTransport.(*http.Transport).Clone()
	}
	capture := &syncCapture{count: func(kind string) { r.book.Count(acct, kind) }}
	tr := &transport{
		base: base, stop: stopCtx, capture: capture, maxCapture: r.opts.maxCapture,
		onBlocked: func(ep string) {
			r.book.Error(acct, "send_blocked", fmt.Errorf("refused %s", ep))
			r.log.Error("wechat: refused an endpoint that would act on WeChat; the bots never post", "account", acct, "endpoint", ep)
		},
		onOversize:  func() { r.book.Count(acct, "oversize_sync") },
		onMalformed: func(kind string) { r.book.Count(acct, kind) },
	}
	defer tr.CloseIdleConnections()

	mode := openwechat.Desktop
	if !r.acc.Desktop {
		mode = openwechat.Normal
	}
	b := openwechat.DefaultBot(mode)
	b.Caller.Client.HTTPClient().Transport = tr
	b.Serializer = hotSerializer{}
	hot := newHotStorage(r.acc.storageFile())
	s := newSession(r, b, capture, hot, sink, stopCtx, submitCtx)
	// Replace every default callback: openwechat's defaults log through the
	// standard logger and open a browser for the QR code.
	b.UUIDCallback = s.onUUID
	b.ScanCallBack = func(openwechat.CheckLoginResponse) {
		r.log.Info("wechat QR code scanned; waiting for confirmation on the phone", "account", acct)
	}
	b.LoginCallBack = func(openwechat.CheckLoginResponse) {}
	b.SyncCheckCallback = s.onSyncCheck
	b.MessageHandler = s.onMessage
	b.MessageErrorHandler = s.onSyncError
	exited := make(chan struct{})
	var exitOnce sync.Once
	b.LogoutCallBack = func(*openwechat.Bot) { exitOnce.Do(func() { close(exited) }) }

	if err := os.MkdirAll(filepath.Dir(r.acc.storageFile()), 0o700); err != nil {
		r.book.Error(acct, "storage_failed", err)
		r.book.SetState(acct, bot.StateError)
		return fmt.Errorf("wechat %s: storage directory: %w", acct, err)
	}
	if err := login(b, hot, &hotThenQR{s: s}); err != nil {
		return r.loginFailed(ctx, err)
	}

	// Logged in: openwechat's sync goroutine is running.
	if err := s.start(); err != nil {
		stop()
		<-exited
		r.book.Error(acct, "login_failed", err)
		r.book.SetState(acct, bot.StateError)
		return fmt.Errorf("wechat %s: %w", acct, err)
	}
	r.book.SetState(acct, bot.StateOnline)
	r.log.Info("wechat account online", "account", acct, "bot", s.botID)

	rosterCtx, stopRoster := context.WithCancel(stopCtx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.rosterLoop(rosterCtx)
	}()

	select {
	case <-ctx.Done():
	case <-exited:
	}
	stop()   // every request fails from now on; openwechat's goroutine ends on its next one
	<-exited // openwechat calls LogoutCallBack as the last thing its goroutine does
	stopRoster()
	wg.Wait()
	s.drain() // messages set aside after openwechat's last handler call
	s.flushSession()
	s.saveIdentities()
	return r.finish(ctx, b.CrashReason())
}

// login runs openwechat's hot login, turning a panic inside openwechat (it
// dereferences parts of WeChat's answers without checking them) into an
// error. openwechat starts its sync goroutine only at the very end of a
// successful login, so a panic leaves nothing running.
func login(b *openwechat.Bot, storage openwechat.HotReloadStorage, opt openwechat.BotLoginOption) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("openwechat panicked during login: %v", p)
		}
	}()
	return b.HotLogin(storage, opt)
}

// hotThenQR is the login option: when the stored session cannot be used
// (no file, or WeChat rejects it), log in with a QR code instead, once.
type hotThenQR struct {
	s     *session
	tried bool
}

func (o *hotThenQR) Prepare(*openwechat.Bot) {}

func (o *hotThenQR) OnSuccess(*openwechat.Bot) error { return nil }

// OnError is called for the hot login's failure and again for the QR
// login's (openwechat routes both through the same options).
func (o *hotThenQR) OnError(b *openwechat.Bot, err error) error {
	if o.tried || o.s.ctx.Err() != nil {
		return err
	}
	o.tried = true
	if errors.Is(err, openwechat.ErrInvalidStorage) {
		o.s.log.Info("wechat has no stored session; QR login", "account", o.s.acct)
	} else {
		o.s.count("hot_login_failed")
		o.s.log.Warn("wechat stored session rejected; QR login", "account", o.s.acct, "err", err)
	}
	// A sync key from the old session must not follow into the new one.
	b.Storage.Response = nil
	return b.Login()
}

// onUUID shows a QR code for the operator to scan.
func (s *session) onUUID(uuid string) {
	if s.ctx.Err() != nil {
		return
	}
	loginURL := qrContent(uuid)
	s.r.book.SetLogin(s.acct, loginURL)
	s.log.Error("wechat login required: scan the QR code with the account's phone; operator action needed", "account", s.acct)
	if s.r.qr != nil {
		printQR(s.r.qr, s.acct, loginURL)
	}
}

// loginFailed reports a login that did not happen.
func (r *runner) loginFailed(ctx context.Context, err error) error {
	acct := r.acc.Name
	if ctx.Err() != nil {
		r.book.SetState(acct, bot.StateStopped)
		return nil
	}
	r.book.Error(acct, "login_failed", err)
	var syn *json.SyntaxError
	switch {
	case errors.Is(err, openwechat.ErrLoginTimeout):
		r.book.SetState(acct, bot.StateOffline)
		r.log.Error("wechat QR code expired before it was scanned; operator action needed", "account", acct)
		return fmt.Errorf("wechat %s: QR code expired unscanned: %w", acct, supervisor.ErrNeedsOperator)
	case errors.Is(err, openwechat.NetworkErr), errors.As(err, &syn):
		r.book.SetState(acct, bot.StateOffline)
		r.log.Warn("wechat login failed", "account", acct, "err", err)
		return fmt.Errorf("wechat %s: login: %w", acct, err)
	default:
		// WeChat refused: the account may not use web WeChat, the login
		// environment looks abnormal to it, and so on. A person has to look.
		r.book.SetState(acct, bot.StateLoggedOut)
		r.log.Error("WeChat refused the login; operator action needed", "account", acct, "err", err)
		return fmt.Errorf("wechat %s: login refused (%v): %w", acct, err, supervisor.ErrNeedsOperator)
	}
}

// finish reports why a session ended.
func (r *runner) finish(ctx context.Context, reason error) error {
	acct := r.acc.Name
	var ret openwechat.Ret
	switch {
	case ctx.Err() != nil:
		r.book.SetState(acct, bot.StateStopped)
		return nil
	case errors.Is(reason, openwechat.ErrUserLogout), errors.As(reason, &ret) && loggedOutRet(ret):
		r.book.Error(acct, "logged_out", reason)
		r.book.SetState(acct, bot.StateLoggedOut)
		r.log.Error("WeChat logged the account out; operator action needed (a retry tries the stored session, then shows a QR code)", "account", acct, "reason", reason)
		return fmt.Errorf("wechat %s: logged out by WeChat (%v): %w", acct, reason, supervisor.ErrNeedsOperator)
	default:
		r.book.Error(acct, "sync_failed", reason)
		r.book.SetState(acct, bot.StateOffline)
		return fmt.Errorf("wechat %s: message sync stopped: %w", acct, reason)
	}
}

// graceContext returns a context that ends grace after parent does (or
// when cancel is called): what was received before shutdown still reaches
// the sink if the sink can take it in time.
func graceContext(parent context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	stop := context.AfterFunc(parent, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-ctx.Done():
		}
	})
	return ctx, func() {
		stop()
		cancel()
	}
}
