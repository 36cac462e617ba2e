package onebot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/qunshao/qunshao/bot"
)

const secretText = "全部申请仅退款锁库存"

// TestReverseWS walks one bot account through a reverse-WebSocket life:
// refused logins, connect (rosters before the messages that arrived
// meanwhile), replies, forward bundles, notices, bad input, a peer that
// never answers, a reconnect with backfill, and a replacing connection.
func TestReverseWS(t *testing.T) {
	base := runtime.NumGoroutine()
	cfg := testConfig()
	cfg.ReverseWS.AccessToken = "s3cret-token"
	sink := &recorder{t: t}
	run := start[*reverseRunner](t, cfg, sink)
	url := "ws://" + run.addr + cfg.ReverseWS.Path
	f := newFakeOneBot(t)

	// Wrong and missing tokens are refused before the upgrade.
	for _, tok := range []string{"wrong", ""} {
		_, resp, err := f.dialReverse(url, tok, "Universal")
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("token %q: err %v resp %v", tok, err, resp)
		}
	}
	if n := run.status("ws://" + cfg.ReverseWS.Listen + cfg.ReverseWS.Path).Counters["auth_failed"]; n != 2 {
		t.Errorf("auth_failed = %d, want 2", n)
	}
	// The token also works as a query parameter.
	if c, _, err := f.dialReverse(url+"?access_token=s3cret-token", "", "Universal"); err != nil {
		t.Fatalf("query token: %v", err)
	} else {
		c.close()
	}
	sinkBefore := len(sink.all())

	// While qunshao loads the member list, a message arrives: it must be
	// submitted after the roster.
	var once sync.Once
	f.set(func(f *fakeOneBot) {
		f.delay["get_group_member_list"] = 100 * time.Millisecond
		f.before = func(c *fakeConn, action string, _ map[string]any) {
			if action == "get_group_member_list" {
				once.Do(func() { c.send(groupMsg(testGroup, member, 5001, "member", textSeg(secretText))) })
			}
		}
	})
	conn, _, err := f.dialReverse(url, "s3cret-token", "Universal")
	if err != nil {
		t.Fatal(err)
	}
	mi, m := sink.waitFor("message 5001", msgID("5001"))
	ri, r := sink.waitFor("roster of 555", func(ev *bot.Event) bool { return ev.Kind == bot.KindRoster })
	if ri < sinkBefore || ri > mi {
		t.Fatalf("roster at %d, message at %d: the roster must come first", ri, mi)
	}
	if r.GroupID != "555" || r.GroupName != "618冲量群" || r.Bot != "10001" || !r.Roster.Complete || len(r.Roster.Members) != 4 {
		t.Fatalf("roster %+v %+v", r, r.Roster)
	}
	roles := map[string]bot.Role{}
	for _, mb := range r.Roster.Members {
		roles[mb.ID] = mb.Role
	}
	if roles["20002"] != bot.RoleOwner || roles["30003"] != bot.RoleAdmin || roles["40004"] != bot.RoleMember {
		t.Errorf("roles %v", roles)
	}
	if r.Roster.Members[0].Card != "群主大人" || r.Roster.Members[0].JoinedAt.Unix() != 1600000000 {
		t.Errorf("owner entry %+v", r.Roster.Members[0])
	}
	if m.Bot != "10001" || m.GroupID != "555" || m.Message.Sender.ID != "40004" || m.Message.Sender.Role != bot.RoleMember ||
		m.Message.Text != secretText || !strings.Contains(string(m.Raw), `"message_id":5001`) {
		t.Errorf("message %+v %+v", m, m.Message)
	}
	if _, off := m.Time.Zone(); off != 8*3600 {
		t.Errorf("time zone offset %d", off)
	}
	waitUntil(t, "account online", func() bool { return run.status("10001").State == bot.StateOnline })

	// A reply to a message qunshao has not seen: it is fetched with get_msg.
	f.set(func(f *fakeOneBot) {
		f.before = nil
		f.msgs["4999"] = groupMsg(testGroup, owner, 4999, "owner", textSeg("明天统一退货"))
		f.forwards["fw-1"] = []map[string]any{
			{"self_id": testSelf, "user_id": 60006, "time": 1731000000, "message_id": 111, "message_type": "group", "group_id": 999,
				"sender": map[string]any{"user_id": 60006, "nickname": "外群", "role": "owner"}, "content": []any{textSeg("一起刷")}},
			{"self_id": testSelf, "user_id": 60007, "time": 1731000001, "message_id": 112, "message_type": "group",
				"sender": map[string]any{"user_id": 60007, "nickname": "外群2"}, "content": []any{textSeg("收到")}},
		}
	})
	conn.send(groupMsg(testGroup, admin, 5002, "admin", map[string]any{"type": "reply", "data": map[string]any{"id": "4999"}}, textSeg("照做")))
	_, fetched := sink.waitFor("get_msg 4999", msgID("4999"))
	if fetched.Message.Sender.ID != "20002" || fetched.Message.Text != "明天统一退货" {
		t.Errorf("fetched %+v", fetched.Message)
	}
	// A forward bundle is expanded into its messages, linked by the
	// bundle id.
	conn.send(groupMsg(testGroup, owner, 5003, "owner", map[string]any{"type": "forward", "data": map[string]any{"id": "fw-1"}}))
	_, n1 := sink.waitFor("forward node 1", msgID("fw-1/111"))
	sink.waitFor("forward node 2", msgID("fw-1/112"))
	if n1.GroupID != "555" || n1.Message.Sender.ID != "60006" || n1.Message.Sender.Role != bot.RoleUnknown || n1.Message.Text != "一起刷" {
		t.Errorf("forward node %+v %+v", n1, n1.Message)
	}

	// A role notice: the event, then a fresh roster.
	f.set(func(f *fakeOneBot) { f.members[testGroup][2]["role"] = "admin" })
	conn.send(notice("group_admin", map[string]any{"sub_type": "set", "user_id": member}))
	sink.waitFor("role change", func(ev *bot.Event) bool {
		return ev.Kind == bot.KindRoleChange && ev.Member.Member.ID == "40004" && ev.Member.NewRole == bot.RoleAdmin
	})
	sink.waitFor("refreshed roster", func(ev *bot.Event) bool {
		if ev.Kind != bot.KindRoster {
			return false
		}
		for _, mb := range ev.Roster.Members {
			if mb.ID == "40004" && mb.Role == bot.RoleAdmin {
				return true
			}
		}
		return false
	})
	conn.send(notice("group_recall", map[string]any{"user_id": member, "operator_id": admin, "message_id": 5001}))
	_, rc := sink.waitFor("recall", func(ev *bot.Event) bool { return ev.Kind == bot.KindRecall })
	if *rc.Recall != (bot.Recall{MessageID: "5001", SenderID: "40004", Operator: "30003"}) {
		t.Errorf("recall %+v", rc.Recall)
	}

	// Bad input is counted and skipped; the connection keeps working.
	conn.send("this is not json")
	conn.send(`{"post_type":"telepathy","self_id":10001}`)
	conn.send(notice("quantum_entanglement", nil))
	conn.send(groupMsg(testGroup, member, 5004, "member", map[string]any{"type": "hologram", "data": map[string]any{}}))
	conn.send(groupMsg(testGroup, member, 5005, "member", textSeg(strings.Repeat("刷", minFrameBytes))))
	conn.send(groupMsg(testGroup, member, 5006, "member", textSeg("after the bad frames")))
	sink.waitFor("message after bad input", msgID("5006"))
	if sink.countID("5005") != 0 {
		t.Error("oversize frame was delivered")
	}
	st := run.status("10001")
	for _, c := range []string{"malformed_frame", "unknown_post_type", "unknown_segment", "oversize_frame"} {
		if st.Counters[c] < 1 {
			t.Errorf("counter %s = %d; counters %v", c, st.Counters[c], st.Counters)
		}
	}
	if st.Counters["unknown_post_type"] != 2 {
		t.Errorf("unknown_post_type = %d, want 2 (post type and notice type)", st.Counters["unknown_post_type"])
	}

	// A peer that never answers: a timeout, counted; the connection stays.
	f.set(func(f *fakeOneBot) { f.silent["get_msg"] = true })
	conn.send(groupMsg(testGroup, member, 5007, "member", map[string]any{"type": "reply", "data": map[string]any{"id": "4000"}}))
	waitUntil(t, "api_timeout", func() bool { return run.status("10001").Counters["api_timeout"] >= 1 })
	conn.send(groupMsg(testGroup, member, 5008, "member", textSeg("still here")))
	sink.waitFor("message after the timeout", msgID("5008"))
	f.set(func(f *fakeOneBot) { delete(f.silent, "get_msg") })

	// The connection drops; messages arrive meanwhile; the reconnect
	// backfills them. A message delivered live and again by backfill
	// reaches the sink twice with the same id (the store dedups).
	conn.close()
	waitUntil(t, "account offline", func() bool { return run.status("10001").State == bot.StateOffline })
	f.set(func(f *fakeOneBot) {
		f.history[testGroup] = []map[string]any{
			groupMsg(testGroup, member, 5001, "member", textSeg(secretText)),
			groupMsg(testGroup, owner, 5101, "owner", textSeg("断线期间 1")),
			groupMsg(testGroup, admin, 5102, "admin", textSeg("断线期间 2")),
		}
	})
	conn2, _, err := f.dialReverse(url, "s3cret-token", "Universal")
	if err != nil {
		t.Fatal(err)
	}
	sink.waitFor("backfilled 5101", msgID("5101"))
	_, b2 := sink.waitFor("backfilled 5102", msgID("5102"))
	if b2.Message.Sender.Role != bot.RoleAdmin || b2.GroupID != "555" {
		t.Errorf("backfilled %+v", b2.Message)
	}
	waitUntil(t, "5001 twice", func() bool { return sink.countID("5001") == 2 })
	if f.count("get_group_msg_history") < 2 {
		t.Errorf("history asked %d times, want once per connect", f.count("get_group_msg_history"))
	}

	// A second connection for the same account replaces the first.
	conn3, _, err := f.dialReverse(url, "s3cret-token", "")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-conn2.done:
		if s := websocket.CloseStatus(conn2.err); s != websocket.StatusPolicyViolation {
			t.Errorf("replaced connection closed with %v (%v)", s, conn2.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the replaced connection stayed open")
	}
	conn3.send(groupMsg(testGroup, owner, 5201, "owner", textSeg("new connection")))
	sink.waitFor("message on the new connection", msgID("5201"))
	if st := run.status("10001"); st.State != bot.StateOnline {
		t.Errorf("state after replacement %s", st.State)
	}

	checkNoPosting(t, f)
	if err := run.stop(t); err != nil {
		t.Errorf("Run returned %v", err)
	}
	conn3.close()
	waitGoroutines(t, base)
	logs := run.logs.String()
	if strings.Contains(logs, secretText) || strings.Contains(logs, "s3cret-token") {
		t.Error("message text or the access token reached the log")
	}
	if !strings.Contains(logs, "level=WARN") {
		t.Error("bad input left no warning")
	}
}

// TestReverseWSEventAPIPair: an implementation that splits events and API
// calls over two connections.
func TestReverseWSEventAPIPair(t *testing.T) {
	cfg := testConfig()
	sink := &recorder{t: t}
	run := start[*reverseRunner](t, cfg, sink)
	f := newFakeOneBot(t)
	url := "ws://" + run.addr + cfg.ReverseWS.Path
	ev, _, err := f.dialReverse(url, "", "Event")
	if err != nil {
		t.Fatal(err)
	}
	defer ev.close()
	// The API connection arrives a moment later (on its own path): the
	// event side's sync waits for it.
	time.Sleep(50 * time.Millisecond)
	api, _, err := f.dialReverse(url+"/api", "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer api.close()
	ev.send(groupMsg(testGroup, owner, 7001, "owner", textSeg("hi")))
	ri, _ := sink.waitFor("roster", func(e *bot.Event) bool { return e.Kind == bot.KindRoster })
	mi, _ := sink.waitFor("message", msgID("7001"))
	if ri > mi {
		t.Errorf("roster %d after message %d", ri, mi)
	}
	checkNoPosting(t, f)
}

// TestSlowSinkAndFlood: a sink that blocks holds the reader back; a flood
// of events is delivered completely and in order once it moves.
func TestSlowSinkAndFlood(t *testing.T) {
	cfg := testConfig()
	cfg.Backfill = 0
	gate := make(chan struct{})
	sink := &recorder{t: t, gate: gate}
	run := start[*reverseRunner](t, cfg, sink)
	f := newFakeOneBot(t)
	f.set(func(f *fakeOneBot) { f.groups = nil })
	conn, _, err := f.dialReverse("ws://"+run.addr+cfg.ReverseWS.Path, "", "Universal")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.close()
	const n = 2000
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := range n {
			conn.send(groupMsg(testGroup, member, int64(100000+i), "member", textSeg(fmt.Sprint(i))))
		}
	}()
	time.Sleep(300 * time.Millisecond)
	if len(sink.all()) != 0 {
		t.Fatal("events passed a closed gate")
	}
	close(gate)
	<-sent
	// Messages only: a group missing from the (empty) group list gets
	// its roster loaded when its first message arrives.
	messages := func() []*bot.Event {
		var out []*bot.Event
		for _, ev := range sink.all() {
			if ev.Kind == bot.KindMessage {
				out = append(out, ev)
			}
		}
		return out
	}
	waitUntil(t, "the flood", func() bool { return len(messages()) >= n })
	if got := len(messages()); got != n {
		t.Fatalf("%d messages, want %d", got, n)
	}
	for i, ev := range messages() {
		if ev.Message.ID != fmt.Sprint(100000+i) {
			t.Fatalf("event %d is %s: order lost", i, ev.Message.ID)
		}
	}
	if c := run.status("10001").Counters; c["ping_timeout"] != 0 {
		t.Errorf("counters %v", c)
	}
}

// TestStopWhileSinkBlocked: Run returns when cancelled even while the
// sink holds a reader.
func TestStopWhileSinkBlocked(t *testing.T) {
	base := runtime.NumGoroutine()
	cfg := testConfig()
	sink := &recorder{t: t, gate: make(chan struct{})}
	run := start[*reverseRunner](t, cfg, sink)
	f := newFakeOneBot(t)
	conn, _, err := f.dialReverse("ws://"+run.addr+cfg.ReverseWS.Path, "", "Universal")
	if err != nil {
		t.Fatal(err)
	}
	conn.send(groupMsg(testGroup, member, 1, "member", textSeg("x")))
	time.Sleep(100 * time.Millisecond)
	if err := run.stop(t); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
	conn.close()
	waitGoroutines(t, base)
}

// TestRosterRefreshAndGoneGroups: rosters are loaded again periodically;
// once the bot is kicked (kick_me) its group is gone: no more member list
// calls for it, and the status counts one group less.
func TestRosterRefreshAndGoneGroups(t *testing.T) {
	cfg := testConfig()
	cfg.Backfill = 0
	sink := &recorder{t: t}
	run := start[*reverseRunner](t, cfg, sink, func(ep *endpoint) { ep.cfg.RosterRefresh = 100 * time.Millisecond })
	f := newFakeOneBot(t)
	conn, _, err := f.dialReverse("ws://"+run.addr+cfg.ReverseWS.Path, "", "Universal")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.close()
	waitUntil(t, "periodic refreshes", func() bool { return f.count("get_group_member_list") >= 3 })
	if g := run.status("10001").Groups; g != 1 {
		t.Errorf("groups %d", g)
	}
	// The group also goes away from the list the implementation reports.
	f.set(func(f *fakeOneBot) { f.groups = nil })
	conn.send(notice("group_decrease", map[string]any{"sub_type": "kick_me", "user_id": testSelf, "operator_id": owner}))
	_, k := sink.waitFor("kick of the bot", func(ev *bot.Event) bool { return ev.Kind == bot.KindKick })
	if k.Member.Member.ID != "10001" || k.Member.Operator != "20002" {
		t.Errorf("kick %+v", k.Member)
	}
	waitUntil(t, "group gone", func() bool { return run.status("10001").Groups == 0 })
	time.Sleep(150 * time.Millisecond) // a refresh in flight when the kick arrived may still land
	n := f.count("get_group_member_list")
	conn.send(notice("group_increase", map[string]any{"sub_type": "approve", "user_id": 50005, "operator_id": owner}))
	sink.waitFor("join", func(ev *bot.Event) bool { return ev.Kind == bot.KindJoin })
	time.Sleep(300 * time.Millisecond)
	if m := f.count("get_group_member_list"); m != n {
		t.Errorf("member list asked %d more times for a group the bot left", m-n)
	}
	checkNoPosting(t, f)
}
