package importer

import (
	"strings"
	"testing"

	"github.com/qunshao/qunshao/bot"
	"golang.org/x/text/encoding/simplifiedchinese"
)

func TestQQTXTMultiGroup(t *testing.T) {
	b := fixture(t, "qq-multi-group.txt")
	c := parseFixture(t, qqTXT{}, "qq-multi-group.txt")
	if len(c.bad) != 0 {
		t.Fatalf("bad records: %+v", c.bad)
	}
	ms := c.messages()
	if len(ms) != 10 {
		for _, m := range ms {
			t.Logf("%s %q", m.Sender.ID, m.Text)
		}
		t.Fatalf("%d messages, want 10", len(ms))
	}
	for i, ev := range c.events[:9] {
		if ev.Platform != bot.QQ || ev.GroupID != "738291046" || ev.GroupName != "双十一好物互助群" {
			t.Errorf("message %d: group %s %q", i, ev.GroupID, ev.GroupName)
		}
	}
	if ev := c.events[9]; ev.GroupID != "name:小满家居福利群" || ev.GroupName != "小满家居福利群" {
		t.Errorf("second group: %q %q", ev.GroupID, ev.GroupName)
	}

	// The system account's line is a notice, not a person's words.
	if m := ms[0]; m.Sender.ID != "10000" || hasSeg(m, bot.SegNotice) == nil || m.Text != "群主小王 已禁止群内临时会话" {
		t.Errorf("system notice: %+v", m)
	}
	// A multi-line body; the sender's role is not guessed.
	if m := ms[1]; m.Sender.ID != "10001" || m.Sender.Nick != "群主小王" || m.Text != "今晚8点开始，每人拍5件，不要付款\n拍完截图发群里" ||
		m.Sender.Role != bot.RoleUnknown || !c.events[1].Time.Equal(cstTime("2024-11-08 20:15:05")) {
		t.Errorf("owner's task: %+v at %s", m, c.events[1].Time)
	}
	_, off := c.events[1].Time.Zone()
	if off != 8*3600 {
		t.Errorf("zone offset %d, want CST", off)
	}
	if string(c.events[1].Raw) != "2024-11-08 20:15:05 群主小王(10001)\n今晚8点开始，每人拍5件，不要付款\n拍完截图发群里\n\n" {
		t.Errorf("raw %q", c.events[1].Raw)
	}
	// 12-hour time, a mail sender with a QQ number, and a genuine repeat
	// of the same text in the same second: both kept, with distinct ids.
	a, b2 := ms[2], ms[3]
	if a.Sender.ID != "20002" || b2.Sender.ID != "20002" || a.Text != "收到" || b2.Text != "收到" ||
		!c.events[2].Time.Equal(cstTime("2024-11-08 20:16:11")) || a.ID == b2.ID || a.ID == "" {
		t.Errorf("repeat: %+v %+v", a, b2)
	}
	// An empty body.
	if m := ms[4]; m.Sender.ID != "20003" || m.Text != "" {
		t.Errorf("empty body: %+v", m)
	}
	// Body lines that look like sender lines: not after a blank line, or
	// too far back in time.
	if m := ms[5]; m.Text != "注意格式：\n2024-11-08 20:00:00 某某(123456)\n这样的截图不算" {
		t.Errorf("timestamp-like body line: %q", m.Text)
	}
	if m := ms[6]; m.Text != "下面是昨天的记录\n\n2024-11-07 09:00:00 某某(123456)\n以上" {
		t.Errorf("old timestamp-like line after a blank: %q", m.Text)
	}
	// A mail address that is not a QQ number is kept, marked derived; a
	// rule line that does not open a group block is body text.
	if m := ms[7]; m.Sender.ID != "someone@example.com" || m.Sender.IDSource != bot.IDDerived ||
		!strings.HasPrefix(m.Text, "=====") || !strings.HasSuffix(m.Text, "分隔线也是正文") {
		t.Errorf("mail sender: %+v", m)
	}
	if m := ms[8]; m.Sender.ID != "1000000" || hasSeg(m, bot.SegNotice) == nil || m.Text != "群公告：禁止私下交易" {
		t.Errorf("(1000000) notice: %+v", m)
	}
	if m := ms[9]; m.Sender.ID != "30001" || m.Text != "早上好" {
		t.Errorf("second group's message: %+v", m)
	}
	// Positions are the sender lines.
	for i, head := range []string{"2024-11-08 20:00:01 系统消息(10000)", "2024-11-08 20:15:05 群主小王(10001)", "2024-11-08 20:20:00 路人<someone@example.com>"} {
		idx := []int{0, 1, 7}[i]
		if want := lineOf(t, b, head); c.pos[idx].Line != want {
			t.Errorf("message %d at line %d, want %d", idx, c.pos[idx].Line, want)
		}
	}
	// Parsing again gives the same ids (re-imports deduplicate).
	again := parseFixture(t, qqTXT{}, "qq-multi-group.txt")
	for i := range ms {
		if again.messages()[i].ID != ms[i].ID {
			t.Fatalf("message %d: id %s then %s", i, ms[i].ID, again.messages()[i].ID)
		}
	}
}

func TestQQTXTEncodings(t *testing.T) {
	want := parseFixture(t, qqTXT{}, "qq-multi-group.txt")
	for _, name := range []string{"qq-multi-group.utf8bom.txt", "qq-multi-group.gbk.txt", "qq-multi-group.utf16le.txt"} {
		t.Run(name, func(t *testing.T) {
			raw := fixture(t, name)
			enc, err := SniffEncoding(raw)
			if err != nil {
				t.Fatal(err)
			}
			wantEnc := map[string]Encoding{"qq-multi-group.utf8bom.txt": UTF8, "qq-multi-group.gbk.txt": GB18030, "qq-multi-group.utf16le.txt": UTF16LE}[name]
			if enc != wantEnc {
				t.Fatalf("encoding %s, want %s", enc, wantEnc)
			}
			if f, err := Detect(DecodeHead(raw, enc)); err != nil || f.Name() != "qq-txt" {
				t.Fatalf("detect: %v %v", f, err)
			}
			got := parseFixture(t, qqTXT{}, name)
			if len(got.bad) != 0 || len(got.events) != len(want.events) {
				t.Fatalf("%d events, %v bad; want %d", len(got.events), got.bad, len(want.events))
			}
			for i, ev := range got.events {
				w := want.events[i]
				if ev.GroupID != w.GroupID || ev.GroupName != w.GroupName || !ev.Time.Equal(w.Time) ||
					ev.Message.Text != w.Message.Text || ev.Message.Sender != w.Message.Sender || ev.Message.ID != w.Message.ID ||
					got.pos[i].Line != want.pos[i].Line {
					t.Errorf("event %d differs:\n got %+v %+v line %d\nwant %+v %+v line %d", i, ev, ev.Message, got.pos[i].Line, w, w.Message, want.pos[i].Line)
				}
			}
			if name == "qq-multi-group.gbk.txt" {
				// Raw is the original GBK bytes.
				dec, _ := simplifiedchinese.GB18030.NewDecoder().Bytes(got.events[1].Raw)
				if string(dec) != "2024-11-08 20:15:05 群主小王(10001)\r\n今晚8点开始，每人拍5件，不要付款\r\n拍完截图发群里\r\n\r\n" {
					t.Errorf("GBK raw decodes to %q", dec)
				}
			}
		})
	}
}

func TestQQTXTBadInput(t *testing.T) {
	in := "消息记录（此消息记录为文本格式，不支持重新导入）\n\n" +
		"不在任何消息里的文字\n" +
		"还有一行\n\n" +
		"2024-11-08 20:15:05 群主小王(10001)\n" +
		strings.Repeat("长", 200) + "\n\n" +
		"2024-11-08 20:16:05 小李(20002)\n好\n"
	c := parseBytes(t, qqTXT{}, "bad.txt", []byte(in), func(in *Input) { in.MaxRecord = 300 })
	if len(c.messages()) != 1 || c.messages()[0].Sender.ID != "20002" {
		t.Fatalf("messages: %+v", c.messages())
	}
	if len(c.bad) != 2 || c.bad[0].Line != 3 || c.bad[0].Reason != "text outside a message" ||
		c.bad[1].Line != 6 || c.bad[1].Reason != "record too long" {
		t.Fatalf("bad: %+v", c.bad)
	}
	// A file without a group block takes its group from the file name.
	if ev := c.events[0]; ev.GroupID != "name:bad" {
		t.Errorf("group %q", ev.GroupID)
	}
	// --group names the group.
	c = parseBytes(t, qqTXT{}, "bad.txt", []byte(in), func(in *Input) { in.GroupID = "738291046" })
	if c.events[0].GroupID != "738291046" {
		t.Errorf("forced group %q", c.events[0].GroupID)
	}
}

func TestQQTXTForcedGroupWithSeveralGroups(t *testing.T) {
	b := fixture(t, "qq-multi-group.txt")
	enc, _ := SniffEncoding(b)
	err := qqTXT{}.Parse(t.Context(), &Input{R: strings.NewReader(string(b)), Encoding: enc, Name: "x.txt", GroupID: "1"}, &collector{})
	if err == nil || !strings.Contains(err.Error(), "more than one group") {
		t.Fatalf("err = %v", err)
	}
}
