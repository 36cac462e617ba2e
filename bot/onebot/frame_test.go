package onebot

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/qunshao/qunshao/bot"
)

var recvTime = time.Date(2024, 11, 11, 0, 0, 0, 0, time.UTC)

func decodeOne(t *testing.T, frame string) *decoded {
	t.Helper()
	d, err := decodeFrame([]byte(frame), "10001", recvTime)
	if err != nil {
		t.Fatalf("decode %s: %v", frame, err)
	}
	return d
}

func TestDecodeGroupMessageArray(t *testing.T) {
	frame := `{"self_id":10001,"user_id":20002,"time":1731254400,"message_id":-2147480001,"message_seq":5,"real_id":5,
"message_type":"group","sender":{"user_id":20002,"nickname":"刷单头子","card":"群主大人","role":"owner","title":""},
"raw_message":"","font":14,"sub_type":"normal","post_type":"message","group_id":738291046,"group_name":"618冲量群",
"message_format":"array","message":[
 {"type":"reply","data":{"id":"12345"}},
 {"type":"at","data":{"qq":"all"}},
 {"type":"text","data":{"text":" 今晚八点 全部下单 "}},
 {"type":"at","data":{"qq":"30003","name":"小王"}},
 {"type":"face","data":{"id":"14","raw":{"faceText":"/微笑"}}},
 {"type":"image","data":{"file":"A5.png","subType":0,"url":"https://multimedia.nt.qq.com.cn/download?x=1","file_size":"871157"}},
 {"type":"record","data":{"file":"v.amr","url":"https://v"}},
 {"type":"video","data":{"file":"v.mp4","url":"https://vid","file_size":123}},
 {"type":"file","data":{"file":"f1","file_id":"/abc","name":"名单.xlsx","file_size":"2048"}},
 {"type":"json","data":{"data":"{\"app\":\"com.tencent.miniapp_01\",\"prompt\":\"[QQ小程序]淘宝\",\"meta\":{\"detail_1\":{\"title\":\"店铺链接\",\"desc\":\"5折\",\"qqdocurl\":\"https://m.tb.cn/x\"}}}"}},
 {"type":"xml","data":{"data":"<?xml version='1.0' encoding='UTF-8'?><msg serviceID=\"1\" url=\"https://item.taobao.com/1\" brief=\"[分享]\"><item><title>商品</title><summary>退款教程</summary></item></msg>"}},
 {"type":"share","data":{"url":"https://s","title":"分享标题","content":"摘要"}},
 {"type":"redbag","data":{"title":"恭喜发财"}},
 {"type":"forward","data":{"id":"7401"}},
 {"type":"dice","data":{"result":"3"}},
 {"type":"newfangled","data":{}}
]}`
	d := decodeOne(t, frame)
	if len(d.events) != 1 {
		t.Fatalf("events %d, invalid %v", len(d.events), d.invalid)
	}
	ev := d.events[0]
	if ev.Kind != bot.KindMessage || ev.Platform != bot.QQ || ev.Bot != "10001" || ev.GroupID != "738291046" || ev.GroupName != "618冲量群" {
		t.Fatalf("header %+v", ev)
	}
	if string(ev.Raw) != frame {
		t.Fatal("Raw is not the frame")
	}
	if _, off := ev.Time.Zone(); off != 8*3600 || ev.Time.Unix() != 1731254400 {
		t.Fatalf("time %v", ev.Time)
	}
	m := ev.Message
	if m.ID != "-2147480001" || m.Sender.ID != "20002" || m.Sender.Role != bot.RoleOwner || m.Sender.Card != "群主大人" || m.Self {
		t.Fatalf("message %+v", m)
	}
	wantText := "@全体成员 今晚八点 全部下单 @小王[微笑][图片][语音][视频][文件]名单.xlsx[链接]店铺链接[链接]商品[链接]分享标题[红包]恭喜发财[聊天记录][dice][newfangled]"
	if m.Text != wantText {
		t.Fatalf("text\n got %q\nwant %q", m.Text, wantText)
	}
	want := []bot.Segment{
		{Type: bot.SegReply, ID: "12345"},
		{Type: bot.SegAt, Target: "all"},
		{Type: bot.SegText, Text: " 今晚八点 全部下单 "},
		{Type: bot.SegAt, Target: "30003", Text: "小王"},
		{Type: bot.SegFace, ID: "14", Text: "[微笑]"},
		{Type: bot.SegImage, ID: "A5.png", URL: "https://multimedia.nt.qq.com.cn/download?x=1", Size: 871157},
		{Type: bot.SegVoice, ID: "v.amr", URL: "https://v"},
		{Type: bot.SegVideo, ID: "v.mp4", URL: "https://vid", Size: 123},
		{Type: bot.SegFile, ID: "/abc", Title: "名单.xlsx", Size: 2048},
		{Type: bot.SegLink, Title: "店铺链接", URL: "https://m.tb.cn/x", Text: "5折"},
		{Type: bot.SegLink, Title: "商品", URL: "https://item.taobao.com/1", Text: "退款教程"},
		{Type: bot.SegLink, Title: "分享标题", URL: "https://s", Text: "摘要"},
		{Type: bot.SegRedPacket, Title: "恭喜发财"},
		{Type: bot.SegForward, ID: "7401"},
		{Type: bot.SegOther, Title: "dice"},
		{Type: bot.SegOther, Title: "newfangled"},
	}
	if !reflect.DeepEqual(m.Segments, want) {
		for i := range max(len(want), len(m.Segments)) {
			var g, w bot.Segment
			if i < len(m.Segments) {
				g = m.Segments[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Errorf("segment %d\n got %+v\nwant %+v", i, g, w)
			}
		}
	}
	if got := strings.Join(d.counts, ","); got != "unknown_segment" {
		t.Errorf("counts %q", got)
	}
	if len(d.forwards) != 1 || d.forwards[0].id != "7401" || d.forwards[0].groupID != "738291046" {
		t.Errorf("forwards %+v", d.forwards)
	}
	if len(d.fetch) != 1 || d.fetch[0].id != "12345" {
		t.Errorf("fetch %+v", d.fetch)
	}
}

func TestDecodeCQStringAnonymousAndSelf(t *testing.T) {
	d := decodeOne(t, `{"post_type":"message","message_type":"group","sub_type":"anonymous","time":1731254400,"self_id":10001,
"group_id":1,"user_id":80000000,"message_id":9,"message":"退款&amp;返现&#91;稳&#93; [CQ:at,qq=30003] [CQ:image,file=a.png,url=https://x?a=1&#44;2] [CQ:face,id=1",
"anonymous":{"id":4455,"name":"匿名水獭","flag":"4455|匿名水獭"},"sender":{"user_id":80000000,"nickname":"匿名消息","role":"member"}}`)
	if len(d.events) != 1 {
		t.Fatalf("invalid %v", d.invalid)
	}
	m := d.events[0].Message
	if !m.Sender.Anonymous || m.Sender.ID != "4455" || m.Sender.Nick != "匿名水獭" {
		t.Errorf("anonymous sender %+v", m.Sender)
	}
	if m.Text != "退款&返现[稳] @30003 [图片] [CQ:face,id=1" {
		t.Errorf("text %q", m.Text)
	}
	if len(m.Segments) != 5 || m.Segments[3].URL != "https://x?a=1,2" {
		t.Errorf("segments %+v", m.Segments)
	}

	d = decodeOne(t, `{"post_type":"message_sent","message_type":"group","time":1731254400,"self_id":10001,"group_id":1,"user_id":10001,"message_id":10,"message":[{"type":"text","data":{"text":"hi"}}]}`)
	if len(d.events) != 1 || !d.events[0].Message.Self {
		t.Fatalf("self message %+v %v", d.events, d.invalid)
	}
}

func TestDecodeNotices(t *testing.T) {
	base := `"post_type":"notice","time":1731254400,"self_id":10001,"group_id":555`
	tests := []struct {
		name  string
		frame string
		check func(t *testing.T, d *decoded)
	}{
		{"recall", `{` + base + `,"notice_type":"group_recall","user_id":20002,"operator_id":30003,"message_id":777}`, func(t *testing.T, d *decoded) {
			r := d.events[0].Recall
			if d.events[0].Kind != bot.KindRecall || *r != (bot.Recall{MessageID: "777", SenderID: "20002", Operator: "30003"}) {
				t.Errorf("%+v", r)
			}
			if len(d.fetch) != 1 || d.fetch[0].id != "777" {
				t.Errorf("fetch %+v", d.fetch)
			}
		}},
		{"join", `{` + base + `,"notice_type":"group_increase","sub_type":"invite","user_id":40004,"operator_id":20002}`, func(t *testing.T, d *decoded) {
			m := d.events[0].Member
			if d.events[0].Kind != bot.KindJoin || m.Member.ID != "40004" || m.Operator != "20002" || len(d.refresh) != 1 {
				t.Errorf("%+v %v", m, d.refresh)
			}
		}},
		{"leave", `{` + base + `,"notice_type":"group_decrease","sub_type":"leave","user_id":40004,"operator_id":40004}`, func(t *testing.T, d *decoded) {
			m := d.events[0].Member
			if d.events[0].Kind != bot.KindLeave || m.Member.ID != "40004" || m.Operator != "" {
				t.Errorf("%+v", m)
			}
		}},
		{"kick", `{` + base + `,"notice_type":"group_decrease","sub_type":"kick","user_id":40004,"operator_id":20002}`, func(t *testing.T, d *decoded) {
			m := d.events[0].Member
			if d.events[0].Kind != bot.KindKick || m.Operator != "20002" {
				t.Errorf("%+v", m)
			}
		}},
		{"kick_me", `{` + base + `,"notice_type":"group_decrease","sub_type":"kick_me","user_id":10001,"operator_id":20002}`, func(t *testing.T, d *decoded) {
			m := d.events[0].Member
			if d.events[0].Kind != bot.KindKick || m.Member.ID != "10001" || m.Operator != "20002" || len(d.gone) != 1 {
				t.Errorf("%+v gone %v", m, d.gone)
			}
		}},
		{"dismiss", `{` + base + `,"notice_type":"group_dismiss","user_id":20002}`, func(t *testing.T, d *decoded) {
			if d.events[0].Kind != bot.KindDisband || d.events[0].Member.Operator != "20002" || len(d.gone) != 1 {
				t.Errorf("%+v", d.events[0].Member)
			}
		}},
		{"admin set", `{` + base + `,"notice_type":"group_admin","sub_type":"set","user_id":30003}`, func(t *testing.T, d *decoded) {
			m := d.events[0].Member
			if d.events[0].Kind != bot.KindRoleChange || m.OldRole != bot.RoleMember || m.NewRole != bot.RoleAdmin {
				t.Errorf("%+v", m)
			}
		}},
		{"admin unset", `{` + base + `,"notice_type":"group_admin","sub_type":"unset","user_id":30003}`, func(t *testing.T, d *decoded) {
			m := d.events[0].Member
			if m.OldRole != bot.RoleAdmin || m.NewRole != bot.RoleMember {
				t.Errorf("%+v", m)
			}
		}},
		{"ban", `{` + base + `,"notice_type":"group_ban","sub_type":"ban","user_id":40004,"operator_id":20002,"duration":600}`, func(t *testing.T, d *decoded) {
			m := d.events[0].Member
			if d.events[0].Kind != bot.KindMute || m.Member.ID != "40004" || m.MuteDuration != 10*time.Minute {
				t.Errorf("%+v", m)
			}
		}},
		{"whole group ban", `{` + base + `,"notice_type":"group_ban","sub_type":"ban","user_id":0,"operator_id":20002,"duration":-1}`, func(t *testing.T, d *decoded) {
			m := d.events[0].Member
			if m.Member.ID != "" || m.MuteDuration <= 0 {
				t.Errorf("%+v", m)
			}
		}},
		{"lift ban", `{` + base + `,"notice_type":"group_ban","sub_type":"lift_ban","user_id":40004,"operator_id":20002,"duration":0}`, func(t *testing.T, d *decoded) {
			if d.events[0].Member.MuteDuration != 0 {
				t.Errorf("%+v", d.events[0].Member)
			}
		}},
		{"card", `{` + base + `,"notice_type":"group_card","user_id":40004,"card_new":"新名片","card_old":"旧名片"}`, func(t *testing.T, d *decoded) {
			m := d.events[0].Member
			if d.events[0].Kind != bot.KindCardChange || m.OldCard != "旧名片" || m.NewCard != "新名片" {
				t.Errorf("%+v", m)
			}
		}},
		{"napcat rename", `{` + base + `,"notice_type":"notify","sub_type":"group_name","user_id":20002,"name_new":"新群名"}`, func(t *testing.T, d *decoded) {
			r := d.events[0].Rename
			if d.events[0].Kind != bot.KindRename || r.NewName != "新群名" || r.Operator != "20002" || d.events[0].GroupName != "新群名" {
				t.Errorf("%+v", r)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decodeOne(t, tt.frame)
			if len(d.events) != 1 {
				t.Fatalf("events %d invalid %v", len(d.events), d.invalid)
			}
			if err := d.events[0].Validate(); err != nil {
				t.Fatal(err)
			}
			tt.check(t, d)
		})
	}
}

func TestDecodeOddFrames(t *testing.T) {
	for _, tc := range []struct {
		frame   string
		kind    frameKind
		counter string
		err     bool
	}{
		{`{"post_type":"telepathy","self_id":1}`, frameIgnored, "unknown_post_type", false},
		{`{"post_type":"notice","notice_type":"quantum","group_id":1}`, frameIgnored, "unknown_post_type", false},
		{`{"post_type":"message","message_type":"private","user_id":1,"message":"hi"}`, frameIgnored, "", false},
		{`{"post_type":"meta_event","meta_event_type":"heartbeat","status":{"online":true,"good":true},"interval":30000}`, frameMeta, "", false},
		{`{"status":"ok","retcode":0,"data":null,"echo":"qunshao:1"}`, frameResponse, "", false},
		{`{"post_type":"message","message_type":"group","group_id":1,"user_id":2,"message_id":3,"time":"soon","message":"x"}`, frameEvent, "bad_time", false},
		{`{"post_type":"message","message_type":"group","user_id":2,"message_id":3,"message":"x"}`, frameEvent, "invalid_event", false},
		{`not json`, 0, "", true},
		{`null`, 0, "", true},
		{`[]`, 0, "", true},
	} {
		d, err := decodeFrame([]byte(tc.frame), "", recvTime)
		if tc.err {
			if err == nil {
				t.Errorf("%s: no error", tc.frame)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.frame, err)
			continue
		}
		if d.kind != tc.kind || (tc.counter != "" && !strings.Contains(strings.Join(d.counts, ","), tc.counter)) {
			t.Errorf("%s: kind %d counts %v", tc.frame, d.kind, d.counts)
		}
		for _, ev := range d.events {
			if err := ev.Validate(); err != nil {
				t.Errorf("%s: %v", tc.frame, err)
			}
		}
	}
}

func TestDecodeForwardNodes(t *testing.T) {
	ref := forwardRef{groupID: "555", id: "fwdid", parentTime: 1731254400}
	// NapCat: get_forward_msg -> {"messages": [OB11Message with content]}
	data := `{"messages":[
{"self_id":10001,"user_id":60006,"time":1731000000,"message_id":111,"message_type":"group","group_id":999,"sender":{"user_id":60006,"nickname":"原群员","role":"admin"},"content":[{"type":"text","data":{"text":"全部申请仅退款"}}]},
{"sender":{"user_id":60007,"nickname":"另一个"},"content":[{"type":"forward","data":{"id":"inner","content":[{"user_id":1,"message":[{"type":"text","data":{"text":"深"}}]}]}}]},
{"type":"node","data":{"user_id":60008,"nickname":"节点","content":[{"type":"text","data":{"text":"node"}}]}}]}`
	d, err := decodeForward(json.RawMessage(data), ref, "10001", recvTime)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.events) != 3 {
		t.Fatalf("events %d invalid %v", len(d.events), d.invalid)
	}
	a, b, c := d.events[0], d.events[1], d.events[2]
	if a.GroupID != "555" || a.Message.ID != "fwdid/111" || a.Message.Text != "全部申请仅退款" || a.Message.Sender.Role != bot.RoleUnknown || a.Time.Unix() != 1731000000 {
		t.Errorf("node a %+v %+v", a, a.Message)
	}
	if b.Message.ID != "fwdid/#1" || b.Time.Unix() != 1731254400 || b.Message.Sender.ID != "60007" {
		t.Errorf("node b %+v", b.Message)
	}
	if c.Message.Sender.ID != "60008" || c.Message.Sender.Nick != "节点" || c.Message.Text != "node" {
		t.Errorf("node c %+v", c.Message)
	}
	if len(d.forwards) != 1 || d.forwards[0].id != "inner" || d.forwards[0].depth != 1 || d.forwards[0].inline == "" {
		t.Errorf("nested %+v", d.forwards)
	}
}

func TestDecodeRoster(t *testing.T) {
	data := `[{"group_id":555,"user_id":20002,"nickname":"头子","card":"群主","role":"owner","join_time":1600000000},
{"group_id":555,"user_id":30003,"nickname":"管","card":"","role":"admin","join_time":1650000000},
{"group_id":555,"user_id":10001,"nickname":"bot","role":"member","join_time":0},
{"group_id":555,"user_id":10001,"nickname":"dup","role":"member"}]`
	res, err := decodeRoster(json.RawMessage(data), "555", "群", "10001", []byte("frame"), recvTime)
	if err != nil {
		t.Fatal(err)
	}
	r := res.event.Roster
	if len(r.Members) != 3 || res.skipped != 1 || r.Complete {
		t.Fatalf("roster %+v skipped %d", r, res.skipped)
	}
	if r.Members[0].Role != bot.RoleOwner || r.Members[0].JoinedAt.Unix() != 1600000000 || r.Members[0].Card != "群主" || r.Members[1].Role != bot.RoleAdmin {
		t.Errorf("members %+v", r.Members)
	}
	clean := `[{"user_id":20002,"role":"owner"},{"user_id":"10001","role":"member"}]`
	res, err = decodeRoster(json.RawMessage(clean), "555", "群", "10001", nil, recvTime)
	if err != nil || !res.event.Roster.Complete {
		t.Error("a list with the bot and no bad entries is complete")
	}
	res, _ = decodeRoster(json.RawMessage(`[]`), "555", "", "10001", nil, recvTime)
	if res.event.Roster.Complete {
		t.Error("an empty list must not be complete")
	}
}

func TestReadOnlyActions(t *testing.T) {
	for _, a := range []string{"send_group_msg", "send_msg", "send_private_msg", "set_group_kick", "set_group_ban", "delete_msg", ".handle_quick_operation"} {
		if readOnlyAction(a) {
			t.Errorf("%s allowed", a)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.ReverseWS.Listen = "0.0.0.0:8095"
	c.ForwardWS = []ForwardWS{{URL: "ws://127.0.0.1:3001"}, {URL: "http://x"}, {URL: "ws://127.0.0.1:3001?access_token=a"}}
	c.HTTPPost = HTTPPost{Enabled: true, Listen: "127.0.0.1:8096", Path: "post", APIURL: "ftp://x"}
	c.APITimeout = 0
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, key := range []string{"reverse_ws.access_token:", "forward_ws[1].url:", "forward_ws[2].url: repeats forward_ws[0]", "http_post.path:", "http_post.api_url:", "api_timeout:"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error lacks %q:\n%v", key, err)
		}
	}
}
