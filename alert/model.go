package alert

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/qunshao/qunshao/alert/notify"
	"github.com/qunshao/qunshao/detect"
	"github.com/qunshao/qunshao/nlp"
	"github.com/qunshao/qunshao/storage"
)

// Details is what an alert knows beyond its columns, stored as JSON in
// alerts.details and kept up to date while the alert fires.
type Details struct {
	GroupID   string `json:"group_id"`
	GroupName string `json:"group_name,omitempty"`
	// Organizers posted tasks or demands, with the roles they held when
	// they did.
	Organizers []notify.Person `json:"organizers"`
	// Staff are the group's owner and admins as of StaffAt.
	Staff   []notify.Person `json:"staff"`
	StaffAt time.Time       `json:"staff_at,omitzero"`
	Shops   []string        `json:"shops"`
	Links   []string        `json:"links"`
	// Excerpts are the first flagged message and the latest ones.
	Excerpts []notify.Excerpt `json:"excerpts"`
	Rules    []string         `json:"rules"`
	Risk     float64          `json:"risk"`
	MaxScore float64          `json:"max_score"`
}

// Limits on what an alert keeps.
const (
	maxExcerpts     = 5
	maxExcerptRunes = 120
	maxListed       = 10
	maxRules        = 20
)

// Fingerprint identifies an alert across its updates: category, platform,
// group and, where a message names it, the target shop.
func Fingerprint(category, platform, group, shop string) string {
	h := sha256.Sum256([]byte(category + "\x00" + platform + "\x00" + group + "\x00" + shop))
	return hex.EncodeToString(h[:16])
}

// platformOf is the platform part of a group key (qq:123 → qq).
func platformOf(groupKey string) string {
	p, _, _ := strings.Cut(groupKey, ":")
	return p
}

// groupIDOf is the id part of a group key.
func groupIDOf(groupKey string) string {
	_, id, _ := strings.Cut(groupKey, ":")
	return id
}

// decodeDetails reads the details column; a damaged column yields empty
// details rather than stopping alerting.
func decodeDetails(s string) Details {
	var d Details
	_ = json.Unmarshal([]byte(s), &d)
	return d
}

func (d *Details) encode() string {
	b, _ := json.Marshal(d)
	return string(b)
}

// clone deep-copies the slices so an engine batch can be abandoned.
func (d Details) clone() Details {
	c := d
	c.Organizers = clonePeople(d.Organizers)
	c.Staff = clonePeople(d.Staff)
	c.Shops = append([]string(nil), d.Shops...)
	c.Links = append([]string(nil), d.Links...)
	c.Excerpts = append([]notify.Excerpt(nil), d.Excerpts...)
	c.Rules = append([]string(nil), d.Rules...)
	return c
}

func clonePeople(ps []notify.Person) []notify.Person {
	out := make([]notify.Person, len(ps))
	for i, p := range ps {
		p.Roles = append([]string(nil), p.Roles...)
		out[i] = p
	}
	return out
}

func decodeLabels(s string) Labels {
	l := Labels{}
	_ = json.Unmarshal([]byte(s), &l)
	return l
}

func encodeLabels(l Labels) string {
	b, _ := json.Marshal(l)
	return string(b)
}

// addUnique appends v to list unless it (or, for shops, a name that starts
// the same) is there, keeping at most maxListed.
func addUnique(list []string, v string) []string {
	if v == "" {
		return list
	}
	for _, x := range list {
		if x == v {
			return list
		}
	}
	if len(list) >= maxListed {
		return list
	}
	return append(list, v)
}

// sameShop treats "悦宠家居" and "悦宠家居旗舰店" as one shop, as the
// correlation does.
func sameShop(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	return strings.HasPrefix(a, b) || strings.HasPrefix(b, a)
}

// parsed is a detection's JSON columns, decoded once.
type parsed struct {
	hits     []detect.RuleHit
	entities []nlp.Entity
}

func parseDetection(d *storage.Detection) parsed {
	var p parsed
	_ = json.Unmarshal([]byte(d.Rules), &p.hits)
	_ = json.Unmarshal([]byte(d.Entities), &p.entities)
	return p
}

// shop is the first shop the message names.
func (p parsed) shop() string {
	best, start := "", -1
	for _, e := range p.entities {
		if e.Type == nlp.EntShop && strings.TrimSpace(e.Value) != "" && (start < 0 || e.Span.Start < start) {
			best, start = strings.TrimSpace(e.Value), e.Span.Start
		}
	}
	return best
}

// linkTypes are the entities shown as links.
var linkTypes = map[nlp.EntityType]bool{nlp.EntItemLink: true, nlp.EntShopLink: true, nlp.EntShortLink: true,
	nlp.EntURL: true, nlp.EntTaoToken: true}

// excerpt builds the marked excerpt of a flagged message.
func excerpt(d *storage.Detection, p parsed, rec *storage.Record) notify.Excerpt {
	ex := notify.Excerpt{DetectionID: d.ID, MsgID: d.MsgID, Seq: d.ChainSeq, Time: time.UnixMicro(d.OccurredUS).UTC(),
		SenderID: d.SenderID, SenderRole: d.SenderRole, Label: d.Label}
	var spans []nlp.Span
	for _, h := range p.hits {
		if detect.Malicious(h.Category) {
			ex.Rules = append(ex.Rules, h.ID)
			spans = append(spans, h.Spans...)
		}
	}
	if rec == nil {
		ex.Parts = []notify.Part{{Text: "（消息原文未找到）"}}
		return ex
	}
	ex.SenderNick = rec.ActorNick
	if ex.SenderNick == "" {
		ex.SenderNick = rec.ActorCard
	}
	text := []rune(string(rec.OriginalText()))
	marked := make([]bool, len(text))
	for _, sp := range spans {
		for i := max(0, sp.Start); i < min(len(text), sp.End); i++ {
			marked[i] = true
		}
	}
	// Show the start of a long message, or the stretch around its first
	// match when that is further in.
	from := 0
	if len(text) > maxExcerptRunes {
		for i, m := range marked {
			if m {
				from = max(0, min(i-maxExcerptRunes/4, len(text)-maxExcerptRunes))
				break
			}
		}
	}
	to := min(len(text), from+maxExcerptRunes)
	if from > 0 {
		ex.Parts = append(ex.Parts, notify.Part{Text: "…"})
	}
	for i := from; i < to; {
		j := i
		for j < to && marked[j] == marked[i] {
			j++
		}
		ex.Parts = append(ex.Parts, notify.Part{Text: string(text[i:j]), Marked: marked[i]})
		i = j
	}
	ex.Truncated = to < len(text)
	return ex
}

// addExcerpt keeps the first excerpt and the latest ones.
func (d *Details) addExcerpt(ex notify.Excerpt) {
	for _, x := range d.Excerpts {
		if x.DetectionID == ex.DetectionID {
			return
		}
	}
	d.Excerpts = append(d.Excerpts, ex)
	if len(d.Excerpts) > maxExcerpts {
		d.Excerpts = append(d.Excerpts[:1], d.Excerpts[len(d.Excerpts)-maxExcerpts+1:]...)
	}
}

// addOrganizer counts a message against its sender, with the role held
// when it was sent.
func (d *Details) addOrganizer(id, nick, role string, messages int) {
	if role == "" {
		role = "unknown"
	}
	for i := range d.Organizers {
		o := &d.Organizers[i]
		if o.ID != id {
			continue
		}
		o.Messages += messages
		if nick != "" {
			o.Nick = nick
		}
		if o.Role != role {
			seen := false
			for _, r := range o.Roles {
				seen = seen || r == role
			}
			if !seen {
				if len(o.Roles) == 0 {
					o.Roles = []string{o.Role}
				}
				o.Roles = append(o.Roles, role)
			}
			o.Role = role
		}
		return
	}
	if len(d.Organizers) >= maxListed {
		return
	}
	d.Organizers = append(d.Organizers, notify.Person{ID: id, Nick: nick, Role: role, Messages: messages})
}

// organizerLabels are the categories whose senders organise: posting a
// task or demanding money.
var organizerLabels = map[string]bool{"attack_task": true, "extortion": true}

// labelsFor are an alert's labels.
func labelsFor(a *storage.Alert, d *Details, extra map[string]map[string]string) Labels {
	l := Labels{
		LabelCategory: a.Category, LabelSeverity: a.Severity, LabelPlatform: a.Platform, LabelGroup: a.GroupKey,
		LabelGroupID: d.GroupID, LabelGroupName: d.GroupName, LabelShop: a.Shop,
	}
	for k, v := range extra[a.GroupKey] {
		if !builtinLabels[k] {
			l[k] = v
		}
	}
	return l
}

// View turns a stored alert into what receivers see.
func View(a *storage.Alert, consoleURL string) notify.Alert {
	d := decodeDetails(a.Details)
	return view(a, &d, decodeLabels(a.Labels), consoleURL)
}

func view(a *storage.Alert, d *Details, labels Labels, consoleURL string) notify.Alert {
	v := notify.Alert{
		ID: a.ID, Fingerprint: a.Fingerprint, Status: a.Status, Category: a.Category, Severity: a.Severity,
		Platform: a.Platform, GroupKey: a.GroupKey, GroupID: d.GroupID, GroupName: d.GroupName, Shop: a.Shop,
		Labels: labels, StartsAt: time.UnixMicro(a.StartsUS).UTC(), LastSeen: time.UnixMicro(a.LastSeenUS).UTC(),
		ResolvedBy: a.ResolvedBy, Count: a.DetectionCount, Acked: a.AckedBy != "", AckedBy: a.AckedBy, Risk: d.Risk,
		Organizers: d.Organizers, Staff: d.Staff, Shops: d.Shops, Links: d.Links, Excerpts: d.Excerpts,
	}
	if a.EndsUS > 0 && a.Status == storage.AlertResolved {
		v.EndsAt = time.UnixMicro(a.EndsUS).UTC()
	}
	if consoleURL != "" {
		v.URL = strings.TrimRight(consoleURL, "/") + "/alerts/" + strconv.FormatInt(a.ID, 10)
	}
	if v.Organizers == nil {
		v.Organizers = []notify.Person{}
	}
	if v.Staff == nil {
		v.Staff = []notify.Person{}
	}
	if v.Shops == nil {
		v.Shops = []string{}
	}
	if v.Links == nil {
		v.Links = []string{}
	}
	if v.Excerpts == nil {
		v.Excerpts = []notify.Excerpt{}
	}
	return v
}

// staffPeople converts the roster's staff.
func staffPeople(st []storage.Staff) []notify.Person {
	out := make([]notify.Person, 0, len(st))
	for _, s := range st {
		nick := s.Card
		if nick == "" {
			nick = s.Nick
		}
		out = append(out, notify.Person{ID: s.AccountID, Nick: nick, Role: string(s.Role)})
	}
	return out
}

func sortedIDs(m map[int64]bool) []int64 {
	out := make([]int64, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
