package qq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/Mrs4s/MiraiGo/client"
	"github.com/Mrs4s/MiraiGo/message"
	"github.com/mdp/qrterminal/v3"
	"rsc.io/qr"

	"github.com/qunshao/qunshao/bot"
	"github.com/qunshao/qunshao/bot/supervisor"
)

const (
	// rosterEvery is how often every group's full member list is stored
	// again, so the roster history catches role changes MiraiGo missed.
	rosterEvery = 30 * time.Minute
	// refreshDelay batches roster refreshes after member changes: a wave
	// of joins costs one member-list download, not one per join.
	refreshDelay = 5 * time.Second
	// forwardTimeout bounds one forward-bundle download.
	forwardTimeout = 60 * time.Second
	// historyPage is how many messages one GetGroupMessages request asks
	// for; it is what QQ clients and go-cqhttp request.
	historyPage = 20
	// maxForwardsPerMessage bounds the bundles (nested ones included)
	// downloaded for one message; an attacker can nest them.
	maxForwardsPerMessage = 32
	// seenForwards is how many downloaded bundle ids are remembered, so
	// a backfill after a reconnect does not download them again.
	seenForwards = 4096
)

// runner serves one QQ account: it logs in, keeps rosters, backfills and
// streams events until the connection drops or ctx ends.
type runner struct {
	acct     Account // defaults applied
	account  string  // the QQ number as the status and events show it
	name     string
	backfill int
	log      *slog.Logger
	qr       *qrPrinter
	book     supervisor.StatusBook
	now      func() time.Time

	newSession   func() session
	rosterEvery  time.Duration
	refreshDelay time.Duration

	// Kept across runs; only Run uses it and the supervisor never runs
	// one runner twice at once.
	fwdSeen *boundedSet
}

var _ supervisor.Runner = (*runner)(nil)

// NewRunners returns one supervisor runner per configured account.
// Secrets missing from cfg are read from QUNSHAO_BOTS_QQ_PASSWORD_<uin> and
// QUNSHAO_BOTS_QQ_SIGN_KEY. QR codes are printed to qr (nil: not printed; they
// are still in each account's status as LoginURL).
//
// With a sign server configured, NewRunners points MiraiGo's process-wide
// sign hooks at it (see sign.go); build the runners once per process.
func NewRunners(cfg Config, log *slog.Logger, qrOut io.Writer) ([]supervisor.Runner, error) {
	cfg = cfg.WithEnv(os.Getenv)
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("qq config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if qrOut == nil {
		qrOut = io.Discard
	}
	printer := &qrPrinter{w: qrOut}
	var signer *signRouter
	if cfg.SignServer != "" {
		signer = newSignRouter(cfg.SignServer, cfg.SignKey, log.With("component", "qq-sign"))
		signer.install()
	}
	var errs []error
	var out []supervisor.Runner
	for i, raw := range cfg.Accounts {
		a := raw.withDefaults()
		if a.Login == LoginPassword && a.Password == "" {
			errs = append(errs, fmt.Errorf("qq config: accounts[%d].password: login is password but none is set; set %s%d",
				i, EnvPasswordPrefix, a.Uin))
			continue
		}
		r := newRunner(a, cfg.Backfill, log, printer)
		r.newSession = func() session { return newMiraiSession(a, signer, r.log, r.count) }
		out = append(out, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func newRunner(a Account, backfill int, log *slog.Logger, printer *qrPrinter) *runner {
	account := strconv.FormatInt(a.Uin, 10)
	r := &runner{acct: a, account: account, name: "qq:" + account, backfill: backfill, qr: printer,
		now: time.Now, rosterEvery: rosterEvery, refreshDelay: refreshDelay, fwdSeen: newBoundedSet(seenForwards)}
	r.log = log.With("runner", r.name)
	r.book.Base = bot.Status{Platform: bot.QQ, Runner: r.name, Transport: "miraigo"}
	r.book.Now = func() time.Time { return r.now() }
	r.book.SetState(account, bot.StateStarting)
	return r
}

func (r *runner) Name() string         { return r.name }
func (r *runner) Status() []bot.Status { return r.book.Snapshot() }
func (r *runner) count(kind string)    { r.book.Count(r.account, kind) }

// prompt shows a QR code (or a verification link) to the operator: in the
// status, where the console shows it, and on the QR writer.
func (r *runner) prompt(content string) {
	r.book.SetLogin(r.account, content)
	r.log.Warn("QQ login waits for an operator: scan the QR code (or open the link) printed on the console and shown in the bot status")
	r.qr.print(r.account, content)
}

// Run logs in and delivers events until ctx ends (nil) or the connection
// fails (an error; the supervisor restarts the runner, which backfills
// what was missed).
func (r *runner) Run(ctx context.Context, sink bot.Sink) error {
	r.book.SetState(r.account, bot.StateConnecting)
	s := r.newSession()
	defer s.Close()
	if err := s.Login(ctx, r.prompt); err != nil {
		if ctx.Err() != nil {
			r.book.SetState(r.account, bot.StateStopped)
			return nil
		}
		var verify *verificationError
		if errors.As(err, &verify) {
			// Keep the link up while the supervisor waits to retry: the
			// operator verifies on the phone, then the retry passes.
			r.book.Error(r.account, "login_required", err)
			r.book.SetLogin(r.account, verify.url)
		} else if errors.Is(err, supervisor.ErrNeedsOperator) {
			r.book.Error(r.account, "login_required", err)
			r.book.SetState(r.account, bot.StateLoggedOut)
		} else {
			r.book.Error(r.account, "login_failed", err)
			r.book.SetState(r.account, bot.StateError)
		}
		return fmt.Errorf("qq %s: login: %w", r.account, err)
	}
	r.book.SetState(r.account, bot.StateOnline)
	r.log.Info("QQ account online")

	c := &connection{r: r, s: s, sink: sink, groups: map[int64]*client.GroupInfo{}, dirty: map[int64]bool{}, missing: map[int64]bool{},
		conv: newConverter(r.account, r.now, r.count)}
	// Roster first: a message's role is looked up in the roster history
	// at its time, so the history must be current before messages of
	// this connection arrive.
	if err := c.refreshAll(ctx); err != nil {
		return r.ended(ctx, "group_list_failed", fmt.Errorf("qq %s: group list: %w", r.account, err))
	}
	if err := c.backfillAll(ctx); err != nil {
		return r.ended(ctx, "backfill_failed", err)
	}
	full := time.NewTicker(r.rosterEvery)
	defer full.Stop()
	refresh := time.NewTicker(r.refreshDelay)
	defer refresh.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return r.ended(ctx, "", nil)
		case v := <-s.Events():
			err = c.handle(ctx, v)
		case <-full.C:
			err = c.refreshAll(ctx)
			if err != nil && ctx.Err() == nil {
				// Keep streaming; the next refresh may succeed.
				r.book.Error(r.account, "roster_failed", err)
				r.log.Warn("periodic roster refresh failed", "err", err)
				err = nil
			}
		case <-refresh.C:
			err = c.refreshDirty(ctx)
		}
		if err != nil {
			return r.ended(ctx, "disconnected", err)
		}
	}
}

// ended records why Run returns.
func (r *runner) ended(ctx context.Context, kind string, err error) error {
	if ctx.Err() != nil {
		r.book.SetState(r.account, bot.StateStopped)
		return nil
	}
	r.book.Error(r.account, kind, err)
	r.book.SetState(r.account, bot.StateOffline)
	r.log.Warn("QQ connection ended", "err", err)
	return err
}

// connection is the state of one logged-in session.
type connection struct {
	r      *runner
	s      session
	sink   bot.Sink
	conv   *converter
	groups map[int64]*client.GroupInfo
	dirty  map[int64]bool // groups whose roster must be reloaded
	// reload asks for the whole group list again (a group appeared that
	// the list did not have); missing remembers groups asked about once,
	// so a group the list never shows does not cause a reload per message.
	reload  bool
	missing map[int64]bool
}

func (c *connection) submit(ctx context.Context, ev *bot.Event) error {
	r := c.r
	if err := ev.Validate(); err != nil {
		// The converter is built to produce valid events; this is a bug
		// worth seeing, not a reason to drop the connection.
		r.book.Error(r.account, "invalid_event", err)
		r.log.Error("converted event is invalid", "kind", ev.Kind, "group", ev.GroupID, "err", err)
		return nil
	}
	if err := c.sink.Submit(ctx, ev); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// The sink refused this one event (invalid, too large). Other
		// events are not affected, and the refusal is the store's to
		// report; count it and go on.
		r.book.Error(r.account, "submit_refused", err)
		r.log.Warn("event refused by the store", "kind", ev.Kind, "group", ev.GroupID, "err", err)
		return nil
	}
	r.book.Event(r.account)
	return nil
}

// refreshAll reloads the group list and stores every group's roster.
func (c *connection) refreshAll(ctx context.Context) error {
	list, err := c.s.Groups(ctx)
	if err != nil {
		return err
	}
	c.reload = false
	groups := make(map[int64]*client.GroupInfo, len(list))
	for _, g := range list {
		if g != nil && g.Code > 0 {
			groups[g.Code] = g
		}
	}
	c.groups = groups
	c.r.book.SetGroups(c.r.account, len(groups))
	for _, code := range sortedCodes(groups) {
		g := groups[code]
		members := snapshotMembers(g)
		if len(members) == 0 {
			// MiraiGo drops a group's member-list error and leaves the
			// list empty; an empty roster would say everyone left.
			c.r.count("roster_unavailable")
			c.dirty[code] = true
			continue
		}
		delete(c.dirty, code)
		if err := c.submit(ctx, c.conv.roster(g, members)); err != nil {
			return err
		}
	}
	return nil
}

// refreshDirty reloads the member lists of groups that changed.
func (c *connection) refreshDirty(ctx context.Context) error {
	if c.reload {
		if err := c.refreshAll(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.r.book.Error(c.r.account, "roster_failed", err)
			c.reload = false // the periodic refresh tries again
		}
	}
	for _, code := range sortedCodes(c.dirty) {
		delete(c.dirty, code)
		g := c.groups[code]
		if g == nil {
			continue
		}
		members, err := c.s.GroupMembers(ctx, g)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.r.book.Error(c.r.account, "roster_failed", err)
			continue
		}
		if len(members) == 0 {
			c.r.count("roster_unavailable")
			continue
		}
		if err := c.submit(ctx, c.conv.roster(g, members)); err != nil {
			return err
		}
	}
	return nil
}

// backfillAll fetches each group's latest Backfill messages. Whatever was
// stored before is deduplicated by the store on the message id.
func (c *connection) backfillAll(ctx context.Context) error {
	if c.r.backfill <= 0 {
		return nil
	}
	for _, code := range sortedCodes(c.groups) {
		if err := c.backfill(ctx, code); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.r.book.Error(c.r.account, "backfill_failed", err)
			c.r.log.Warn("backfill failed", "group", code, "err", err)
		}
	}
	return nil
}

func (c *connection) backfill(ctx context.Context, code int64) error {
	last, err := c.s.LastSeq(ctx, code)
	if err != nil {
		return err
	}
	if last <= 0 {
		return nil
	}
	self := c.s.Uin()
	// Both ends of a GetGroupMessages range are included (as in mirai
	// and go-cqhttp, which ask for seq-19..seq to get 20 messages).
	for begin := max(1, last-int64(c.r.backfill)+1); begin <= last; begin += historyPage {
		end := min(begin+historyPage-1, last)
		msgs, err := c.s.GroupMessages(ctx, code, begin, end)
		if err != nil {
			return fmt.Errorf("history %d..%d: %w", begin, end, err)
		}
		sort.SliceStable(msgs, func(i, j int) bool { return seqOf(msgs[i]) < seqOf(msgs[j]) })
		for _, m := range msgs {
			if m == nil {
				c.r.count("nil_event")
				continue
			}
			if err := c.deliver(ctx, m, m.Sender != nil && m.Sender.Uin == self); err != nil {
				return err
			}
		}
	}
	return nil
}

func seqOf(m *message.GroupMessage) int32 {
	if m == nil {
		return 0
	}
	return m.Id
}

// handle processes one event from the session.
func (c *connection) handle(ctx context.Context, v any) error {
	switch x := v.(type) {
	case *message.GroupMessage:
		if x == nil {
			c.r.count("nil_event")
			return nil
		}
		return c.deliver(ctx, x, false)
	case selfMessage:
		if x.GroupMessage == nil {
			c.r.count("nil_event")
			return nil
		}
		return c.deliver(ctx, x.GroupMessage, true)
	case *client.ClientDisconnectedEvent:
		reason := "no reason given"
		if x != nil && x.Message != "" {
			reason = x.Message
		}
		return fmt.Errorf("qq %s: disconnected: %s", c.r.account, reason)
	case *client.GroupInfo:
		// The account joined a group: record its roster.
		if x == nil {
			c.reload = true
			return nil
		}
		c.groups[x.Code] = x
		c.dirty[x.Code] = true
		c.r.book.SetGroups(c.r.account, len(c.groups))
		return nil
	}
	if isNilValue(v) {
		c.r.count("nil_event")
		return nil
	}
	ev := c.conv.notice(v)
	if ev == nil {
		c.r.count("unknown_event")
		return nil
	}
	if err := c.submit(ctx, ev); err != nil {
		return err
	}
	switch x := v.(type) {
	case *client.MemberJoinGroupEvent:
		c.markDirty(x.Group)
	case *client.MemberLeaveGroupEvent:
		c.markDirty(x.Group)
	case *client.MemberPermissionChangedEvent:
		c.markDirty(x.Group)
	case *client.GroupLeaveEvent:
		c.forget(x.Group)
	case *client.GroupDisbandEvent:
		c.forget(x.Group)
	}
	return nil
}

func (c *connection) markDirty(g *client.GroupInfo) {
	if g == nil || g.Code <= 0 {
		return
	}
	if _, ok := c.groups[g.Code]; !ok {
		c.groups[g.Code] = g
	}
	c.dirty[g.Code] = true
}

func (c *connection) forget(g *client.GroupInfo) {
	if g == nil {
		return
	}
	delete(c.groups, g.Code)
	delete(c.dirty, g.Code)
	c.r.book.SetGroups(c.r.account, len(c.groups))
}

// deliver stores a message, then the forward bundles it contains, each
// node as a message of its own.
func (c *connection) deliver(ctx context.Context, m *message.GroupMessage, self bool) error {
	ev, work := c.conv.message(m, self)
	if _, ok := c.groups[m.GroupCode]; !ok && m.GroupCode > 0 && !c.missing[m.GroupCode] {
		c.missing[m.GroupCode] = true
		c.reload = true // a group the list did not have: get its roster
	}
	if err := c.submit(ctx, ev); err != nil {
		return err
	}
	for n := 0; len(work) > 0; n++ {
		w := work[0]
		work = work[1:]
		if n >= maxForwardsPerMessage {
			c.r.count("forward_limit")
			break
		}
		if w.Bundle == nil {
			if c.r.fwdSeen.has(w.ResID) {
				continue
			}
			fctx, cancel := context.WithTimeout(ctx, forwardTimeout)
			fm, err := c.s.Forward(fctx, w.ResID)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				// The outer message keeps the res id in its forward
				// segment, so the bundle can still be fetched later.
				c.r.book.Error(c.r.account, "forward_fetch_failed", err)
				continue
			}
			c.r.fwdSeen.add(w.ResID)
			w.Bundle = fm
		}
		evs, more := c.conv.forwardNodes(ev, w)
		for _, fe := range evs {
			if err := c.submit(ctx, fe); err != nil {
				return err
			}
		}
		work = append(work, more...)
	}
	return nil
}

func sortedCodes[V any](m map[int64]V) []int64 {
	codes := make([]int64, 0, len(m))
	for k := range m {
		codes = append(codes, k)
	}
	slices.Sort(codes)
	return codes
}

// boundedSet remembers the last n strings added.
type boundedSet struct {
	n     int
	set   map[string]bool
	order []string
}

func newBoundedSet(n int) *boundedSet { return &boundedSet{n: n, set: map[string]bool{}} }

func (b *boundedSet) has(s string) bool { return b.set[s] }

func (b *boundedSet) add(s string) {
	if b.set[s] {
		return
	}
	if len(b.order) >= b.n {
		delete(b.set, b.order[0])
		b.order = b.order[1:]
	}
	b.set[s] = true
	b.order = append(b.order, s)
}

// qrPrinter writes QR codes for all accounts to one writer without
// interleaving them.
type qrPrinter struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *qrPrinter) print(account, content string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\nQQ %s needs a login. Scan this with the mobile QQ app of account %s:\n", account, account)
	// qrterminal panics on text too long for a QR code; check first.
	if strings.HasPrefix(content, "http") {
		if _, err := qr.Encode(content, qr.L); err == nil {
			qrterminal.GenerateWithConfig(content, qrterminal.Config{
				Level: qrterminal.L, Writer: p.w, HalfBlocks: true, QuietZone: 2,
				BlackChar: qrterminal.BLACK_BLACK, WhiteBlackChar: qrterminal.WHITE_BLACK,
				WhiteChar: qrterminal.WHITE_WHITE, BlackWhiteChar: qrterminal.BLACK_WHITE,
			})
		}
	}
	fmt.Fprintf(p.w, "%s\n\n", printable(content))
}

// printable drops control characters, so nothing that reaches the login
// prompt can drive the operator's terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) || r == utf8.RuneError {
			return -1
		}
		return r
	}, s)
}
