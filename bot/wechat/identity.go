package wechat

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// identityStore gives web-WeChat groups and members keys that survive
// logins, and remembers them in a JSON file next to the hot-login file.
//
// Web WeChat names everything by a UserName ("@…" for people, "@@…" for
// groups) that is valid for one login session only, and it reveals no
// account id (Uin is 0 for everyone but the logged-in account; wxid and
// chatroom ids are never sent). What stays the same across sessions is what
// people see: names, display names, group owner, member lists. The store
// matches a new session's UserNames to earlier keys by those, the way
// wxpy's "puid" does, and is explicit about what it cannot tell apart.
//
// Groups: within a session the UserName decides. In a new session a group
// is matched to a known one that is not already taken in this session, by
// score: the same current name (10), an earlier name (6), the same owner
// display name (5), and the share of member names both have in common (up
// to 10). A match needs the name, or half the members and the owner; a tie
// is not guessed. A new group gets "wxg_" + 16 hex digits of SHA-256 over
// (first name, owner's name), with a counter on collision.
//
// Members: keys are per group. Within a session the UserName decides (so a
// member who changes their display name keeps their key; the new name is
// recorded). In a new session a member is matched to a known one of the
// same group not already taken in this session, by score: same Uin when
// WeChat sends one (decisive), same current display label (10), an earlier
// label (6), same nickname (4), same avatar id (20; a different one -8),
// same AttrStatus (3). Below 4 there is no match; a tie is not guessed. A
// new member gets "wxd_" + 16 hex digits of SHA-256 over (group key,
// display label, avatar id), with a counter on collision.
type identityStore struct {
	path string
	now  func() time.Time

	mu           sync.Mutex
	loaded       bool
	dirty        bool
	groups       map[string]*groupRec
	members      map[string]*memberRec
	groupMembers map[string][]*memberRec
	sessGroup    map[string]*groupRec
	sessMember   map[string]*memberRec
}

type identityFile struct {
	Version int          `json:"version"`
	Groups  []*groupRec  `json:"groups"`
	Members []*memberRec `json:"members"`
}

// groupRec is what the store knows of a group.
type groupRec struct {
	Key       string    `json:"key"`
	Names     []string  `json:"names"`            // oldest first; the last is the current name
	Owner     string    `json:"owner,omitempty"`  // the owner's display label when last seen
	Labels    []string  `json:"labels,omitempty"` // member labels when last seen, sorted
	Session   string    `json:"session,omitempty"`
	UserName  string    `json:"user_name,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// memberRec is what the store knows of a member of a group.
type memberRec struct {
	Key        string    `json:"key"`
	Group      string    `json:"group"`
	Labels     []string  `json:"labels,omitempty"` // display labels seen, oldest first
	Nicks      []string  `json:"nicks,omitempty"`
	Avatar     string    `json:"avatar,omitempty"`
	Uin        int64     `json:"uin,omitempty"`
	AttrStatus int64     `json:"attr_status,omitempty"`
	Session    string    `json:"session,omitempty"`
	UserName   string    `json:"user_name,omitempty"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
}

// memberFacts is what web WeChat says about a member in one session.
type memberFacts struct {
	UserName string
	Nick     string // the account's nickname
	Card     string // the display name in the group (群昵称)
	Avatar   string // stable part of the avatar URL, if any
	Uin      int64
	Attr     int64
}

// label is the name people see in the group: the display name if set,
// else the nickname.
func (f memberFacts) label() string {
	if c := strings.TrimSpace(f.Card); c != "" {
		return c
	}
	return strings.TrimSpace(f.Nick)
}

// How a key was found, for logs and counters.
const (
	idSession   = "session"   // same UserName in the same session
	idMatched   = "matched"   // matched to a key from an earlier session
	idNew       = "new"       // nobody like this seen before
	idAmbiguous = "ambiguous" // several earlier keys fit equally; a new key was made
)

const (
	maxNames  = 20
	maxLabels = 2000
)

func newIdentityStore(path string, now func() time.Time) *identityStore {
	return &identityStore{path: path, now: now}
}

// load reads the file once. A corrupt file is set aside (renamed) so that
// the mapping starts over rather than the account staying offline; the
// error says so.
func (st *identityStore) load() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.loaded {
		return nil
	}
	st.loaded = true
	st.index(nil)
	b, err := os.ReadFile(st.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", st.path, err)
	}
	var f identityFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 {
		aside := st.path + ".corrupt-" + strconv.FormatInt(st.now().Unix(), 10)
		_ = os.Rename(st.path, aside)
		if err == nil {
			err = fmt.Errorf("version %d, want 1", f.Version)
		}
		return fmt.Errorf("identity file %s is unreadable (%v); moved to %s and starting a new mapping", st.path, err, aside)
	}
	st.index(&f)
	return nil
}

func (st *identityStore) index(f *identityFile) {
	st.groups = map[string]*groupRec{}
	st.members = map[string]*memberRec{}
	st.groupMembers = map[string][]*memberRec{}
	st.sessGroup = map[string]*groupRec{}
	st.sessMember = map[string]*memberRec{}
	if f == nil {
		return
	}
	for _, g := range f.Groups {
		if g == nil || g.Key == "" || st.groups[g.Key] != nil {
			continue
		}
		st.groups[g.Key] = g
		if g.Session != "" {
			st.sessGroup[sessKey(g.Session, g.UserName)] = g
		}
	}
	for _, m := range f.Members {
		if m == nil || m.Key == "" || st.members[m.Key] != nil {
			continue
		}
		st.members[m.Key] = m
		st.groupMembers[m.Group] = append(st.groupMembers[m.Group], m)
		if m.Session != "" {
			st.sessMember[sessKey(m.Session, m.Group, m.UserName)] = m
		}
	}
}

// save writes the file when something changed.
func (st *identityStore) save() error {
	st.mu.Lock()
	if !st.dirty {
		st.mu.Unlock()
		return nil
	}
	f := identityFile{Version: 1}
	for _, g := range st.groups {
		f.Groups = append(f.Groups, g)
	}
	for _, m := range st.members {
		f.Members = append(f.Members, m)
	}
	slices.SortFunc(f.Groups, func(a, b *groupRec) int { return strings.Compare(a.Key, b.Key) })
	slices.SortFunc(f.Members, func(a, b *memberRec) int { return strings.Compare(a.Key, b.Key) })
	b, err := json.MarshalIndent(f, "", " ")
	st.dirty = false
	st.mu.Unlock()
	if err == nil {
		err = writeFileAtomic(st.path, b)
	}
	if err != nil {
		st.mu.Lock()
		st.dirty = true
		st.mu.Unlock()
		return fmt.Errorf("save identities: %w", err)
	}
	return nil
}

// resolveGroup returns the key of the group that has userName in session
// sess.
func (st *identityStore) resolveGroup(sess, userName, name, owner string, labels []string) (string, string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.dirty = true
	now := st.now()
	labels = capLabels(labels)
	if g := st.sessGroup[sessKey(sess, userName)]; g != nil {
		st.touchGroup(g, name, owner, labels, now)
		return g.Key, idSession
	}
	var best *groupRec
	bestScore, tie := 0, false
	for _, g := range st.groups {
		if g.Session == sess {
			continue // another group of this session
		}
		score, named := 0, false
		switch {
		case name != "" && last(g.Names) == name:
			score, named = 10, true
		case name != "" && slices.Contains(g.Names, name):
			score, named = 6, true
		}
		ownerMatch := owner != "" && owner == g.Owner
		if ownerMatch {
			score += 5
		}
		overlap := jaccard(labels, g.Labels)
		score += int(overlap * 10)
		if !named && !(overlap >= 0.5 && ownerMatch) {
			continue
		}
		switch {
		case score > bestScore:
			best, bestScore, tie = g, score, false
		case score == bestScore:
			tie = true
		}
	}
	how := idNew
	switch {
	case best != nil && !tie:
		st.bindGroup(best, sess, userName)
		st.touchGroup(best, name, owner, labels, now)
		return best.Key, idMatched
	case best != nil:
		how = idAmbiguous
	}
	key := st.mintKey("wxg_", func(k string) bool { return st.groups[k] != nil }, "group", name, owner)
	g := &groupRec{Key: key, FirstSeen: now}
	st.groups[key] = g
	st.bindGroup(g, sess, userName)
	st.touchGroup(g, name, owner, labels, now)
	return key, how
}

func (st *identityStore) bindGroup(g *groupRec, sess, userName string) {
	if g.Session != "" {
		delete(st.sessGroup, sessKey(g.Session, g.UserName))
	}
	g.Session, g.UserName = sess, userName
	st.sessGroup[sessKey(sess, userName)] = g
}

func (st *identityStore) touchGroup(g *groupRec, name, owner string, labels []string, now time.Time) {
	if name != "" {
		g.Names = appendName(g.Names, name)
	}
	if owner != "" {
		g.Owner = owner
	}
	if len(labels) > 0 {
		g.Labels = labels
	}
	g.LastSeen = now
}

// resolveMember returns the key of the member of group that has f.UserName
// in session sess.
func (st *identityStore) resolveMember(group, sess string, f memberFacts) (string, string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.dirty = true
	now := st.now()
	if m := st.sessMember[sessKey(sess, group, f.UserName)]; m != nil {
		st.touchMember(m, f, now)
		return m.Key, idSession
	}
	label := f.label()
	var best *memberRec
	bestScore, tie := 0, false
	for _, m := range st.groupMembers[group] {
		if m.Session == sess && m.UserName != "" {
			continue // someone else in this session
		}
		score := 0
		if f.Uin != 0 && m.Uin != 0 {
			if f.Uin != m.Uin {
				continue
			}
			score += 1000
		}
		switch {
		case label != "" && last(m.Labels) == label:
			score += 10
		case label != "" && slices.Contains(m.Labels, label):
			score += 6
		}
		if nick := strings.TrimSpace(f.Nick); nick != "" && slices.Contains(m.Nicks, nick) {
			score += 4
		}
		if score < 4 {
			continue // no name in common: avatar and attributes alone do not identify
		}
		if f.Avatar != "" && m.Avatar != "" {
			if f.Avatar == m.Avatar {
				score += 20
			} else {
				score -= 8
			}
		}
		if f.Attr != 0 && f.Attr == m.AttrStatus {
			score += 3
		}
		if score < 4 {
			continue
		}
		switch {
		case score > bestScore:
			best, bestScore, tie = m, score, false
		case score == bestScore:
			tie = true
		}
	}
	how := idNew
	switch {
	case best != nil && !tie:
		st.bindMember(best, sess, f.UserName)
		st.touchMember(best, f, now)
		return best.Key, idMatched
	case best != nil:
		how = idAmbiguous
	}
	m := st.newMember(group, label, f.Avatar, now)
	st.bindMember(m, sess, f.UserName)
	st.touchMember(m, f, now)
	return m.Key, how
}

// byName returns the key of the member of group known by label (the only
// thing a join notice says about who joined), making one when nobody by
// that name is known. A later roster binds it to a session like any other.
func (st *identityStore) byName(group, label string) string {
	st.mu.Lock()
	defer st.mu.Unlock()
	label = strings.TrimSpace(label)
	var found *memberRec
	for _, m := range st.groupMembers[group] {
		if label != "" && last(m.Labels) == label {
			if found != nil {
				found = nil // two people by that name: do not pick one
				break
			}
			found = m
		}
	}
	if found != nil {
		return found.Key
	}
	st.dirty = true
	now := st.now()
	m := st.newMember(group, label, "", now)
	if label != "" {
		m.Labels = []string{label}
	}
	return m.Key
}

func (st *identityStore) newMember(group, label, avatar string, now time.Time) *memberRec {
	key := st.mintKey("wxd_", func(k string) bool { return st.members[k] != nil }, "member", group, label, avatar)
	m := &memberRec{Key: key, Group: group, FirstSeen: now, LastSeen: now}
	st.members[key] = m
	st.groupMembers[group] = append(st.groupMembers[group], m)
	return m
}

func (st *identityStore) bindMember(m *memberRec, sess, userName string) {
	if m.Session != "" {
		delete(st.sessMember, sessKey(m.Session, m.Group, m.UserName))
	}
	m.Session, m.UserName = sess, userName
	st.sessMember[sessKey(sess, m.Group, userName)] = m
}

func (st *identityStore) touchMember(m *memberRec, f memberFacts, now time.Time) {
	if l := f.label(); l != "" {
		m.Labels = appendName(m.Labels, l)
	}
	if n := strings.TrimSpace(f.Nick); n != "" {
		m.Nicks = appendName(m.Nicks, n)
	}
	if f.Avatar != "" {
		m.Avatar = f.Avatar
	}
	if f.Uin != 0 {
		m.Uin = f.Uin
	}
	if f.Attr != 0 {
		m.AttrStatus = f.Attr
	}
	m.LastSeen = now
}

// mintKey derives a key from parts, adding a counter until it is free.
func (st *identityStore) mintKey(prefix string, taken func(string) bool, parts ...string) string {
	key := prefix + shortHash(parts...)
	for n := 2; taken(key); n++ {
		key = prefix + shortHash(append(parts, strconv.Itoa(n))...)
	}
	return key
}

// shortHash is 16 hex digits of SHA-256 over length-prefixed parts.
func shortHash(parts ...string) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func sessKey(parts ...string) string { return strings.Join(parts, "\x00") }

func last(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// appendName records name as the latest, keeping one copy of each and at
// most maxNames.
func appendName(names []string, name string) []string {
	if last(names) == name {
		return names
	}
	names = slices.DeleteFunc(names, func(s string) bool { return s == name })
	names = append(names, name)
	if len(names) > maxNames {
		names = names[len(names)-maxNames:]
	}
	return names
}

func capLabels(labels []string) []string {
	out := make([]string, 0, len(labels))
	for _, l := range labels {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > maxLabels {
		out = out[:maxLabels]
	}
	return out
}

// jaccard is the share of two sorted label sets that they have in common.
func jaccard(a, b []string) float64 {
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	i, j, both := 0, 0, 0
	for i < len(a) && j < len(b) {
		switch strings.Compare(a[i], b[j]) {
		case 0:
			both++
			i++
			j++
		case -1:
			i++
		default:
			j++
		}
	}
	return float64(both) / float64(len(a)+len(b)-both)
}
