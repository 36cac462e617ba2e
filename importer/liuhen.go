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

// liuhenCSV reads the CSV export of 留痕 (LC044/WeChatMsg) for a group:
//
//	localId,TalkerId,Type,SubType,IsSender,CreateTime,Status,StrContent,StrTime,Remark,NickName,Sender
//	1,5,1,0,0,1731068105,2,今晚8点开始,2024-11-08 20:15:05,,群主小王,wxid_owner
//
// written UTF-8 with a byte-order mark (Excel may have re-saved it as
// GBK). Sender is the sender's wxid, NickName their nickname; Remark is
// the exporter's own note on the person and is only kept in Raw. The file
// does not carry the chatroom id (TalkerId is a row number in the
// exporter's database, and localId is local to it too), so messages get
// content-derived ids and the group is known by the file's name
// (name:<文件名>) unless --group gives the chatroom id (…@chatroom).
// IsSender=1 marks the exporter's own messages (sender "self" unless
// Sender names the account).
type liuhenCSV struct{}

func (liuhenCSV) Name() string { return "liuhen-csv" }
func (liuhenCSV) Description() string {
	return "留痕 (WeChatMsg) CSV: localId,TalkerId,Type,SubType,IsSender,CreateTime,Status,StrContent,StrTime,Remark,NickName,Sender"
}
func (liuhenCSV) Platform() bot.Platform { return bot.WeChat }
func (liuhenCSV) Unit() string           { return UnitLine }
func (liuhenCSV) Version() string        { return "1" }

func (liuhenCSV) Sniff(head []byte) int {
	h := csvHeaderLine(head)
	_, a := h["localid"]
	_, b := h["strcontent"]
	_, c := h["talkerid"]
	if a && b && c {
		return 100
	}
	return 0
}

func (liuhenCSV) Parse(ctx context.Context, in *Input, out Output) error {
	f := newFlow(ctx, out)
	return f.close(scanCSV(f, in, func(hdr *csvRecord) (func(*built, []byte, [][]byte), error) {
		h := newCSVHeader(hdr.split())
		idx, err := h.require("Type", "SubType", "IsSender", "CreateTime", "StrContent")
		if err != nil {
			return nil, err
		}
		if h.col("Sender") < 0 {
			return nil, fmt.Errorf("no Sender column: this is a private-chat export (留痕 writes Remark, NickName and Sender for group chats only); qunshao imports group chats")
		}
		cType, cSub, cIsSender, cCreate, cContent := idx[0], idx[1], idx[2], idx[3], idx[4]
		cStrTime, cNick, cSender := h.col("StrTime"), h.col("NickName"), h.col("Sender")
		groupID, groupName := in.GroupID, stem(in.Name)
		if groupID == "" {
			groupID = nameID(groupName)
		}
		return func(b *built, raw []byte, f [][]byte) {
			typ, ok1 := atoi(f[cType])
			sub, ok2 := atoi(f[cSub])
			if len(bytes.TrimSpace(f[cSub])) == 0 {
				sub, ok2 = 0, true
			}
			if !ok1 || !ok2 {
				b.fail("bad message type", quote([]byte(field(f, cType)+","+field(f, cSub))))
				return
			}
			t, ok := timeField(f[cCreate])
			if !ok && cStrTime >= 0 {
				t, ok = timeField(f[cStrTime])
			}
			if !ok {
				b.fail("missing or bad time", quote(f[cCreate]))
				return
			}
			self := bytes.Equal(bytes.TrimSpace(f[cIsSender]), []byte("1"))
			var nick []byte
			if cNick >= 0 {
				nick = f[cNick]
			}
			s := strs(f[cContent], bytes.TrimSpace(f[cSender]), nick)
			c := wechatContent(typ, sub, s[0])
			sender := wechatSender(s[1], s[2], self)
			wechatEvent(b, groupID, groupName, t, sender, self, c, "", raw)
		}, nil
	}, nil))
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

// wechatEvent builds the event of a WeChat record into b; id is the
// record's message id ("" derives one).
func wechatEvent(b *built, groupID, groupName string, t time.Time, sender bot.Member, self bool, c wxContent, id string, raw []byte) {
	if c.recall != "" {
		if !validID(c.recall) {
			b.fail("bad recall", quote([]byte(c.recall)))
			return
		}
		b.add(&bot.Event{Kind: bot.KindRecall, Platform: bot.WeChat, GroupID: groupID, GroupName: groupName, Time: t, Raw: raw,
			Recall: &bot.Recall{MessageID: c.recall}})
		return
	}
	if c.notice {
		sender = wechatSystem()
	}
	if sender.ID == "" {
		// Exports write nothing for some senders (deleted accounts).
		sender.ID, sender.IDSource = "unknown", bot.IDDerived
	}
	if !validID(sender.ID) {
		b.fail("bad sender", quote([]byte(sender.ID)))
		return
	}
	ev, msg := newMessageEvent()
	msg.Sender, msg.Text, msg.Segments, msg.Self = sender, c.text, c.segs, self && !c.notice
	ev.Kind, ev.Platform, ev.GroupID, ev.GroupName, ev.Time, ev.Raw = bot.KindMessage, bot.WeChat, groupID, groupName, t, raw
	if id != "" {
		msg.ID = id
	} else {
		b.deriveID(msg, groupID, t, c.text)
	}
	b.add(ev)
}

// liuhenTXT reads the TXT export of 留痕 (WeChatMsg):
//
//	2024-11-08 20:15:05 群主小王
//	今晚8点开始
//
//	2024-11-08 20:16:00 "小李"撤回了一条消息
//
// A message is a line "time display-name", its body, and a blank line; a
// system notice is a single line "time notice" followed by one blank
// line. A reply ends with a line "引用:name:quoted text". The TXT form
// names no accounts: senders are known by display name (name:<名字>,
// marked derived) and the group by the file's name unless --group gives
// the chatroom id. A body line that looks like a message line is only
// taken as one after a blank line, and not when its time is more than an
// hour before the message it would end.
type liuhenTXT struct{}

func (liuhenTXT) Name() string { return "liuhen-txt" }
func (liuhenTXT) Description() string {
	return "留痕 (WeChatMsg) TXT: \"YYYY-MM-DD HH:MM:SS name\", body, blank line"
}
func (liuhenTXT) Platform() bot.Platform { return bot.WeChat }
func (liuhenTXT) Unit() string           { return UnitLine }
func (liuhenTXT) Version() string        { return "1" }

func (liuhenTXT) Sniff(head []byte) int {
	lines := bytes.Split(head, []byte("\n"))
	headers, blankBefore := 0, true
	for _, l := range lines {
		l = bytes.TrimRight(l, "\r")
		if _, ok := parseQQHeader(l); ok {
			return 0 // QQ's form, with the account in parentheses
		}
		if blankBefore {
			if _, n, ok := parseDateTime(l, false); ok && n < len(l) && l[n] == ' ' && len(bytes.TrimSpace(l[n:])) > 0 {
				headers++
			}
		}
		blankBefore = len(bytes.TrimSpace(l)) == 0
	}
	switch {
	case headers >= 3:
		return 45
	case headers >= 1:
		return 30
	}
	return 0
}

type liuhenTXTParser struct {
	in      *Input
	out     *flow
	max     int
	groupID string
	group   string

	open      bool
	t         time.Time
	who       []byte
	pos       Pos
	raw       []byte
	body      []byte // body lines joined with \n
	nbody     int    // body lines
	keep      int    // length of body up to its last non-blank line
	broken    string
	prevBlank bool
}

func (liuhenTXT) Parse(ctx context.Context, in *Input, out Output) error {
	p := &liuhenTXTParser{in: in, out: newFlow(ctx, out), max: in.maxRecord(), prevBlank: true, group: stem(in.Name)}
	p.groupID = in.GroupID
	if p.groupID == "" {
		p.groupID = nameID(p.group)
	}
	return p.out.close(p.scan())
}

func (p *liuhenTXTParser) scan() error {
	lr := newLineReader(p.in.R, p.in.Encoding, p.max)
	for {
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
	return p.flush()
}

func (p *liuhenTXTParser) line(l *line) error {
	pos := Pos{Line: l.num, Offset: l.off}
	if l.tooLong {
		p.prevBlank = false
		if p.open {
			if p.broken == "" {
				p.broken = fmt.Sprintf("line %d is longer than %d bytes", l.num, p.max)
			}
			return nil
		}
		return p.out.bad(pos, "line too long", fmt.Sprintf("%d bytes, more than the record limit of %d", l.size, p.max))
	}
	text := l.text
	blank := isBlank(text)
	if p.prevBlank && !blank {
		if t, n, ok := parseDateTime(text, false); ok && n < len(text) && text[n] == ' ' && len(bytes.TrimSpace(text[n:])) > 0 &&
			(!p.open || !t.Before(p.t.Add(-headerSlack))) {
			if err := p.flush(); err != nil {
				return err
			}
			p.open, p.t, p.who, p.pos = true, t, append(p.who[:0], bytes.TrimSpace(text[n:])...), pos
			p.raw, p.body, p.nbody, p.keep, p.broken = append(p.raw[:0], l.raw...), p.body[:0], 0, 0, ""
			p.prevBlank = false
			return nil
		}
	}
	p.prevBlank = blank
	if !p.open {
		if !blank {
			return p.out.bad(pos, "text outside a message", quote(text))
		}
		return nil
	}
	if p.broken != "" {
		return nil
	}
	if len(p.raw)+len(l.raw) > p.max {
		p.broken = fmt.Sprintf("record longer than %d bytes", p.max)
		return nil
	}
	p.raw = append(p.raw, l.raw...)
	if p.nbody > 0 {
		p.body = append(p.body, '\n')
	}
	p.body = append(p.body, text...)
	p.nbody++
	if !blank {
		p.keep = len(p.body)
	}
	return nil
}

func (p *liuhenTXTParser) flush() error {
	if !p.open {
		return nil
	}
	p.open = false
	if p.broken != "" {
		return p.out.bad(p.pos, "record too long", p.broken)
	}
	notice := p.keep == 0 && p.nbody <= 1 // one line and one blank line
	own := p.out.own(p.raw, p.body[:p.keep], p.who)
	nr, nb := len(p.raw), p.keep
	raw := own[:nr:nr]
	group, gname, t := p.groupID, p.group, p.t
	return p.out.record(p.pos, len(own), func(b *built) {
		all := string(own[nr:])
		text, who := all[:nb], all[nb:]
		var c wxContent
		var sender bot.Member
		if notice {
			c = wechatContent(wxSystem, 0, who)
			if c.recall == "" {
				c.notice = true
			}
		} else {
			var reply *bot.Segment
			last := text[strings.LastIndexByte(text, '\n')+1:]
			if q, ok := strings.CutPrefix(last, "引用:"); ok {
				name, what, _ := strings.Cut(q, ":")
				reply = &bot.Segment{Type: bot.SegReply, Title: name, Text: what}
				text = strings.TrimSuffix(text[:len(text)-len(last)], "\n")
			}
			c.text = text
			if reply != nil {
				c.segs = []bot.Segment{*reply, {Type: bot.SegText, Text: c.text}}
			}
			sender = bot.Member{ID: nameID(who), Nick: who, Role: bot.RoleUnknown, IDSource: bot.IDDerived}
		}
		wechatEvent(b, group, gname, t, sender, false, c, "", raw)
	})
}
