package importer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/qunshao/qunshao/bot"
)

// chatlogJSON reads messages as sjzar/chatlog serves them
// (/api/v1/chatlog?format=json, or saved one object per line):
//
//	[{"seq": 1731068105000, "time": "2024-11-08T20:15:05+08:00",
//	  "talker": "21839475602@chatroom", "talkerName": "拼单互助群", "isChatRoom": true,
//	  "sender": "wxid_owner", "senderName": "群主小王", "isSelf": false,
//	  "type": 1, "subType": 0, "content": "今晚8点开始",
//	  "contents": {"refer": {...}}}, ...]
//
// talker is the chatroom id; seq is chatlog's sequence of the message
// within the chat (its time in milliseconds plus a counter), used as the
// id ("seq:<seq>"). Records of private chats (isChatRoom false) are
// reported and skipped.
type chatlogJSON struct{}

func (chatlogJSON) Name() string { return "chatlog-json" }
func (chatlogJSON) Description() string {
	return "chatlog (sjzar/chatlog) JSON messages: seq,time,talker,talkerName,isChatRoom,sender,senderName,isSelf,type,subType,content"
}
func (chatlogJSON) Platform() bot.Platform { return bot.WeChat }
func (chatlogJSON) Unit() string           { return UnitByte }
func (chatlogJSON) Version() string        { return "1" }

func (chatlogJSON) Sniff(head []byte) int {
	h := bytes.TrimLeft(bytes.TrimPrefix(head, []byte{0xEF, 0xBB, 0xBF}), " \t\r\n")
	if len(h) == 0 || (h[0] != '[' && h[0] != '{') {
		return 0
	}
	hits := 0
	for _, k := range []string{`"talker"`, `"isChatRoom"`, `"senderName"`, `"talkerName"`, `"isSelf"`} {
		if bytes.Contains(h, []byte(k)) {
			hits++
		}
	}
	switch {
	case hits >= 4:
		return 90
	case hits >= 2:
		return 50
	}
	return 0
}

type chatlogMsg struct {
	Seq        flexString                 `json:"seq"`
	Time       flexString                 `json:"time"`
	Talker     string                     `json:"talker"`
	TalkerName string                     `json:"talkerName"`
	IsChatRoom *bool                      `json:"isChatRoom"`
	Sender     string                     `json:"sender"`
	SenderName string                     `json:"senderName"`
	IsSelf     bool                       `json:"isSelf"`
	Type       flexString                 `json:"type"`
	SubType    flexString                 `json:"subType"`
	Content    string                     `json:"content"`
	Contents   map[string]json.RawMessage `json:"contents"`
}

func (chatlogJSON) Parse(ctx context.Context, in *Input, out Output) error {
	s := newJSONStream(in.R, in.maxRecord())
	f := newFlow(ctx, out)
	handle := func(raw []byte, pos Pos) error {
		own := f.own(raw)
		return f.record(pos, len(own), func(b *built) { chatlogRecord(in, b, own) })
	}
	err := func() error {
		c, err := s.peek()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if c == '[' {
			s.readByte()
			for first := true; ; first = false {
				more, err := s.more(first, ']')
				if err != nil || !more {
					return err
				}
				if err := chatlogValue(s, f, handle); err != nil {
					return err
				}
			}
		}
		// One object after another (JSON lines).
		for {
			if _, err := s.peek(); err == io.EOF {
				return nil
			}
			if err := chatlogValue(s, f, handle); err != nil {
				return err
			}
		}
	}()
	var se *jsonSyntaxError
	if errors.As(err, &se) {
		err = f.bad(se.pos, "invalid JSON", se.msg)
	}
	return f.close(err)
}

func chatlogValue(s *jsonStream, f *flow, handle func([]byte, Pos) error) error {
	raw, pos, err := s.value()
	if err == errJSONTooLarge {
		return f.bad(pos, "record too long", fmt.Sprintf("message larger than %d bytes", s.max))
	}
	if err != nil {
		return err
	}
	return handle(raw, pos)
}

func chatlogRecord(in *Input, b *built, raw []byte) {
	var m chatlogMsg
	if err := json.Unmarshal(raw, &m); err != nil {
		b.fail("invalid message object", err.Error())
		return
	}
	groupID := in.GroupID
	if groupID == "" {
		if (m.IsChatRoom != nil && !*m.IsChatRoom) || !strings.HasSuffix(m.Talker, "@chatroom") {
			b.fail("not a group chat", quote([]byte(m.Talker)))
			return
		}
		groupID = m.Talker
	}
	if !validID(groupID) {
		b.fail("bad talker", quote([]byte(groupID)))
		return
	}
	t, ok := parseTimeValue(m.Time.String())
	if !ok {
		b.fail("missing or bad time", quote([]byte(m.Time.String())))
		return
	}
	typ, err1 := strconv.ParseInt(orZero(m.Type.String()), 10, 64)
	sub, err2 := strconv.ParseInt(orZero(m.SubType.String()), 10, 64)
	if err1 != nil || err2 != nil {
		b.fail("bad message type", quote([]byte(m.Type.String()+","+m.SubType.String())))
		return
	}
	c := wechatContent(typ, sub, m.Content)
	if typ == wxApp && sub == 57 {
		c = chatlogReply(m)
	}
	sender := wechatSender(m.Sender, m.SenderName, m.IsSelf)
	if m.Sender == "系统消息" {
		c.notice = true
		if len(c.segs) == 0 || c.segs[0].Type != bot.SegNotice {
			c.segs = []bot.Segment{{Type: bot.SegNotice, Text: c.text}}
		}
	}
	id := ""
	if seq := m.Seq.String(); isDigits(seq) && seq != "0" && len(seq) <= 20 {
		id = "seq:" + seq
	}
	wechatEvent(b, groupID, m.TalkerName, t, sender, m.IsSelf, c, id, raw)
}

// chatlogReply reads chatlog's rendering of a quote: content is the reply,
// contents.refer the quoted message.
func chatlogReply(m chatlogMsg) wxContent {
	seg := bot.Segment{Type: bot.SegReply}
	if raw, ok := m.Contents["refer"]; ok {
		var ref struct {
			Sender     string `json:"sender"`
			SenderName string `json:"senderName"`
			Content    string `json:"content"`
		}
		if json.Unmarshal(raw, &ref) == nil {
			seg.Target, seg.Title, seg.Text = ref.Sender, ref.SenderName, ref.Content
		}
	}
	return wxContent{text: m.Content, segs: []bot.Segment{seg, {Type: bot.SegText, Text: m.Content}}}
}
