package onebot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/qunshao/qunshao/bot"
	"github.com/qunshao/qunshao/bot/supervisor"
)

// fakeOneBot is a OneBot v11 implementation that answers and reports the
// way NapCat documents it: array messages with a sender object, notices,
// API responses {"status","retcode","data","message","wording","echo"}.
// It drives qunshao's real WebSocket and HTTP code over 127.0.0.1.
type fakeOneBot struct {
	t    *testing.T
	self int64

	mu       sync.Mutex
	actions  []string
	groups   []map[string]any
	members  map[int64][]map[string]any
	history  map[int64][]map[string]any
	msgs     map[string]map[string]any
	forwards map[string][]map[string]any
	silent   map[string]bool
	delay    map[string]time.Duration
	// before runs before an action is answered (to interleave events).
	before func(c *fakeConn, action string, params map[string]any)
}

const (
	testGroup = 555
	testSelf  = 10001
	owner     = 20002
	admin     = 30003
	member    = 40004
)

func newFakeOneBot(t *testing.T) *fakeOneBot {
	return &fakeOneBot{
		t: t, self: testSelf,
		groups: []map[string]any{{"group_id": testGroup, "group_name": "618冲量群", "member_count": 4, "max_member_count": 500}},
		members: map[int64][]map[string]any{testGroup: {
			{"group_id": testGroup, "user_id": owner, "nickname": "刷单头子", "card": "群主大人", "role": "owner", "join_time": 1600000000, "level": "100", "title": ""},
			{"group_id": testGroup, "user_id": admin, "nickname": "管理A", "card": "", "role": "admin", "join_time": 1650000000},
			{"group_id": testGroup, "user_id": member, "nickname": "小号", "card": "接单", "role": "member", "join_time": 1700000000},
			{"group_id": testGroup, "user_id": testSelf, "nickname": "哨兵", "card": "", "role": "member", "join_time": 1710000000},
		}},
		history:  map[int64][]map[string]any{},
		msgs:     map[string]map[string]any{},
		forwards: map[string][]map[string]any{},
		silent:   map[string]bool{},
		delay:    map[string]time.Duration{},
	}
}

func (f *fakeOneBot) set(fn func(f *fakeOneBot)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeOneBot) actionList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.actions...)
}

func (f *fakeOneBot) count(action string) int {
	n := 0
	for _, a := range f.actionList() {
		if a == action {
			n++
		}
	}
	return n
}

// answer returns NapCat's data for an action, or ok false for a failure.
func (f *fakeOneBot) answer(action string, params map[string]any) (any, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	gid := int64(num(params["group_id"]))
	switch action {
	case "get_login_info":
		return map[string]any{"user_id": f.self, "nickname": "哨兵"}, true
	case "get_group_list":
		return f.groups, true
	case "get_group_info":
		for _, g := range f.groups {
			if int64(num(g["group_id"])) == gid {
				return g, true
			}
		}
		return nil, false
	case "get_group_member_list":
		m, ok := f.members[gid]
		return m, ok
	case "get_group_msg_history":
		return map[string]any{"messages": f.history[gid]}, true
	case "get_msg":
		m, ok := f.msgs[fmt.Sprint(params["message_id"])]
		return m, ok
	case "get_forward_msg":
		m, ok := f.forwards[fmt.Sprint(params["message_id"])]
		return map[string]any{"messages": m}, ok
	}
	return nil, false
}

func num(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case json.Number:
		f, _ := x.Float64()
		return f
	case string:
		var f float64
		fmt.Sscan(x, &f)
		return f
	}
	return 0
}

// fakeConn is one WebSocket between the fake and qunshao.
type fakeConn struct {
	f      *fakeOneBot
	ws     *websocket.Conn
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	err    error // why the read loop ended
}

func (f *fakeOneBot) dialReverse(url, token, role string) (*fakeConn, *http.Response, error) {
	h := http.Header{}
	h.Set("X-Self-ID", fmt.Sprint(f.self))
	if role != "" {
		h.Set("X-Client-Role", role)
	}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, resp, err
	}
	return f.serveConn(ws), resp, nil
}

// serveConn answers API calls on ws until it closes.
func (f *fakeOneBot) serveConn(ws *websocket.Conn) *fakeConn {
	ws.SetReadLimit(-1)
	c := &fakeConn{f: f, ws: ws, done: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	go func() {
		defer close(c.done)
		var wg sync.WaitGroup
		defer wg.Wait()
		for {
			_, b, err := ws.Read(c.ctx)
			if err != nil {
				c.err = err
				return
			}
			var req struct {
				Action string          `json:"action"`
				Params map[string]any  `json:"params"`
				Echo   json.RawMessage `json:"echo"`
			}
			if err := json.Unmarshal(b, &req); err != nil {
				f.t.Errorf("fake OneBot got a frame that is not an action: %q", b)
				continue
			}
			f.mu.Lock()
			f.actions = append(f.actions, req.Action)
			silent, delay, before := f.silent[req.Action], f.delay[req.Action], f.before
			f.mu.Unlock()
			if silent {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if before != nil {
					before(c, req.Action, req.Params)
				}
				if delay > 0 {
					select {
					case <-time.After(delay):
					case <-c.ctx.Done():
						return
					}
				}
				data, ok := f.answer(req.Action, req.Params)
				resp := map[string]any{"status": "ok", "retcode": 0, "data": data, "message": "", "wording": "", "echo": req.Echo}
				if !ok {
					resp = map[string]any{"status": "failed", "retcode": 1200, "data": nil, "message": "不存在", "wording": "不存在", "echo": req.Echo}
				}
				c.send(resp)
			}()
		}
	}()
	return c
}

// send writes a frame: a string as is, anything else as JSON.
func (c *fakeConn) send(v any) {
	var b []byte
	switch x := v.(type) {
	case string:
		b = []byte(x)
	case []byte:
		b = x
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			c.f.t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil && c.ctx.Err() == nil {
		c.f.t.Logf("fake OneBot write: %v", err)
	}
}

func (c *fakeConn) close() {
	_ = c.ws.Close(websocket.StatusNormalClosure, "")
	c.cancel()
	<-c.done
}

// Frames the fake sends, shaped like NapCat's.

func groupMsg(group, user, id int64, role string, segs ...map[string]any) map[string]any {
	return map[string]any{
		"self_id": testSelf, "user_id": user, "time": time.Now().Unix(), "message_id": id, "message_seq": id, "real_id": id,
		"message_type": "group", "sub_type": "normal", "post_type": "message", "group_id": group, "font": 14,
		"sender":         map[string]any{"user_id": user, "nickname": fmt.Sprintf("用户%d", user), "card": "", "role": role, "title": ""},
		"raw_message":    "",
		"message_format": "array",
		"message":        segs,
	}
}

func textSeg(s string) map[string]any {
	return map[string]any{"type": "text", "data": map[string]any{"text": s}}
}

func notice(kind string, fields map[string]any) map[string]any {
	m := map[string]any{"time": time.Now().Unix(), "self_id": testSelf, "post_type": "notice", "notice_type": kind, "group_id": testGroup}
	for k, v := range fields {
		m[k] = v
	}
	return m
}

// recorder is a sink that keeps every event. With a gate, Submit blocks
// until the gate is opened, like a slow store.
type recorder struct {
	t    *testing.T
	mu   sync.Mutex
	evs  []*bot.Event
	gate chan struct{}
}

func (r *recorder) Submit(ctx context.Context, ev *bot.Event) error {
	if err := ev.Validate(); err != nil {
		r.t.Errorf("sink got an invalid event: %v", err)
	}
	if r.gate != nil {
		select {
		case <-r.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
	return nil
}

func (r *recorder) all() []*bot.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*bot.Event(nil), r.evs...)
}

// waitFor polls until an event matches and returns its position.
func (r *recorder) waitFor(what string, match func(*bot.Event) bool) (int, *bot.Event) {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for i, ev := range r.all() {
			if match(ev) {
				return i, ev
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s; have %d events", what, len(r.all()))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func msgID(id string) func(*bot.Event) bool {
	return func(ev *bot.Event) bool { return ev.Message != nil && ev.Message.ID == id }
}

func (r *recorder) countID(id string) int {
	n := 0
	for _, ev := range r.all() {
		if msgID(id)(ev) {
			n++
		}
	}
	return n
}

// waitUntil polls cond.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// syncBuffer collects log output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// started is a runner under test.
type started struct {
	runner supervisor.Runner
	addr   string
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error

	once sync.Once
	err  error
}

// wait waits for Run to return (at most 10 s) and returns its error.
func (s *started) wait(t *testing.T) error {
	t.Helper()
	s.once.Do(func() {
		select {
		case s.err = <-s.done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	})
	return s.err
}

// start runs the runner of cfg that is of type T, listening on a free port.
// tweak, if given, adjusts the runner's endpoint before Run (for settings
// Validate would refuse, such as a roster refresh every few milliseconds).
func start[T supervisor.Runner](t *testing.T, cfg Config, sink bot.Sink, tweak ...func(*endpoint)) *started {
	t.Helper()
	logs := &syncBuffer{}
	runners, err := NewRunners(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	s := &started{logs: logs, done: make(chan error, 1)}
	addr := make(chan string, 1)
	for _, r := range runners {
		if x, ok := r.(T); ok {
			s.runner = x
			var ep *endpoint
			switch v := r.(type) {
			case *reverseRunner:
				ep = v.ep
				v.ep.onListen = func(a string) { addr <- a }
			case *httpRunner:
				ep = v.ep
				v.ep.onListen = func(a string) { addr <- a }
			case *forwardRunner:
				ep = v.ep
				addr <- ""
			}
			for _, fn := range tweak {
				fn(ep)
			}
		}
	}
	if s.runner == nil {
		t.Fatalf("no runner of the wanted type in %v", runners)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- s.runner.Run(ctx, sink) }()
	select {
	case s.addr = <-addr:
	case err := <-s.done:
		t.Fatalf("runner stopped: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("runner did not start")
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop cancels the runner and waits for Run to return.
func (s *started) stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	return s.wait(t)
}

func (s *started) status(account string) bot.Status {
	for _, st := range s.runner.Status() {
		if st.Account == account {
			return st
		}
	}
	return bot.Status{}
}

// testConfig is the default config tuned for fast tests.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.ReverseWS.Listen = "127.0.0.1:0"
	cfg.HTTPPost.Listen = "127.0.0.1:0"
	cfg.HTTPPost.Enabled = false
	cfg.APITimeout = 700 * time.Millisecond
	cfg.Backfill = 10
	cfg.MaxFrameBytes = minFrameBytes
	return cfg
}

// checkNoPosting fails if the fake was ever asked for anything but the
// read-only actions.
func checkNoPosting(t *testing.T, f *fakeOneBot) {
	t.Helper()
	for _, a := range f.actionList() {
		if strings.HasPrefix(a, "send_") || !readOnlyAction(a) {
			t.Errorf("qunshao requested %q", a)
		}
	}
}

// waitGoroutines waits until the goroutine count is back to base.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("%d goroutines left running (started with %d):\n%s", runtime.NumGoroutine(), base, buf[:n])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
