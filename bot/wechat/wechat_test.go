package wechat

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/qunshao/qunshao/bot"
	"github.com/qunshao/qunshao/bot/supervisor"
)

// scenario sets up two groups: G1 is saved to contacts (owner 老板); G2 is
// not, and is only discovered when someone speaks in it. B and C share a
// nickname and differ only in AttrStatus.
func scenario(f *fakeWX) {
	f.person("boss", "老板", 1001)
	f.person("a", "强哥", 1002)
	f.person("b", "小王", 2002)
	f.person("c", "小王", 3003)
	f.person("d", "路人", 4004)
	f.person("e", "新人", 5005)
	f.group("g1", "刷单互助群", "boss", true, "self", "boss", "a", "b", "c")
	f.setCard("g1", "a", "阿强")
	f.group("g2", "返利2群", "a", false, "self", "a", "d")
}

func hasSegment(m *bot.Message, t bot.SegmentType) (bot.Segment, bool) {
	for _, s := range m.Segments {
		if s.Type == t {
			return s, true
		}
	}
	return bot.Segment{}, false
}

func TestLoginRosterAndMessages(t *testing.T) {
	f := newFakeWX(t)
	scenario(f)
	h := newHarness(t, f, options{})
	stop, _ := h.run()

	h.login()
	if qr := h.qr.String(); !strings.Contains(qr, "https://login.weixin.qq.com/l/QR1") || !strings.Contains(qr, "▄") {
		t.Errorf("QR code not printed to the terminal writer:\n%s", qr)
	}
	if h.status().LoginURL != "" {
		t.Errorf("LoginURL kept after login: %q", h.status().LoginURL)
	}

	// Roster: owner is the owner, everyone else unknown; the bot is itself.
	r1 := h.roster("g1", nil)
	if !r1.Roster.Complete || len(r1.Roster.Members) != 5 {
		t.Fatalf("roster = %+v", r1.Roster)
	}
	if r1.Bot != "100" || r1.GroupName != "刷单互助群" || !strings.HasPrefix(r1.GroupID, "wxg_") {
		t.Errorf("roster event: bot %q group %q %q", r1.Bot, r1.GroupID, r1.GroupName)
	}
	keys := map[string]string{}
	for _, hd := range []string{"boss", "a", "b", "c"} {
		m, ok := memberBySession(r1, f.userName(hd))
		if !ok {
			t.Fatalf("member %s missing from roster", hd)
		}
		if !strings.HasPrefix(m.ID, "wxd_") || m.IDSource != bot.IDDerived {
			t.Errorf("member %s: id %q source %q", hd, m.ID, m.IDSource)
		}
		want := bot.RoleUnknown
		if hd == "boss" {
			want = bot.RoleOwner
		}
		if m.Role != want {
			t.Errorf("member %s: role %q, want %q", hd, m.Role, want)
		}
		keys[hd] = m.ID
	}
	if keys["b"] == keys["c"] {
		t.Errorf("two members with the same nickname share a key %s", keys["b"])
	}
	if a, _ := memberBySession(r1, f.userName("a")); a.Card != "阿强" || a.Nick != "强哥" {
		t.Errorf("card/nick of a: %+v", a)
	}
	self := slices.IndexFunc(r1.Roster.Members, func(m bot.Member) bool { return m.ID == "100" })
	if self < 0 || r1.Roster.Members[self].IDSource != bot.IDPlatform || r1.Roster.Members[self].Role != bot.RoleUnknown {
		t.Errorf("bot's own entry: %+v", r1.Roster.Members)
	}

	// One sync response with every kind of content.
	text := f.groupMsg("5000000000000000001", 1, "g1", "a", "今晚8点统一拍<br/>价格:<br/>100 &lt;b&gt;")
	mention := f.groupMsg("5000000000000000002", 1, "g1", "b", "@阿强\u2005 收到<span class=\"emoji emoji1f604\"></span>")
	image := f.groupMsg("5000000000000000003", 3, "g1", "b", "&lt;msg&gt;&lt;img length=\"1\"/&gt;&lt;/msg&gt;")
	voice := f.groupMsg("5000000000000000004", 34, "g1", "c", "&lt;msg&gt;&lt;voicemsg/&gt;&lt;/msg&gt;").with("VoiceLength", 3000)
	video := f.groupMsg("5000000000000000005", 43, "g1", "c", "").with("PlayLength", 10)
	emoticon := f.groupMsg("5000000000000000006", 47, "g1", "a", `&lt;msg&gt;&lt;emoji md5="e0f1" cdnurl="http://emoji.qpic.cn/x" /&gt;&lt;/msg&gt;`)
	link := f.groupMsg("5000000000000000007", 49, "g1", "a",
		`&lt;msg&gt;&lt;appmsg appid="" sdkver="0"&gt;&lt;title&gt;店铺链接&lt;/title&gt;&lt;des&gt;拍下不付款&lt;/des&gt;&lt;type&gt;5&lt;/type&gt;&lt;url&gt;https://m.tb.cn/h.x?a=1&amp;amp;b=2&lt;/url&gt;&lt;/appmsg&gt;&lt;/msg&gt;`).
		with("AppMsgType", 5, "Url", "https://m.tb.cn/h.x?a=1&amp;b=2")
	red := f.groupMsg("5000000000000000008", 49, "g1", "boss",
		`&lt;msg&gt;&lt;appmsg appid="" sdkver=""&gt;&lt;des&gt;&lt;![CDATA[我给你发了一个红包，赶紧去拆!]]&gt;&lt;/des&gt;&lt;title&gt;&lt;![CDATA[微信红包]]&gt;&lt;/title&gt;&lt;type&gt;2001&lt;/type&gt;&lt;wcpayinfo&gt;&lt;receivertitle&gt;&lt;![CDATA[辛苦了，明天继续]]&gt;&lt;/receivertitle&gt;&lt;paymsgid&gt;1000039&lt;/paymsgid&gt;&lt;/wcpayinfo&gt;&lt;/appmsg&gt;&lt;/msg&gt;`).
		with("AppMsgType", 2001, "FileName", "微信红包")
	transfer := f.groupMsg("5000000000000000009", 49, "g1", "boss",
		`&lt;msg&gt;&lt;appmsg appid="" sdkver=""&gt;&lt;title&gt;&lt;![CDATA[微信转账]]&gt;&lt;/title&gt;&lt;des&gt;&lt;![CDATA[收到转账88.00元。如需收钱，请在手机上操作。]]&gt;&lt;/des&gt;&lt;type&gt;2000&lt;/type&gt;&lt;wcpayinfo&gt;&lt;paysubtype&gt;1&lt;/paysubtype&gt;&lt;feedesc&gt;&lt;![CDATA[￥88.00]]&gt;&lt;/feedesc&gt;&lt;transferid&gt;t1&lt;/transferid&gt;&lt;pay_memo&gt;&lt;![CDATA[定金]]&gt;&lt;/pay_memo&gt;&lt;/wcpayinfo&gt;&lt;/appmsg&gt;&lt;/msg&gt;`).
		with("AppMsgType", 2000, "FileName", "微信转账")
	redNotice := f.baseMsg("5000000000000000010", 10000, f.groupName("g1"), f.userName("self"), "收到红包，请在手机上查看")
	selfSent := f.baseMsg("5000000000000000011", 1, f.userName("self"), f.groupName("g1"), "收到")
	private := f.baseMsg("5000000000000000012", 1, f.userName("friend"), f.userName("self"), "私聊")
	notify := f.baseMsg("5000000000000000013", 51, f.userName("self"), f.groupName("g1"), "")
	g2 := f.groupMsg("5000000000000000014", 1, "g2", "d", "返利群消息")
	msgs := [][]byte{text.bytes(), mention.bytes(), image.bytes(), voice.bytes(), video.bytes(), emoticon.bytes(),
		link.bytes(), red.bytes(), transfer.bytes(), redNotice.bytes(), selfSent.bytes(), private.bytes(), notify.bytes(), g2.bytes()}
	f.push(f.syncBody(msgs))

	byID := func(id string) *bot.Event {
		return h.sink.wait(func(ev *bot.Event) bool { return ev.Kind == bot.KindMessage && ev.Message.ID == id }, "message "+id)
	}
	ev := byID("5000000000000000001")
	if !bytes.Equal(ev.Raw, msgs[0]) {
		t.Errorf("Raw is not the message's bytes from the sync response:\n%s\nwant\n%s", ev.Raw, msgs[0])
	}
	if ev.Message.Text != "今晚8点统一拍\n价格:\n100 <b>" {
		t.Errorf("text = %q", ev.Message.Text)
	}
	if ev.Message.Sender.ID != keys["a"] || ev.Message.Sender.SessionID != f.userName("a") || ev.Message.Sender.Card != "阿强" || ev.Message.Sender.Role != bot.RoleUnknown {
		t.Errorf("sender = %+v, want key %s", ev.Message.Sender, keys["a"])
	}
	if _, off := ev.Time.Zone(); off != 8*3600 || ev.Time.Unix() != 1718000001 {
		t.Errorf("time = %v", ev.Time)
	}
	if ev.GroupID != r1.GroupID || ev.Bot != "100" || ev.Platform != bot.WeChat {
		t.Errorf("event header: %+v", ev)
	}

	ev = byID("5000000000000000002")
	if at, ok := hasSegment(ev.Message, bot.SegAt); !ok || at.Target != keys["a"] || at.Text != "@阿强" {
		t.Errorf("mention segments = %+v", ev.Message.Segments)
	}
	if !strings.HasSuffix(ev.Message.Text, "收到😄") {
		t.Errorf("emoji span not converted: %q", ev.Message.Text)
	}
	if s, ok := hasSegment(byID("5000000000000000003").Message, bot.SegImage); !ok || s.ID != "5000000000000000003" {
		t.Errorf("image: %+v", s)
	}
	if s, ok := hasSegment(byID("5000000000000000004").Message, bot.SegVoice); !ok || s.Duration != 3 {
		t.Errorf("voice: %+v", s)
	}
	if s, ok := hasSegment(byID("5000000000000000005").Message, bot.SegVideo); !ok || s.Duration != 10 {
		t.Errorf("video: %+v", s)
	}
	if s, ok := hasSegment(byID("5000000000000000006").Message, bot.SegFace); !ok || s.ID != "e0f1" {
		t.Errorf("emoticon: %+v", s)
	}
	if s, ok := hasSegment(byID("5000000000000000007").Message, bot.SegLink); !ok || s.Title != "店铺链接" || s.URL != "https://m.tb.cn/h.x?a=1&b=2" || s.Text != "拍下不付款" {
		t.Errorf("link: %+v", s)
	}
	ev = byID("5000000000000000008")
	if s, ok := hasSegment(ev.Message, bot.SegRedPacket); !ok || s.Title != "辛苦了，明天继续" || ev.Message.Sender.Role != bot.RoleOwner {
		t.Errorf("red packet: %+v sender %+v", s, ev.Message.Sender)
	}
	if s, ok := hasSegment(byID("5000000000000000009").Message, bot.SegTransfer); !ok || s.AmountFen != 8800 || s.Text != "定金" {
		t.Errorf("transfer: %+v", s)
	}
	ev = byID("5000000000000000010")
	if s, ok := hasSegment(ev.Message, bot.SegRedPacket); !ok || ev.Message.Sender.ID != systemID {
		t.Errorf("red packet notice: %+v from %+v", s, ev.Message.Sender)
	}
	ev = byID("5000000000000000011")
	if !ev.Message.Self || ev.Message.Sender.ID != "100" || ev.Message.Sender.IDSource != bot.IDPlatform {
		t.Errorf("self-sent: %+v", ev.Message)
	}
	ev = byID("5000000000000000014")
	r2 := h.roster("g2", nil)
	if ev.GroupID != r2.GroupID || ev.GroupName != "返利2群" || ev.GroupID == r1.GroupID {
		t.Errorf("g2 message group %q, roster %q", ev.GroupID, r2.GroupID)
	}
	if d, _ := memberBySession(r2, f.userName("d")); ev.Message.Sender.ID != d.ID {
		t.Errorf("g2 sender %+v, roster %+v", ev.Message.Sender, d)
	}
	if a2, _ := memberBySession(r2, f.userName("a")); a2.Role != bot.RoleOwner || a2.ID == keys["a"] {
		t.Errorf("a in g2: %+v (keys are per group)", a2)
	}
	for _, ev := range h.sink.events() {
		if ev.Kind == bot.KindMessage && (ev.Message.ID == "5000000000000000012" || ev.Message.ID == "5000000000000000013") {
			t.Errorf("private chat or status notification stored: %+v", ev.Message)
		}
	}

	// Someone joins without a notice and speaks before the next roster:
	// openwechat's SenderInGroup finds them, and a roster follows.
	f.person("f", "潜水员", 6006)
	f.addMember("g1", "f")
	f.push(f.syncBody([][]byte{f.groupMsg("5000000000000000015", 1, "g1", "f", "我也来").bytes()}))
	ev = byID("5000000000000000015")
	if ev.Message.Sender.SessionID != f.userName("f") || ev.Message.Sender.Nick != "潜水员" || !strings.HasPrefix(ev.Message.Sender.ID, "wxd_") {
		t.Errorf("newcomer sender = %+v", ev.Message.Sender)
	}
	withF := h.roster("g1", func(ev *bot.Event) bool { _, ok := memberBySession(ev, f.userName("f")); return ok })
	if m, _ := memberBySession(withF, f.userName("f")); m.ID != ev.Message.Sender.ID {
		t.Errorf("newcomer key %s in message, %s in roster", ev.Message.Sender.ID, m.ID)
	}
	if c := h.status().Counters; c["sender_lookup_failed"]+c["sender_unresolved"] != 0 {
		t.Errorf("sender lookups failed: %v", c)
	}

	// A join (the roster knows the newcomer by then) and a recall.
	f.addMember("g1", "e")
	join := f.baseMsg("5000000000000000020", 10000, f.groupName("g1"), f.userName("self"), `"阿强"邀请"新人"加入了群聊`)
	recall := f.groupMsg("5000000000000000021", 10002, "g1", "a",
		`&lt;sysmsg type="revokemsg"&gt;&lt;revokemsg&gt;&lt;session&gt;x&lt;/session&gt;&lt;oldmsgid&gt;1&lt;/oldmsgid&gt;&lt;msgid&gt;5000000000000000001&lt;/msgid&gt;&lt;replacemsg&gt;&lt;![CDATA["阿强" 撤回了一条消息]]&gt;&lt;/replacemsg&gt;&lt;/revokemsg&gt;&lt;/sysmsg&gt;`)
	f.push(f.syncBody([][]byte{join.bytes(), recall.bytes()}))

	jev := h.sink.wait(func(ev *bot.Event) bool { return ev.Kind == bot.KindJoin }, "join")
	if jev.Member.Member.SessionID != f.userName("e") || !strings.HasPrefix(jev.Member.Member.ID, "wxd_") || jev.Member.Operator != keys["a"] {
		t.Errorf("join = %+v", jev.Member)
	}
	if n := byID("5000000000000000020"); n.Message.Sender.ID != systemID || n.Message.Segments[0].Type != bot.SegNotice {
		t.Errorf("join notice message = %+v", n.Message)
	}
	h.roster("g1", func(ev *bot.Event) bool { return len(ev.Roster.Members) == 7 })
	rev := h.sink.wait(func(ev *bot.Event) bool { return ev.Kind == bot.KindRecall }, "recall")
	if rev.Recall.MessageID != "5000000000000000001" || rev.Recall.Operator != keys["a"] || rev.Recall.SenderID != keys["a"] {
		t.Errorf("recall = %+v", rev.Recall)
	}
	// The recalled message is still there, unchanged.
	if len(h.sink.all(func(ev *bot.Event) bool { return ev.Kind == bot.KindMessage && ev.Message.ID == "5000000000000000001" })) != 1 {
		t.Error("recalled message missing")
	}

	// The owner renames the group: a rename event, and the key stays.
	f.renameGroup("g1", "刷单互助2群")
	f.push(f.syncBody([][]byte{f.baseMsg("5000000000000000022", 10000, f.groupName("g1"), f.userName("self"), `"老板"修改群名为“刷单互助2群”`).bytes()}))
	ren := h.sink.wait(func(ev *bot.Event) bool { return ev.Kind == bot.KindRename }, "rename")
	if ren.Rename.OldName != "刷单互助群" || ren.Rename.NewName != "刷单互助2群" || ren.Rename.Operator != keys["boss"] || ren.GroupID != r1.GroupID {
		t.Errorf("rename = %+v in %s", ren.Rename, ren.GroupID)
	}
	if r := h.roster("g1", func(ev *bot.Event) bool { return ev.GroupName == "刷单互助2群" }); r.GroupID != r1.GroupID {
		t.Errorf("renamed group got a new key %s", r.GroupID)
	}

	if err := stop(); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	if st := h.status(); st.State != bot.StateStopped || st.Groups != 2 || st.Events == 0 {
		t.Errorf("status after stop: %+v", st)
	}
	for _, req := range f.requests() {
		if blockedEndpoint(req) {
			t.Errorf("the fake server saw %s: the bots never post", req)
		}
		if strings.Contains(req, "webwxsend") {
			t.Errorf("send endpoint called: %s", req)
		}
	}
	for _, p := range []string{h.acc.storageFile(), h.acc.identitiesFile()} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", p, fi, err)
		}
	}
	if _, err := os.Stat(h.acc.undeliveredFile()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("undelivered file written although everything was delivered: %v", err)
	}
	checkNoLeak(t)
}

func TestHotLoginReusesSession(t *testing.T) {
	f := newFakeWX(t)
	scenario(f)
	h := newHarness(t, f, options{})
	stop, _ := h.run()
	h.login()
	first := h.roster("g1", nil)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	before := len(f.requests())
	n := len(h.sink.events())

	stop, _ = h.run()
	h.waitState(bot.StateOnline)
	again := h.sink.wait(func(ev *bot.Event) bool {
		return ev.Kind == bot.KindRoster && slices.Index(h.sink.events(), ev) >= n
	}, "roster after hot login")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, req := range f.requests()[before:] {
		if strings.HasSuffix(req, "/jslogin") || strings.HasSuffix(req, "/webwxnewloginpage") {
			t.Errorf("hot login asked for a QR login: %s", req)
		}
	}
	if !strings.Contains(h.qr.String(), "QR1") || strings.Contains(h.qr.String(), "QR2") {
		t.Errorf("QR codes shown: %s", h.qr.String())
	}
	if again.GroupID != first.GroupID || !slices.EqualFunc(again.Roster.Members, first.Roster.Members, func(a, b bot.Member) bool {
		return a.ID == b.ID && a.SessionID == b.SessionID
	}) {
		t.Errorf("hot login changed identities:\n%+v\n%+v", first.Roster.Members, again.Roster.Members)
	}
	checkNoLeak(t)
}

func TestIdentityStableAcrossSessions(t *testing.T) {
	f := newFakeWX(t)
	scenario(f)
	h := newHarness(t, f, options{})
	stop, _ := h.run()
	h.login()
	first := h.roster("g1", nil)
	keys := map[string]string{}
	for _, hd := range []string{"boss", "a", "b", "c"} {
		m, _ := memberBySession(first, f.userName(hd))
		keys[hd] = m.ID
	}
	oldA := f.userName("a")

	// a changes display name within the session: same key, new card.
	f.setCard("g1", "a", "阿强2号")
	f.push(f.syncBody(nil, "g1"))
	changed := h.roster("g1", func(ev *bot.Event) bool {
		m, _ := memberBySession(ev, oldA)
		return m.Card == "阿强2号"
	})
	if m, _ := memberBySession(changed, oldA); m.ID != keys["a"] {
		t.Errorf("display-name change gave a new key: %s -> %s", keys["a"], m.ID)
	}
	cc := h.sink.wait(func(ev *bot.Event) bool { return ev.Kind == bot.KindCardChange }, "card change")
	if cc.Member.OldCard != "阿强" || cc.Member.NewCard != "阿强2号" || cc.Member.Member.ID != keys["a"] {
		t.Errorf("card change = %+v", cc.Member)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// The session ends on WeChat's side; the next run falls back to a QR
	// login, and every UserName changes.
	f.expire()
	n := len(h.sink.events())
	stop, _ = h.run()
	h.login()
	second := h.sink.wait(func(ev *bot.Event) bool {
		return ev.Kind == bot.KindRoster && slices.Index(h.sink.events(), ev) >= n && bytes.Contains(ev.Raw, []byte(f.groupName("g1")))
	}, "roster in the new session")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if f.userName("a") == oldA {
		t.Fatal("fake did not change UserNames")
	}
	if second.GroupID != first.GroupID {
		t.Errorf("group key changed across sessions: %s -> %s", first.GroupID, second.GroupID)
	}
	for hd, key := range keys {
		m, ok := memberBySession(second, f.userName(hd))
		if !ok || m.ID != key {
			t.Errorf("%s: key %s in session 1, %+v in session 2", hd, key, m)
		}
	}
	if c := h.status().Counters["hot_login_failed"]; c != 1 {
		t.Errorf("hot_login_failed = %d", c)
	}
	checkNoLeak(t)
}

func TestLogoutNeedsOperator(t *testing.T) {
	f := newFakeWX(t)
	scenario(f)
	h := newHarness(t, f, options{})
	stop, done := h.run()
	h.login()
	h.roster("g1", nil)

	f.setRetcode("1101") // logged in elsewhere / logged out on the phone
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after WeChat logged the account out")
	}
	if !errors.Is(err, supervisor.ErrNeedsOperator) {
		t.Fatalf("Run = %v, want ErrNeedsOperator", err)
	}
	if st := h.status(); st.State != bot.StateLoggedOut {
		t.Errorf("state = %s", st.State)
	}
	if !strings.Contains(h.logs.String(), "operator action needed") || !strings.Contains(h.logs.String(), `"level":"ERROR"`) {
		t.Errorf("no operator alert in logs:\n%s", h.logs.String())
	}
	checkNoLeak(t)
	_ = stop

	// A retry tries the stored session first, then shows a QR code.
	f.expire()
	f.setRetcode("0")
	before := len(f.requests())
	stop, _ = h.run()
	h.waitState(bot.StateLoginRequired)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()[before:]
	init := slices.IndexFunc(reqs, func(s string) bool { return strings.HasSuffix(s, "/webwxinit") })
	qr := slices.IndexFunc(reqs, func(s string) bool { return strings.HasSuffix(s, "/jslogin") })
	if init < 0 || qr < 0 || init > qr {
		t.Errorf("retry did not try the hot login before the QR code: %v", reqs)
	}
	if st := h.status(); st.State != bot.StateStopped {
		t.Errorf("state after cancel = %s", st.State)
	}
	checkNoLeak(t)
}

func TestBadInputIsKept(t *testing.T) {
	f := newFakeWX(t)
	scenario(f)
	h := newHarness(t, f, options{maxText: 64 << 10})
	stop, _ := h.run()
	h.login()
	h.roster("g1", nil)

	garbage := []byte("{not json at all \x00\xff")
	f.push(garbage)

	good := f.groupMsg("6000000000000000001", 1, "g1", "a", "正常消息").bytes()
	// MsgType as a string: openwechat cannot decode it and would drop the
	// whole response.
	bad := f.groupMsg("6000000000000000002", 1, "g1", "b", "类型不对").with("MsgType", "1").bytes()
	unknown := f.groupMsg("6000000000000000003", 12345, "g1", "c", "新类型").bytes()
	huge := f.groupMsg("6000000000000000004", 1, "g1", "a", strings.Repeat("刷", 100<<10)).bytes() // 300 KiB of text, over the 64 KiB cap
	body := f.syncBody([][]byte{good, []byte("null"), bad, unknown, huge})
	f.push(body)

	byID := func(id string) *bot.Event {
		return h.sink.wait(func(ev *bot.Event) bool { return ev.Kind == bot.KindMessage && ev.Message.ID == id }, "message "+id)
	}
	if ev := byID("6000000000000000001"); !bytes.Equal(ev.Raw, good) {
		t.Errorf("good message raw differs")
	}
	ev := byID("6000000000000000002")
	if !bytes.Equal(ev.Raw, bad) || ev.Message.Text != "类型不对" || !strings.HasPrefix(ev.Message.Sender.ID, "wxd_") {
		t.Errorf("salvaged message = %+v", ev.Message)
	}
	ev = byID("6000000000000000003")
	if s, ok := hasSegment(ev.Message, bot.SegOther); !ok || s.Title != "msgtype_12345" || ev.Message.Text != "新类型" {
		t.Errorf("unknown type = %+v", ev.Message)
	}
	ev = byID("6000000000000000004")
	if !bytes.Equal(ev.Raw, huge) || len(ev.Message.Text) > 64<<10 || !strings.HasPrefix(ev.Message.Text, "刷刷") {
		t.Errorf("huge message: raw %d text %d", len(ev.Raw), len(ev.Message.Text))
	}
	if s, ok := hasSegment(ev.Message, bot.SegOther); !ok || s.Title != "truncated" || s.Size != 300<<10 {
		t.Errorf("huge message truncation marker = %+v", s)
	}

	// Still online and still receiving.
	f.push(f.syncBody([][]byte{f.groupMsg("6000000000000000005", 1, "g1", "a", "之后").bytes()}))
	byID("6000000000000000005")
	st := h.status()
	if st.State != bot.StateOnline {
		t.Errorf("state = %s", st.State)
	}
	for kind, min := range map[string]int64{"malformed_sync": 2, "malformed_message": 1, "salvaged_message": 1, "unknown_msg_type": 1, "oversize_message": 1} {
		if st.Counters[kind] < min {
			t.Errorf("counter %s = %d, want >= %d (%v)", kind, st.Counters[kind], min, st.Counters)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// The unreadable response is kept, byte for byte.
	fh, err := os.Open(h.acc.undeliveredFile())
	if err != nil {
		t.Fatalf("undelivered file: %v", err)
	}
	defer fh.Close()
	found := false
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		var rec spoolRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		if b, _ := base64.StdEncoding.DecodeString(rec.BodyB64); rec.Reason == "malformed_sync" && bytes.Equal(b, garbage) {
			found = true
		}
	}
	if !found {
		t.Error("garbage sync response not kept in the undelivered file")
	}
	checkNoLeak(t)
}

// A sink that refuses events must not lose them: they go to the
// undelivered file.
func TestRefusedEventsAreSpooled(t *testing.T) {
	f := newFakeWX(t)
	scenario(f)
	h := newHarness(t, f, options{})
	refuse := bot.SinkFunc(func(_ context.Context, ev *bot.Event) error {
		if ev.Kind == bot.KindMessage {
			return errors.New("event too large")
		}
		return h.sink.Submit(context.Background(), ev)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.r.Run(ctx, refuse) }()
	h.login()
	h.roster("g1", nil)
	f.push(f.syncBody([][]byte{f.groupMsg("7000000000000000001", 1, "g1", "a", "被拒绝").bytes()}))
	deadline := time.Now().Add(10 * time.Second)
	for h.status().Counters["submit_failed"] == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(h.acc.undeliveredFile())
	if err != nil || !bytes.Contains(b, []byte(`"reason":"submit_failed"`)) || !bytes.Contains(b, []byte("被拒绝")) {
		t.Errorf("refused event not spooled: %v\n%s", err, b)
	}
	checkNoLeak(t)
}

// Under the supervisor: a logout makes it restart the runner, which tries
// the stored session before asking for a QR code.
func TestUnderSupervisor(t *testing.T) {
	f := newFakeWX(t)
	scenario(f)
	h := newHarness(t, f, options{})
	sup := supervisor.New([]supervisor.Runner{h.r}, h.sink, supervisor.Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		sup.Run(ctx)
	}()
	h.login()
	h.roster("g1", nil)
	before := len(f.requests())
	f.expire() // logged out on the phone
	f.wake()
	h.waitState(bot.StateLoginRequired)
	if sup.Restarts()["wechat:ops"] < 1 {
		t.Errorf("restarts = %v", sup.Restarts())
	}
	reqs := f.requests()[before:]
	if i, j := slices.IndexFunc(reqs, func(s string) bool { return strings.HasSuffix(s, "/webwxinit") }),
		slices.IndexFunc(reqs, func(s string) bool { return strings.HasSuffix(s, "/jslogin") }); i < 0 || j < i {
		t.Errorf("restart did not try the stored session first: %v", reqs)
	}
	h.f.confirm()
	h.waitState(bot.StateOnline)
	cancel()
	<-done
	if st := sup.Statuses(); len(st) != 1 || st[0].State != bot.StateStopped {
		t.Errorf("statuses = %+v", st)
	}
	checkNoLeak(t)
}
