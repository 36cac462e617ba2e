package qq

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/Mrs4s/MiraiGo/client"
	"github.com/Mrs4s/MiraiGo/client/pb/msg"
	"github.com/Mrs4s/MiraiGo/message"
	"github.com/RomiChan/protobuf/proto"

	"github.com/qunshao/qunshao/bot"
)

// observedAt is when the test converter "sees" events.
func observedAt() time.Time { return time.Date(2024, 4, 25, 12, 0, 0, 0, time.UTC) }

type counts map[string]int

func testConverter() (*converter, counts) {
	n := counts{}
	return newConverter("999", observedAt, func(k string) { n[k]++ }), n
}

func mustValid(t *testing.T, ev *bot.Event) {
	t.Helper()
	if ev == nil {
		t.Fatal("no event")
	}
	if err := ev.Validate(); err != nil {
		t.Fatalf("invalid %s event: %v", ev.Kind, err)
	}
	if ev.Platform != bot.QQ || ev.Bot != "999" {
		t.Fatalf("platform %q bot %q", ev.Platform, ev.Bot)
	}
	if _, off := ev.Time.Zone(); off != 8*3600 {
		t.Fatalf("time %v is not in +08:00", ev.Time)
	}
	var raw map[string]any
	if err := json.Unmarshal(ev.Raw, &raw); err != nil || raw["source"] != "miraigo" || raw["type"] == "" {
		t.Fatalf("raw is not a MiraiGo JSON envelope: %s", ev.Raw)
	}
}

func TestMessageElementsToSegments(t *testing.T) {
	lightApp := `{"app":"com.tencent.miniapp_01","prompt":"[QQ小程序]拼多多","meta":{"detail_1":{"title":"拼多多","desc":"砍一刀领现金","qqdocurl":"https://mobile.yangkeduo.com/ab?c=1","icon":"https://x/icon.png"}}}`
	service := `<?xml version="1.0" encoding="utf-8"?><msg serviceID="1" templateID="12345" action="web" brief="[分享] 店铺活动" url="https://shop.m.taobao.com/x?id=9"><item layout="2"><picture cover="https://p/c.jpg"/><title>店铺活动</title><summary>全场退款包邮</summary></item><source/></msg>`
	dice := &message.DiceElement{MarketFaceElement: &message.MarketFaceElement{Name: "[骰子]", FaceId: []byte{0x48, 0x23}}, Value: 5}
	finger := &message.FingerGuessingElement{MarketFaceElement: &message.MarketFaceElement{Name: "[猜拳]", FaceId: []byte{0x83}}, Value: 0, Name: "石头"}
	elems := []message.IMessageElement{
		message.NewText("今晚"),                         // 0
		message.NewAt(12345, "@张三"),                   // 1
		message.AtAll(),                               // 2
		&message.FaceElement{Index: 14, Name: "微笑"},   // 3
		&message.AnimatedSticker{ID: 114, Name: "篮球"}, // 4
		&message.GroupImageElement{ImageId: "{A1B2}.jpg", FileId: 77, Size: 1024, Url: "https://gchat.qpic.cn/a", Md5: []byte{1}},        // 5
		&message.FriendImageElement{ImageId: "{C3}.png", Url: "https://c2cpicdw.qpic.cn/b", Size: 9, Flash: true},                        // 6
		&message.ReplyElement{ReplySeq: 4411, Sender: 777, Time: 1714000000, Elements: []message.IMessageElement{message.NewText("原话")}}, // 7
		&message.ForwardElement{ResId: "fwdres1", FileName: "MultiMsg"},                                                                  // 8
		&message.GroupFileElement{Name: "名单.xlsx", Size: 2048, Path: "/a-b-c", Busid: 102},                                               // 9
		&message.VoiceElement{Name: "v.amr", Md5: []byte{2}, Size: 300, Url: "http://grouptalk.c2c.qq.com/v"},                            // 10
		&message.ShortVideoElement{Name: "vid.mp4", Size: 5000, Url: "https://v/1", Md5: []byte{3}},                                      // 11
		&message.LightAppElement{Content: lightApp},                                                                                      // 12
		&message.ServiceElement{Id: 1, Content: service, SubType: "xml"},                                                                 // 13
		&message.RedBagElement{MsgType: message.RedBagLucky, Title: "恭喜发财"},                                                              // 14
		&message.MarketFaceElement{Name: "[吃瓜]", FaceId: []byte{0xab, 0xcd}},                                                             // 15
		dice,   // 16
		finger, // 17
		&message.MusicShareElement{Title: "歌", Url: "https://y.qq.com/1", Summary: "歌手"}, // 18
		&message.GuildImageElement{FilePath: "g.jpg", Url: "https://g/1"},                // 19
		&message.GroupVoiceElement{Ptt: &msg.Ptt{FileMd5: []byte{4}}},                    // 20
		message.NewText("八点"), // 21
	}
	c, n := testConverter()
	m := &message.GroupMessage{Id: 4412, InternalId: 9, GroupCode: 815530927, GroupName: "团购群",
		Sender: &message.Sender{Uin: 3344, Nickname: "小王", CardName: "王-运营"}, Time: 1714003200, Elements: elems}
	ev, work := c.message(m, false)
	mustValid(t, ev)
	if ev.Kind != bot.KindMessage || ev.GroupID != "815530927" || ev.GroupName != "团购群" || ev.Message.ID != "4412" {
		t.Fatalf("event %+v", ev)
	}
	if want := time.Date(2024, 4, 25, 8, 0, 0, 0, chinaTime()); !ev.Time.Equal(want) {
		t.Fatalf("time %v", ev.Time)
	}
	s := ev.Message.Sender
	if s.ID != "3344" || s.Nick != "小王" || s.Card != "王-运营" || s.Role != "" {
		t.Fatalf("sender %+v", s)
	}
	segs := ev.Message.Segments
	if len(segs) != len(elems) {
		t.Fatalf("%d segments for %d elements: %+v", len(segs), len(elems), segs)
	}
	want := []bot.Segment{
		{Type: bot.SegText, Text: "今晚"},
		{Type: bot.SegAt, Target: "12345", Text: "@张三"},
		{Type: bot.SegAt, Target: "all", Text: "@全体成员"},
		{Type: bot.SegFace, ID: "14", Text: "[微笑]"},
		{Type: bot.SegFace, ID: "114", Text: "[篮球]", Title: "AnimatedSticker"},
		{Type: bot.SegImage, ID: "{A1B2}.jpg", URL: "https://gchat.qpic.cn/a", Size: 1024},
		{Type: bot.SegImage, ID: "{C3}.png", URL: "https://c2cpicdw.qpic.cn/b", Size: 9, Title: "flash"},
		{Type: bot.SegReply, ID: "4411", Target: "777"},
		{Type: bot.SegForward, ID: "fwdres1", Title: "MultiMsg"},
		{Type: bot.SegFile, ID: "/a-b-c", Title: "名单.xlsx", Size: 2048},
		{Type: bot.SegVoice, ID: "v.amr", URL: "http://grouptalk.c2c.qq.com/v", Size: 300},
		{Type: bot.SegVideo, ID: "vid.mp4", URL: "https://v/1", Size: 5000},
		{Type: bot.SegLink, Title: "拼多多", URL: "https://mobile.yangkeduo.com/ab?c=1", Text: "砍一刀领现金"},
		{Type: bot.SegLink, Title: "店铺活动", URL: "https://shop.m.taobao.com/x?id=9", Text: "全场退款包邮"},
		{Type: bot.SegRedPacket, Title: "恭喜发财"},
		{Type: bot.SegOther, Title: "MarketFaceElement", Text: "[吃瓜]", ID: "abcd"},
		{Type: bot.SegOther, Title: "DiceElement", Text: "[骰子:5]", ID: "4823"},
		{Type: bot.SegOther, Title: "FingerGuessingElement", Text: "[猜拳:石头]", ID: "83"},
		{Type: bot.SegLink, Title: "歌", URL: "https://y.qq.com/1", Text: "歌手"},
		{Type: bot.SegImage, ID: "g.jpg", URL: "https://g/1"},
		{Type: bot.SegVoice, ID: "04"},
		{Type: bot.SegText, Text: "八点"},
	}
	for i := range want {
		if segs[i] != want[i] {
			t.Errorf("segment %d (%T):\n got %+v\nwant %+v", i, elems[i], segs[i], want[i])
		}
	}
	wantText := "今晚@张三@全体成员[微笑][篮球][图片][闪照][聊天记录][文件]名单.xlsx[语音][视频][链接]拼多多[链接]店铺活动[红包]恭喜发财[吃瓜][骰子:5][猜拳:石头][音乐]歌[图片][语音]八点"
	if ev.Message.Text != wantText {
		t.Errorf("text\n got %q\nwant %q", ev.Message.Text, wantText)
	}
	if len(work) != 1 || work[0].ResID != "fwdres1" || work[0].Bundle != nil {
		t.Fatalf("forward work %+v", work)
	}
	if len(n) != 0 {
		t.Fatalf("unexpected counters %v", n)
	}
	// Raw keeps every element with its type, including the reply's quote.
	var raw struct {
		Type  string
		Value struct {
			Id       int32
			Elements []struct {
				Type  string
				Value json.RawMessage
			}
		}
	}
	if err := json.Unmarshal(ev.Raw, &raw); err != nil {
		t.Fatal(err)
	}
	if raw.Type != "message.GroupMessage" || raw.Value.Id != 4412 || len(raw.Value.Elements) != len(elems) {
		t.Fatalf("raw %s", ev.Raw)
	}
	if raw.Value.Elements[7].Type != "ReplyElement" || !strings.Contains(string(raw.Value.Elements[7].Value), "原话") {
		t.Fatalf("reply raw %s", raw.Value.Elements[7].Value)
	}
	if raw.Value.Elements[16].Type != "DiceElement" || !strings.Contains(string(raw.Value.Elements[16].Value), `"Value":5`) {
		t.Fatalf("dice raw %s", raw.Value.Elements[16].Value)
	}
}

func TestSelfAndAnonymousMessages(t *testing.T) {
	c, _ := testConverter()
	ev, _ := c.message(textMsg(100, 5, botUin, "我是哨兵"), true)
	mustValid(t, ev)
	if !ev.Message.Self || ev.Message.Sender.ID != "999" {
		t.Fatalf("self message %+v", ev.Message)
	}
	anon := &message.GroupMessage{Id: 6, GroupCode: 100, Time: 1714000000, Elements: []message.IMessageElement{message.NewText("匿名爆料")},
		Sender: &message.Sender{Uin: 80000000, Nickname: "匿名", AnonymousInfo: &message.AnonymousInfo{AnonymousId: "aGVsbG8=", AnonymousNick: "小企鹅"}}}
	ev, _ = c.message(anon, false)
	mustValid(t, ev)
	if s := ev.Message.Sender; !s.Anonymous || s.ID != "anon:aGVsbG8=" || s.Nick != "小企鹅" || s.IDSource != bot.IDSession {
		t.Fatalf("anonymous sender %+v", s)
	}
}

// Elements parsed by MiraiGo's own decoder from protobuf, as they arrive
// from Tencent: LightApp data is zlib-compressed, an @ carries its target
// in Attr6Buf, a forward is a serviceID 35 XML card.
func TestConvertElementsParsedByMiraiGo(t *testing.T) {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write([]byte(`{"app":"com.tencent.structmsg","prompt":"[分享]退款教程","meta":{"news":{"title":"退款教程","desc":"七天无理由","jumpUrl":"https://b23.tv/x"}}}`))
	zw.Close()
	attr6 := []byte{0, 1, 0, 0, 0, 3, 0, 0, 0, 0x30, 0x39, 0, 0} // target 12345
	forwardXML := `<?xml version='1.0' encoding='UTF-8'?><msg serviceID="35" templateID="1" action="viewMultiMsg" brief="[聊天记录]" m_resid="RESID123" m_fileName="abc" tSum="3"><item layout="1"><title>群聊的聊天记录</title></item></msg>`
	elems := []*msg.Elem{
		{Text: &msg.Text{Str: proto.Some("@张三"), Attr6Buf: attr6}},
		{Text: &msg.Text{Str: proto.Some(" 下单")}},
		{Face: &msg.Face{Index: proto.Some(int32(178))}},
		{LightApp: &msg.LightAppElem{Data: append([]byte{1}, z.Bytes()...)}},
	}
	got := message.ParseMessageElems(elems)
	got = append(got, message.ParseMessageElems([]*msg.Elem{{RichMsg: &msg.RichMsg{Template1: append([]byte{0}, forwardXML...), ServiceId: proto.Some(int32(35))}}})...)
	c, _ := testConverter()
	ev, work := c.message(&message.GroupMessage{Id: 1, GroupCode: 100, Time: 1714000000, Sender: &message.Sender{Uin: 5}, Elements: got}, false)
	mustValid(t, ev)
	segs := ev.Message.Segments
	if len(segs) != 5 || segs[0].Type != bot.SegAt || segs[0].Target != "12345" || segs[1].Text != " 下单" ||
		segs[2].Type != bot.SegFace || segs[2].ID != "178" || segs[3].Type != bot.SegLink || segs[3].URL != "https://b23.tv/x" ||
		segs[4].Type != bot.SegForward || segs[4].ID != "RESID123" {
		t.Fatalf("segments %+v", segs)
	}
	if len(work) != 1 || work[0].ResID != "RESID123" {
		t.Fatalf("work %+v", work)
	}
}

func TestForwardNodesIDsAndNesting(t *testing.T) {
	c, n := testConverter()
	outer, _ := c.message(textMsg(100, 3, 1, "看"), false)
	inner := &message.ForwardMessage{Nodes: []*message.ForwardNode{{SenderId: 9, Time: 1713000000, Message: []message.IMessageElement{message.NewText("套娃")}}}}
	bundle := &message.ForwardMessage{Nodes: []*message.ForwardNode{
		{SenderId: 7, SenderName: "甲", Time: 1713990000, Message: []message.IMessageElement{message.NewText("一"), inner}},
		nil,
		{SenderId: 0, Time: 0, Message: []message.IMessageElement{(*message.ForwardMessage)(nil), &message.ForwardElement{ResId: "deeper"}}},
	}}
	evs, more := c.forwardNodes(outer, forwardWork{ResID: "R1", Bundle: bundle, Depth: 1})
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
	for _, ev := range evs {
		mustValid(t, ev)
	}
	if evs[0].Message.ID != "fwd:R1:0" || evs[1].Message.ID != "fwd:R1:2" || evs[1].Message.Sender.ID != "unknown" || !evs[1].Time.Equal(outer.Time) {
		t.Fatalf("ids %s %s %+v", evs[0].Message.ID, evs[1].Message.ID, evs[1])
	}
	if seg := evs[0].Message.Segments[1]; seg.Type != bot.SegForward || seg.ID != "fwd:R1:0/1" {
		t.Fatalf("nested forward segment %+v", seg)
	}
	if len(more) != 2 || more[0].Bundle != inner || more[0].Path != "0/1" || more[1].ResID != "deeper" || more[1].Bundle != nil {
		t.Fatalf("more %+v", more)
	}
	nested, _ := c.forwardNodes(outer, more[0])
	if len(nested) != 1 || nested[0].Message.ID != "fwd:R1:0/1.0" || nested[0].Message.Text != "套娃" {
		t.Fatalf("nested %+v", nested[0].Message)
	}
	if n["nil_forward_node"] != 1 || n["nil_element"] != 1 || n["missing_sender"] != 1 {
		t.Fatalf("counters %v", n)
	}
	// Res ids an attacker crafted still give valid, stable ids.
	for _, res := range []string{strings.Repeat("x", 500), "a\x00b", "\xff\xfe"} {
		id := forwardID(res, "3.1")
		if id != forwardID(res, "3.1") || len(id) > bot.MaxIDLen || !plainID(id) {
			t.Fatalf("forward id %q", id)
		}
	}
}

func TestNoticeEvents(t *testing.T) {
	g := group(100, "团购群", member(1, client.Owner, "群主"), member(2, client.Administrator, "管理"), member(3, client.Member, "成员"))
	m3, op := g.FindMember(3), g.FindMember(2)
	m3.CardName = "新名片"
	cases := []struct {
		name  string
		in    any
		check func(*bot.Event) bool
	}{
		{"recall", &client.GroupMessageRecalledEvent{GroupCode: 100, OperatorUin: 2, AuthorUin: 3, MessageId: 4412, Time: 1714000000},
			func(e *bot.Event) bool {
				return e.Kind == bot.KindRecall && *e.Recall == bot.Recall{MessageID: "4412", SenderID: "3", Operator: "2"} && e.Time.Equal(observedAt())
			}},
		{"join", &client.MemberJoinGroupEvent{Group: g, Member: m3},
			func(e *bot.Event) bool {
				return e.Kind == bot.KindJoin && e.Member.Member.ID == "3" && e.Member.Member.Role == "" && e.Member.Member.JoinedAt.Unix() == 1700000000
			}},
		{"leave", &client.MemberLeaveGroupEvent{Group: g, Member: m3},
			func(e *bot.Event) bool {
				return e.Kind == bot.KindLeave && e.Member.Member.ID == "3" && e.Member.Operator == ""
			}},
		{"kick", &client.MemberLeaveGroupEvent{Group: g, Member: m3, Operator: op},
			func(e *bot.Event) bool {
				return e.Kind == bot.KindKick && e.Member.Member.ID == "3" && e.Member.Operator == "2"
			}},
		{"role", &client.MemberPermissionChangedEvent{Group: g, Member: m3, OldPermission: client.Member, NewPermission: client.Administrator},
			func(e *bot.Event) bool {
				return e.Kind == bot.KindRoleChange && e.Member.OldRole == bot.RoleMember && e.Member.NewRole == bot.RoleAdmin
			}},
		{"card", &client.MemberCardUpdatedEvent{Group: g, OldCard: "旧名片", Member: m3},
			func(e *bot.Event) bool {
				return e.Kind == bot.KindCardChange && e.Member.OldCard == "旧名片" && e.Member.NewCard == "新名片"
			}},
		{"rename", &client.GroupNameUpdatedEvent{Group: g, OldName: "旧群名", NewName: "新群名", OperatorUin: 1},
			func(e *bot.Event) bool {
				return e.Kind == bot.KindRename && *e.Rename == bot.Rename{OldName: "旧群名", NewName: "新群名", Operator: "1"} && e.GroupName == "新群名"
			}},
		{"mute", &client.GroupMuteEvent{GroupCode: 100, OperatorUin: 2, TargetUin: 3, Time: 600},
			func(e *bot.Event) bool {
				return e.Kind == bot.KindMute && e.Member.Member.ID == "3" && e.Member.MuteDuration == 10*time.Minute && e.Member.Operator == "2"
			}},
		{"unmute", &client.GroupMuteEvent{GroupCode: 100, OperatorUin: 2, TargetUin: 3, Time: 0},
			func(e *bot.Event) bool { return e.Kind == bot.KindMute && e.Member.MuteDuration == 0 }},
		{"mute all", &client.GroupMuteEvent{GroupCode: 100, OperatorUin: 1, TargetUin: 0, Time: -1},
			func(e *bot.Event) bool {
				return e.Kind == bot.KindMute && e.Member.Member.ID == "" && e.Member.MuteDuration == time.Duration(1<<32-1)*time.Second
			}},
		{"disband", &client.GroupDisbandEvent{Group: g, Time: 1714000500, Operator: g.FindMember(1)},
			func(e *bot.Event) bool {
				return e.Kind == bot.KindDisband && e.Member.Operator == "1" && e.Time.Unix() == 1714000500
			}},
		{"bot left", &client.GroupLeaveEvent{Group: g},
			func(e *bot.Event) bool { return e.Kind == bot.KindLeave && e.Member.Member.ID == "999" }},
		{"bot kicked", &client.GroupLeaveEvent{Group: g, Operator: op},
			func(e *bot.Event) bool {
				return e.Kind == bot.KindKick && e.Member.Member.ID == "999" && e.Member.Operator == "2"
			}},
		{"member missing", &client.MemberJoinGroupEvent{Group: g},
			func(e *bot.Event) bool { return e.Kind == bot.KindJoin && e.Member.Member.ID == "unknown" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := testConverter()
			ev := c.notice(tc.in)
			mustValid(t, ev)
			if ev.GroupID != "100" {
				t.Fatalf("group %q", ev.GroupID)
			}
			if !tc.check(ev) {
				t.Fatalf("event %+v member %+v", ev, ev.Member)
			}
			if strings.Contains(string(ev.Raw), `"Members"`) {
				t.Fatalf("raw of an event should not list members: %s", ev.Raw)
			}
		})
	}
	c, n := testConverter()
	if c.notice((*client.GroupMuteEvent)(nil)) != nil || c.notice(nil) != nil || c.notice(42) != nil || n["nil_event"] != 2 {
		t.Fatalf("bad notices not refused: %v", n)
	}
}

func TestRosterFromGroupInfo(t *testing.T) {
	g := group(100, "团购群", member(1, client.Owner, "群主"), member(2, client.Administrator, "管理"), member(3, client.Member, "成员"),
		member(4, client.MemberPermission(0), "怪"))
	c, n := testConverter()
	ev := c.roster(g, snapshotMembers(g))
	mustValid(t, ev)
	want := map[string]bot.Role{"1": bot.RoleOwner, "2": bot.RoleAdmin, "3": bot.RoleMember, "4": bot.RoleUnknown, "999": bot.RoleMember}
	if len(ev.Roster.Members) != len(want) || !ev.Roster.Complete {
		t.Fatalf("roster %+v", ev.Roster)
	}
	for _, m := range ev.Roster.Members {
		if want[m.ID] != m.Role {
			t.Errorf("%s is %s, want %s", m.ID, m.Role, want[m.ID])
		}
	}
	var raw struct{ Value struct{ Members []rawMember } }
	if err := json.Unmarshal(ev.Raw, &raw); err != nil || len(raw.Value.Members) != 5 {
		t.Fatalf("raw %s", ev.Raw)
	}

	// OwnerUin decides the owner: a member list that names someone else
	// owner (stale cache) gets unknown, never a second owner; the real
	// owner is owner whatever its entry says.
	g2 := group(200, "g2", member(1, client.Member, "真群主"), member(5, client.Owner, "假群主"))
	ev = c.roster(g2, snapshotMembers(g2))
	mustValid(t, ev)
	for _, m := range ev.Roster.Members {
		if (m.ID == "1" && m.Role != bot.RoleOwner) || (m.ID == "5" && m.Role != bot.RoleUnknown) {
			t.Errorf("%s is %s", m.ID, m.Role)
		}
	}
	if n["owner_mismatch"] != 1 {
		t.Fatalf("counters %v", n)
	}
	// A list without the bot itself (a failed partial load) is not
	// complete, and duplicates or nil entries are dropped.
	ev = c.roster(g2, []*client.GroupMemberInfo{member(1, client.Owner, ""), nil, member(1, client.Owner, "")})
	mustValid(t, ev)
	if ev.Roster.Complete || len(ev.Roster.Members) != 1 || n["nil_member"] != 1 || n["bad_roster_entry"] != 1 {
		t.Fatalf("roster %+v counters %v", ev.Roster, n)
	}
}

func TestMessageProtobufKeptInRaw(t *testing.T) {
	// Invalid UTF-8 from an attacker: JSON would replace it; the
	// re-encoded protobuf keeps it.
	bad := "退款\xff\xfe"
	orig := &msg.Message{Head: &msg.MessageHead{MsgSeq: proto.Some(int32(8))},
		Body: &msg.MessageBody{RichText: &msg.RichText{Elems: []*msg.Elem{{Text: &msg.Text{Str: proto.Some(bad)}}}}}}
	m := textMsg(100, 8, 3, bad)
	m.OriginalObject = orig
	c, _ := testConverter()
	ev, _ := c.message(m, false)
	mustValid(t, ev)
	if ev.Message.Text != bad {
		t.Fatal("text changed")
	}
	var raw struct{ Protobuf []byte }
	if err := json.Unmarshal(ev.Raw, &raw); err != nil {
		t.Fatal(err)
	}
	var back msg.Message
	if err := proto.Unmarshal(raw.Protobuf, &back); err != nil || back.Body.RichText.Elems[0].Text.Str.Unwrap() != bad {
		t.Fatalf("protobuf in raw does not round-trip: %v", err)
	}
}

func TestMessageMissingFields(t *testing.T) {
	c, n := testConverter()
	ev, _ := c.message(&message.GroupMessage{GroupCode: 100, Elements: []message.IMessageElement{message.NewText("x")}}, false)
	mustValid(t, ev)
	if ev.Message.ID != "" || ev.Message.Sender.ID != "unknown" || !ev.Time.Equal(observedAt()) {
		t.Fatalf("%+v", ev.Message)
	}
	if n["missing_message_id"] != 1 || n["missing_sender"] != 1 || n["missing_time"] != 1 {
		t.Fatalf("counters %v", n)
	}
}
