package wechat

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/eatmoreapple/openwechat"
	"github.com/qunshao/qunshao/bot"
)

// wireContact is a group as webwxbatchgetcontact returns it. openwechat's
// User has no ChatRoomOwner field, so the adapter reads the response itself.
type wireContact struct {
	UserName    string
	NickName    string
	Owner       string // ChatRoomOwner: the owner's UserName in this session
	MemberCount int64
	Members     []memberFacts
	Skipped     int // member entries that could not be read
	Raw         []byte
}

func decodeContact(raw []byte) (wireContact, error) {
	o, err := parseObj(raw)
	if err != nil {
		return wireContact{}, err
	}
	c := wireContact{
		UserName:    o.str("UserName"),
		NickName:    openwechat.FormatEmoji(o.str("NickName")),
		Owner:       o.str("ChatRoomOwner"),
		MemberCount: o.num("MemberCount"),
		Raw:         raw,
	}
	seen := map[string]bool{}
	for _, mr := range o.list("MemberList") {
		m, err := parseObj(mr)
		u := ""
		if err == nil {
			u = m.str("UserName")
		}
		if err != nil || !isSessionUserName(u) || seen[u] {
			c.Skipped++
			continue
		}
		seen[u] = true
		c.Members = append(c.Members, memberFacts{
			UserName: u,
			Nick:     openwechat.FormatEmoji(m.str("NickName")),
			Card:     openwechat.FormatEmoji(m.str("DisplayName")),
			Avatar:   avatarID(m.str("HeadImgUrl")),
			Uin:      m.num("Uin"),
			Attr:     m.num("AttrStatus"),
		})
	}
	return c, nil
}

// factsFromUser reads a member as openwechat's SenderInGroup returns it.
func factsFromUser(u *openwechat.User) memberFacts {
	return memberFacts{
		UserName: u.UserName,
		Nick:     openwechat.FormatEmoji(u.NickName),
		Card:     openwechat.FormatEmoji(u.DisplayName),
		Avatar:   avatarID(u.HeadImgUrl),
		Uin:      u.Uin,
		Attr:     u.AttrStatus,
	}
}

// avatarID is the stable part of an avatar URL: its "seq", which changes
// only when the picture does. Group members' entries usually carry no
// avatar URL, and seq=0 carries nothing.
func avatarID(headImgURL string) string {
	if headImgURL == "" {
		return ""
	}
	u, err := url.Parse(headImgURL)
	if err != nil {
		return ""
	}
	seq := u.Query().Get("seq")
	if seq == "" || seq == "0" || len(seq) > 32 {
		return ""
	}
	return seq
}

// rosterLoop fetches every group's roster at login and every rosterEvery,
// and the rosters of groups WeChat reports as changed.
func (s *session) rosterLoop(ctx context.Context) {
	s.refreshAll(ctx)
	every := time.NewTicker(s.r.opts.rosterEvery)
	defer every.Stop()
	save := time.NewTicker(s.r.opts.saveEvery)
	defer save.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-every.C:
			s.refreshAll(ctx)
		case g := <-s.refresh:
			batch := []string{g}
		more:
			for len(batch) < batchSize {
				select {
				case g := <-s.refresh:
					if !slices.Contains(batch, g) {
						batch = append(batch, g)
					}
				default:
					break more
				}
			}
			s.refreshGroups(batch, "changed")
		case <-save.C:
			s.saveIdentities()
		}
	}
}

func (s *session) requestRefresh(gu string) {
	select {
	case s.refresh <- gu:
	default: // the periodic refresh catches up
	}
}

func (s *session) refreshAll(ctx context.Context) {
	groups := s.listGroups(ctx)
	if ctx.Err() != nil {
		return
	}
	s.refreshGroups(groups, "periodic")
	s.saveIdentities()
}

// listGroups is every group the account can name: those saved to contacts
// (webwxgetcontact), the recent chats of webwxinit, and those messages came
// from. Web WeChat lists a group that is neither saved nor recent only once
// someone speaks in it.
func (s *session) listGroups(ctx context.Context) []string {
	set := map[string]bool{}
	for _, g := range s.initGroups {
		set[g] = true
	}
	contacts, err := s.bot.Caller.WebWxGetContact(ctx, s.loginInfo)
	if err != nil {
		if ctx.Err() == nil {
			s.r.book.Error(s.acct, "contact_fetch_failed", err)
			s.log.Warn("wechat contact list fetch failed", "account", s.acct, "err", err)
		}
	}
	for _, c := range contacts {
		if c != nil && strings.HasPrefix(c.UserName, "@@") && isSessionUserName(c.UserName) {
			set[c.UserName] = true
		}
	}
	s.mu.Lock()
	for g := range s.groups {
		set[g] = true
	}
	s.mu.Unlock()
	out := make([]string, 0, len(set))
	for g := range set {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

// refreshGroups fetches the rosters of groups and submits a roster snapshot
// for each.
func (s *session) refreshGroups(groups []string, reason string) {
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	for start := 0; start < len(groups); start += batchSize {
		if s.ctx.Err() != nil {
			return
		}
		chunk := groups[start:min(start+batchSize, len(groups))]
		contacts, err := s.batchGet(chunk)
		if err != nil {
			if s.ctx.Err() == nil {
				s.r.book.Error(s.acct, "roster_fetch_failed", err)
				s.log.Warn("wechat roster fetch failed", "account", s.acct, "groups", len(chunk), "reason", reason, "err", err)
			}
			continue
		}
		for _, c := range contacts {
			s.applyRoster(c)
		}
	}
	s.mu.Lock()
	n := len(s.groups)
	s.mu.Unlock()
	s.r.book.SetGroups(s.acct, n)
}

// batchGet asks webwxbatchgetcontact for groups through openwechat's
// client (its cookies, domain and retries) and reads the answer itself.
func (s *session) batchGet(groups []string) ([]wireContact, error) {
	req := make(openwechat.Members, 0, len(groups))
	for _, g := range groups {
		req = append(req, &openwechat.User{UserName: g})
	}
	resp, err := s.bot.Caller.Client.WebWxBatchGetContact(s.ctx, req, s.baseReq)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxContactBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxContactBytes {
		return nil, fmt.Errorf("webwxbatchgetcontact answered more than %d bytes", maxContactBytes)
	}
	o, err := parseObj(b)
	if err != nil {
		s.count("malformed_contact")
		return nil, fmt.Errorf("webwxbatchgetcontact: %w", err)
	}
	if br, err := parseObj(o["BaseResponse"]); err == nil {
		if ret := br.num("Ret"); ret != 0 {
			return nil, fmt.Errorf("webwxbatchgetcontact: ret %d", ret)
		}
	}
	var out []wireContact
	for _, raw := range o.list("ContactList") {
		c, err := decodeContact(raw)
		if err != nil || !strings.HasPrefix(c.UserName, "@@") || !isSessionUserName(c.UserName) {
			s.count("malformed_contact")
			continue
		}
		if c.Skipped > 0 {
			s.count("malformed_member")
		}
		out = append(out, c)
	}
	return out, nil
}

// applyRoster resolves a fetched group and its members to their keys,
// records them for this session and submits the roster snapshot (and card
// changes seen within the session).
func (s *session) applyRoster(c wireContact) {
	owner := ""
	labels := make([]string, 0, len(c.Members))
	for _, m := range c.Members {
		labels = append(labels, m.label())
		if m.UserName == c.Owner {
			owner = m.label()
		}
	}
	id, how := s.r.ids.resolveGroup(s.sess, c.UserName, c.NickName, owner, labels)
	switch how {
	case idAmbiguous:
		s.count("identity_ambiguous")
		s.log.Info("wechat group matches several known groups; given a new key", "account", s.acct, "group", id)
	case idNew:
		s.log.Info("wechat group seen for the first time", "account", s.acct, "group", id)
	}
	g := &groupState{userName: c.UserName, id: id, name: c.NickName, owner: c.Owner, members: map[string]*memberInfo{}}
	roster := make([]bot.Member, 0, len(c.Members))
	for _, m := range c.Members {
		mi := s.memberFor(id, m)
		g.members[m.UserName] = mi
		roster = append(roster, mi.member(g.role(m.UserName)))
	}
	s.mu.Lock()
	prev := s.groups[c.UserName]
	s.groups[c.UserName] = g
	var cards []*bot.Event
	if prev != nil {
		for u, mi := range g.members {
			if old := prev.members[u]; old != nil && old.card != mi.card && old.key == mi.key {
				cards = append(cards, &bot.Event{Kind: bot.KindCardChange, GroupID: id, GroupName: g.name,
					Member: &bot.MemberChange{Member: mi.member(g.role(u)), OldCard: old.card, NewCard: mi.card}})
			}
		}
	}
	s.mu.Unlock()
	now := s.now()
	if len(roster) == 0 {
		s.count("roster_empty")
		return
	}
	slices.SortFunc(roster, func(a, b bot.Member) int { return strings.Compare(a.ID, b.ID) })
	complete := c.Skipped == 0 && c.MemberCount > 0 && int64(len(roster)) >= c.MemberCount
	s.submit(&bot.Event{Kind: bot.KindRoster, GroupID: id, GroupName: g.name, Time: now, Raw: c.Raw,
		Roster: &bot.Roster{Members: roster, Complete: complete}})
	slices.SortFunc(cards, func(a, b *bot.Event) int { return strings.Compare(a.Member.Member.ID, b.Member.Member.ID) })
	for _, ev := range cards {
		ev.Time, ev.Raw = now, c.Raw
		s.submit(ev)
	}
}

// memberFor resolves a member to its key: the account's own id for the
// observing account, a derived key for everyone else.
func (s *session) memberFor(group string, f memberFacts) *memberInfo {
	if f.UserName == s.selfUser {
		nick := s.selfNick
		if nick == "" {
			nick = f.Nick
		}
		return &memberInfo{userName: f.UserName, nick: nick, card: f.Card, key: s.botID, idSource: bot.IDPlatform}
	}
	key, how := s.r.ids.resolveMember(group, s.sess, f)
	if how == idAmbiguous {
		s.count("identity_ambiguous")
	}
	return &memberInfo{userName: f.UserName, nick: f.Nick, card: f.Card, key: key, idSource: bot.IDDerived}
}

func (s *session) saveIdentities() {
	if err := s.r.ids.save(); err != nil {
		s.r.book.Error(s.acct, "identity_save_failed", err)
		s.log.Error("wechat identity mapping could not be saved", "account", s.acct, "err", err)
	}
}
