package importer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/qunshao/qunshao/bot"
)

// MaxRosterBytes bounds a roster file, which is read whole.
const MaxRosterBytes = 64 << 20

// Roster is a roster file an investigator supplies with an export (exports
// rarely say who was owner or admin). It is a CSV with a header or a JSON
// array of objects, with the fields
//
//	id     account (QQ number, wxid) as the export names senders   required
//	role   owner, admin, member, unknown (or 群主, 管理员, 成员)      required
//	nick   name shown                                               optional
//	card   group card (群名片)                                      optional
//	since  when the role held from: RFC 3339, "2006-01-02 15:04:05"
//	       or "2006-01-02" (CST); empty means from the import's first
//	       message of the group                                     optional
//	group  the group it applies to (the group id as imported, e.g.
//	       738291046, 21839475602@chatroom, name:群名); empty means
//	       every group of the import                                optional
//	platform  qq or wechat: limits a row without group to groups of
//	       that platform                                            optional
//
// A row without group applies to every group the import meets: give group
// when one import covers several groups.
//
// Each row becomes a roster observation in the store's roster history (a
// roster event that is not Complete: a roster file does not prove that
// anyone missing from it had left), so messages after Since carry the
// role. Rows are evidence with provenance like imported messages.
type Roster struct {
	Path    string
	SHA256  string
	Size    int64
	Format  string // roster-csv or roster-json
	Entries []RosterEntry
}

// RosterEntry is one row of a roster file.
type RosterEntry struct {
	Line     int64
	Group    string
	Platform bot.Platform // "" for any
	ID       string
	Nick     string
	Card     string
	Role     bot.Role
	Since    time.Time // zero: from the first message
	Raw      []byte
}

// ReadRoster reads and checks a roster file. Every problem is reported as
// "file:line: reason"; a roster with any is refused whole, since a wrong
// role would be attributed to people.
func ReadRoster(path string) (*Roster, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("roster: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxRosterBytes+1))
	if err != nil {
		return nil, fmt.Errorf("roster %s: %w", path, err)
	}
	if len(b) > MaxRosterBytes {
		return nil, fmt.Errorf("roster %s: larger than %d bytes", path, MaxRosterBytes)
	}
	sum := sha256.Sum256(b)
	r := &Roster{Path: path, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(b))}
	name := filepath.Base(path)
	enc, err := SniffEncoding(b)
	if err != nil {
		return nil, fmt.Errorf("roster %s: %w", path, err)
	}
	head := bytes.TrimLeft(DecodeHead(b[:min(len(b), 4096)], enc), " \t\r\n")
	var errs []error
	bad := func(line int64, format string, args ...any) {
		if len(errs) < 20 {
			errs = append(errs, fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...)))
		}
	}
	if len(head) > 0 && (head[0] == '[' || head[0] == '{') {
		if enc != UTF8 {
			return nil, fmt.Errorf("roster %s: a JSON roster must be UTF-8", path)
		}
		r.Format = "roster-json"
		r.readJSON(b, bad)
	} else {
		r.Format = "roster-csv"
		r.readCSV(b, enc, bad)
	}
	seen := map[string]int64{}
	for _, e := range r.Entries {
		k := string(e.Platform) + "\x00" + e.Group + "\x00" + e.ID + "\x00" + e.Since.String()
		if first, dup := seen[k]; dup {
			bad(e.Line, "%s appears again with the same group and since as on line %d", quote([]byte(e.ID)), first)
		}
		seen[k] = e.Line
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(r.Entries) == 0 {
		return nil, fmt.Errorf("roster %s: no members", path)
	}
	return r, nil
}

type rosterRow struct {
	Platform string     `json:"platform"`
	ID       flexString `json:"id"`
	Nick     string     `json:"nick"`
	Card     string     `json:"card"`
	Role     string     `json:"role"`
	Since    flexString `json:"since"`
	Group    flexString `json:"group"`
}

func (r *Roster) add(line int64, row rosterRow, raw []byte, bad func(int64, string, ...any)) {
	e := RosterEntry{Line: line, Group: row.Group.String(), ID: row.ID.String(), Nick: strings.TrimSpace(row.Nick),
		Card: strings.TrimSpace(row.Card), Raw: bytes.Clone(raw), Platform: bot.Platform(strings.ToLower(strings.TrimSpace(row.Platform)))}
	if e.Platform != "" && !e.Platform.Valid() {
		bad(line, "platform %s: want qq or wechat", quote([]byte(row.Platform)))
		return
	}
	if !validID(e.ID) {
		bad(line, "id %s is missing or not an account id", quote([]byte(e.ID)))
		return
	}
	role := strings.TrimSpace(row.Role)
	switch role {
	case "unknown", "未知", "":
		if role == "" {
			bad(line, "role is missing (owner, admin, member or unknown)")
			return
		}
		e.Role = bot.RoleUnknown
	default:
		e.Role = bot.RoleFromPlatform(role)
		if e.Role == bot.RoleUnknown {
			bad(line, "role %s: want owner, admin, member or unknown (群主, 管理员, 成员)", quote([]byte(role)))
			return
		}
	}
	if s := row.Since.String(); s != "" {
		t, ok := parseSince(s)
		if !ok {
			bad(line, "since %s: want RFC 3339, \"2006-01-02 15:04:05\" or \"2006-01-02\"", quote([]byte(s)))
			return
		}
		e.Since = t
	}
	r.Entries = append(r.Entries, e)
}

func parseSince(s string) (time.Time, bool) {
	if t, ok := parseTimeValue(s); ok {
		return t, true
	}
	if t, err := time.ParseInLocation("2006-01-02", strings.TrimSpace(s), cst); err == nil && t.Year() >= 1990 {
		return t, true
	}
	return time.Time{}, false
}

func (r *Roster) readCSV(b []byte, enc Encoding, bad func(int64, string, ...any)) {
	cr := newCSVReader(bytes.NewReader(b), enc, MaxRosterBytes)
	hdr, err := cr.next()
	if err != nil {
		bad(1, "no header")
		return
	}
	h := newCSVHeader(hdr.split())
	ncols := len(hdr.split())
	if h.col("id") < 0 || h.col("role") < 0 {
		bad(hdr.pos.Line, "the header must name at least id and role (and may name nick, card, since, group)")
		return
	}
	for {
		rec, err := cr.next()
		if err != nil {
			return
		}
		f := rec.split()
		if len(f) == 1 && len(bytes.TrimSpace(f[0])) == 0 {
			continue
		}
		if len(f) != ncols {
			bad(rec.pos.Line, "%d fields, the header has %d", len(f), ncols)
			continue
		}
		row := rosterRow{Platform: field(f, h.col("platform")), ID: flexString(trimmed(f[h.col("id")])), Role: field(f, h.col("role")), Nick: field(f, h.col("nick")),
			Card: field(f, h.col("card")), Since: flexString(field(f, h.col("since"))), Group: flexString(field(f, h.col("group")))}
		r.add(rec.pos.Line, row, rec.raw, bad)
	}
}

func (r *Roster) readJSON(b []byte, bad func(int64, string, ...any)) {
	s := newJSONStream(bytes.NewReader(b), MaxRosterBytes)
	c, err := s.peek()
	if err != nil {
		bad(1, "empty")
		return
	}
	if c == '{' {
		// {"members": [...]}
		s.readByte()
		for first := true; ; first = false {
			more, err := s.more(first, '}')
			if err != nil {
				bad(s.line, "%v", err)
				return
			}
			if !more {
				bad(s.line, "no \"members\" array")
				return
			}
			k, err := s.key()
			if err != nil {
				bad(s.line, "%v", err)
				return
			}
			if k == "members" {
				break
			}
			if _, _, err := s.value(); err != nil {
				bad(s.line, "%v", err)
				return
			}
		}
	}
	if err := s.expect('['); err != nil {
		bad(s.line, "%v", err)
		return
	}
	for first := true; ; first = false {
		more, err := s.more(first, ']')
		if err != nil {
			bad(s.line, "%v", err)
			return
		}
		if !more {
			return
		}
		raw, pos, err := s.value()
		if err != nil {
			bad(pos.Line, "%v", err)
			return
		}
		var row rosterRow
		if err := json.Unmarshal(raw, &row); err != nil {
			bad(pos.Line, "not a member object: %v", err)
			continue
		}
		r.add(pos.Line, row, raw, bad)
	}
}

// events returns the roster events for one group of an import: one per
// distinct Since, with rows without Since at first (the group's first
// message in the import).
func (r *Roster) events(platform bot.Platform, groupID, groupName string, first time.Time, src func(line int64) *bot.Provenance) []*bot.Event {
	type bucket struct {
		at   time.Time
		line int64
		raw  []byte
		mem  []bot.Member
	}
	buckets := map[int64]*bucket{}
	// Rows for every group first, so that a row for this group given for
	// the same moment replaces them.
	var entries []RosterEntry
	for pass := 0; pass < 2; pass++ {
		for _, e := range r.Entries {
			if (e.Group != "") == (pass == 1) && (e.Group == "" || e.Group == groupID || e.Group == groupName) &&
				(e.Platform == "" || e.Platform == platform) {
				entries = append(entries, e)
			}
		}
	}
	for _, e := range entries {
		at := e.Since
		if at.IsZero() {
			at = first
		}
		k := at.UnixMicro()
		b := buckets[k]
		if b == nil {
			b = &bucket{at: at, line: e.Line}
			buckets[k] = b
		}
		b.raw = append(b.raw, e.Raw...)
		if len(e.Raw) > 0 && e.Raw[len(e.Raw)-1] != '\n' {
			b.raw = append(b.raw, '\n')
		}
		b.mem = append(b.mem, bot.Member{ID: e.ID, Nick: e.Nick, Card: e.Card, Role: e.Role})
	}
	keys := make([]int64, 0, len(buckets))
	for k := range buckets {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	var evs []*bot.Event
	for _, k := range keys {
		b := buckets[k]
		// The same account twice at one moment (once for all groups, once
		// for this one): the later, the group's own row, wins.
		seen := map[string]int{}
		var mem []bot.Member
		for _, m := range b.mem {
			if i, dup := seen[m.ID]; dup {
				mem[i] = m
				continue
			}
			seen[m.ID] = len(mem)
			mem = append(mem, m)
		}
		evs = append(evs, &bot.Event{Kind: bot.KindRoster, Platform: platform, GroupID: groupID, GroupName: groupName,
			Time: b.at.In(cst), Raw: b.raw, Source: src(b.line), Roster: &bot.Roster{Members: mem}})
	}
	return evs
}
