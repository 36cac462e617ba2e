package qq

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/Mrs4s/MiraiGo/client"
	"github.com/Mrs4s/MiraiGo/message"

	"github.com/qunshao/qunshao/bot"
)

// fakeSession stands in for a logged-in MiraiGo client. It serves a fixed
// group list, per-group history and forward bundles, and records every
// call so tests can check the runner only ever reads.
type fakeSession struct {
	uin      int64
	loginErr error
	prompt   string        // shown by Login before it succeeds
	release  chan struct{} // if set, Login waits for it after prompting

	mu       sync.Mutex
	groups   []*client.GroupInfo
	history  map[int64][]*message.GroupMessage
	forwards map[string]*message.ForwardMessage
	calls    []string
	closed   bool

	events chan any
}

var _ session = (*fakeSession)(nil)

func newFake(uin int64, groups ...*client.GroupInfo) *fakeSession {
	return &fakeSession{uin: uin, groups: groups, history: map[int64][]*message.GroupMessage{},
		forwards: map[string]*message.ForwardMessage{}, events: make(chan any, 64)}
}

func (f *fakeSession) record(call string) {
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
}

func (f *fakeSession) callCount(call string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == call {
			n++
		}
	}
	return n
}

func (f *fakeSession) assertReadOnly(t *testing.T) {
	t.Helper()
	// The calls a runner may make. The session has no sending method;
	// this also guards against one being added and used.
	readOnly := []string{"Login", "Uin", "Groups", "GroupMembers", "LastSeq", "GroupMessages", "Forward", "Close"}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls {
		if !slices.Contains(readOnly, c) {
			t.Errorf("runner called %s, which is not a read-only call", c)
		}
	}
}

func (f *fakeSession) Login(ctx context.Context, prompt func(string)) error {
	f.record("Login")
	if f.prompt != "" {
		prompt(f.prompt)
	}
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return f.loginErr
}

func (f *fakeSession) Uin() int64 { f.record("Uin"); return f.uin }

func (f *fakeSession) Groups(context.Context) ([]*client.GroupInfo, error) {
	f.record("Groups")
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*client.GroupInfo(nil), f.groups...), nil
}

func (f *fakeSession) GroupMembers(_ context.Context, g *client.GroupInfo) ([]*client.GroupMemberInfo, error) {
	f.record("GroupMembers")
	return snapshotMembers(g), nil
}

func (f *fakeSession) LastSeq(_ context.Context, code int64) (int64, error) {
	f.record("LastSeq")
	f.mu.Lock()
	defer f.mu.Unlock()
	last := int64(0)
	for _, m := range f.history[code] {
		last = max(last, int64(m.Id))
	}
	return last, nil
}

func (f *fakeSession) GroupMessages(_ context.Context, code, begin, end int64) ([]*message.GroupMessage, error) {
	f.record("GroupMessages")
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*message.GroupMessage
	for _, m := range f.history[code] {
		if int64(m.Id) >= begin && int64(m.Id) <= end {
			out = append(out, m)
		}
	}
	return out, nil
}

func (f *fakeSession) Forward(_ context.Context, resID string) (*message.ForwardMessage, error) {
	f.record("Forward")
	f.mu.Lock()
	defer f.mu.Unlock()
	if fm := f.forwards[resID]; fm != nil {
		return fm, nil
	}
	return nil, errors.New("no such bundle")
}

func (f *fakeSession) Events() <-chan any { return f.events }

func (f *fakeSession) Close() {
	f.record("Close")
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
}

func (f *fakeSession) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// ---- builders from MiraiGo's own types ----

const botUin = 999

func member(uin int64, perm client.MemberPermission, nick string) *client.GroupMemberInfo {
	return &client.GroupMemberInfo{Uin: uin, Nickname: nick, Permission: perm, JoinTime: 1700000000}
}

// group builds a group whose owner is uin 1 and which contains the bot.
func group(code int64, name string, members ...*client.GroupMemberInfo) *client.GroupInfo {
	g := &client.GroupInfo{Uin: code + 1000000000, Code: code, Name: name, OwnerUin: 1, MemberCount: uint16(len(members) + 1)}
	g.Members = append([]*client.GroupMemberInfo{member(botUin, client.Member, "哨兵")}, members...)
	for _, m := range g.Members {
		m.Group = g
	}
	slices.SortFunc(g.Members, func(a, b *client.GroupMemberInfo) int { return int(a.Uin - b.Uin) })
	return g
}

func textMsg(code int64, id int32, from int64, text string, elems ...message.IMessageElement) *message.GroupMessage {
	if text != "" {
		elems = append([]message.IMessageElement{message.NewText(text)}, elems...)
	}
	return &message.GroupMessage{Id: id, InternalId: id * 7, GroupCode: code, GroupName: "团购群",
		Sender: &message.Sender{Uin: from, Nickname: "u" + string(rune('0'+from%10))}, Time: 1714000000 + id, Elements: elems}
}

// recordingSink keeps every event it accepts.
type recordingSink struct {
	mu  sync.Mutex
	evs []*bot.Event
}

func (s *recordingSink) Submit(_ context.Context, ev *bot.Event) error {
	if err := ev.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	s.evs = append(s.evs, ev)
	s.mu.Unlock()
	return nil
}

func (s *recordingSink) events() []*bot.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*bot.Event(nil), s.evs...)
}

func (s *recordingSink) messageIDs() []string {
	var ids []string
	for _, ev := range s.events() {
		if ev.Kind == bot.KindMessage {
			ids = append(ids, ev.Message.ID)
		}
	}
	return ids
}

func (s *recordingSink) has(pred func(*bot.Event) bool) bool {
	return slices.ContainsFunc(s.events(), pred)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // generous: CI machines can be loaded
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for a log handler and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func testLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testRunner builds a runner over fake sessions handed out in order.
func testRunner(t *testing.T, backfill int, log *slog.Logger, qrOut io.Writer, sessions ...*fakeSession) *runner {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if qrOut == nil {
		qrOut = io.Discard
	}
	r := newRunner(Account{Uin: botUin}.withDefaults(), backfill, log, &qrPrinter{w: qrOut})
	r.refreshDelay = 5 * time.Millisecond
	var mu sync.Mutex
	next := 0
	r.newSession = func() session {
		mu.Lock()
		defer mu.Unlock()
		if next >= len(sessions) {
			t.Errorf("runner asked for session %d, only %d prepared", next+1, len(sessions))
			f := newFake(botUin)
			f.loginErr = errors.New("no more sessions")
			return f
		}
		s := sessions[next]
		next++
		return s
	}
	return r
}
