package qq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Mrs4s/MiraiGo/client"
	"github.com/Mrs4s/MiraiGo/message"
	"github.com/Mrs4s/MiraiGo/wrapper"

	"github.com/qunshao/qunshao/bot"
	"github.com/qunshao/qunshao/bot/supervisor"
)

func startRunner(t *testing.T, r *runner, sink bot.Sink) (cancel func() error) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, sink) }()
	var once sync.Once
	var err error
	cancel = func() error {
		once.Do(func() {
			stop()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				err = errors.New("Run did not return after cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = cancel() })
	return cancel
}

func TestRunnerRosterFirstBackfillLiveAndForwards(t *testing.T) {
	g1 := group(100, "团购一群", member(1, client.Owner, "群主"), member(2, client.Administrator, "管理"), member(3, client.Member, "成员"))
	g2 := group(200, "团购二群", member(1, client.Owner, "群主"))
	f := newFake(botUin, g1, g2)
	f.history[100] = []*message.GroupMessage{
		textMsg(100, 1, 3, "大家好"),
		textMsg(100, 2, 2, "今晚八点下单", message.AtAll()),
		textMsg(100, 3, 1, "", &message.ForwardElement{ResId: "RES/abc", FileName: "MultiMsg"}),
	}
	f.forwards["RES/abc"] = &message.ForwardMessage{Nodes: []*message.ForwardNode{
		{GroupId: 555, SenderId: 7, SenderName: "外群群主", Time: 1713990000, Message: []message.IMessageElement{message.NewText("拍下后申请退款")}},
		{GroupId: 555, SenderId: 8, SenderName: "外群管理", Time: 1713990060, Message: []message.IMessageElement{message.NewText("不给就投诉")}},
	}}
	sink := &recordingSink{}
	r := testRunner(t, 50, nil, nil, f)
	stop := startRunner(t, r, sink)

	waitFor(t, "backfill", func() bool { return len(sink.messageIDs()) >= 5 })
	// Live: a new message, a recall, a role change.
	f.events <- textMsg(100, 4, 3, "收到")
	f.events <- &client.GroupMessageRecalledEvent{GroupCode: 100, OperatorUin: 2, AuthorUin: 2, MessageId: 2, Time: 1714000002}
	g1.FindMember(3).Permission = client.Administrator // as MiraiGo does before dispatching
	f.events <- &client.MemberPermissionChangedEvent{Group: g1, Member: g1.FindMember(3), OldPermission: client.Member, NewPermission: client.Administrator}
	waitFor(t, "roster refresh after the role change", func() bool { return f.callCount("GroupMembers") >= 1 && countKind(sink, bot.KindRoster) >= 3 })
	if err := stop(); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}

	evs := sink.events()
	// Both rosters precede every message.
	firstMsg := slices.IndexFunc(evs, func(e *bot.Event) bool { return e.Kind == bot.KindMessage })
	if firstMsg != 2 || evs[0].Kind != bot.KindRoster || evs[1].Kind != bot.KindRoster {
		t.Fatalf("want two rosters before the first message, got kinds %v", kinds(evs))
	}
	roles := map[string]bot.Role{}
	for _, m := range evs[0].Roster.Members {
		roles[m.ID] = m.Role
	}
	if roles["1"] != bot.RoleOwner || roles["2"] != bot.RoleAdmin || roles["3"] != bot.RoleMember || !evs[0].Roster.Complete {
		t.Fatalf("roster of 100: %+v", evs[0].Roster)
	}
	want := []string{"1", "2", "3", "fwd:RES/abc:0", "fwd:RES/abc:1", "4"}
	if got := sink.messageIDs(); !slices.Equal(got, want) {
		t.Fatalf("message ids %v, want %v", got, want)
	}
	for _, ev := range evs {
		if ev.Kind == bot.KindMessage && ev.Message.Sender.Role != "" {
			t.Errorf("message %s carries role %q; roles come from the roster history", ev.Message.ID, ev.Message.Sender.Role)
		}
	}
	node := evs[slices.IndexFunc(evs, func(e *bot.Event) bool { return e.Kind == bot.KindMessage && e.Message.ID == "fwd:RES/abc:0" })]
	if node.GroupID != "100" || node.Message.Sender.ID != "7" || node.Message.Text != "拍下后申请退款" || node.Time.Unix() != 1713990000 {
		t.Fatalf("forward node: %+v %+v", node, node.Message)
	}
	var raw rawEnvelope
	if err := json.Unmarshal(node.Raw, &raw); err != nil || raw.Forward == nil || raw.Forward.OuterMessageID != "3" || raw.Forward.ResID != "RES/abc" {
		t.Fatalf("forward node raw does not link the outer message: %s", node.Raw)
	}
	if !sink.has(func(e *bot.Event) bool { return e.Kind == bot.KindRecall && e.Recall.MessageID == "2" }) {
		t.Fatal("recall not delivered")
	}
	last := evs[len(evs)-1]
	if last.Kind != bot.KindRoster || last.GroupID != "100" {
		t.Fatalf("last event %s/%s, want the refreshed roster of 100", last.Kind, last.GroupID)
	}
	for _, m := range last.Roster.Members {
		if m.ID == "3" && m.Role != bot.RoleAdmin {
			t.Fatalf("refreshed roster has 3 as %s", m.Role)
		}
	}
	st := r.Status()[0]
	if st.State != bot.StateStopped || st.Groups != 2 || st.Events != int64(len(evs)) || st.Transport != "miraigo" || st.Account != "999" {
		t.Fatalf("status %+v", st)
	}
	if !f.isClosed() {
		t.Fatal("session not closed when Run returned")
	}
	f.assertReadOnly(t)
}

func countKind(s *recordingSink, k bot.Kind) int {
	n := 0
	for _, ev := range s.events() {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

func kinds(evs []*bot.Event) []bot.Kind {
	var out []bot.Kind
	for _, ev := range evs {
		out = append(out, ev.Kind)
	}
	return out
}

// A disconnect ends Run with an error; the supervisor restarts the
// runner, the new session backfills, and the messages sent while the
// account was away arrive.
func TestSupervisorRestartsAfterDisconnectAndBackfills(t *testing.T) {
	mk := func(ids ...int32) *fakeSession {
		g := group(100, "团购一群", member(1, client.Owner, "群主"), member(3, client.Member, "成员"))
		f := newFake(botUin, g)
		for _, id := range ids {
			f.history[100] = append(f.history[100], textMsg(100, id, 3, fmt.Sprintf("消息%d", id)))
		}
		return f
	}
	first := mk(1, 2, 3)
	second := mk(1, 2, 3, 4, 5, 6) // 4 and 5 were sent while offline
	sink := &recordingSink{}
	r := testRunner(t, 50, nil, nil, first, second)
	sup := supervisor.New([]supervisor.Runner{r}, sink, supervisor.Options{MinBackoff: 5 * time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sup.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	waitFor(t, "first backfill", func() bool { return len(sink.messageIDs()) == 3 })
	first.events <- &client.ClientDisconnectedEvent{Message: "connection dropped by server."}
	waitFor(t, "backfill after restart", func() bool {
		ids := sink.messageIDs()
		return slices.Contains(ids, "4") && slices.Contains(ids, "5") && slices.Contains(ids, "6")
	})
	if !first.isClosed() {
		t.Fatal("first session not closed after the disconnect")
	}
	if n := sup.Restarts()[r.Name()]; n != 1 {
		t.Fatalf("restarts %d, want 1", n)
	}
	st := r.Status()[0]
	if st.State != bot.StateOnline || st.Counters["disconnected"] != 1 || !strings.Contains(st.LastError, "connection dropped by server") {
		t.Fatalf("status after restart: %+v", st)
	}
	// The second connection stored the roster again before its messages.
	evs := sink.events()
	secondRoster := slices.IndexFunc(evs[1:], func(e *bot.Event) bool { return e.Kind == bot.KindRoster }) + 1
	if secondRoster < 4 || evs[secondRoster+1].Kind != bot.KindMessage {
		t.Fatalf("kinds %v", kinds(evs))
	}
	cancel()
	<-done
	first.assertReadOnly(t)
	second.assertReadOnly(t)
}

func TestQRLoginStateInStatus(t *testing.T) {
	const url = "https://txz.qq.com/p?k=Qx7*abc-def&f=537065138"
	f := newFake(botUin, group(100, "g"))
	f.prompt = url
	f.release = make(chan struct{})
	qrOut := &syncBuffer{}
	r := testRunner(t, 0, nil, qrOut, f)
	stop := startRunner(t, r, &recordingSink{})
	waitFor(t, "login_required", func() bool { return r.Status()[0].State == bot.StateLoginRequired })
	st := r.Status()[0]
	if st.LoginURL != url {
		t.Fatalf("LoginURL %q", st.LoginURL)
	}
	out := qrOut.String()
	if !strings.Contains(out, url) || !strings.ContainsAny(out, "▀▄█") {
		t.Fatalf("QR code not printed:\n%s", out)
	}
	close(f.release)
	waitFor(t, "online", func() bool { return r.Status()[0].State == bot.StateOnline })
	if st := r.Status()[0]; st.LoginURL != "" {
		t.Fatalf("LoginURL still set after login: %q", st.LoginURL)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestLoginFailureStates(t *testing.T) {
	verify := &verificationError{url: "https://ti.qq.com/safe/verify?x=1", err: fmt.Errorf("%w: device lock", supervisor.ErrNeedsOperator)}
	for _, tc := range []struct {
		err   error
		state bot.State
		kind  string
	}{
		{fmt.Errorf("%w: QR codes expired", supervisor.ErrNeedsOperator), bot.StateLoggedOut, "login_required"},
		{errors.New("All servers are unreachable"), bot.StateError, "login_failed"},
		{verify, bot.StateLoginRequired, "login_required"},
	} {
		f := newFake(botUin)
		f.loginErr = tc.err
		r := testRunner(t, 0, nil, nil, f)
		err := r.Run(context.Background(), &recordingSink{})
		if !errors.Is(err, tc.err) {
			t.Fatalf("Run: %v", err)
		}
		st := r.Status()[0]
		if st.State != tc.state || st.Counters[tc.kind] != 1 {
			t.Fatalf("%v: status %+v", tc.err, st)
		}
		if !f.isClosed() {
			t.Fatal("session not closed")
		}
		if tc.err == verify && st.LoginURL != verify.url {
			t.Fatalf("verification link not kept: %+v", st)
		}
	}
}

// A message from a group the list lacks triggers one reload, not one per
// message.
func TestUnknownGroupReloadsOnce(t *testing.T) {
	f := newFake(botUin, group(100, "g"))
	sink := &recordingSink{}
	r := testRunner(t, 0, nil, nil, f)
	stop := startRunner(t, r, sink)
	waitFor(t, "online", func() bool { return r.Status()[0].State == bot.StateOnline })
	for i := range int32(5) {
		f.events <- textMsg(300, 10+i, 3, "来自未知群")
	}
	waitFor(t, "messages", func() bool { return len(sink.messageIDs()) == 5 })
	waitFor(t, "reload", func() bool { return f.callCount("Groups") == 2 })
	time.Sleep(50 * time.Millisecond) // several refresh ticks
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := f.callCount("Groups"); n != 2 {
		t.Fatalf("group list loaded %d times, want 2", n)
	}
}

// Bad input from MiraiGo (nil events, nil and unknown elements, huge
// text, a sink that refuses) is counted and never stops the runner.
func TestRunnerSurvivesBadInput(t *testing.T) {
	g := group(100, "g", member(3, client.Member, "m"))
	f := newFake(botUin, g)
	refusing := bot.SinkFunc(func(ctx context.Context, ev *bot.Event) error {
		if ev.Kind == bot.KindMessage && ev.Message.ID == "13" {
			return fmt.Errorf("%w: refused for the test", bot.ErrInvalid)
		}
		return nil
	})
	var mu sync.Mutex
	var got []*bot.Event
	sink := bot.SinkFunc(func(ctx context.Context, ev *bot.Event) error {
		if err := refusing(ctx, ev); err != nil {
			return err
		}
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
		return nil
	})
	r := testRunner(t, 0, nil, nil, f)
	stop := startRunner(t, r, sink)
	huge := strings.Repeat("刷单返现", 1<<18) // 3 MiB
	var nilText *message.TextElement
	f.events <- (*message.GroupMessage)(nil)
	f.events <- (*client.GroupMuteEvent)(nil)
	f.events <- struct{ X int }{1}
	f.events <- selfMessage{}
	f.events <- textMsg(100, 11, 3, "a", nil, nilText, &unknownElement{Data: "x"}, &message.DiceElement{Value: 3})
	f.events <- textMsg(100, 12, 3, huge)
	f.events <- textMsg(100, 13, 3, "refused")
	f.events <- textMsg(100, 14, 3, "after")
	waitFor(t, "message 14", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.ContainsFunc(got, func(e *bot.Event) bool { return e.Kind == bot.KindMessage && e.Message.ID == "14" })
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	st := r.Status()[0]
	for kind, want := range map[string]int64{"nil_event": 3, "unknown_event": 1, "nil_element": 2, "unknown_segment": 1, "huge_text": 1, "submit_refused": 1} {
		if st.Counters[kind] != want {
			t.Errorf("counter %s = %d, want %d (all: %v)", kind, st.Counters[kind], want, st.Counters)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, ev := range got {
		if ev.Kind != bot.KindMessage {
			continue
		}
		switch ev.Message.ID {
		case "11":
			if len(ev.Message.Segments) != 3 || ev.Message.Segments[1].Title != "unknownElement" {
				t.Errorf("message 11 segments %+v", ev.Message.Segments)
			}
		case "12":
			if ev.Message.Text != huge || ev.Message.Segments[0].Text != huge {
				t.Error("huge text was not kept whole")
			}
		}
	}
}

// Neither the password nor the sign key reaches a log line, a status or
// an error, through the real session (which fails at the sign server
// here, before any packet would go to Tencent) or through formatting the
// config.
func TestSecretsNeverLoggedOrShown(t *testing.T) {
	const password, signKey = "pw-Zq81!secret", "key-9f3e-secret"
	oldSign, oldEnergy := wrapper.FekitGetSign, wrapper.DandelionEnergy
	t.Cleanup(func() { wrapper.FekitGetSign, wrapper.DandelionEnergy = oldSign, oldEnergy })

	var gotKey string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotKey = r.URL.Query().Get("key")
		mu.Unlock()
		fmt.Fprint(w, `{"code":1,"msg":"key mismatch"}`)
	}))
	defer srv.Close()

	dir := t.TempDir()
	writeTestDevice(t, filepath.Join(dir, "device.json"))
	cfg := Config{SignServer: srv.URL, SignKey: signKey, Backfill: 10, Accounts: []Account{
		{Uin: 123456, Login: LoginPassword, Password: password, Protocol: ProtocolAndroidPad, DataDir: dir},
	}}
	logs := &syncBuffer{}
	log := testLogger(logs)
	runners, err := NewRunners(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("starting qq", "config", cfg, "account", cfg.Accounts[0])
	log.Debug(fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg.Accounts[0]))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runErr := runners[0].Run(ctx, &recordingSink{})
	if runErr == nil || !strings.Contains(runErr.Error(), "key mismatch") {
		t.Fatalf("Run: %v", runErr)
	}
	mu.Lock()
	if gotKey != signKey {
		t.Errorf("sign server got key %q", gotKey)
	}
	mu.Unlock()
	status, _ := json.Marshal(runners[0].Status())
	everything := logs.String() + string(status) + runErr.Error()
	for _, secret := range []string{password, signKey} {
		if strings.Contains(everything, secret) {
			t.Errorf("secret %q leaked:\n%s", secret, everything)
		}
	}
	if !strings.Contains(logs.String(), "REDACTED") {
		t.Error("config was not logged in redacted form")
	}
	files, _ := os.ReadDir(dir)
	for _, fe := range files {
		b, _ := os.ReadFile(filepath.Join(dir, fe.Name()))
		if strings.Contains(string(b), password) {
			t.Errorf("%s contains the password", fe.Name())
		}
	}
}

func TestNewRunnersWantsPasswordFromEnv(t *testing.T) {
	cfg := Config{Accounts: []Account{{Uin: 42, Login: LoginPassword, Protocol: ProtocolIPad, DataDir: t.TempDir()}}}
	if _, err := NewRunners(cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "accounts[0].password") || !strings.Contains(err.Error(), "QUNSHAO_BOTS_QQ_PASSWORD_42") {
		t.Fatalf("err %v", err)
	}
	t.Setenv("QUNSHAO_BOTS_QQ_PASSWORD_42", "from-env")
	rs, err := NewRunners(cfg, nil, nil)
	if err != nil || len(rs) != 1 || rs[0].Name() != "qq:42" {
		t.Fatalf("%v %v", rs, err)
	}
	if st := rs[0].Status(); len(st) != 1 || st[0].State != bot.StateStarting || st[0].Platform != bot.QQ {
		t.Fatalf("status before Run: %+v", st)
	}
}

type unknownElement struct{ Data string }

func (*unknownElement) Type() message.ElementType { return message.ElementType(99) }
