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

// qqTXT reads the TXT export of the QQ PC message manager (消息管理器,
// "导出消息记录" as .txt):
//
//	消息记录（此消息记录为文本格式，不支持重新导入）
//
//	================================================================
//	消息分组:我的QQ群
//	================================================================
//	消息对象:拼单互助群
//	================================================================
//
//	2024-11-08 20:15:05 群主小王(10001)
//	今晚8点开始，每人拍5件
//
//	2024-11-08 8:16:11 PM 小李<12345678@qq.com>
//	收到
//
// Several groups can follow each other, each introduced by its 消息分组 /
// 消息对象 block. A message is a sender line (time, then the name shown
// and the account in parentheses, or a mail address in angle brackets)
// followed by its body lines, and ends at the blank line before the next
// sender line. A body line that looks like a sender line is only taken as
// one after a blank line, and not when its time is more than an hour
// before the message it would end (exports are in time order); one that
// passes both tests cannot be told from a real sender line.
type qqTXT struct{}

func (qqTXT) Name() string { return "qq-txt" }
func (qqTXT) Description() string {
	return "QQ PC message manager TXT export (消息记录（此消息记录为文本格式…）, several groups per file)"
}
func (qqTXT) Platform() bot.Platform { return bot.QQ }
func (qqTXT) Unit() string           { return UnitLine }
func (qqTXT) Version() string        { return "1" }

const qqTXTBanner = "消息记录（此消息记录为文本格式，不支持重新导入）"

func (qqTXT) Sniff(head []byte) int {
	if bytes.Contains(head, []byte("消息记录（此消息记录为文本格式")) {
		return 100
	}
	score := 0
	if bytes.Contains(head, []byte("\n消息对象:")) || bytes.HasPrefix(head, []byte("消息对象:")) {
		score = 60
	}
	headers := 0
	for _, l := range bytes.Split(head, []byte("\n")) {
		if _, ok := parseQQHeader(bytes.TrimRight(l, "\r")); ok {
			headers++
		}
	}
	if headers >= 1 && score == 0 {
		score = 40
	}
	if headers >= 3 {
		score += 10
	}
	return score
}

// qqHeader is a parsed sender line: the name shown and the account (QQ
// number, or a mail address) as byte ranges of the line.
type qqHeader struct {
	t                  time.Time
	nickStart, nickEnd int
	idStart, idEnd     int
	mail               bool // the sender was written as nick<address>
}

// parseQQHeader reads "2024-11-08 20:15:05 nick(10001)",
// "2024-11-08 8:15:05 PM nick(10001)" or "... nick<mail@qq.com>".
func parseQQHeader(b []byte) (qqHeader, bool) {
	if len(b) < 22 || b[0] < '0' || b[0] > '9' {
		return qqHeader{}, false
	}
	if c := b[len(b)-1]; c == ' ' || c == '\t' {
		b = bytes.TrimRight(b, " \t")
	}
	t, n, ok := parseDateTime(b, true)
	if !ok || n >= len(b) || b[n] != ' ' {
		return qqHeader{}, false
	}
	start := n + 1
	rest := b[start:]
	if len(rest) < 3 {
		return qqHeader{}, false
	}
	switch rest[len(rest)-1] {
	case ')':
		i := bytes.LastIndexByte(rest, '(')
		if i < 0 {
			return qqHeader{}, false
		}
		id := rest[i+1 : len(rest)-1]
		if len(id) == 0 || len(id) > 20 {
			return qqHeader{}, false
		}
		for _, c := range id {
			if c < '0' || c > '9' {
				return qqHeader{}, false
			}
		}
		return qqHeader{t: t, nickStart: start, nickEnd: start + i, idStart: start + i + 1, idEnd: len(b) - 1}, true
	case '>':
		i := bytes.LastIndexByte(rest, '<')
		if i < 0 {
			return qqHeader{}, false
		}
		addr := rest[i+1 : len(rest)-1]
		if len(addr) == 0 || bytes.ContainsAny(addr, " <>\t") || bytes.IndexByte(addr, '@') < 0 {
			return qqHeader{}, false
		}
		return qqHeader{t: t, nickStart: start, nickEnd: start + i, idStart: start + i + 1, idEnd: len(b) - 1, mail: true}, true
	}
	return qqHeader{}, false
}

func isRule(b []byte) bool {
	if len(b) < 16 || b[0] != '=' {
		return false
	}
	b = bytes.TrimRight(b, " \t")
	if len(b) < 16 {
		return false
	}
	for _, c := range b {
		if c != '=' {
			return false
		}
	}
	return true
}

// headerSlack is how far back in time a sender-like line may go and still
// be taken as the next message.
const headerSlack = time.Hour

type qqTXTParser struct {
	in  *Input
	out *flow
	max int

	groupID, groupName string
	groups             int
	firstGroup         string

	cur      *qqHeader
	curLine  []byte // the sender line, which cur indexes
	curPos   Pos
	raw      []byte
	body     []byte
	nbody    int // body lines so far
	bodyKeep int // length of body up to its last non-blank line
	broken   string

	held      []byte // a rule line held to see what follows it (raw)
	heldText  []byte
	prevBlank bool
	stray     bool // text outside any message was reported already
}

func (qqTXT) Parse(ctx context.Context, in *Input, out Output) error {
	p := &qqTXTParser{in: in, out: newFlow(ctx, out), max: in.maxRecord(), prevBlank: true}
	return p.out.close(p.scan())
}

func (p *qqTXTParser) scan() error {
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
	if p.held != nil {
		p.appendHeld()
	}
	return p.flush()
}

func (p *qqTXTParser) line(l *line) error {
	pos := Pos{Line: l.num, Offset: l.off}
	if l.tooLong {
		p.prevBlank = false
		if p.held != nil {
			p.appendHeld()
		}
		if p.cur != nil {
			if p.broken == "" {
				p.broken = fmt.Sprintf("line %d is longer than %d bytes", l.num, p.max)
			}
			return nil
		}
		return p.out.bad(pos, "line too long", fmt.Sprintf("%d bytes, more than the record limit of %d", l.size, p.max))
	}
	text := l.text
	if p.held != nil {
		if bytes.HasPrefix(text, []byte("消息分组:")) || bytes.HasPrefix(text, []byte("消息对象:")) {
			p.held = nil
			if err := p.flush(); err != nil {
				return err
			}
		} else {
			p.appendHeld()
		}
	}
	blank := isBlank(text)
	switch {
	case isRule(text):
		if p.cur != nil {
			p.held = append(p.held[:0], l.raw...)
			p.heldText = append(p.heldText[:0], text...)
			return nil
		}
		p.prevBlank = true
		return nil
	case p.cur == nil && bytes.HasPrefix(text, []byte("消息分组:")):
		p.prevBlank = true
		return nil
	case p.cur == nil && bytes.HasPrefix(text, []byte("消息对象:")):
		p.prevBlank = true
		return p.setGroup(string(bytes.TrimSpace(text[len("消息对象:"):])), pos)
	case p.cur == nil && bytes.Equal(bytes.TrimSpace(text), []byte(qqTXTBanner)):
		p.prevBlank = true
		return nil
	}
	if (p.prevBlank || p.cur == nil) && !blank {
		if h, ok := parseQQHeader(text); ok && (p.cur == nil || !h.t.Before(p.cur.t.Add(-headerSlack))) {
			if err := p.flush(); err != nil {
				return err
			}
			p.cur, p.curPos = &h, pos
			p.curLine = append(p.curLine[:0], text...)
			p.raw = append(p.raw[:0], l.raw...)
			p.body, p.nbody, p.bodyKeep, p.broken = p.body[:0], 0, 0, ""
			p.prevBlank, p.stray = false, false
			if len(p.raw) > p.max {
				p.broken = fmt.Sprintf("record longer than %d bytes", p.max)
			}
			return nil
		}
	}
	p.prevBlank = blank
	if p.cur == nil {
		if !blank && !p.stray {
			p.stray = true
			return p.out.bad(pos, "text outside a message", quote(text))
		}
		return nil
	}
	p.addBody(l.raw, text, blank)
	return nil
}

func (p *qqTXTParser) addBody(raw, text []byte, blank bool) {
	if p.broken != "" {
		return
	}
	if len(p.raw)+len(raw) > p.max {
		p.broken = fmt.Sprintf("record longer than %d bytes", p.max)
		return
	}
	p.raw = append(p.raw, raw...)
	if p.nbody > 0 {
		p.body = append(p.body, '\n')
	}
	p.body = append(p.body, text...)
	p.nbody++
	if !blank {
		p.bodyKeep = len(p.body)
	}
}

// appendHeld adds a held rule line to the current message's body: what
// followed it was not a group block.
func (p *qqTXTParser) appendHeld() {
	held, text := p.held, p.heldText
	p.held = nil
	if p.cur == nil {
		return
	}
	p.addBody(held, text, false)
	p.prevBlank = false
}

func (p *qqTXTParser) setGroup(name string, pos Pos) error {
	p.groups++
	if p.groups == 1 {
		p.firstGroup = name
	}
	if p.in.GroupID != "" {
		if name != p.firstGroup {
			return fmt.Errorf("line %d: the file holds more than one group (%s, then %s) but --group names one; import without --group",
				pos.Line, quote([]byte(p.firstGroup)), quote([]byte(name)))
		}
		p.groupID, p.groupName = p.in.GroupID, name
		return nil
	}
	p.groupID, p.groupName = qqGroupFromName(name)
	return nil
}

// qqGroupFromName takes the group number from "名字(123456)" when the
// export shows it; otherwise the group is known by name only.
func qqGroupFromName(name string) (id, display string) {
	if strings.HasSuffix(name, ")") {
		if i := strings.LastIndexByte(name, '('); i >= 0 {
			num := name[i+1 : len(name)-1]
			if isDigits(num) && len(num) >= 5 && len(num) <= 12 {
				return num, strings.TrimSpace(name[:i])
			}
		}
	}
	return nameID(name), name
}

func (p *qqTXTParser) flush() error {
	h := p.cur
	if h == nil {
		return nil
	}
	p.cur = nil
	pos := p.curPos
	if p.broken != "" {
		return p.out.bad(pos, "record too long", p.broken)
	}
	if p.groupID == "" {
		if p.in.GroupID != "" {
			p.groupID = p.in.GroupID
		} else {
			p.groupID, p.groupName = nameID(stem(p.in.Name)), stem(p.in.Name)
		}
	}
	// The record's bytes and strings in one allocation of its own: the
	// scanner's buffers are reused for the next record.
	raw, body := p.raw, p.body[:p.bodyKeep]
	nick, id := p.curLine[h.nickStart:h.nickEnd], p.curLine[h.idStart:h.idEnd]
	own := p.out.own(raw, body, nick, id)
	nr, nb, nn := len(raw), len(body), len(nick)
	group, name, t, mail := p.groupID, p.groupName, h.t, h.mail
	return p.out.record(pos, len(own), func(b *built) {
		all := string(own[nr:])
		text, nick, id := all[:nb], all[nb:nb+nn], all[nb+nn:]
		sender := bot.Member{ID: id, Nick: nick, Role: bot.RoleUnknown}
		if mail {
			local, domain, _ := strings.Cut(id, "@")
			if isDigits(local) && strings.EqualFold(domain, "qq.com") {
				sender.ID = local
			} else {
				sender.IDSource = bot.IDDerived
			}
		}
		if !validID(sender.ID) {
			b.fail("bad sender", quote([]byte(id)))
			return
		}
		ev, msg := newMessageEvent()
		msg.Sender, msg.Text = sender, text
		switch sender.ID {
		case "10000", "1000000":
			// QQ's system accounts: a notice, not something a person said.
			msg.Sender = qqSystem(sender.ID)
			msg.Segments = []bot.Segment{{Type: bot.SegNotice, Text: text}}
		case "80000000":
			msg.Sender.Anonymous = true
		}
		ev.Kind, ev.Platform, ev.GroupID, ev.GroupName, ev.Time, ev.Raw = bot.KindMessage, bot.QQ, group, name, t, own[:nr:nr]
		b.deriveID(msg, group, t, text)
		b.add(ev)
	})
}
