package detect

import (
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/qunshao/qunshao/bot/scenario"
	"github.com/qunshao/qunshao/nlp"
)

// GroupMessage is a message in a group's timeline.
type GroupMessage struct {
	ID     string
	Time   time.Time
	Sender string
	// Role is the sender's role at the time ("" when unknown).
	Role string
	Text string
}

// ScenarioMessages turns a group log into timeline messages, with each
// sender's role from the log's roster.
func ScenarioMessages(s *scenario.Scenario) []GroupMessage {
	evs, err := s.Events()
	if err != nil {
		return nil
	}
	roles := map[string]string{}
	for _, p := range s.Roster {
		roles[p.ID] = p.Role
	}
	var out []GroupMessage
	for _, ev := range evs {
		if ev.Message == nil {
			continue
		}
		out = append(out, GroupMessage{ID: ev.Message.ID, Time: ev.Time, Sender: ev.Message.Sender.ID,
			Role: roles[ev.Message.Sender.ID], Text: ev.Message.Text})
	}
	return out
}

// JudgedMessage is a timeline message with its verdict.
type JudgedMessage struct {
	GroupMessage
	Verdict *Verdict `json:"verdict"`
}

// Campaign is an attack task followed by the members carrying it out, and
// any extortion that rides on it.
type Campaign struct {
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Tasks      []string  `json:"tasks"`
	Progress   []string  `json:"progress"`
	Extortion  []string  `json:"extortion"`
	Organizers []string  `json:"organizers"`
	Shops      []string  `json:"shops,omitempty"`
}

// Organizer is a person attributed as an organiser, with the role held
// when they acted and the messages that show it.
type Organizer struct {
	ID       string   `json:"id"`
	Roles    []string `json:"roles"`
	Score    float64  `json:"score"`
	Messages []string `json:"messages"`
}

// RiskPoint is the group's risk after a message.
type RiskPoint struct {
	Time time.Time `json:"time"`
	Risk float64   `json:"risk"`
	By   string    `json:"by"`
}

// GroupReport is the correlation of a group's timeline.
type GroupReport struct {
	ID          string          `json:"id"`
	Malicious   bool            `json:"malicious"`
	Risk        float64         `json:"risk"`
	Organizers  []string        `json:"organizers"`
	TargetShops []string        `json:"target_shops"`
	Items       []string        `json:"target_items,omitempty"`
	Campaigns   []Campaign      `json:"campaigns,omitempty"`
	Evidence    []Organizer     `json:"organizer_evidence,omitempty"`
	Timeline    []RiskPoint     `json:"risk_over_time,omitempty"`
	Messages    []JudgedMessage `json:"-"`
}

// Summary is the replay contract: id, malicious, risk, organizers,
// target_shops.
func (r *GroupReport) Summary() any {
	return struct {
		ID          string   `json:"id"`
		Malicious   bool     `json:"malicious"`
		Risk        float64  `json:"risk"`
		Organizers  []string `json:"organizers"`
		TargetShops []string `json:"target_shops"`
	}{r.ID, r.Malicious, r.Risk, r.Organizers, r.TargetShops}
}

// Correlation settings. A message's weight is how much one such message
// says about the group; risk halves every riskHalfLife without new
// evidence.
const (
	riskHalfLife       = 7 * 24 * time.Hour
	campaignGap        = 72 * time.Hour
	maliciousRisk      = 0.8
	organizerThreshold = 0.9
)

var categoryWeight = map[string]float64{"attack_task": 0.8, "extortion": 0.85, "attack_coordination": 0.4}

// organizerWeight is how much a message makes its sender an organiser:
// posting a task or demanding money does; directing, paying and recruiting
// attackers does in part; reporting one's own progress does not.
func organizerWeight(v *Verdict) float64 {
	switch v.Label {
	case "attack_task", "extortion":
		return 1
	case "attack_coordination":
		progress, directing := false, false
		for _, r := range v.Rules {
			if r.Category == "attack_task" || r.Category == "extortion" {
				directing = true // a coordination line that also gives orders or talks money
			}
			for _, t := range r.Tags {
				switch t {
				case "progress", "rollcall":
					progress = true
				case "evasion_tip", "payment", "recruit":
					directing = true
				}
			}
		}
		if directing {
			return 0.5
		}
		if progress {
			return 0
		}
		return 0.25
	}
	return 0
}

// Tracker follows groups over time: the risk score after each message,
// and who organises. It is what the live pipeline keeps per group and what
// Correlate replays a log through. Safe for concurrent use.
type Tracker struct {
	mu     sync.Mutex
	groups map[string]*groupTrack
}

type groupTrack struct {
	risk, peak float64
	last       time.Time
	malicious  int
	core       bool
	organizers map[string]*Organizer
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{groups: map[string]*groupTrack{}} }

// GroupState is a group's standing after a message.
type GroupState struct {
	Risk      float64
	Peak      float64
	Malicious bool
}

// Observe adds a judged message to its group and returns the group's
// state. Messages should arrive in time order per group; a late one is
// counted without rewinding the decay.
func (t *Tracker) Observe(group string, m GroupMessage, v *Verdict) GroupState {
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.groups[group]
	if g == nil {
		g = &groupTrack{organizers: map[string]*Organizer{}}
		t.groups[group] = g
	}
	if w := categoryWeight[v.Label] * support(v); w > 0 {
		g.malicious++
		if !g.last.IsZero() && m.Time.After(g.last) {
			g.risk *= math.Pow(0.5, float64(m.Time.Sub(g.last))/float64(riskHalfLife))
		}
		if m.Time.After(g.last) {
			g.last = m.Time
		}
		g.risk = 1 - (1-g.risk)*(1-w*v.Score)
		g.peak = max(g.peak, g.risk)
		if v.Label == "attack_task" || v.Label == "extortion" {
			g.core = true
		}
	}
	if w := organizerWeight(v) * v.Score * attribution(v); w > 0 {
		o := g.organizers[m.Sender]
		if o == nil {
			o = &Organizer{ID: m.Sender}
			g.organizers[m.Sender] = o
		}
		o.Score += w
		o.Messages = append(o.Messages, m.ID)
		role := m.Role
		if role == "" {
			role = "unknown"
		}
		if !contains(o.Roles, role) {
			o.Roles = append(o.Roles, role)
		}
	}
	return g.state()
}

// support is how far the rules back a malicious verdict: fully when a
// malicious rule fired and no benign context did; half when only the
// classifier speaks; a quarter when the rules found a benign context (a
// report, a warning, a quoted demand). A group of victims comparing notes
// produces many messages the classifier finds suspicious, and none of them
// should count like an attacker's order.
func support(v *Verdict) float64 {
	malicious, benign := false, false
	for _, r := range v.Rules {
		if Malicious(r.Category) {
			malicious = true
		} else {
			benign = true
		}
	}
	switch {
	case benign:
		return 0.25
	case malicious:
		return 1
	}
	return 0.5
}

// attribution discounts a message as evidence against its sender when the
// rules found a benign context in it (somebody quoting or reporting).
func attribution(v *Verdict) float64 {
	for _, r := range v.Rules {
		if !Malicious(r.Category) {
			return 0.25
		}
	}
	return 1
}

// A group is malicious when the evidence is strong and corroborated: an
// attack task or extortion, at least one more malicious message, a peak
// risk above maliciousRisk, and somebody who organises it.
func (g *groupTrack) state() GroupState {
	mal := g.core && g.malicious >= 2 && g.peak >= maliciousRisk
	if mal {
		mal = false
		for _, o := range g.organizers {
			if o.Score >= organizerThreshold {
				mal = true
				break
			}
		}
	}
	return GroupState{Risk: round(g.risk), Peak: round(g.peak), Malicious: mal}
}

// Organizers returns the people attributed as organisers of a group.
func (t *Tracker) Organizers(group string) []Organizer {
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.groups[group]
	if g == nil || !g.state().Malicious {
		return nil
	}
	var out []Organizer
	for _, o := range g.organizers {
		if o.Score >= organizerThreshold {
			c := *o
			c.Score = round(c.Score)
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Correlate judges a group's messages in time order and correlates them.
func (d *Detector) Correlate(msgs []GroupMessage) *GroupReport {
	sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].Time.Before(msgs[j].Time) })
	rep := &GroupReport{Organizers: []string{}, TargetShops: []string{}}
	t := NewTracker()
	var st GroupState
	for _, m := range msgs {
		v := d.Detect(m.Text, m.Role)
		rep.Messages = append(rep.Messages, JudgedMessage{GroupMessage: m, Verdict: v})
		st = t.Observe("", m, v)
		if categoryWeight[v.Label] > 0 {
			rep.Timeline = append(rep.Timeline, RiskPoint{Time: m.Time, Risk: st.Risk, By: m.ID})
		}
	}
	rep.Risk, rep.Malicious = st.Peak, st.Malicious
	rep.Campaigns = campaigns(rep.Messages)
	if !rep.Malicious {
		return rep
	}
	rep.Evidence = t.Organizers("")
	for _, o := range rep.Evidence {
		rep.Organizers = append(rep.Organizers, o.ID)
	}
	rep.TargetShops, rep.Items = targets(rep.Messages, d.analyzer.Norm)
	return rep
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

func round(x float64) float64 { return math.Round(x*1000) / 1000 }

// campaigns groups malicious messages that follow each other within
// campaignGap into campaigns that start with a task.
func campaigns(ms []JudgedMessage) []Campaign {
	var out []Campaign
	var cur *Campaign
	for _, jm := range ms {
		v := jm.Verdict
		if !Malicious(v.Label) {
			continue
		}
		if cur != nil && jm.Time.Sub(cur.End) > campaignGap {
			out = append(out, *cur)
			cur = nil
		}
		if cur == nil {
			if v.Label != "attack_task" && v.Label != "extortion" {
				continue // progress without a known task is not a campaign
			}
			cur = &Campaign{Start: jm.Time}
		}
		cur.End = jm.Time
		switch v.Label {
		case "attack_task":
			cur.Tasks = append(cur.Tasks, jm.ID)
		case "extortion":
			cur.Extortion = append(cur.Extortion, jm.ID)
		default:
			cur.Progress = append(cur.Progress, jm.ID)
		}
		if organizerWeight(v) >= 0.5 && !contains(cur.Organizers, jm.Sender) {
			cur.Organizers = append(cur.Organizers, jm.Sender)
		}
		for _, e := range v.Entities {
			if e.Type == nlp.EntShop && !contains(cur.Shops, e.Value) {
				cur.Shops = append(cur.Shops, e.Value)
			}
		}
	}
	if cur != nil {
		out = append(out, *cur)
	}
	return out
}

// targets collects the shops and items named in malicious messages. A
// short name that is the start of a longer one ("悦宠家居" of
// "悦宠家居旗舰店") is the same shop.
func targets(ms []JudgedMessage, norm *nlp.Normalizer) (shops, items []string) {
	count := map[string]int{}
	for _, jm := range ms {
		if !Malicious(jm.Verdict.Label) {
			continue
		}
		for _, e := range jm.Verdict.Entities {
			switch e.Type {
			case nlp.EntShop:
				count[norm.Simplify(e.Value)]++
			case nlp.EntItemID:
				if !contains(items, e.Value) {
					items = append(items, e.Value)
				}
			}
		}
	}
	names := make([]string, 0, len(count))
	for n := range count {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return len([]rune(names[i])) > len([]rune(names[j])) })
	for _, n := range names {
		dup := false
		for _, kept := range shops {
			if strings.HasPrefix(kept, n) || strings.HasPrefix(n, kept) {
				dup = true
				break
			}
		}
		if !dup {
			shops = append(shops, n)
		}
	}
	sort.Strings(shops)
	if shops == nil {
		shops = []string{}
	}
	sort.Strings(items)
	return shops, items
}

// Link ties groups together: the same shop or item attacked from several
// groups, or the same account organising in several.
type Link struct {
	Kind   string   `json:"kind"` // shop, item, organizer
	Value  string   `json:"value"`
	Groups []string `json:"groups"`
}

// Links are the cross-group links of a set of reports.
type Links []Link

// For returns the links that involve a group.
func (ls Links) For(id string) []Link {
	var out []Link
	for _, l := range ls {
		if contains(l.Groups, id) {
			out = append(out, l)
		}
	}
	return out
}

// LinkGroups finds shops, items and organisers shared by malicious groups.
func LinkGroups(reports []*GroupReport) Links {
	type key struct{ kind, value string }
	seen := map[key][]string{}
	add := func(k key, id string) {
		if !contains(seen[k], id) {
			seen[k] = append(seen[k], id)
		}
	}
	for _, r := range reports {
		if !r.Malicious {
			continue
		}
		for _, s := range r.TargetShops {
			add(key{"shop", s}, r.ID)
		}
		for _, it := range r.Items {
			add(key{"item", it}, r.ID)
		}
		for _, o := range r.Organizers {
			add(key{"organizer", o}, r.ID)
		}
	}
	var out Links
	for k, groups := range seen {
		if len(groups) > 1 {
			sort.Strings(groups)
			out = append(out, Link{Kind: k.kind, Value: k.value, Groups: groups})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Value < out[j].Value
	})
	return out
}
