package importer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/qunshao/qunshao/bot"
)

// qqntTXT reads the TXT export of the QQ NT chat exporter
// (shuakami/qq-chat-exporter):
//
//	[QQChatExporter V5 / https://github.com/shuakami/qq-chat-exporter]
//	...
//	聊天名称: 拼单互助群
//	聊天类型: 群聊
//	...
//	群主小王:
//	时间: 2024-11-08 20:15:05
//	内容: 今晚8点开始
//	每人拍5件
//	资源: 1 个文件
//	  - image: a.jpg
//	提及: 小李, 小张
//	回复: 小李 - 收到
//
// A message starts with a line "name:" directly followed by "时间: <time>";
// its body runs from "内容: " to the next field line (资源, 提及, 回复) or
// the next message. The TXT form names neither accounts nor the group's
// number: senders are known by name (name:<昵称>, marked derived) and the
// group by name unless --group gives its number.
type qqntTXT struct{}

func (qqntTXT) Name() string { return "qqnt-txt" }
func (qqntTXT) Description() string {
	return "QQ NT chat exporter TXT (shuakami/qq-chat-exporter: name:, 时间:, 内容: blocks)"
}
func (qqntTXT) Platform() bot.Platform { return bot.QQ }
func (qqntTXT) Unit() string           { return UnitLine }
func (qqntTXT) Version() string        { return "1" }

func (qqntTXT) Sniff(head []byte) int {
	if bytes.Contains(head, []byte("[QQChatExporter")) || bytes.Contains(head, []byte("QQ聊天记录导出文件")) {
		return 100
	}
	if bytes.Contains(head, []byte("\n时间: ")) && bytes.Contains(head, []byte("\n内容: ")) {
		return 50
	}
	return 0
}

type ntTXTParser struct {
	in  *Input
	out *flow
	max int

	groupID, groupName string

	// a "name:" line waiting to see whether "时间:" follows
	pend    []byte
	pendRaw []byte
	pendPos Pos
	// a rule line waiting to see whether the footer follows
	rule    []byte
	ruleRaw []byte

	open    bool
	name    []byte
	t       time.Time
	pos     Pos
	raw     []byte
	body    []byte
	bodyN   int
	keep    int
	field   string // the field the current lines belong to: "", 内容, 资源
	segs    []bot.Segment
	broken  string
	done    bool // past the footer
	started bool // a message was seen
}

func (qqntTXT) Parse(ctx context.Context, in *Input, out Output) error {
	p := &ntTXTParser{in: in, out: newFlow(ctx, out), max: in.maxRecord()}
	return p.out.close(p.scan())
}

func (p *ntTXTParser) scan() error {
	lr := newLineReader(p.in.R, p.in.Encoding, p.max)
	for !p.done {
		l, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := p.line(l); err != nil {
			return err
		}
	}
	if !p.done {
		p.releaseRule()
		p.releasePend()
	}
	return p.flush()
}

func (p *ntTXTParser) line(l *line) error {
	pos := Pos{Line: l.num, Offset: l.off}
	if l.tooLong {
		p.releaseRule()
		p.releasePend()
		if p.open {
			if p.broken == "" {
				p.broken = fmt.Sprintf("line %d is longer than %d bytes", l.num, p.max)
			}
			return nil
		}
		return p.out.bad(pos, "line too long", fmt.Sprintf("%d bytes, more than the record limit of %d", l.size, p.max))
	}
	text := l.text
	if p.rule != nil {
		if string(bytes.TrimSpace(text)) == "导出完成" {
			p.rule, p.ruleRaw = nil, nil
			p.releasePend()
			p.done = true
			return nil
		}
		p.releaseRule()
	}
	if p.pend != nil {
		if rest, ok := bytes.CutPrefix(text, []byte("时间: ")); ok {
			if t, n, ok := parseDateTime(bytes.TrimSpace(rest), true); ok && n == len(bytes.TrimSpace(rest)) {
				if err := p.flush(); err != nil {
					return err
				}
				name := bytes.TrimSuffix(bytes.TrimSuffix(p.pend, []byte(":")), []byte("："))
				p.begin(name, p.pendRaw, p.pendPos, t, l.raw)
				p.pend, p.pendRaw = nil, nil
				return nil
			}
		}
		p.releasePend()
	}
	if !p.started {
		// The heading: group name and chat type.
		if v, ok := bytes.CutPrefix(text, []byte("聊天名称: ")); ok {
			p.groupName = string(bytes.TrimSpace(v))
		}
		if v, ok := bytes.CutPrefix(text, []byte("聊天类型: ")); ok && string(bytes.TrimSpace(v)) == "私聊" {
			return fmt.Errorf("line %d: this is a private chat (聊天类型: 私聊); qunshao imports group chats", l.num)
		}
	}
	if isRule(text) {
		p.rule, p.ruleRaw = append(p.rule[:0], text...), append(p.ruleRaw[:0], l.raw...)
		return nil
	}
	if n := len(text); n > 1 && n <= 1024 && (text[n-1] == ':' || bytes.HasSuffix(text, []byte("："))) && !bytes.HasPrefix(text, []byte(" ")) {
		p.pend = append(p.pend[:0], text...)
		p.pendRaw = append(p.pendRaw[:0], l.raw...)
		p.pendPos = pos
		return nil
	}
	p.content(l.raw, text)
	return nil
}

func (p *ntTXTParser) releasePend() {
	if p.pend == nil {
		return
	}
	raw, text := p.pendRaw, p.pend
	p.pend, p.pendRaw = nil, nil
	p.content(raw, text)
}

func (p *ntTXTParser) releaseRule() {
	if p.rule == nil {
		return
	}
	raw, text := p.ruleRaw, p.rule
	p.rule, p.ruleRaw = nil, nil
	p.content(raw, text)
}

func (p *ntTXTParser) begin(name []byte, nameRaw []byte, pos Pos, t time.Time, timeRaw []byte) {
	p.open, p.started = true, true
	p.name, p.t, p.pos = append(p.name[:0], name...), t, pos
	p.raw = append(append(p.raw[:0], nameRaw...), timeRaw...)
	p.body, p.bodyN, p.keep, p.field, p.segs, p.broken = p.body[:0], 0, 0, "", nil, ""
	if len(p.raw) > p.max {
		p.broken = fmt.Sprintf("record longer than %d bytes", p.max)
	}
}

// content handles a line inside a message (or before the first one).
func (p *ntTXTParser) content(raw, text []byte) {
	if !p.open || p.broken != "" {
		return
	}
	if len(p.raw)+len(raw) > p.max {
		p.broken = fmt.Sprintf("record longer than %d bytes", p.max)
		return
	}
	p.raw = append(p.raw, raw...)
	switch {
	case p.field == "" && bytes.HasPrefix(text, []byte("类型: ")):
		return
	case p.field == "" && bytes.HasPrefix(text, []byte("内容: ")):
		p.field = "内容"
		p.addBody(text[len("内容: "):])
		return
	case bytes.HasPrefix(text, []byte("资源: ")) && bytes.HasSuffix(bytes.TrimSpace(text), []byte("个文件")):
		p.field = "资源"
		return
	case p.field == "资源" && bytes.HasPrefix(text, []byte("  - ")):
		kind, name, _ := strings.Cut(string(text[4:]), ": ")
		switch kind {
		case "image":
			p.segs = append(p.segs, bot.Segment{Type: bot.SegImage, ID: name})
		case "video":
			p.segs = append(p.segs, bot.Segment{Type: bot.SegVideo, ID: name})
		case "audio", "voice":
			p.segs = append(p.segs, bot.Segment{Type: bot.SegVoice, ID: name})
		default:
			p.segs = append(p.segs, bot.Segment{Type: bot.SegFile, Title: name})
		}
		return
	case bytes.HasPrefix(text, []byte("提及: ")):
		p.field = "提及"
		for _, n := range strings.Split(string(text[len("提及: "):]), ", ") {
			if n = strings.TrimSpace(n); n != "" {
				p.segs = append(p.segs, bot.Segment{Type: bot.SegAt, Text: n})
			}
		}
		return
	case bytes.HasPrefix(text, []byte("回复: ")):
		p.field = "回复"
		who, what, _ := strings.Cut(string(text[len("回复: "):]), " - ")
		p.segs = append(p.segs, bot.Segment{Type: bot.SegReply, Title: who, Text: what})
		return
	}
	if p.field == "内容" {
		p.addBody(text)
	}
}

func (p *ntTXTParser) addBody(text []byte) {
	if p.bodyN > 0 {
		p.body = append(p.body, '\n')
	}
	p.body = append(p.body, text...)
	p.bodyN++
	if len(bytes.TrimSpace(text)) > 0 {
		p.keep = len(p.body)
	}
}

func (p *ntTXTParser) flush() error {
	if !p.open {
		return nil
	}
	p.open = false
	if p.broken != "" {
		return p.out.bad(p.pos, "record too long", p.broken)
	}
	if p.groupID == "" {
		switch {
		case p.in.GroupID != "":
			p.groupID = p.in.GroupID
		case p.groupName != "":
			p.groupID = nameID(p.groupName)
		default:
			p.groupName = stem(p.in.Name)
			p.groupID = nameID(p.groupName)
		}
	}
	raw, body := p.raw, p.body[:p.keep]
	own := p.out.own(raw, body, p.name)
	nr, nb := len(raw), len(body)
	group, gname, t, segs := p.groupID, p.groupName, p.t, p.segs
	p.segs = nil
	return p.out.record(p.pos, len(own), func(b *built) {
		all := string(own[nr:])
		text, name := all[:nb], all[nb:]
		ev, msg := newMessageEvent()
		msg.Text = text
		msg.Sender = bot.Member{ID: nameID(name), Nick: name, Role: bot.RoleUnknown, IDSource: bot.IDDerived}
		if name == "系统消息" || name == "系统" {
			msg.Sender = qqSystem("")
			msg.Segments = []bot.Segment{{Type: bot.SegNotice, Text: text}}
		} else if len(segs) > 0 {
			if text != "" {
				msg.Segments = append([]bot.Segment{{Type: bot.SegText, Text: text}}, segs...)
			} else {
				msg.Segments = segs
			}
		}
		ev.Kind, ev.Platform, ev.GroupID, ev.GroupName, ev.Time, ev.Raw = bot.KindMessage, bot.QQ, group, gname, t, own[:nr:nr]
		b.deriveID(msg, group, t, text)
		b.add(ev)
	})
}
