package importer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/qunshao/qunshao/bot"
)

// qqntJSON reads the JSON export of the QQ NT chat exporter
// (shuakami/qq-chat-exporter, a NapCat plugin; versions 4 and 5):
//
//	{"metadata": {"name": "QQChatExporter V5", "version": "5.x"},
//	 "chatInfo": {"name": "拼单互助群", "type": "group", ...},
//	 "statistics": {...},
//	 "messages": [
//	   {"id": "7301...", "seq": "8812", "timestamp": 1731068105000,
//	    "time": "2024-11-08 20:15:05",
//	    "sender": {"uid": "u_...", "uin": "10001", "name": "...", "nickname": "...", "groupCard": "..."},
//	    "type": "type_1",
//	    "content": {"text": "...", "elements": [{"type": "text", "data": {...}}, ...],
//	                "resources": [...], "mentions": [...]},
//	    "recalled": false, "system": false}, ...]}
//
// Messages are read one at a time; Raw is each message's JSON object and
// its position the object's byte offset. The message id is the group
// sequence number ("seq:8812"), the same whoever exported the group, so
// overlapping exports deduplicate. The exporter does not write the group
// number: it is taken from chatInfo when a version writes it, else from
// the group avatar URL (…/gh/<number>/…), else the group is known by
// name only (name:<群名>) unless --group gives it.
type qqntJSON struct{}

func (qqntJSON) Name() string { return "qqnt-json" }
func (qqntJSON) Description() string {
	return "QQ NT chat exporter JSON (shuakami/qq-chat-exporter: metadata, chatInfo, messages[])"
}
func (qqntJSON) Platform() bot.Platform { return bot.QQ }
func (qqntJSON) Unit() string           { return UnitByte }
func (qqntJSON) Version() string        { return "1" }

func (qqntJSON) Sniff(head []byte) int {
	h := bytes.TrimLeft(bytes.TrimPrefix(head, []byte{0xEF, 0xBB, 0xBF}), " \t\r\n")
	if len(h) == 0 || h[0] != '{' {
		return 0
	}
	score := 0
	if bytes.Contains(h, []byte(`"chatInfo"`)) {
		score = 70
	}
	if bytes.Contains(h, []byte("QQChatExporter")) || (score > 0 && bytes.Contains(h, []byte(`"messages"`))) {
		score = 100
	}
	return score
}

// flexString accepts a JSON string, number or null (exporters write ids
// both ways).
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		*f = ""
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	case bytes.Equal(b, []byte("true")) || bytes.Equal(b, []byte("false")):
		*f = flexString(b)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*f = flexString(n)
	}
	return nil
}

func (f flexString) String() string { return strings.TrimSpace(string(f)) }

type ntChatInfo struct {
	Name      string     `json:"name"`
	Type      string     `json:"type"`
	Avatar    string     `json:"avatar"`
	ID        flexString `json:"id"`
	GroupCode flexString `json:"groupCode"`
	GroupID   flexString `json:"groupId"`
	PeerUID   flexString `json:"peerUid"`
	PeerUin   flexString `json:"peerUin"`
}

type ntMessage struct {
	ID         flexString `json:"id"`
	MessageID  flexString `json:"messageId"`
	Seq        flexString `json:"seq"`
	MessageSeq flexString `json:"messageSeq"`
	Timestamp  flexString `json:"timestamp"`
	Time       string     `json:"time"`
	Sender     struct {
		UID       flexString `json:"uid"`
		UIN       flexString `json:"uin"`
		Name      string     `json:"name"`
		Nickname  string     `json:"nickname"`
		GroupCard string     `json:"groupCard"`
	} `json:"sender"`
	Content struct {
		Text      string       `json:"text"`
		Elements  []ntElement  `json:"elements"`
		Resources []ntResource `json:"resources"`
		Mentions  []struct {
			UID  flexString `json:"uid"`
			Name string     `json:"name"`
		} `json:"mentions"`
	} `json:"content"`
	Recalled        flexString `json:"recalled"`
	IsRecalled      flexString `json:"isRecalled"`
	System          flexString `json:"system"`
	IsSystemMessage flexString `json:"isSystemMessage"`
	RawMessage      *struct {
		SenderUin      flexString `json:"senderUin"`
		SendNickName   string     `json:"sendNickName"`
		SendMemberName string     `json:"sendMemberName"`
		MsgSeq         flexString `json:"msgSeq"`
		MsgTime        flexString `json:"msgTime"`
	} `json:"rawMessage"`
}

type ntElement struct {
	Type string `json:"type"`
	Data struct {
		Text                string     `json:"text"`
		UID                 flexString `json:"uid"`
		Name                string     `json:"name"`
		ID                  flexString `json:"id"`
		URL                 string     `json:"url"`
		Filename            string     `json:"filename"`
		Size                flexString `json:"size"`
		MessageID           flexString `json:"messageId"`
		ReferencedMessageID flexString `json:"referencedMessageId"`
		SenderName          string     `json:"senderName"`
		Content             string     `json:"content"`
		Title               string     `json:"title"`
	} `json:"data"`
}

type ntResource struct {
	Type     string     `json:"type"`
	Filename string     `json:"filename"`
	Size     flexString `json:"size"`
	URL      string     `json:"url"`
}

var avatarGroupRe = regexp.MustCompile(`/gh/(\d{5,12})/`)

type qqntParser struct {
	in      *Input
	out     *flow
	groupID string
	name    string
	// recent maps the exporter's message ids (msgId) to the ids given
	// here, for replies; two bounded generations keep memory flat. Only
	// the emitter (in file order) uses them.
	recent, older map[string]string
}

func (qqntJSON) Parse(ctx context.Context, in *Input, out Output) error {
	p := &qqntParser{in: in, out: newFlow(ctx, out), recent: map[string]string{}}
	s := newJSONStream(in.R, in.maxRecord())
	err := p.parse(s)
	var se *jsonSyntaxError
	if errors.As(err, &se) {
		err = p.out.bad(se.pos, "invalid JSON", se.msg)
	}
	return p.out.close(err)
}

func (p *qqntParser) parse(s *jsonStream) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	for first := true; ; first = false {
		more, err := s.more(first, '}')
		if err != nil {
			return err
		}
		if !more {
			break
		}
		key, err := s.key()
		if err != nil {
			return err
		}
		switch key {
		case "chatInfo":
			raw, pos, err := s.value()
			if err == errJSONTooLarge {
				if err := p.out.bad(pos, "record too long", "chatInfo is larger than the record limit"); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return err
			}
			if err := p.chatInfo(raw, pos); err != nil {
				return err
			}
		case "messages":
			if err := p.messages(s); err != nil {
				return err
			}
		default:
			if _, _, err := s.value(); err != nil && err != errJSONTooLarge {
				return err
			}
		}
	}
	return nil
}

func (p *qqntParser) chatInfo(raw []byte, pos Pos) error {
	var ci ntChatInfo
	if err := json.Unmarshal(raw, &ci); err != nil {
		return p.out.bad(pos, "invalid chatInfo", err.Error())
	}
	if ci.Type == "private" || ci.Type == "friend" {
		return fmt.Errorf("line %d: this is a private chat (chatInfo.type %q); qunshao imports group chats", pos.Line, ci.Type)
	}
	p.name = ci.Name
	if p.in.GroupID != "" {
		p.groupID = p.in.GroupID
		return nil
	}
	for _, c := range []flexString{ci.GroupCode, ci.GroupID, ci.PeerUin, ci.PeerUID, ci.ID} {
		if id := c.String(); isDigits(id) && len(id) >= 5 && len(id) <= 12 {
			p.groupID = id
			return nil
		}
	}
	if m := avatarGroupRe.FindStringSubmatch(ci.Avatar); m != nil {
		p.groupID = m[1]
		return nil
	}
	p.groupID = nameID(ci.Name)
	return nil
}

func (p *qqntParser) messages(s *jsonStream) error {
	if err := s.expect('['); err != nil {
		return err
	}
	for first := true; ; first = false {
		more, err := s.more(first, ']')
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
		raw, pos, err := s.value()
		if err == errJSONTooLarge {
			if err := p.out.bad(pos, "record too long", fmt.Sprintf("message larger than %d bytes", s.max)); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if err := p.message(raw, pos); err != nil {
			return err
		}
	}
}

func truthy(f flexString) bool { return f == "true" || f == "1" }

func (p *qqntParser) message(raw []byte, pos Pos) error {
	if p.groupID == "" {
		if p.in.GroupID != "" {
			p.groupID = p.in.GroupID
		} else {
			p.groupID, p.name = nameID(stem(p.in.Name)), stem(p.in.Name)
		}
	}
	own := p.out.own(raw)
	group, name := p.groupID, p.name
	return p.out.record(pos, len(own), func(b *built) { p.build(b, own, group, name) })
}

// build runs on a worker: it reads only its arguments.
func (p *qqntParser) build(b *built, raw []byte, group, name string) {
	var m ntMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		b.fail("invalid message object", err.Error())
		return
	}
	t, ok := parseTimeValue(m.Timestamp.String())
	if !ok {
		t, ok = parseTimeValue(m.Time)
	}
	if !ok && m.RawMessage != nil {
		t, ok = parseTimeValue(m.RawMessage.MsgTime.String())
	}
	if !ok {
		b.fail("missing or bad time", quote([]byte(m.Timestamp.String()+" "+m.Time)))
		return
	}
	sender := bot.Member{Nick: m.Sender.Nickname, Card: m.Sender.GroupCard, Role: bot.RoleUnknown}
	if sender.Nick == "" && m.RawMessage != nil {
		sender.Nick = m.RawMessage.SendNickName
	}
	if sender.Card == "" && m.RawMessage != nil {
		sender.Card = m.RawMessage.SendMemberName
	}
	if sender.Nick == "" && sender.Card == "" {
		sender.Nick = m.Sender.Name
	}
	for _, c := range []flexString{m.Sender.UIN, rawSenderUin(&m), m.Sender.UID} {
		if id := c.String(); id != "" && id != "0" {
			sender.ID = id
			break
		}
	}
	system := truthy(m.System) || truthy(m.IsSystemMessage)
	if system {
		sender = qqSystem("")
	}
	if !validID(sender.ID) {
		b.fail("bad sender", quote([]byte(sender.ID)))
		return
	}
	ev, msg := newMessageEvent()
	msg.Sender, msg.Text = sender, m.Content.Text
	ev.Kind, ev.Platform, ev.GroupID, ev.GroupName, ev.Time, ev.Raw = bot.KindMessage, bot.QQ, group, name, t, raw
	if system {
		msg.Segments = []bot.Segment{{Type: bot.SegNotice, Text: msg.Text}}
	} else {
		msg.Segments = segments(&m)
		if len(m.Content.Elements) > 0 {
			// content.text renders a quote into the reply ("[回复 X: …]");
			// the quoted words are not the sender's. Text is built from
			// the elements, as live adapters build it from segments.
			msg.Text = segmentText(msg.Segments)
		}
	}
	seq := m.Seq.String()
	if seq == "" {
		seq = m.MessageSeq.String()
	}
	if seq == "" && m.RawMessage != nil {
		seq = m.RawMessage.MsgSeq.String()
	}
	if isDigits(seq) && seq != "0" && len(seq) <= 20 {
		msg.ID = "seq:" + seq
	} else {
		b.deriveID(msg, group, t, msg.Text)
	}
	b.add(ev)
	var rc *bot.Event
	if truthy(m.Recalled) || truthy(m.IsRecalled) {
		// The export says the message was recalled but not when: the
		// recall is recorded at the message's time. The message stays.
		rc = &bot.Event{Kind: bot.KindRecall, Platform: bot.QQ, GroupID: group, GroupName: name,
			Time: t, Raw: raw, Recall: &bot.Recall{SenderID: sender.ID}}
		b.add(rc)
	}
	ntID := m.ID.String()
	if ntID == "" {
		ntID = m.MessageID.String()
	}
	b.post = func(b *built) {
		// In file order, with the id final: remember it for later
		// replies, and resolve this message's own reply.
		if rc != nil {
			rc.Recall.MessageID = msg.ID
		}
		if ntID != "" {
			p.remember(ntID, msg.ID)
		}
		for i := range msg.Segments {
			s := &msg.Segments[i]
			if s.Type == bot.SegReply && strings.HasPrefix(s.ID, "msgid:") {
				if id, ok := p.lookup(strings.TrimPrefix(s.ID, "msgid:")); ok {
					s.ID = id
				}
			}
		}
	}
}

func rawSenderUin(m *ntMessage) flexString {
	if m.RawMessage == nil {
		return ""
	}
	return m.RawMessage.SenderUin
}

func (p *qqntParser) remember(ntID, id string) {
	if len(p.recent) >= 1<<16 {
		p.older, p.recent = p.recent, make(map[string]string, 1<<10)
	}
	p.recent[ntID] = id
}

func (p *qqntParser) lookup(ntID string) (string, bool) {
	if id, ok := p.recent[ntID]; ok {
		return id, true
	}
	id, ok := p.older[ntID]
	return id, ok
}

func segments(m *ntMessage) []bot.Segment {
	var segs []bot.Segment
	for _, e := range m.Content.Elements {
		d := &e.Data
		switch strings.ToLower(e.Type) {
		case "text":
			segs = append(segs, bot.Segment{Type: bot.SegText, Text: d.Text})
		case "at":
			target := d.UID.String()
			if target == "" || target == "0" || d.Name == "全体成员" {
				target = "all"
			}
			segs = append(segs, bot.Segment{Type: bot.SegAt, Target: target, Text: d.Name})
		case "face", "market_face", "marketface":
			segs = append(segs, bot.Segment{Type: bot.SegFace, ID: d.ID.String(), Text: d.Name, URL: d.URL})
		case "image", "pic":
			segs = append(segs, bot.Segment{Type: bot.SegImage, ID: d.Filename, URL: d.URL})
		case "video":
			segs = append(segs, bot.Segment{Type: bot.SegVideo, ID: d.Filename, URL: d.URL})
		case "audio", "voice", "ptt":
			segs = append(segs, bot.Segment{Type: bot.SegVoice, ID: d.Filename, URL: d.URL})
		case "file":
			size, _ := strconv.ParseInt(d.Size.String(), 10, 64)
			segs = append(segs, bot.Segment{Type: bot.SegFile, Title: d.Filename, Size: size, URL: d.URL})
		case "reply":
			// The exporter names the quoted message by its msgId; the
			// emitter replaces that with the id given here when the
			// message was seen.
			ref := d.ReferencedMessageID.String()
			if ref == "" {
				ref = d.MessageID.String()
			}
			id := ""
			if ref != "" {
				id = "msgid:" + ref
			}
			segs = append(segs, bot.Segment{Type: bot.SegReply, ID: id, Title: d.SenderName, Text: d.Content})
		case "forward", "multiforward", "multi_forward":
			segs = append(segs, bot.Segment{Type: bot.SegForward, ID: d.ID.String(), Text: d.Text})
		case "json", "ark", "xml", "card", "share":
			segs = append(segs, bot.Segment{Type: bot.SegLink, Title: d.Title, URL: d.URL, Text: d.Text})
		default:
			segs = append(segs, bot.Segment{Type: bot.SegOther, Title: e.Type, Text: d.Text})
		}
	}
	if len(m.Content.Elements) == 0 {
		if m.Content.Text != "" {
			segs = append(segs, bot.Segment{Type: bot.SegText, Text: m.Content.Text})
		}
		for _, r := range m.Content.Resources {
			size, _ := strconv.ParseInt(r.Size.String(), 10, 64)
			switch r.Type {
			case "image":
				segs = append(segs, bot.Segment{Type: bot.SegImage, ID: r.Filename, URL: r.URL})
			case "video":
				segs = append(segs, bot.Segment{Type: bot.SegVideo, ID: r.Filename, URL: r.URL})
			case "audio", "voice":
				segs = append(segs, bot.Segment{Type: bot.SegVoice, ID: r.Filename, URL: r.URL})
			default:
				segs = append(segs, bot.Segment{Type: bot.SegFile, Title: r.Filename, Size: size, URL: r.URL})
			}
		}
		for _, mt := range m.Content.Mentions {
			segs = append(segs, bot.Segment{Type: bot.SegAt, Target: mt.UID.String(), Text: mt.Name})
		}
	}
	return segs
}

// segmentText renders segments as the message text: text as it is, @name
// for mentions, short placeholders for media; quotes are left out.
func segmentText(segs []bot.Segment) string {
	var b strings.Builder
	for _, s := range segs {
		switch s.Type {
		case bot.SegText:
			b.WriteString(s.Text)
		case bot.SegAt:
			b.WriteString("@" + s.Text)
		case bot.SegFace:
			if s.Text != "" {
				b.WriteString("[" + strings.Trim(s.Text, "[]") + "]")
			} else {
				b.WriteString("[表情]")
			}
		case bot.SegImage:
			b.WriteString("[图片]")
		case bot.SegVideo:
			b.WriteString("[视频]")
		case bot.SegVoice:
			b.WriteString("[语音]")
		case bot.SegFile:
			b.WriteString("[文件]" + s.Title)
		case bot.SegForward:
			b.WriteString("[聊天记录]")
		case bot.SegLink:
			b.WriteString("[链接]" + s.Title)
		}
	}
	return b.String()
}
