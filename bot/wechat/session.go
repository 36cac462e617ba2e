package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/eatmoreapple/openwechat"
	"github.com/qunshao/qunshao/bot"
)

// systemID is the sender of system notices: the platform itself speaks.
const systemID = "wechat_system"

// unknownID is the sender of a group message that names nobody (it should
// not happen; the message is kept regardless).
const unknownID = "wechat_unknown"

// Limits on what one response may hold.
const (
	maxContactBytes = 64 << 20
	batchSize       = 50 // webwxbatchgetcontact takes at most 50 users
	recentMessages  = 4096
)

// session is one login of one account: what the runner knows between
// openwechat reporting a successful login and the session ending.
//
// openwechat calls the message, sync-check and sync-error handlers from its
// own sync goroutine, one at a time; the roster goroutine runs beside it.
// Group state is shared under mu; roster fetches are serialised by fetchMu.
type session struct {
	r         *runner
	acct      string
	log       *slog.Logger
	bot       *openwechat.Bot
	cap       *syncCapture
	hot       *hotStorage
	sink      bot.Sink
	ctx       context.Context // ends when the runner stops
	submitCtx context.Context // outlives ctx by a grace period, to deliver what was received

	ready chan struct{}
	// Set before ready is closed, read-only afterwards.
	selfUser   string
	selfNick   string
	botID      string
	sess       string
	loginInfo  *openwechat.LoginInfo
	baseReq    *openwechat.BaseRequest
	initGroups []string

	fetchMu sync.Mutex

	mu      sync.Mutex
	groups  map[string]*groupState // by session UserName
	recent  map[string]string      // message id -> sender id, for recalls
	recentQ []string
	retryAt map[string]time.Time // groups whose roster could not be fetched on demand

	refresh chan string

	// Used by openwechat's sync goroutine only.
	failures int
	lastGood int64
}

// groupState is a group as last fetched in this session. A new fetch
// replaces the whole value; members is guarded by session.mu.
type groupState struct {
	userName string
	id       string
	name     string
	owner    string // session UserName of ChatRoomOwner
	members  map[string]*memberInfo
}

type memberInfo struct {
	userName string
	nick     string
	card     string
	key      string
	idSource string
}

func (m *memberInfo) member(role bot.Role) bot.Member {
	out := bot.Member{ID: m.key, Nick: m.nick, Card: m.card, Role: role, IDSource: m.idSource}
	if m.idSource != bot.IDPlatform {
		out.SessionID = safeID(m.userName)
	}
	return out
}

func newSession(r *runner, b *openwechat.Bot, c *syncCapture, hot *hotStorage, sink bot.Sink, ctx, submitCtx context.Context) *session {
	return &session{
		r: r, acct: r.acc.Name, log: r.log, bot: b, cap: c, hot: hot, sink: sink, ctx: ctx, submitCtx: submitCtx,
		ready:   make(chan struct{}),
		groups:  map[string]*groupState{},
		recent:  map[string]string{},
		retryAt: map[string]time.Time{},
		refresh: make(chan string, 64),
	}
}

// start records who is logged in. openwechat has written its session
// before starting its sync goroutine and only changes the sync key after,
// so these reads do not race with it.
func (s *session) start() error {
	resp, info := s.bot.Storage.Response, s.bot.Storage.LoginInfo
	if resp == nil || resp.User == nil || info == nil || s.bot.Storage.Request == nil {
		return errors.New("openwechat reported a login without the logged-in user")
	}
	s.selfUser = resp.User.UserName
	s.selfNick = openwechat.FormatEmoji(resp.User.NickName)
	uin := info.WxUin
	if uin == 0 {
		uin = resp.User.Uin
	}
	s.botID = strconv.FormatInt(uin, 10)
	// The session tag distinguishes logins without keeping the session id
	// itself in the identity file: a hot login continues the session (and
	// its UserNames), a QR login starts a new one.
	s.sess = shortHash("session", s.botID, info.WxSid)
	s.loginInfo, s.baseReq = info, s.bot.Storage.Request
	for _, c := range resp.ContactList {
		if c != nil && strings.HasPrefix(c.UserName, "@@") {
			s.initGroups = append(s.initGroups, c.UserName)
		}
	}
	close(s.ready)
	return nil
}

// waitReady waits until start has run. Once it has, it reports true even
// when the run is stopping: the messages of a batch being handled are
// still delivered (or kept).
func (s *session) waitReady() bool {
	if s.isReady() {
		return true
	}
	select {
	case <-s.ready:
		return true
	case <-s.ctx.Done():
		return false
	}
}

func (s *session) isReady() bool {
	select {
	case <-s.ready:
		return true
	default:
		return false
	}
}

func (s *session) count(kind string) { s.r.book.Count(s.acct, kind) }

func (s *session) now() time.Time { return s.r.opts.now().In(cst) }

// ---- openwechat callbacks (sync goroutine) ----

// onMessage is openwechat's MessageHandler.
func (s *session) onMessage(m *openwechat.Message) {
	if m == nil || !s.waitReady() {
		return
	}
	s.drain()
	var in inMsg
	raw := s.cap.take(m.MsgId)
	if raw != nil {
		d, err := decodeInMsg(raw)
		if err == nil {
			in = d
		} else {
			raw = nil
		}
	}
	if raw == nil {
		// Not captured (the response was too large to hold): fall back to
		// openwechat's re-encoding of what it decoded.
		s.count("raw_reencoded")
		in = inFromOpenwechat(m)
	}
	s.handle(in, m)
}

// onSyncCheck is openwechat's SyncCheckCallback, called after every long
// poll.
func (s *session) onSyncCheck(resp openwechat.SyncCheckResponse) {
	if resp.Success() && resp.Selector == openwechat.SelectorNormal {
		s.failures = 0
	}
	if s.isReady() {
		s.drain()
		s.flushSession() // the previous batch is delivered
	}
}

// flushSession saves the sync key of the batches delivered so far.
func (s *session) flushSession() {
	if err := s.hot.flush(); err != nil {
		s.r.book.Error(s.acct, "storage_failed", err)
		s.log.Error("wechat session could not be saved; the next start may need a QR login", "account", s.acct, "err", err)
	}
}

// onSyncError is openwechat's MessageErrorHandler: nil keeps the sync loop
// going, an error ends the session (openwechat then calls LogoutCallBack).
func (s *session) onSyncError(err error) error {
	if s.ctx.Err() != nil {
		return err
	}
	garbage := 0
	if s.isReady() {
		garbage = s.drain()
		s.flushSession()
	}
	var ret openwechat.Ret
	if errors.As(err, &ret) && loggedOutRet(ret) {
		return err
	}
	if g := s.cap.good.Load(); g != s.lastGood {
		s.lastGood, s.failures = g, 0
	}
	s.failures++
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn) || errors.As(err, &typ):
		if garbage == 0 {
			s.r.book.Error(s.acct, "malformed_sync", err)
		}
	case strings.Contains(err.Error(), "parse sync key failed"):
		s.r.book.Error(s.acct, "malformed_synccheck", err)
	default:
		s.r.book.Error(s.acct, "sync_error", err)
	}
	if s.failures > s.r.opts.maxSyncFailures {
		s.log.Error("wechat message sync keeps failing; restarting the session", "account", s.acct, "failures", s.failures, "err", err)
		return err
	}
	d := s.r.opts.retryMin << min(s.failures-1, 5)
	s.log.Warn("wechat message sync failed; retrying", "account", s.acct, "err", err, "retry_in", d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-s.ctx.Done():
		return err
	}
}

// loggedOutRet reports whether a sync-check return code means WeChat ended
// the session (logged out on the phone, logged in elsewhere, expired).
func loggedOutRet(r openwechat.Ret) bool {
	switch r {
	case 1100, 1101, 1102:
		return true
	}
	return false
}

// drain handles what the capture set aside: messages openwechat could not
// decode, responses that are not JSON, groups whose rosters changed. It
// returns how many unreadable responses it kept.
func (s *session) drain() int {
	pending, garbage, mods := s.cap.drain()
	for _, b := range garbage {
		s.r.book.Error(s.acct, "malformed_sync", errors.New("webwxsync response is not JSON"))
		s.log.Warn("wechat sync response is not JSON; kept in the undelivered file", "account", s.acct, "bytes", len(b))
		s.spoolBody("malformed_sync", b)
	}
	for _, raw := range pending {
		in, err := decodeInMsg(raw)
		if err != nil {
			s.r.book.Error(s.acct, "malformed_message", err)
			s.spoolBody("malformed_message", raw)
			continue
		}
		// openwechat could not decode it; convert it without openwechat.
		s.count("salvaged_message")
		s.handle(in, nil)
	}
	for _, g := range mods {
		s.requestRefresh(g)
	}
	return len(garbage)
}

// ---- delivery ----

// submit hands an event to the sink. What the sink refuses, or cannot take
// before shutdown, goes to the undelivered file: WeChat will not send it
// again.
func (s *session) submit(ev *bot.Event) {
	ev.Platform = bot.WeChat
	ev.Bot = s.botID
	if err := ev.Validate(); err != nil {
		s.r.book.Error(s.acct, "invalid_event", err)
		s.log.Error("wechat event is invalid; kept in the undelivered file", "account", s.acct, "kind", ev.Kind, "err", err)
		s.spoolEvent("invalid_event", err, ev)
		return
	}
	if err := s.sink.Submit(s.submitCtx, ev); err != nil {
		reason := "submit_failed"
		if s.submitCtx.Err() != nil {
			reason = "shutdown"
		}
		s.r.book.Error(s.acct, reason, err)
		s.log.Error("wechat event not accepted by the store; kept in the undelivered file", "account", s.acct, "kind", ev.Kind, "group", ev.GroupID, "err", err)
		s.spoolEvent(reason, err, ev)
		return
	}
	s.r.book.Event(s.acct)
}

func (s *session) spoolEvent(reason string, err error, ev *bot.Event) {
	if werr := s.r.spool.event(reason, err, ev); werr != nil {
		s.r.book.Error(s.acct, "spool_failed", werr)
		s.log.Error("wechat undelivered file could not be written; event lost", "account", s.acct, "kind", ev.Kind, "err", werr)
	}
}

func (s *session) spoolBody(reason string, b []byte) {
	if len(b) == 0 {
		return
	}
	if werr := s.r.spool.body(reason, b); werr != nil {
		s.r.book.Error(s.acct, "spool_failed", werr)
		s.log.Error("wechat undelivered file could not be written; payload lost", "account", s.acct, "reason", reason, "err", werr)
	}
}

// safeID returns id when the store accepts it as an identifier, else "".
func safeID(id string) string {
	if id == "" || len(id) > bot.MaxIDLen || !utf8.ValidString(id) {
		return ""
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c == 0x7f {
			return ""
		}
	}
	return id
}
