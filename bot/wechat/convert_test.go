package wechat

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/qunshao/qunshao/bot"
)

func TestSplitSender(t *testing.T) {
	for _, c := range []struct{ in, user, body string }{
		{"@abc123:<br/>hi", "@abc123", "hi"},
		{"@abc123:<br/>价格:<br/>100", "@abc123", "价格:<br/>100"}, // only the first separator
		{"@@group:<br/>x", "", "@@group:<br/>x"},               // a group is never a sender
		{"hello:<br/>x", "", "hello:<br/>x"},                   // not a UserName
		{"@ab-c:<br/>x", "", "@ab-c:<br/>x"},
		{"收到红包，请在手机上查看", "", "收到红包，请在手机上查看"},
		{"", "", ""},
	} {
		u, b := splitSender(c.in)
		if u != c.user || b != c.body {
			t.Errorf("splitSender(%q) = %q, %q; want %q, %q", c.in, u, b, c.user, c.body)
		}
	}
}

func TestParseFen(t *testing.T) {
	for _, c := range []struct {
		in  string
		fen int64
		ok  bool
	}{
		{"￥88.00", 8800, true},
		{"收到转账0.01元。如需收钱，请在手机上操作。", 1, true},
		{"¥1,000.50", 100050, true},
		{"12", 1200, true},
		{"3.5元", 350, true},
		{"微信转账", 0, false},
		{"99999999999999999999", 0, false},
	} {
		fen, ok := parseFen(c.in)
		if fen != c.fen || ok != c.ok {
			t.Errorf("parseFen(%q) = %d, %v; want %d, %v", c.in, fen, ok, c.fen, c.ok)
		}
	}
}

func TestParseNotices(t *testing.T) {
	j, ok := parseJoin(`"阿强"邀请"新人、路人甲"加入了群聊`)
	if !ok || j.operator.name != "阿强" || len(j.joiners) != 2 || j.joiners[1].name != "路人甲" {
		t.Errorf("invite: %+v %v", j, ok)
	}
	j, ok = parseJoin(`你邀请“新人”加入了群聊`)
	if !ok || !j.operator.self || j.joiners[0].name != "新人" {
		t.Errorf("self invite: %+v", j)
	}
	j, ok = parseJoin(`"阿强"邀请你加入了群聊，群聊参与人还有：老板、小王`)
	if !ok || !j.joiners[0].self || j.operator.name != "阿强" || len(j.joiners) != 1 {
		t.Errorf("bot invited: %+v", j)
	}
	j, ok = parseJoin(`"新人"通过扫描"阿强"分享的二维码加入群聊`)
	if !ok || j.joiners[0].name != "新人" || j.operator.name != "阿强" {
		t.Errorf("qr join: %+v", j)
	}
	j, ok = parseJoin(`"新人"通过扫描你分享的二维码加入群聊`)
	if !ok || !j.operator.self {
		t.Errorf("qr join via bot: %+v", j)
	}
	if j, ok = parseJoin(`你通过扫描二维码加入群聊，群聊参与人还有：老板`); !ok || !j.joiners[0].self || j.operator.known() {
		t.Errorf("bot joined by qr: %+v", j)
	}
	if _, ok := parseJoin(`"阿强"撤回了一条消息`); ok {
		t.Error("recall notice read as a join")
	}
	op, name, ok := parseRename(`"老板"修改群名为“刷单2群”`)
	if !ok || op.name != "老板" || name != "刷单2群" {
		t.Errorf("rename: %+v %q %v", op, name, ok)
	}
	if op, ok := parseKickedSelf(`你被"老板"移出群聊`); !ok || op != "老板" {
		t.Errorf("kick: %q %v", op, ok)
	}
}

func TestMentionSegments(t *testing.T) {
	resolve := func(name string) (string, bool) {
		if name == "阿强" {
			return "wxd_a", true
		}
		return "", false
	}
	segs := mentionSegments("@阿强\u2005 明天拍 @所有人\u2005注意", resolve)
	want := []bot.Segment{
		{Type: bot.SegAt, Target: "wxd_a", Text: "@阿强"},
		{Type: bot.SegText, Text: "\u2005 明天拍 "},
		{Type: bot.SegAt, Target: "all", Text: "@所有人"},
		{Type: bot.SegText, Text: "\u2005注意"},
	}
	if len(segs) != len(want) {
		t.Fatalf("segments = %+v", segs)
	}
	for i := range want {
		if segs[i] != want[i] {
			t.Errorf("segment %d = %+v, want %+v", i, segs[i], want[i])
		}
	}
	for _, s := range []string{"mail a@b.com", "@nobody\u2005hi", "@", "@\u2005"} {
		segs := mentionSegments(s, resolve)
		if len(segs) != 1 || segs[0].Type != bot.SegText || segs[0].Text != s {
			t.Errorf("%q: segments %+v", s, segs)
		}
	}
}

func appContent(inner string) string {
	return strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace("<msg><appmsg appid=\"\" sdkver=\"0\">" + inner + "</appmsg></msg>")
}

func TestConvertContent(t *testing.T) {
	for _, c := range []struct {
		name string
		in   inMsg
		text string
		seg  bot.Segment
		odd  string
	}{
		{"file", inMsg{Type: 49, AppMsgType: 6, MediaID: "m1", Content: appContent("<title>名单.xlsx</title><type>6</type><appattach><totallen>2048</totallen></appattach>")},
			"[文件]名单.xlsx", bot.Segment{Type: bot.SegFile, ID: "m1", Title: "名单.xlsx", Size: 2048}, ""},
		{"forward", inMsg{ID: "9", Type: 49, AppMsgType: 19, Content: appContent("<title>群聊的聊天记录</title><des>老板: 拍</des><type>19</type>")},
			"群聊的聊天记录\n老板: 拍", bot.Segment{Type: bot.SegForward, ID: "9", Title: "群聊的聊天记录", Text: "老板: 拍"}, ""},
		{"quote", inMsg{Type: 49, AppMsgType: 57, Content: appContent("<title>收到</title><type>57</type><refermsg><svrid>77</svrid></refermsg>")},
			"收到", bot.Segment{Type: bot.SegReply, ID: "77"}, ""},
		{"mini program", inMsg{Type: 49, AppMsgType: 33, Content: appContent("<title>拼单</title><type>33</type><weappinfo><pagepath>pages/a.html</pagepath></weappinfo>")},
			"拼单", bot.Segment{Type: bot.SegLink, Title: "拼单", URL: "pages/a.html"}, ""},
		{"app type from xml", inMsg{Type: 49, Content: appContent("<title>看这个</title><type>5</type><url>https://a.example/x</url>")},
			"看这个", bot.Segment{Type: bot.SegLink, Title: "看这个", URL: "https://a.example/x"}, ""},
		{"unknown app type", inMsg{Type: 49, AppMsgType: 4242, Content: appContent("<title>新东西</title><type>4242</type>")},
			"新东西", bot.Segment{Type: bot.SegLink, Title: "新东西"}, "unknown_app_type"},
		{"broken app xml", inMsg{Type: 49, AppMsgType: 5, Content: "&lt;msg&gt;&lt;appmsg"},
			"<msg><appmsg", bot.Segment{Type: bot.SegOther, Title: "app_unparsed", Text: "<msg><appmsg"}, "malformed_xml"},
		{"transfer by file name", inMsg{Type: 49, FileName: "微信转账", Content: appContent("<des>收到转账1,000.50元</des>")},
			"[转账]收到转账1,000.50元", bot.Segment{Type: bot.SegTransfer, Title: "微信转账", AmountFen: 100050}, ""},
		{"card", inMsg{Type: 42, Content: `&lt;msg username="wxid_x1" nickname="中介" alias="zj888"/&gt;`},
			"[名片]中介", bot.Segment{Type: bot.SegOther, Title: "share_card", Text: "中介", Target: "wxid_x1", ID: "zj888"}, ""},
		{"location", inMsg{Type: 1, URL: "http://apis.map.qq.com/uri/v1/geocoder?coord=1,2", Content: "杭州市某路:<br/>/cgi-bin/mmwebwx-bin/webwxgetpubliclinkimg?pictype=location"},
			"杭州市某路", bot.Segment{Type: bot.SegLink, Title: "杭州市某路", URL: "http://apis.map.qq.com/uri/v1/geocoder?coord=1,2", Text: "位置"}, ""},
		{"system notice", inMsg{Type: 10000, Content: "&quot;老板&quot;修改群名为“2群”"},
			"\"老板\"修改群名为“2群”", bot.Segment{Type: bot.SegNotice, Text: "\"老板\"修改群名为“2群”"}, ""},
		{"voip", inMsg{Type: 50, Content: "语音通话"}, "语音通话", bot.Segment{Type: bot.SegOther, Title: "voip", Text: "语音通话"}, ""},
		{"unknown type", inMsg{Type: 777, Content: "?"}, "?", bot.Segment{Type: bot.SegOther, Title: "msgtype_777", Text: "?"}, "unknown_msg_type"},
		{"emoticon without xml", inMsg{ID: "5", Type: 47}, "[动画表情]", bot.Segment{Type: bot.SegFace, ID: "5", Text: "[动画表情]"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := convertContent(c.in, c.in.Content, nil)
			if got.text != c.text || got.odd != c.odd || len(got.segs) == 0 || got.segs[0] != c.seg {
				t.Errorf("got text %q odd %q segs %+v\nwant text %q odd %q seg %+v", got.text, got.odd, got.segs, c.text, c.odd, c.seg)
			}
		})
	}
}

func TestParseRevoke(t *testing.T) {
	body := `&lt;sysmsg type="revokemsg"&gt;&lt;revokemsg&gt;&lt;session&gt;@@x&lt;/session&gt;&lt;oldmsgid&gt;1&lt;/oldmsgid&gt;&lt;msgid&gt;4745934563428383612&lt;/msgid&gt;&lt;replacemsg&gt;&lt;![CDATA["老板" 撤回了一条消息]]&gt;&lt;/replacemsg&gt;&lt;/revokemsg&gt;&lt;/sysmsg&gt;`
	r, ok := parseRevoke(body)
	if !ok || r.MsgID != "4745934563428383612" || r.Replace != `"老板" 撤回了一条消息` {
		t.Errorf("parseRevoke = %+v %v", r, ok)
	}
	// Not escaped at all.
	if r, ok := parseRevoke(`<sysmsg type="revokemsg"><revokemsg><msgid>42</msgid></revokemsg></sysmsg>`); !ok || r.MsgID != "42" {
		t.Errorf("unescaped: %+v %v", r, ok)
	}
	for _, bad := range []string{"", "撤回", "&lt;sysmsg&gt;&lt;revokemsg&gt;&lt;/revokemsg&gt;"} {
		if _, ok := parseRevoke(bad); ok {
			t.Errorf("parseRevoke(%q) succeeded", bad)
		}
	}
}

func TestDecodeInMsgLenient(t *testing.T) {
	in, err := decodeInMsg([]byte(`{"MsgType":"49","AppMsgType":5.0,"NewMsgId":7410792097315404123,"CreateTime":"1718000000","Content":12,"FromUserName":["x"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if in.Type != 49 || in.AppMsgType != 5 || in.ID != "7410792097315404123" || in.CreateTime != 1718000000 || in.Content != "12" || in.From != "" {
		t.Errorf("decoded %+v", in)
	}
	for _, bad := range []string{"null", "[]", "{", `"x"`} {
		if _, err := decodeInMsg([]byte(bad)); err == nil {
			t.Errorf("decodeInMsg(%s) succeeded", bad)
		}
	}
}

func TestCaptureShieldsOpenwechat(t *testing.T) {
	var counted []string
	c := &syncCapture{count: func(k string) { counted = append(counted, k) }}
	good := `{"MsgId":"1","MsgType":1,"Content":"a"}`
	bad := `{"MsgId":"2","MsgType":"1","Content":"b"}`
	body := `{"BaseResponse":{"Ret":0},"AddMsgList":[` + good + `,null,` + bad + `],"SyncKey":{"Count":1,"List":[{"Key":1,"Val":9}]},"ModContactList":[{"UserName":"@@g1"},{"UserName":"@friend"}]}`
	out := c.process([]byte(body))
	var resp struct {
		AddMsgList []*json.RawMessage
		SyncKey    struct{ Count int }
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.AddMsgList) != 1 || resp.SyncKey.Count != 1 {
		t.Errorf("openwechat gets %s", out)
	}
	if raw := c.take("1"); string(raw) != good {
		t.Errorf("take(1) = %s", raw)
	}
	pending, garbage, mods := c.drain()
	if len(pending) != 1 || string(pending[0]) != bad || len(garbage) != 0 || len(mods) != 1 || mods[0] != "@@g1" {
		t.Errorf("drain = %s %s %v", pending, garbage, mods)
	}
	if strings.Join(counted, ",") != "malformed_sync,malformed_message" {
		t.Errorf("counted %v", counted)
	}

	// A clean response is passed on untouched.
	clean := []byte(`{"AddMsgList":[` + good + `],"SyncKey":{"Count":0,"List":[]}}`)
	if out := c.process(clean); string(out) != string(clean) {
		t.Errorf("clean body rewritten: %s", out)
	}
	// Keys match case-insensitively, as in openwechat's decoding.
	out = c.process([]byte(`{"addmsglist":[null]}`))
	var probe struct{ AddMsgList []*json.RawMessage }
	if json.Unmarshal(out, &probe) != nil || len(probe.AddMsgList) != 0 {
		t.Errorf("lower-case key: %s", out)
	}
	// Not JSON: kept as garbage, passed on for openwechat to report.
	if out := c.process([]byte("<html>")); string(out) != "<html>" {
		t.Errorf("garbage rewritten: %s", out)
	}
	if _, garbage, _ := c.drain(); len(garbage) != 1 {
		t.Errorf("garbage not kept")
	}
}

func TestSanitizeContacts(t *testing.T) {
	in := []byte(`{"BaseResponse":{"Ret":0},"ContactList":[{"UserName":"@@a","MemberList":[null,{"UserName":"@m"}]},null,{"UserName":"@@b"}]}`)
	out, changed := sanitizeContacts(in, 1)
	if !changed {
		t.Fatal("not changed")
	}
	var v struct {
		ContactList []struct {
			UserName   string
			MemberList []*struct{ UserName string }
		}
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.ContactList) != 1 || len(v.ContactList[0].MemberList) != 1 || v.ContactList[0].MemberList[0] == nil {
		t.Errorf("sanitized: %s", out)
	}
	clean := []byte(`{"ContactList":[{"UserName":"@@a"}]}`)
	if out, changed := sanitizeContacts(clean, 1); changed || string(out) != string(clean) {
		t.Errorf("clean response changed: %s", out)
	}
}

func TestAvatarID(t *testing.T) {
	for in, want := range map[string]string{
		"/cgi-bin/mmwebwx-bin/webwxgeticon?seq=620957041&username=@x&skey=": "620957041",
		"/cgi-bin/mmwebwx-bin/webwxgeticon?seq=0&username=@x":               "",
		"":       "",
		"%zz?x=": "",
	} {
		if got := avatarID(in); got != want {
			t.Errorf("avatarID(%q) = %q, want %q", in, got, want)
		}
	}
}
