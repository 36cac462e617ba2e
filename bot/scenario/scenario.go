// Package scenario reads whole group logs written as JSON lines, one group
// per line, and turns each into the chat events a bot in that group would
// have delivered. It reads the labelled corpus format (id, platform, group,
// roster, messages with t/from/text, truth) and extends it with member and
// group events in the same timeline, which the bundled demo logs use:
//
//	{"t": "...", "from": "<roster id>", "text": "...", "id": "optional message id"}
//	{"t": "...", "event": "recall", "target": "<message id>", "operator": "<id>"}
//	{"t": "...", "event": "role_change", "member": "<id>", "role": "admin", "operator": "<id>"}
//	{"t": "...", "event": "join", "member": "<id>", "nick": "..."}
//	{"t": "...", "event": "leave" | "kick", "member": "<id>", "operator": "<id>"}
//	{"t": "...", "event": "card_change", "member": "<id>", "card": "..."}
//	{"t": "...", "event": "mute", "member": "<id>", "seconds": 600, "operator": "<id>"}
//	{"t": "...", "event": "rename", "name": "...", "operator": "<id>"}
//
// Messages without an id get "<scenario id>-<position>", so replaying a
// log twice stores nothing twice. Each event's raw payload is the timeline
// entry's bytes exactly as they appear in the file.
package scenario

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/qunshao/qunshao/bot"
)

// Scenario is one group's log.
type Scenario struct {
	ID       string       `json:"id"`
	Platform bot.Platform `json:"platform"`
	Bot      string       `json:"bot,omitempty"`
	Group    struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"group"`
	Roster []Person `json:"roster"`
	// RosterAt is when the initial roster was taken; by default one hour
	// before the first timeline entry.
	RosterAt *time.Time        `json:"roster_at,omitempty"`
	Timeline []json.RawMessage `json:"messages"`
	Truth    *Truth            `json:"truth,omitempty"`

	// Line is the line of the file the scenario was read from.
	Line int `json:"-"`
}

// Person is a roster entry.
type Person struct {
	ID     string    `json:"id"`
	Nick   string    `json:"nick"`
	Card   string    `json:"card,omitempty"`
	Role   string    `json:"role"`
	Joined time.Time `json:"joined,omitzero"`
}

// Truth is the group-level label of the corpus.
type Truth struct {
	Malicious   bool     `json:"malicious"`
	Organizers  []string `json:"organizers"`
	TargetShops []string `json:"target_shops"`
}

// entry is one timeline line.
type entry struct {
	T        time.Time `json:"t"`
	Event    string    `json:"event"`
	From     string    `json:"from"`
	Text     *string   `json:"text"`
	ID       string    `json:"id"`
	Target   string    `json:"target"`
	Operator string    `json:"operator"`
	Member   string    `json:"member"`
	Role     string    `json:"role"`
	Nick     string    `json:"nick"`
	Card     string    `json:"card"`
	Seconds  int64     `json:"seconds"`
	Name     string    `json:"name"`
}

// MaxLine bounds one scenario line (a whole group log).
const MaxLine = 64 << 20

// Read parses every scenario in r. name is used in error messages, which
// have the form "name:line: problem". Blank lines and lines starting with
// '#' are skipped.
func Read(r io.Reader, name string) ([]*Scenario, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), MaxLine)
	var out []*Scenario
	seen := map[string]int{}
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		s, err := Parse(b)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if prev, dup := seen[s.ID]; dup {
			return nil, fmt.Errorf("%s:%d: scenario id %q already used on line %d", name, line, s.ID, prev)
		}
		seen[s.ID] = line
		s.Line = line
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s:%d: line longer than %d bytes", name, line+1, MaxLine)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// Parse parses one scenario line and checks it.
func Parse(b []byte) (*Scenario, error) {
	var s Scenario
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("not a scenario object: %w", err)
	}
	if s.ID == "" {
		return nil, errors.New("scenario has no id")
	}
	if !s.Platform.Valid() {
		return nil, fmt.Errorf("scenario %s: platform is %q, want qq or wechat", s.ID, s.Platform)
	}
	if s.Group.ID == "" {
		return nil, fmt.Errorf("scenario %s: group.id is empty", s.ID)
	}
	ids := map[string]bool{}
	for i, p := range s.Roster {
		if p.ID == "" {
			return nil, fmt.Errorf("scenario %s: roster[%d] has no id", s.ID, i)
		}
		if ids[p.ID] {
			return nil, fmt.Errorf("scenario %s: roster[%d] id %q appears twice", s.ID, i, p.ID)
		}
		ids[p.ID] = true
		if p.Role != "" && !bot.Role(p.Role).Valid() {
			return nil, fmt.Errorf("scenario %s: roster[%d] role %q, want owner, admin, member or unknown", s.ID, i, p.Role)
		}
	}
	if len(s.Timeline) == 0 {
		return nil, fmt.Errorf("scenario %s: no messages", s.ID)
	}
	return &s, nil
}

// Events turns the scenario into the events a bot would have delivered:
// a complete roster snapshot first, then the timeline in order.
func (s *Scenario) Events() ([]*bot.Event, error) {
	entries := make([]entry, len(s.Timeline))
	for i, raw := range s.Timeline {
		if err := json.Unmarshal(raw, &entries[i]); err != nil {
			return nil, fmt.Errorf("scenario %s: messages[%d]: %w", s.ID, i, err)
		}
		if entries[i].T.IsZero() {
			return nil, fmt.Errorf("scenario %s: messages[%d]: no time (t)", s.ID, i)
		}
	}
	base := bot.Event{Platform: s.Platform, Bot: s.Bot, GroupID: s.Group.ID}
	nicks := map[string]bot.Member{}
	rosterAt := entries[0].T.Add(-time.Hour)
	if s.RosterAt != nil {
		rosterAt = *s.RosterAt
	}
	snap := base
	snap.Kind, snap.Time, snap.GroupName = bot.KindRoster, rosterAt, s.Group.Name
	snap.Roster = &bot.Roster{Complete: true}
	for _, p := range s.Roster {
		role := bot.Role(p.Role)
		if role == "" {
			role = bot.RoleUnknown
		}
		m := bot.Member{ID: p.ID, Nick: p.Nick, Card: p.Card, Role: role, JoinedAt: p.Joined}
		nicks[p.ID] = m
		snap.Roster.Members = append(snap.Roster.Members, m)
	}
	snap.Raw, _ = json.Marshal(map[string]any{"group": s.Group, "roster": s.Roster})
	out := []*bot.Event{&snap}
	name := s.Group.Name
	for i, e := range entries {
		ev := base
		ev.Time, ev.Raw = e.T, []byte(s.Timeline[i])
		where := fmt.Sprintf("scenario %s: messages[%d]", s.ID, i)
		who := func(id string) bot.Member {
			if m, ok := nicks[id]; ok {
				m.Role = "" // the store decides the role from the roster history
				return m
			}
			return bot.Member{ID: id}
		}
		switch e.Event {
		case "", "message":
			if e.Text == nil {
				return nil, fmt.Errorf("%s: message has no text", where)
			}
			if e.From == "" {
				return nil, fmt.Errorf("%s: message has no sender (from)", where)
			}
			id := e.ID
			if id == "" {
				id = fmt.Sprintf("%s-%d", s.ID, i+1)
			}
			ev.Kind = bot.KindMessage
			ev.Message = &bot.Message{ID: id, Sender: who(e.From), Text: *e.Text,
				Segments: []bot.Segment{{Type: bot.SegText, Text: *e.Text}}}
		case "recall":
			ev.Kind = bot.KindRecall
			ev.Recall = &bot.Recall{MessageID: e.Target, Operator: e.Operator}
		case "role_change":
			ev.Kind = bot.KindRoleChange
			old := bot.RoleUnknown
			if m, ok := nicks[e.Member]; ok {
				old = m.Role
			}
			ev.Member = &bot.MemberChange{Member: who(e.Member), Operator: e.Operator, OldRole: old, NewRole: bot.Role(e.Role)}
			if m, ok := nicks[e.Member]; ok {
				m.Role = bot.Role(e.Role)
				nicks[e.Member] = m
			}
		case "join":
			ev.Kind = bot.KindJoin
			m := bot.Member{ID: e.Member, Nick: e.Nick, Card: e.Card, Role: bot.RoleMember}
			nicks[e.Member] = m
			ev.Member = &bot.MemberChange{Member: bot.Member{ID: e.Member, Nick: e.Nick, Card: e.Card}, Operator: e.Operator}
		case "leave", "kick":
			ev.Kind = bot.Kind(e.Event)
			ev.Member = &bot.MemberChange{Member: who(e.Member), Operator: e.Operator}
		case "card_change":
			ev.Kind = bot.KindCardChange
			m := who(e.Member)
			ev.Member = &bot.MemberChange{Member: m, OldCard: m.Card, NewCard: e.Card, Operator: e.Operator}
			if p, ok := nicks[e.Member]; ok {
				p.Card = e.Card
				nicks[e.Member] = p
			}
		case "mute":
			ev.Kind = bot.KindMute
			ev.Member = &bot.MemberChange{Member: who(e.Member), Operator: e.Operator, MuteDuration: time.Duration(e.Seconds) * time.Second}
		case "rename":
			ev.Kind = bot.KindRename
			ev.Rename = &bot.Rename{OldName: name, NewName: e.Name, Operator: e.Operator}
			ev.GroupName, name = e.Name, e.Name
		default:
			return nil, fmt.Errorf("%s: unknown event %q", where, e.Event)
		}
		if err := ev.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		out = append(out, &ev)
	}
	return out, nil
}
