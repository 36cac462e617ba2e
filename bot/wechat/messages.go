package wechat

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/eatmoreapple/openwechat"
	"github.com/qunshao/qunshao/bot"
)

// handle converts one message and delivers its events. ow is openwechat's
// view of it, nil when openwechat could not decode it.
func (s *session) handle(in inMsg, ow *openwechat.Message) {
	defer func() {
		if p := recover(); p != nil {
			err := fmt.Errorf("panic converting message %q: %v", in.ID, p)
			s.r.book.Error(s.acct, "handler_panic", err)
			s.log.Error("wechat message conversion panicked; raw message kept in the undelivered file", "account", s.acct, "msg_id", in.ID, "panic", p)
			s.spoolBody("handler_panic", in.Raw)
		}
	}()
	if in.Type == typeStatusNotify {
		return // the phone opened a chat; not something said in the group
	}
	gu, self := s.groupOf(in)
	if gu == "" {
		return // private chats and official accounts are not watched
	}
	g := s.ensureGroup(gu)
	for _, ev := range s.convert(in, g, self, ow) {
		s.submit(ev)
	}
}

// groupOf returns the group a message belongs to and whether the observing
// account sent it (from the phone).
func (s *session) groupOf(in inMsg) (string, bool) {
	if strings.HasPrefix(in.From, "@@") {
		return in.From, false
	}
	if in.From != "" && in.From == s.selfUser && strings.HasPrefix(in.To, "@@") {
		return in.To, true
	}
	return "", false
}

// ensureGroup returns the group's state, fetching its roster the first time
// the group is seen in this session, so that the message is stored with the
// group's stable id and its sender can be resolved.
func (s *session) ensureGroup(gu string) *groupState {
	if g := s.group(gu); g != nil {
		return g
	}
	s.refreshGroups([]string{gu}, "first_sight")
	if g := s.group(gu); g != nil {
		return g
	}
	// The roster could not be fetched. Give the group a key bound to this
	// session's UserName; a later fetch in this session keeps that key.
	id, _ := s.r.ids.resolveGroup(s.sess, gu, "", "", nil)
	s.r.book.Error(s.acct, "group_unresolved", fmt.Errorf("group %s: roster unavailable; stored under %s", gu, id))
	g := &groupState{userName: gu, id: id, members: map[string]*memberInfo{}}
	s.mu.Lock()
	if cur := s.groups[gu]; cur != nil {
		g = cur
	} else {
		s.groups[gu] = g
	}
	s.mu.Unlock()
	return g
}

func (s *session) group(gu string) *groupState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.groups[gu]
}

// eventTime is the message's CreateTime in China Standard Time, or the
// time of receipt when WeChat sent none that makes sense.
func (s *session) eventTime(ct int64) time.Time {
	if ct > 0 {
		t := time.Unix(ct, 0).In(cst)
		if y := t.Year(); y >= 1990 && y <= 9999 {
			return t
		}
	}
	s.count("bad_time")
	return s.now()
}

// convert turns a group message into events.
func (s *session) convert(in inMsg, g *groupState, self bool, ow *openwechat.Message) []*bot.Event {
	base := bot.Event{GroupID: g.id, GroupName: g.name, Time: s.eventTime(in.CreateTime), Raw: in.Raw}
	user, body := "", in.Content
	if !self {
		user, body = splitSender(in.Content)
	}
	switch in.Type {
	case typeRecalled:
		return s.recall(base, g, in, user, body, self, ow)
	case typeSys, typeSysNotice:
		return s.notice(base, g, in, body)
	}
	var sender bot.Member
	switch {
	case self:
		sender = s.selfMember(g)
	case user != "":
		sender = s.sender(g, user, ow)
	default:
		s.count("sender_missing")
		sender = bot.Member{ID: unknownID, IDSource: bot.IDSession, Role: bot.RoleUnknown}
	}
	c := convertContent(in, body, s.mentionResolver(g))
	if c.odd != "" {
		s.count(c.odd)
	}
	c = s.capText(c)
	ev := base
	ev.Kind = bot.KindMessage
	ev.Message = &bot.Message{ID: safeID(in.ID), Sender: sender, Text: c.text, Segments: c.segs, Self: self}
	s.remember(in.ID, sender.ID)
	return []*bot.Event{&ev}
}

// capText bounds the text of a huge message. The raw payload keeps every
// byte; the text (which is searched and analysed) keeps the first
// maxText bytes and a segment says how long it was.
func (s *session) capText(c content) content {
	limit := s.r.opts.maxText
	over := len(c.text) > limit
	for i := range c.segs {
		if len(c.segs[i].Text) > limit {
			c.segs[i].Text = truncateUTF8(c.segs[i].Text, limit)
			over = true
		}
	}
	if !over {
		return c
	}
	s.count("oversize_message")
	full := len(c.text)
	c.text = truncateUTF8(c.text, limit)
	c.segs = append(c.segs, bot.Segment{Type: bot.SegOther, Title: "truncated", Size: int64(full),
		Text: fmt.Sprintf("text cut at %d of %d bytes; the raw payload holds all of it", len(c.text), full)})
	return c
}

func (s *session) selfMember(g *groupState) bot.Member {
	m := bot.Member{ID: s.botID, Nick: s.selfNick, IDSource: bot.IDPlatform, Role: bot.RoleUnknown}
	s.mu.Lock()
	if mi := g.members[s.selfUser]; mi != nil {
		m.Card = mi.card
	}
	s.mu.Unlock()
	if g.owner != "" && g.owner == s.selfUser {
		m.Role = bot.RoleOwner
	}
	return m
}

func systemMember() bot.Member {
	return bot.Member{ID: systemID, Nick: "系统消息", IDSource: bot.IDPlatform, Role: bot.RoleUnknown}
}

func (g *groupState) role(userName string) bot.Role {
	if g.owner != "" && g.owner == userName {
		return bot.RoleOwner
	}
	return bot.RoleUnknown
}

// sender resolves the member who sent a group message. The session's
// roster comes first: it is fetched at login, every rosterEvery and when
// WeChat reports the group changed, whereas openwechat's copy of a group's
// members is fetched once and never sees a display name change. A sender
// the roster does not know yet (someone who just joined) is looked up with
// openwechat's SenderInGroup, which fetches the group's members again for a
// name it does not know; failing that, the session fetches the roster
// itself (at most once a minute per group).
func (s *session) sender(g *groupState, user string, ow *openwechat.Message) bot.Member {
	if user == s.selfUser {
		return s.selfMember(g)
	}
	if mi := s.rosterMember(g, user); mi != nil {
		return mi.member(g.role(user))
	}
	if ow != nil {
		u, err := ow.SenderInGroup()
		if err == nil && u != nil && u.UserName == user {
			mi := s.memberFor(g.id, factsFromUser(u))
			s.mu.Lock()
			if g.members[user] == nil {
				g.members[user] = mi
			}
			s.mu.Unlock()
			s.requestRefresh(g.userName) // so that the store's roster history learns of them
			return mi.member(g.role(user))
		}
		s.count("sender_lookup_failed")
	}
	if s.retryDue(g.userName) {
		s.refreshGroups([]string{g.userName}, "new_sender")
		if cur := s.group(g.userName); cur != nil {
			g = cur
		}
		if mi := s.rosterMember(g, user); mi != nil {
			return mi.member(g.role(user))
		}
	}
	// Nobody by that UserName in the group: an id for this session only.
	s.count("sender_unresolved")
	return bot.Member{ID: "wxs_" + shortHash(s.sess, g.id, user), IDSource: bot.IDSession, SessionID: safeID(user), Role: bot.RoleUnknown}
}

func (s *session) rosterMember(g *groupState, user string) *memberInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return g.members[user]
}

// retryDue limits on-demand roster fetches of a group to one a minute.
func (s *session) retryDue(gu string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.r.opts.now()
	if t, ok := s.retryAt[gu]; ok && now.Before(t) {
		return false
	}
	s.retryAt[gu] = now.Add(time.Minute)
	return true
}

// mentionResolver resolves "@name" to the member whose display label is
// name, when exactly one member has it.
func (s *session) mentionResolver(g *groupState) func(string) (string, bool) {
	return func(name string) (string, bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		found, n := "", 0
		for _, mi := range g.members {
			if mi.card == name || mi.card == "" && mi.nick == name {
				found, n = mi.key, n+1
			}
		}
		return found, n == 1
	}
}

// recall turns a recall (撤回) into a recall event. The recalled message
// stays in the store; the recall is a record of its own.
func (s *session) recall(base bot.Event, g *groupState, in inMsg, user, body string, self bool, ow *openwechat.Message) []*bot.Event {
	var op bot.Member
	switch {
	case self:
		op = s.selfMember(g)
	case user != "":
		op = s.sender(g, user, ow)
	}
	info, ok := parseRevoke(body)
	if ok && op.ID == "" {
		op = s.operatorFromReplace(g, info.Replace)
	}
	id := safeID(info.MsgID)
	if !ok || id == "" {
		s.r.book.Error(s.acct, "malformed_recall", fmt.Errorf("recall %q names no message", in.ID))
		if op.ID == "" {
			op = systemMember()
		}
		t := webText(body)
		ev := base
		ev.Kind = bot.KindMessage
		ev.Message = &bot.Message{ID: safeID(in.ID), Sender: op, Text: t,
			Segments: []bot.Segment{{Type: bot.SegNotice, Text: t}, {Type: bot.SegOther, Title: "recall_unparsed"}}}
		return []*bot.Event{&ev}
	}
	ev := base
	ev.Kind = bot.KindRecall
	ev.Recall = &bot.Recall{MessageID: id, Operator: op.ID, SenderID: s.recentSender(id)}
	return []*bot.Event{&ev}
}

var recallNoticeRe = regexp.MustCompile(`^(?:["“](.+?)["”]|(你))\s*撤回了一条消息`)

// operatorFromReplace reads who recalled from the notice WeChat shows in
// place of the message ("张三" 撤回了一条消息) when the recall itself does not
// name its sender.
func (s *session) operatorFromReplace(g *groupState, replace string) bot.Member {
	m := recallNoticeRe.FindStringSubmatch(noticeText(replace))
	if m == nil {
		return bot.Member{}
	}
	if m[2] != "" {
		return s.selfMember(g)
	}
	id := s.personID(g, person{name: m[1]})
	if id == "" {
		return bot.Member{}
	}
	return bot.Member{ID: id}
}

// notice keeps a system notice as a message from the platform, and adds
// the member or group events it describes.
func (s *session) notice(base bot.Event, g *groupState, in inMsg, body string) []*bot.Event {
	c := s.capText(convertContent(in, body, nil))
	ev := base
	ev.Kind = bot.KindMessage
	ev.Message = &bot.Message{ID: safeID(in.ID), Sender: systemMember(), Text: c.text, Segments: c.segs}
	out := []*bot.Event{&ev}
	t := webText(body)
	if j, ok := parseJoin(t); ok {
		return append(out, s.joinEvents(base, g, j)...)
	}
	if op, name, ok := parseRename(t); ok {
		r := base
		r.Kind = bot.KindRename
		r.GroupName = name
		r.Rename = &bot.Rename{OldName: g.name, NewName: name, Operator: s.personID(g, op)}
		s.requestRefresh(g.userName)
		return append(out, &r)
	}
	if op, ok := parseKickedSelf(t); ok {
		k := base
		k.Kind = bot.KindKick
		k.Member = &bot.MemberChange{Member: s.selfMember(g), Operator: s.personID(g, person{name: op})}
		return append(out, &k)
	}
	return out
}

// joinEvents fetches the group's roster again (the notice names people,
// the roster says who they are) and records each joiner.
func (s *session) joinEvents(base bot.Event, g *groupState, j joinInfo) []*bot.Event {
	s.refreshGroups([]string{g.userName}, "join")
	if cur := s.group(g.userName); cur != nil {
		g = cur
	}
	base.GroupID, base.GroupName = g.id, g.name
	op := s.personID(g, j.operator)
	var out []*bot.Event
	for _, p := range j.joiners {
		m := s.personMember(g, p)
		if m.ID == op {
			op = "" // joined by scanning a code they shared themselves: nobody else acted
		}
		m.JoinedAt = base.Time
		ev := base
		ev.Kind = bot.KindJoin
		ev.Member = &bot.MemberChange{Member: m, Operator: op}
		out = append(out, &ev)
	}
	return out
}

// personMember resolves a name from a notice to a member: by the group's
// roster when exactly one member shows that name, else by the identity
// store's record of the name.
func (s *session) personMember(g *groupState, p person) bot.Member {
	if p.self {
		return s.selfMember(g)
	}
	s.mu.Lock()
	var found *memberInfo
	n := 0
	for _, mi := range g.members {
		if mi.card == p.name || mi.card == "" && mi.nick == p.name {
			found, n = mi, n+1
		}
	}
	if n != 1 {
		found, n = nil, 0
		for _, mi := range g.members {
			if mi.nick == p.name {
				found, n = mi, n+1
			}
		}
	}
	s.mu.Unlock()
	if n == 1 {
		return found.member(g.role(found.userName))
	}
	s.count("notice_name_unresolved")
	return bot.Member{ID: s.r.ids.byName(g.id, p.name), Nick: p.name, IDSource: bot.IDDerived, Role: bot.RoleUnknown}
}

func (s *session) personID(g *groupState, p person) string {
	if !p.known() {
		return ""
	}
	return s.personMember(g, p).ID
}

// remember keeps who sent recent messages, so that a recall can name the
// author of the recalled message.
func (s *session) remember(id, sender string) {
	if id == "" || sender == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.recent[id]; !ok {
		s.recentQ = append(s.recentQ, id)
		if len(s.recentQ) > recentMessages {
			delete(s.recent, s.recentQ[0])
			s.recentQ = s.recentQ[1:]
		}
	}
	s.recent[id] = sender
}

func (s *session) recentSender(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recent[id]
}
