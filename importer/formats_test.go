package importer

import (
	"strings"
	"testing"

	"github.com/qunshao/qunshao/bot"
)

func TestDetect(t *testing.T) {
	for file, want := range map[string]string{
		"qq-multi-group.txt":         "qq-txt",
		"qq-multi-group.gbk.txt":     "qq-txt",
		"qq-multi-group.utf16le.txt": "qq-txt",
		"qqnt.json":                  "qqnt-json",
		"qqnt.txt":                   "qqnt-txt",
		"liuhen.csv":                 "liuhen-csv",
		"liuhen.txt":                 "liuhen-txt",
		"pywxdump.csv":               "pywxdump-csv",
		"chatlog.json":               "chatlog-json",
		"chatlog.jsonl":              "chatlog-json",
	} {
		b := fixture(t, file)
		enc, err := SniffEncoding(b)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		f, err := Detect(DecodeHead(b, enc))
		if err != nil || f.Name() != want {
			t.Errorf("%s: detected %v (%v), want %s", file, f, err, want)
		}
	}
	if _, err := Detect([]byte("just some notes\nnothing here\n")); err == nil {
		t.Error("plain text detected as an export")
	}
}

func TestQQNTJSON(t *testing.T) {
	b := fixture(t, "qqnt.json")
	c := parseFixture(t, qqntJSON{}, "qqnt.json")
	if len(c.bad) != 0 {
		t.Fatalf("bad: %+v", c.bad)
	}
	// 7 messages and the recall of the fourth.
	if len(c.events) != 8 {
		t.Fatalf("%d events, want 8", len(c.events))
	}
	for _, ev := range c.events {
		if ev.GroupID != "738291046" || ev.GroupName != "双十一好物互助群" || ev.Platform != bot.QQ {
			t.Fatalf("group from the avatar URL: %q %q", ev.GroupID, ev.GroupName)
		}
	}
	m := c.events[0].Message
	if m.ID != "seq:88121" || m.Sender.ID != "10001" || m.Sender.Card != "群主小王" || m.Sender.Nick != "小王" ||
		m.Text != "@全体成员 今晚8点开始，每人拍5件，不要付款" || !c.events[0].Time.Equal(cstTime("2024-11-08 20:15:05")) {
		t.Errorf("first message: %+v", m)
	}
	if at := hasSeg(m, bot.SegAt); at == nil || at.Target != "all" {
		t.Errorf("@all: %+v", m.Segments)
	}
	// Position: the object's byte offset; Raw: the object.
	if want := int64(strings.Index(string(b), `{
      "id": "7435012345678901001"`)); c.pos[0].Offset != want {
		t.Errorf("offset %d, want %d", c.pos[0].Offset, want)
	}
	// The reply names the message it quotes by the id given here.
	reply := c.events[1].Message
	if r := hasSeg(reply, bot.SegReply); r == nil || r.ID != "seq:88121" || r.Title != "群主小王" {
		t.Errorf("reply: %+v", reply.Segments)
	}
	if img := hasSeg(c.events[2].Message, bot.SegImage); img == nil || img.ID != "下单截图.jpg" {
		t.Errorf("image: %+v", c.events[2].Message.Segments)
	}
	// A recalled message is kept, followed by its recall.
	if c.events[3].Kind != bot.KindMessage || c.events[3].Message.Text != "拍完马上申请退款，锁他库存" ||
		c.events[4].Kind != bot.KindRecall || c.events[4].Recall.MessageID != "seq:88124" || c.events[4].Recall.SenderID != "10001" {
		t.Errorf("recall: %+v %+v", c.events[3], c.events[4])
	}
	// System notices come from the system account.
	if sys := c.events[5].Message; sys.Sender.ID != "10000" || hasSeg(sys, bot.SegNotice) == nil {
		t.Errorf("system: %+v", sys)
	}
	// The version 4 layout: ISO time, rawMessage names, no seq.
	v4 := c.events[6]
	if v4.Message.Sender.ID != "20003" || v4.Message.Sender.Card != "强子" || !v4.Time.Equal(cstTime("2024-11-08 20:20:00")) ||
		!strings.HasPrefix(v4.Message.ID, "d:") {
		t.Errorf("v4 message: %+v %+v", v4, v4.Message)
	}
	// Hostile text is kept verbatim.
	if h := c.events[7].Message.Text; h != "<script>alert(1)</script>=HYPERLINK(\"http://evil.example\",\"点我\")\u202e\u0007" {
		t.Errorf("hostile text %q", h)
	}
}

func TestQQNTJSONTruncatedAndPrivate(t *testing.T) {
	b := fixture(t, "qqnt.json")
	cut := strings.Index(string(b), `"id": "7435012345678901003"`)
	c := parseBytes(t, qqntJSON{}, "cut.json", b[:cut])
	if len(c.events) != 2 || len(c.bad) != 1 || c.bad[0].Reason != "invalid JSON" || !strings.Contains(c.bad[0].Detail, "truncated") {
		t.Fatalf("truncated: %d events, %+v", len(c.events), c.bad)
	}
	if c.bad[0].Line != lineAt(b, int64(cut)) {
		t.Errorf("truncation reported at line %d, want %d", c.bad[0].Line, lineAt(b, int64(cut)))
	}
	priv := strings.Replace(string(b), `"type": "group"`, `"type": "private"`, 1)
	err := qqntJSON{}.Parse(t.Context(), &Input{R: strings.NewReader(priv), Encoding: UTF8, Name: "p.json"}, &collector{})
	if err == nil || !strings.Contains(err.Error(), "private chat") {
		t.Fatalf("private chat: %v", err)
	}
	// A message object that is not valid: reported, the rest goes on.
	bad := strings.Replace(string(b), `"seq": "88122",`, `"seq": "88122",, `, 1)
	c = parseBytes(t, qqntJSON{}, "bad.json", []byte(bad))
	if len(c.events) != 7 || len(c.bad) != 1 || c.bad[0].Reason != "invalid message object" {
		t.Fatalf("bad object: %d events, %+v", len(c.events), c.bad)
	}
}

func TestQQNTTXT(t *testing.T) {
	b := fixture(t, "qqnt.txt")
	c := parseFixture(t, qqntTXT{}, "qqnt.txt")
	if len(c.bad) != 0 || len(c.events) != 4 {
		t.Fatalf("%d events, bad %+v", len(c.events), c.bad)
	}
	ms := c.messages()
	for _, ev := range c.events {
		if ev.GroupID != "name:双十一好物互助群" {
			t.Fatalf("group %q", ev.GroupID)
		}
	}
	if m := ms[0]; m.Sender.ID != "name:群主小王" || m.Sender.IDSource != bot.IDDerived || m.Text != "@全体成员 今晚8点开始，每人拍5件\n拍完截图发群里" ||
		hasSeg(m, bot.SegAt) == nil || !c.events[0].Time.Equal(cstTime("2024-11-08 20:15:05")) {
		t.Errorf("first: %+v", m)
	}
	if c.pos[0].Line != lineOf(t, b, "群主小王:") {
		t.Errorf("line %d", c.pos[0].Line)
	}
	if r := hasSeg(ms[1], bot.SegReply); r == nil || r.Title != "群主小王" || ms[1].Text != "收到" {
		t.Errorf("reply: %+v", ms[1])
	}
	if img := hasSeg(ms[2], bot.SegImage); img == nil || img.ID != "下单截图.jpg" {
		t.Errorf("image: %+v", ms[2])
	}
	// Lines ending in a colon and rules inside a body are body text; the
	// footer is not.
	if ms[3].Text != "注意：\n备注:\n===============================================\n不是结尾" {
		t.Errorf("last body %q", ms[3].Text)
	}
}

func TestLiuhenCSV(t *testing.T) {
	b := fixture(t, "liuhen.csv")
	c := parseFixture(t, liuhenCSV{}, "liuhen.csv", func(in *Input) { in.GroupID = "21839475602@chatroom" })
	if len(c.bad) != 0 || len(c.events) != 9 {
		t.Fatalf("%d events, bad %+v", len(c.events), c.bad)
	}
	for _, ev := range c.events {
		if ev.Platform != bot.WeChat || ev.GroupID != "21839475602@chatroom" {
			t.Fatalf("group %q", ev.GroupID)
		}
	}
	e := c.events
	if m := e[0].Message; m.Sender.ID != "wxid_owner01" || m.Sender.Nick != "群主小王" || m.Text != "今晚8点开始，每人拍5件" ||
		!e[0].Time.Equal(cstTime("2024-11-08 20:15:05")) || c.pos[0].Line != 2 {
		t.Errorf("first: %+v line %d", m, c.pos[0].Line)
	}
	if !e[1].Message.Self {
		t.Error("IsSender=1 is the exporter's own message")
	}
	if m := e[2].Message; m.Text != "[图片]" || hasSeg(m, bot.SegImage) == nil {
		t.Errorf("image: %+v", m)
	}
	// A quoted field with a line break and doubled quotes; the row spans
	// two lines and starts at the first.
	if m := e[3].Message; m.Text != "第一行\n第二行，带\"引号\", 还有逗号" || c.pos[3].Line != lineOf(t, b, "104,7,1,0,0,1731068180,2,\"第一行") {
		t.Errorf("multi-line field: %q line %d", m.Text, c.pos[3].Line)
	}
	if m := e[4].Message; m.Sender.ID != "wechat_system" || hasSeg(m, bot.SegNotice) == nil || m.Text != `"小李"邀请"阿强"加入了群聊` {
		t.Errorf("notice: %+v", m)
	}
	if m := e[5].Message; m.Text != "这单要退吗" {
		t.Errorf("reply text %q", m.Text)
	} else if r := hasSeg(m, bot.SegReply); r == nil || r.ID != "svr:7436281734512345678" || r.Target != "wxid_owner01" || r.Title != "群主小王" {
		t.Errorf("reply: %+v", m.Segments)
	}
	if e[6].Kind != bot.KindRecall || e[6].Recall.MessageID != "svr:7436281734512345679" {
		t.Errorf("recall: %+v", e[6])
	}
	if m := e[7].Message; m.Text != `=HYPERLINK("http://evil.example/","点我")` {
		t.Errorf("formula kept verbatim: %q", m.Text)
	}
	if tr := hasSeg(e[8].Message, bot.SegTransfer); tr == nil || tr.AmountFen != 8800 || tr.Title != "定金" {
		t.Errorf("transfer: %+v", e[8].Message)
	}
	// Without --group the group is the file's name.
	c = parseFixture(t, liuhenCSV{}, "liuhen.csv")
	if c.events[0].GroupID != "name:liuhen" {
		t.Errorf("derived group %q", c.events[0].GroupID)
	}
}

func TestLiuhenCSVBadRows(t *testing.T) {
	in := "\ufefflocalId,TalkerId,Type,SubType,IsSender,CreateTime,Status,StrContent,StrTime,Remark,NickName,Sender\n" +
		"1,7,1,0,0,1731068105,2,好,2024-11-08 20:15:05,,a,wxid_a\n" +
		"2,7,1,0,0,1731068105,2,少一列,2024-11-08 20:15:05,,a\n" +
		"3,7,x,0,0,1731068105,2,类型不对,2024-11-08 20:15:05,,a,wxid_a\n" +
		"4,7,1,0,0,,2,没有时间,,,a,wxid_a\n" +
		"5,7,1,0,0,1731068106,2,也好,2024-11-08 20:15:06,,a,wxid_a\n"
	c := parseBytes(t, liuhenCSV{}, "bad.csv", []byte(in))
	if len(c.events) != 2 || len(c.bad) != 3 {
		t.Fatalf("%d events, bad %+v", len(c.events), c.bad)
	}
	for i, want := range []struct {
		line   int64
		reason string
	}{{3, "wrong number of fields"}, {4, "bad message type"}, {5, "missing or bad time"}} {
		if c.bad[i].Line != want.line || c.bad[i].Reason != want.reason {
			t.Errorf("bad %d: %+v, want line %d %s", i, c.bad[i], want.line, want.reason)
		}
	}
	// A private chat export (no Sender column) is refused.
	priv := "localId,TalkerId,Type,SubType,IsSender,CreateTime,Status,StrContent,StrTime\n1,7,1,0,0,1731068105,2,好,2024-11-08 20:15:05\n"
	err := liuhenCSV{}.Parse(t.Context(), &Input{R: strings.NewReader(priv), Encoding: UTF8, Name: "p.csv"}, &collector{})
	if err == nil || !strings.Contains(err.Error(), "private") {
		t.Fatalf("private: %v", err)
	}
}

func TestLiuhenTXT(t *testing.T) {
	c := parseFixture(t, liuhenTXT{}, "liuhen.txt", func(in *Input) { in.GroupID = "21839475602@chatroom" })
	if len(c.bad) != 0 || len(c.events) != 6 {
		for _, ev := range c.events {
			t.Logf("%+v", ev.Message)
		}
		t.Fatalf("%d events, bad %+v", len(c.events), c.bad)
	}
	ms := c.messages()
	if ms[0].Sender.ID != "name:群主小王" || ms[0].Sender.IDSource != bot.IDDerived || ms[0].Text != "今晚8点开始，每人拍5件" {
		t.Errorf("first: %+v", ms[0])
	}
	if ms[2].Sender.ID != "wechat_system" || ms[2].Text != `"小李"邀请"阿强"加入了群聊` || hasSeg(ms[2], bot.SegNotice) == nil {
		t.Errorf("notice: %+v", ms[2])
	}
	if r := hasSeg(ms[3], bot.SegReply); r == nil || r.Title != "群主小王" || r.Text != "今晚8点开始，每人拍5件" || ms[3].Text != "这单要退吗" {
		t.Errorf("reply: %+v", ms[3])
	}
	if ms[4].Sender.ID != "name:阿强" || ms[4].Text != "" {
		t.Errorf("empty message: %+v", ms[4])
	}
	if ms[5].Text != "记住：\n2024-11-08 20:00:00 之前下的单不算" {
		t.Errorf("timestamp-like body line: %q", ms[5].Text)
	}
}

func TestPyWxDumpCSV(t *testing.T) {
	c := parseFixture(t, pywxdumpCSV{}, "pywxdump.csv")
	if len(c.bad) != 0 || len(c.events) != 7 {
		t.Fatalf("%d events, bad %+v", len(c.events), c.bad)
	}
	e := c.events
	for _, ev := range e {
		if ev.GroupID != "21839475602@chatroom" {
			t.Fatalf("group %q", ev.GroupID)
		}
	}
	if m := e[0].Message; m.ID != "svr:7436281734512345678" || m.Sender.ID != "wxid_owner01" || m.Text != "今晚8点开始，每人拍5件" {
		t.Errorf("first: %+v", m)
	}
	if m := e[1].Message; m.Sender.ID != "self" || !m.Self {
		t.Errorf("the exporter's message: %+v", m)
	}
	if m := e[2].Message; hasSeg(m, bot.SegImage) == nil {
		t.Errorf("image: %+v", m)
	}
	if m := e[3].Message; m.Text != "这单要退吗" || hasSeg(m, bot.SegReply) == nil || hasSeg(m, bot.SegReply).Title != "群主小王" {
		t.Errorf("reply: %+v", m)
	}
	// The recall names the first message by its server id.
	if e[4].Kind != bot.KindRecall || e[4].Recall.MessageID != e[0].Message.ID {
		t.Errorf("recall: %+v", e[4])
	}
	if m := e[5].Message; m.Sender.ID != "wechat_system" || hasSeg(m, bot.SegNotice) == nil {
		t.Errorf("notice: %+v", m)
	}
	if m := e[6].Message; !strings.HasPrefix(m.Text, "转账：￥88.00") || hasSeg(m, bot.SegTransfer) == nil {
		t.Errorf("transfer: %+v", m)
	}
	// A private chat is refused.
	priv := "id,MsgSvrID,type_name,is_sender,talker,room_name,msg,src,CreateTime\n1,1,文本,0,wxid_a,wxid_a,你好,,2024-11-08 20:15:05\n"
	err := pywxdumpCSV{}.Parse(t.Context(), &Input{R: strings.NewReader(priv), Encoding: UTF8, Name: "p.csv"}, &collector{})
	if err == nil || !strings.Contains(err.Error(), "private chat") {
		t.Fatalf("private: %v", err)
	}
}

func TestChatlogJSON(t *testing.T) {
	for _, name := range []string{"chatlog.json", "chatlog.jsonl"} {
		c := parseFixture(t, chatlogJSON{}, name)
		if len(c.events) != 5 || len(c.bad) != 1 || c.bad[0].Reason != "not a group chat" {
			t.Fatalf("%s: %d events, bad %+v", name, len(c.events), c.bad)
		}
		e := c.events
		if m := e[0].Message; e[0].GroupID != "21839475602@chatroom" || e[0].GroupName != "拼单互助群" || m.ID != "seq:1731068105000" ||
			m.Sender.ID != "wxid_owner01" || m.Sender.Nick != "群主小王" || !e[0].Time.Equal(cstTime("2024-11-08 20:15:05")) {
			t.Errorf("%s first: %+v %+v", name, e[0], m)
		}
		if !e[1].Message.Self {
			t.Errorf("%s: isSelf", name)
		}
		if r := hasSeg(e[2].Message, bot.SegReply); r == nil || r.Target != "wxid_owner01" || r.Text != "今晚8点开始，每人拍5件" || e[2].Message.Text != "这单要退吗" {
			t.Errorf("%s reply: %+v", name, e[2].Message)
		}
		if m := e[3].Message; m.Sender.ID != "wechat_system" || hasSeg(m, bot.SegNotice) == nil {
			t.Errorf("%s notice: %+v", name, m)
		}
		if m := e[4].Message; m.Text != "[图片]" || hasSeg(m, bot.SegImage) == nil {
			t.Errorf("%s image: %+v", name, m)
		}
	}
}
