package onebot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/qunshao/qunshao/bot"
	"github.com/qunshao/qunshao/bot/supervisor"
)

// Tunables that are not worth a config key.
const (
	// maxPending and maxPendingBytes bound the live events a WebSocket
	// session holds back while the rosters load at connect. Past them the
	// session gives up the ordering rather than the events.
	maxPending      = 5000
	maxPendingBytes = 64 << 20
	// holdWait is how long an HTTP POST request waits for the rosters
	// before its events go to the sink anyway (the bot's HTTP client
	// times out otherwise).
	holdWait = 5 * time.Second
	// taskQueue bounds the follow-up work (bundles to expand, messages to
	// look up) waiting for a session's worker.
	taskQueue = 1024
	// maxForwardDepth bounds nested bundles (a bundle forwarded inside a
	// bundle inside ...).
	maxForwardDepth = 4
	// seenIDs is how many recent message ids a session remembers, so that
	// replies to and recalls of messages it just delivered need no get_msg.
	seenIDs = 8192
	// syncDebounce ignores a lifecycle-triggered sync right after another.
	syncDebounce = 10 * time.Second
	// slowSink is how long a single submission may take before it is
	// counted as back-pressure.
	slowSink = time.Second
	// syncRetry is the delay before retrying a connect sync that failed
	// (get_group_list unanswered).
	syncRetry = time.Minute
)

// endpoint is what every session of one runner shares.
type endpoint struct {
	runner string
	// key is the status row of the endpoint itself (the listener or the
	// dialled URL), for what happens before a bot account is known.
	key  string
	cfg  Config
	log  *slog.Logger
	book *supervisor.StatusBook
	// onListen, if set, learns the address a listener bound (tests listen
	// on port 0).
	onListen func(addr string)

	mu     sync.Mutex
	warned map[string]bool
}

// note counts an oddity on the endpoint's own status row (before any
// account is known: failed logins, bad handshakes) and logs it, a warning
// the first time and debug after that.
func (ep *endpoint) note(kind string, err error, msg string, args ...any) {
	if err != nil {
		ep.book.Error(ep.key, kind, err)
		args = append(args, "err", err)
	} else {
		ep.book.Count(ep.key, kind)
	}
	ep.mu.Lock()
	first := !ep.warned[kind]
	if ep.warned == nil {
		ep.warned = map[string]bool{}
	}
	ep.warned[kind] = true
	ep.mu.Unlock()
	level := slog.LevelDebug
	if first {
		level = slog.LevelWarn
	}
	ep.log.Log(context.Background(), level, msg, append(args, "runner", ep.runner, "counter", kind)...)
}

// session is one bot account over one connection (or, for HTTP POST, one
// account for the runner's lifetime). It turns decoded frames into sink
// submissions and runs a worker for what needs API calls: rosters at
// connect and on changes, backfill, forward bundles, get_msg look-ups.
type session struct {
	ep   *endpoint
	sink bot.Sink
	// sinkCtx bounds submissions. It is the runner's context, not the
	// connection's: events already received are submitted even when the
	// connection they came on has just been dropped or replaced.
	sinkCtx context.Context
	// buffer: hold live events in memory while the rosters load (WebSocket,
	// where the reader must keep reading to receive API responses); false
	// makes a submitter wait instead (HTTP POST).
	buffer bool
	// verifyLogin: ask get_login_info which account the API serves before
	// trusting it (HTTP POST's api_url is configured separately from the
	// accounts that post).
	verifyLogin bool
	// learn: the account is not known up front (forward WS) and is taken
	// from the first frame or get_login_info.
	learn bool

	mu       sync.Mutex
	account  string
	api      apiCaller
	groups   map[string]*groupInfo
	listed   bool // the group list was loaded at least once
	warned   map[string]bool
	lastSync time.Time

	hold holdState
	seen idRing

	tasks      chan task
	refreshMu  sync.Mutex
	refreshes  map[string]bool
	refreshSig chan struct{}
	syncSig    chan struct{}
}

type groupInfo struct {
	name string
	gone bool
}

// task is follow-up work for the worker.
type task struct {
	forward *forwardRef
	fetch   *msgRef
}

func newSession(sinkCtx context.Context, ep *endpoint, sink bot.Sink, account string, api apiCaller, buffer bool) *session {
	s := &session{
		ep: ep, sink: sink, sinkCtx: sinkCtx, buffer: buffer,
		account:    account,
		api:        api,
		groups:     map[string]*groupInfo{},
		warned:     map[string]bool{},
		tasks:      make(chan task, taskQueue),
		refreshes:  map[string]bool{},
		refreshSig: make(chan struct{}, 1),
		syncSig:    make(chan struct{}, 1),
	}
	s.hold.released = make(chan struct{})
	if api != nil {
		// Rosters first: live events wait until the connect-time rosters
		// are in, so the store can decide roles for the first messages.
		s.hold.holding = true
	} else {
		close(s.hold.released)
	}
	s.seen.init(seenIDs)
	return s
}

// key is the status row the session reports on: the account once known.
func (s *session) key() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.account != "" {
		return s.account
	}
	return s.ep.key
}

func (s *session) accountID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.account
}

// learnAccount adopts the account a forward connection turns out to serve.
func (s *session) learnAccount(id string) {
	if !s.learn || !validQQ(id) {
		return
	}
	s.mu.Lock()
	if s.account != "" {
		s.mu.Unlock()
		return
	}
	s.account = id
	s.mu.Unlock()
	s.ep.book.Forget(s.ep.key)
	s.ep.book.SetState(id, bot.StateOnline)
	s.logger().Info("OneBot account identified")
}

func (s *session) caller() apiCaller {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.api
}

func (s *session) logger() *slog.Logger {
	return s.ep.log.With("runner", s.ep.runner, "account", s.key())
}

// note counts an oddity and logs it: a warning the first time per
// session, debug after that, so a flood of bad frames cannot flood the log.
func (s *session) note(kind, msg string, args ...any) {
	s.ep.book.Count(s.key(), kind)
	s.logOnce(kind, msg, args...)
}

// fail counts an error (it shows in the account's error total).
func (s *session) fail(kind string, err error, msg string, args ...any) {
	s.ep.book.Error(s.key(), kind, err)
	s.logOnce(kind, msg, append(args, "err", err)...)
}

func (s *session) logOnce(kind, msg string, args ...any) {
	s.mu.Lock()
	first := !s.warned[kind]
	s.warned[kind] = true
	s.mu.Unlock()
	level := slog.LevelDebug
	// Implementations add notice types all the time; an unknown one is
	// worth a counter, not a warning.
	if first && kind != "unknown_post_type" {
		level = slog.LevelWarn
	}
	s.logger().Log(context.Background(), level, msg, append(args, "counter", kind)...)
}

// deliver hands a decoded frame's events to the sink (blocking while the
// sink is slow: that is the back-pressure that holds the reader) and
// schedules what they ask for. It returns an error only when the sink
// context ended.
func (s *session) deliver(d *decoded) error {
	if s.accountID() == "" && d.selfID != "" {
		s.learnAccount(d.selfID)
	}
	for _, c := range d.counts {
		s.note(c, oddity(c), "detail", short(d.ignored))
	}
	for _, err := range d.invalid {
		s.logger().Debug("dropped an OneBot event that does not validate", "err", err)
	}
	switch d.kind {
	case frameMeta:
		if d.online != nil {
			if *d.online {
				s.ep.book.SetState(s.key(), bot.StateOnline)
			} else {
				s.ep.book.SetState(s.key(), bot.StateOffline)
			}
		}
		if (d.lifecycle == "enable" || d.lifecycle == "connect") && !s.buffer {
			// HTTP POST has no connection to notice a restart by: the
			// lifecycle event is the sign to sync and backfill again.
			s.requestSync()
		}
		return nil
	case frameIgnored:
		if d.offline != "" {
			s.ep.book.SetState(s.key(), bot.StateLoggedOut)
			s.fail("bot_offline", errors.New(d.offline), "the bot reports that it was logged out of QQ")
			return nil
		}
		s.logger().Debug("ignored OneBot frame", "what", short(d.ignored))
		return nil
	case frameResponse:
		s.note("unexpected_response", "an API response arrived where none was expected")
		return nil
	}
	s.track(d)
	if err := s.submitLive(d.events); err != nil {
		return err
	}
	s.followUp(d)
	return nil
}

// track keeps the group list current from notices and fills a rename's
// old name from the last known name.
func (s *session) track(d *decoded) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range d.events {
		g := s.groups[ev.GroupID]
		if g == nil && s.listed {
			// A group the list did not have (joined while offline, or a
			// stale list): load its roster once.
			g = &groupInfo{}
			s.groups[ev.GroupID] = g
			d.refresh = append(d.refresh, ev.GroupID)
		}
		if ev.Kind == bot.KindRename && g != nil {
			if ev.Rename.OldName == "" {
				ev.Rename.OldName = g.name
			}
			g.name = ev.Rename.NewName
		}
	}
	if len(d.gone) == 0 && len(d.joined) == 0 {
		return
	}
	for _, id := range d.gone {
		if g := s.groups[id]; g != nil {
			g.gone = true
		} else {
			s.groups[id] = &groupInfo{gone: true}
		}
	}
	for _, id := range d.joined {
		if g := s.groups[id]; g != nil {
			g.gone = false
		} else {
			s.groups[id] = &groupInfo{}
		}
	}
	s.ep.book.SetGroups(s.keyLocked(), s.activeGroupsLocked())
}

func (s *session) keyLocked() string {
	if s.account != "" {
		return s.account
	}
	return s.ep.key
}

func (s *session) activeGroupsLocked() int {
	n := 0
	for _, g := range s.groups {
		if !g.gone {
			n++
		}
	}
	return n
}

// followUp schedules the worker's part: expanding bundles, looking up
// replied-to and recalled messages, refreshing rosters.
func (s *session) followUp(d *decoded) {
	for i := range d.forwards {
		fw := d.forwards[i]
		s.enqueue(task{forward: &fw})
	}
	for i := range d.fetch {
		if s.seen.has(d.fetch[i].id) {
			continue
		}
		ref := d.fetch[i]
		s.enqueue(task{fetch: &ref})
	}
	for _, g := range append(d.refresh, d.joined...) {
		s.requestRefresh(g)
	}
}

func (s *session) enqueue(t task) {
	if (t.fetch != nil || (t.forward != nil && t.forward.inline == "")) && s.caller() == nil {
		return // needs the API, and there is none
	}
	select {
	case s.tasks <- t:
	default:
		// The outer message (with the bundle or reply id) is stored; only
		// the expansion is lost, and the counter says so.
		s.note("task_dropped", "follow-up queue full; a forward bundle or message look-up was skipped")
	}
}

func (s *session) requestRefresh(groupID string) {
	if groupID == "" || s.caller() == nil {
		return
	}
	s.refreshMu.Lock()
	s.refreshes[groupID] = true
	s.refreshMu.Unlock()
	select {
	case s.refreshSig <- struct{}{}:
	default:
	}
}

func (s *session) requestSync() {
	select {
	case s.syncSig <- struct{}{}:
	default:
	}
}

// submit hands one event to the sink. A refused event is counted and
// skipped; only the end of the sink context stops the caller.
func (s *session) submit(ev *bot.Event) error {
	began := time.Now()
	err := s.sink.Submit(s.sinkCtx, ev)
	if d := time.Since(began); d > slowSink {
		// A flood, or a slow store: the reader is held back (nothing is
		// dropped), and operators should know why the bot lags.
		s.note("sink_slow", "the sink held an OneBot event back; reading from the bot waits for it", "waited", d.Round(time.Millisecond))
	}
	if err != nil {
		if s.sinkCtx.Err() != nil {
			return s.sinkCtx.Err()
		}
		s.fail("sink_refused", err, "the sink refused an OneBot event", "kind", ev.Kind, "group", ev.GroupID)
		return nil
	}
	s.ep.book.Event(s.key())
	if ev.Message != nil && ev.Message.ID != "" {
		s.seen.add(ev.Message.ID)
	}
	return nil
}

func (s *session) submitAll(evs []*bot.Event) error {
	for _, ev := range evs {
		if err := s.submit(ev); err != nil {
			return err
		}
	}
	return nil
}

// holdState keeps live events back until the connect-time rosters are
// submitted (the store decides each message's role from the roster
// history, so the roster must come first).
type holdState struct {
	mu       sync.Mutex
	holding  bool
	flushing bool
	pending  []*bot.Event
	bytes    int
	released chan struct{} // closed when holding ends
}

// submitLive submits events that arrived live, respecting the hold.
func (s *session) submitLive(evs []*bot.Event) error {
	if len(evs) == 0 {
		return nil
	}
	h := &s.hold
	h.mu.Lock()
	if !h.holding {
		h.mu.Unlock()
		return s.submitAll(evs)
	}
	if h.flushing || !s.buffer {
		ch, flushing := h.released, h.flushing
		h.mu.Unlock()
		if err := s.waitRelease(ch, flushing); err != nil {
			return err
		}
		return s.submitAll(evs)
	}
	size := 0
	for _, ev := range evs {
		size += len(ev.Raw)
	}
	if len(h.pending)+len(evs) <= maxPending && h.bytes+size <= maxPendingBytes {
		h.pending = append(h.pending, evs...)
		h.bytes += size
		h.mu.Unlock()
		return nil
	}
	// Too much arrived while the rosters load: keep the events, give up
	// the ordering.
	p := h.pending
	h.pending, h.bytes, h.holding = nil, 0, false
	close(h.released)
	h.mu.Unlock()
	s.note("roster_late", "too many events arrived while rosters loaded; submitting them before the rosters")
	if err := s.submitAll(p); err != nil {
		return err
	}
	return s.submitAll(evs)
}

// waitRelease waits for the hold to end. A flush in progress is always
// waited for (it only needs the sink); otherwise an HTTP submitter waits
// at most holdWait and then ends the hold itself.
func (s *session) waitRelease(ch chan struct{}, flushing bool) error {
	if flushing || s.buffer {
		select {
		case <-ch:
			return nil
		case <-s.sinkCtx.Done():
			return s.sinkCtx.Err()
		}
	}
	t := time.NewTimer(holdWait)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-s.sinkCtx.Done():
		return s.sinkCtx.Err()
	case <-t.C:
	}
	h := &s.hold
	h.mu.Lock()
	if h.holding && !h.flushing {
		h.holding = false
		close(h.released)
		h.mu.Unlock()
		s.note("roster_late", "rosters took too long; submitting events before them")
		return nil
	}
	ch = h.released
	h.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-s.sinkCtx.Done():
		return s.sinkCtx.Err()
	}
}

// release ends the hold, submitting what it kept in arrival order. Events
// that arrive meanwhile wait behind it. Safe to call more than once.
func (s *session) release() {
	h := &s.hold
	h.mu.Lock()
	if !h.holding || h.flushing {
		h.mu.Unlock()
		return
	}
	h.flushing = true
	for {
		if len(h.pending) == 0 {
			h.holding, h.flushing = false, false
			close(h.released)
			h.mu.Unlock()
			return
		}
		p := h.pending
		h.pending, h.bytes = nil, 0
		h.mu.Unlock()
		if err := s.submitAll(p); err != nil {
			// The sink is gone (shutdown): nothing more can be submitted.
			h.mu.Lock()
			h.pending, h.holding, h.flushing = nil, false, false
			close(h.released)
			h.mu.Unlock()
			return
		}
		h.mu.Lock()
	}
}

// call makes an API call and counts its failure.
func (s *session) call(ctx context.Context, action string, params map[string]any) (*apiResponse, error) {
	api := s.caller()
	if api == nil {
		return nil, errNoAPI
	}
	r, err := api.call(ctx, action, params)
	switch {
	case err == nil:
		return r, nil
	case ctx.Err() != nil:
		return nil, err
	case errors.Is(err, errAPITimeout):
		s.fail("api_timeout", err, "OneBot API call timed out", "action", action)
	case errors.As(err, new(*apiError)):
		// The implementation answered "failed": routine for get_msg of a
		// message it no longer has; counted, not an error.
		s.note("api_failed", "OneBot API call answered with a failure", "action", action, "err", err)
	default:
		s.fail("api_error", err, "OneBot API call failed", "action", action)
	}
	return nil, err
}

// work is the session's worker: the connect sync, then follow-ups,
// roster refreshes and the periodic sync until ctx (the connection's)
// ends. It always ends the hold before returning.
func (s *session) work(ctx context.Context) {
	defer s.release()
	var retry <-chan time.Time
	if s.caller() != nil {
		if !s.sync(ctx, true) {
			retry = time.After(syncRetry)
		}
	} else {
		s.release()
	}
	tick := time.NewTicker(s.ep.cfg.RosterRefresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case t := <-s.tasks:
			s.runTask(ctx, t)
		case <-s.refreshSig:
			s.refreshMu.Lock()
			groups := s.refreshes
			s.refreshes = map[string]bool{}
			s.refreshMu.Unlock()
			for g := range groups {
				s.refreshRoster(ctx, g)
			}
		case <-tick.C:
			if s.caller() != nil && !s.sync(ctx, false) {
				retry = time.After(syncRetry)
			}
		case <-retry:
			retry = nil
			if s.caller() != nil && !s.sync(ctx, true) {
				retry = time.After(syncRetry)
			}
		case <-s.syncSig:
			s.mu.Lock()
			recent := time.Since(s.lastSync) < syncDebounce
			s.mu.Unlock()
			if !recent && s.caller() != nil && !s.sync(ctx, true) {
				retry = time.After(syncRetry)
			}
		}
	}
}

// sync loads the group list and every group's roster, ends the hold, and
// with backfill fetches each group's recent history. It reports false
// when the group list could not be had (to be retried).
func (s *session) sync(ctx context.Context, backfill bool) bool {
	defer s.release()
	s.mu.Lock()
	s.lastSync = time.Now()
	s.mu.Unlock()
	if s.verifyLogin || s.accountID() == "" {
		r, err := s.call(ctx, "get_login_info", nil)
		if err != nil && (s.verifyLogin || s.accountID() == "") {
			return false // retried later; meanwhile the first frame may name the account
		}
		var l wireLogin
		if err == nil {
			_ = json.Unmarshal(r.data, &l)
		}
		id := string(l.UserID)
		switch {
		case err != nil:
			// The account came with a frame while get_login_info failed.
		case s.accountID() == "":
			s.learnAccount(id)
		case id != s.accountID():
			// HTTP POST: api_url answers for another bot; its rosters are
			// not this account's.
			s.fail("api_mismatch", fmt.Errorf("http_post.api_url serves account %q", id),
				"the OneBot HTTP API serves another account; rosters and backfill are off for this one")
			s.mu.Lock()
			s.api = nil
			s.mu.Unlock()
			return true
		}
		s.verifyLogin = false
	}
	groups, ok := s.loadGroups(ctx)
	if !ok {
		return false
	}
	for _, g := range groups {
		if ctx.Err() != nil {
			return true
		}
		s.refreshRoster(ctx, g)
	}
	s.release()
	if backfill && s.ep.cfg.Backfill > 0 {
		for _, g := range groups {
			if ctx.Err() != nil {
				return true
			}
			s.backfill(ctx, g)
		}
	}
	return true
}

// loadGroups calls get_group_list and updates the session's groups:
// groups missing from the list are gone (the bot left while offline).
func (s *session) loadGroups(ctx context.Context) ([]string, bool) {
	r, err := s.call(ctx, "get_group_list", map[string]any{"no_cache": true})
	if err != nil {
		return nil, false
	}
	list, err := decodeGroups(r.data)
	if err != nil {
		s.note("malformed_response", "get_group_list answered with something that is not a group list", "err", err)
		return nil, false
	}
	ids := make([]string, 0, len(list))
	s.mu.Lock()
	present := map[string]bool{}
	for _, g := range list {
		id := string(g.GroupID)
		present[id] = true
		ids = append(ids, id)
		if gi := s.groups[id]; gi != nil {
			gi.name, gi.gone = string(g.GroupName), false
		} else {
			s.groups[id] = &groupInfo{name: string(g.GroupName)}
		}
	}
	for id, g := range s.groups {
		if !present[id] {
			g.gone = true
		}
	}
	s.listed = true
	s.ep.book.SetGroups(s.keyLocked(), s.activeGroupsLocked())
	s.mu.Unlock()
	return ids, true
}

// refreshRoster submits a complete roster snapshot of one group. The
// owner comes from the member list (get_group_info has no owner field).
func (s *session) refreshRoster(ctx context.Context, groupID string) {
	if !validQQ(groupID) {
		return
	}
	s.mu.Lock()
	g := s.groups[groupID]
	if g == nil {
		g = &groupInfo{}
		s.groups[groupID] = g
	}
	gone, name := g.gone, g.name
	s.mu.Unlock()
	if gone {
		return
	}
	if name == "" {
		if r, err := s.call(ctx, "get_group_info", map[string]any{"group_id": idParam(groupID)}); err == nil {
			var info wireGroup
			if json.Unmarshal(r.data, &info) == nil && info.GroupName != "" {
				name = string(info.GroupName)
				s.mu.Lock()
				g.name = name
				s.mu.Unlock()
			}
		}
	}
	// The snapshot is dated to the second the list was asked for: the
	// store applies a snapshot to events at or after its time, and OneBot
	// times are whole seconds, so messages sent in the same second as the
	// request (the ones held back at connect) resolve against it.
	asked := time.Now().Truncate(time.Second)
	r, err := s.call(ctx, "get_group_member_list", map[string]any{"group_id": idParam(groupID), "no_cache": true})
	if err != nil {
		return
	}
	res, err := decodeRoster(r.data, groupID, name, s.accountID(), r.frame, asked)
	if err != nil {
		s.note("malformed_response", "get_group_member_list answered with something that is not a member list", "group", groupID, "err", err)
		return
	}
	if res.skipped > 0 {
		s.note("roster_entry_skipped", "member list entries without a usable id (or repeated) were skipped", "group", groupID, "skipped", res.skipped)
	}
	if !res.event.Roster.Complete {
		s.note("roster_incomplete", "member list is empty, partial or lacks the bot; stored as an incomplete snapshot", "group", groupID)
	}
	_ = s.submit(res.event)
}

// backfill submits a group's recent history, fetched after a (re)connect
// to cover what arrived while the connection was down. The store drops
// what it already has by message id.
func (s *session) backfill(ctx context.Context, groupID string) {
	s.mu.Lock()
	gone := s.groups[groupID] != nil && s.groups[groupID].gone
	s.mu.Unlock()
	if gone {
		return
	}
	r, err := s.call(ctx, "get_group_msg_history", map[string]any{"group_id": idParam(groupID), "count": s.ep.cfg.Backfill})
	if err != nil {
		return
	}
	d, err := decodeMessageList(r.data, groupID, s.accountID(), r.recv, s.ep.cfg.Backfill)
	if err != nil {
		s.note("malformed_response", "get_group_msg_history answered with something that is not a message list", "group", groupID, "err", err)
		return
	}
	s.deliverFetched(d)
}

// deliverFetched submits events that came from an API answer.
func (s *session) deliverFetched(d *decoded) {
	for _, c := range d.counts {
		s.note(c, oddity(c)+" (in an API answer)")
	}
	for _, err := range d.invalid {
		s.logger().Debug("dropped an OneBot event that does not validate", "err", err)
	}
	if err := s.submitAll(d.events); err != nil {
		return
	}
	s.followUp(d)
}

// runTask expands a forward bundle or looks up a message.
func (s *session) runTask(ctx context.Context, t task) {
	switch {
	case t.forward != nil:
		fw := *t.forward
		if fw.depth >= maxForwardDepth {
			s.note("forward_too_deep", "forward bundle nested too deep; not expanded", "forward", fw.id)
			return
		}
		var data json.RawMessage
		recv := time.Now()
		if fw.inline != "" && json.Valid([]byte(fw.inline)) {
			data = json.RawMessage(fw.inline)
		} else {
			if fw.id == "" {
				return
			}
			r, err := s.call(ctx, "get_forward_msg", map[string]any{"message_id": fw.id, "id": fw.id})
			if err != nil {
				return
			}
			data, recv = r.data, r.recv
		}
		d, err := decodeForward(data, fw, s.accountID(), recv)
		if err != nil {
			s.note("malformed_response", "a forward bundle is not a list of messages", "forward", fw.id, "err", err)
			return
		}
		s.deliverFetched(d)
	case t.fetch != nil:
		if s.seen.has(t.fetch.id) {
			return
		}
		r, err := s.call(ctx, "get_msg", map[string]any{"message_id": idParam(t.fetch.id)})
		if err != nil {
			return
		}
		d := &decoded{selfID: s.accountID()}
		decodeMessageObject(d, r.data, s.accountID(), r.recv, messageOpts{groupID: t.fetch.groupID})
		d.fetch = nil // do not walk reply chains back through history
		s.deliverFetched(d)
	}
}

// idRing remembers the most recent ids, bounded.
type idRing struct {
	mu  sync.Mutex
	ids []string
	pos int
	set map[string]bool
}

func (r *idRing) init(n int) {
	r.ids = make([]string, 0, n)
	r.set = make(map[string]bool, n)
}

func (r *idRing) add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.set[id] {
		return
	}
	if len(r.ids) < cap(r.ids) {
		r.ids = append(r.ids, id)
	} else {
		delete(r.set, r.ids[r.pos])
		r.ids[r.pos] = id
		r.pos = (r.pos + 1) % len(r.ids)
	}
	r.set[id] = true
}

func (r *idRing) has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.set[id]
}

// oddity describes a counter kind for the log.
func oddity(kind string) string {
	switch kind {
	case "unknown_post_type":
		return "OneBot frame of an unknown post, notice or meta type dropped"
	case "unknown_segment":
		return "message segment of an unknown type kept as \"other\""
	case "malformed_segment":
		return "message segment that is not an object kept as \"other\""
	case "malformed_message":
		return "message field that is neither segments nor a CQ string; message kept without content"
	case "invalid_event":
		return "OneBot event without what the store needs (group, sender, id) dropped"
	case "bad_time":
		return "OneBot event without a usable time; the receive time stands in"
	case "wrong_group":
		return "API answer about another group ignored"
	case "unknown_sub_type":
		return "notice of an unknown sub type kept with an unknown role"
	}
	return "odd OneBot input"
}

// short bounds text that came from the peer before it goes into a log.
func short(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
