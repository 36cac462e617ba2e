package alert

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Labels are an alert's name/value pairs; routes, inhibit rules and
// silences match on them.
type Labels map[string]string

// Built-in labels every alert has.
const (
	LabelCategory  = "category"
	LabelSeverity  = "severity"
	LabelPlatform  = "platform"
	LabelGroup     = "group"
	LabelGroupID   = "group_id"
	LabelGroupName = "group_name"
	LabelShop      = "shop"
)

var builtinLabels = map[string]bool{LabelCategory: true, LabelSeverity: true, LabelPlatform: true,
	LabelGroup: true, LabelGroupID: true, LabelGroupName: true, LabelShop: true}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// String is a stable rendering: {a="1", b="2"}.
func (l Labels) String() string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.Quote(l[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// MatchType is a matcher's operator.
type MatchType string

// Matcher operators.
const (
	MatchEqual     MatchType = "="
	MatchNotEqual  MatchType = "!="
	MatchRegexp    MatchType = "=~"
	MatchNotRegexp MatchType = "!~"
)

// Matcher tests one label. A missing label has the value "".
type Matcher struct {
	Name  string
	Type  MatchType
	Value string
	re    *regexp.Regexp
}

// Matches reports whether the labels satisfy the matcher.
func (m *Matcher) Matches(l Labels) bool {
	v := l[m.Name]
	switch m.Type {
	case MatchEqual:
		return v == m.Value
	case MatchNotEqual:
		return v != m.Value
	case MatchRegexp:
		return m.re.MatchString(v)
	case MatchNotRegexp:
		return !m.re.MatchString(v)
	}
	return false
}

func (m *Matcher) String() string { return m.Name + string(m.Type) + strconv.Quote(m.Value) }

var matcherSyntax = regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$`)

// ParseMatcher reads label="value", label!="value", label=~"regex" or
// label!~"regex"; the value may be unquoted. Regular expressions are
// anchored at both ends, as in Alertmanager.
func ParseMatcher(s string) (*Matcher, error) {
	p := matcherSyntax.FindStringSubmatch(s)
	if p == nil {
		return nil, fmt.Errorf("bad matcher %q: want label=\"value\" (or !=, =~, !~)", s)
	}
	m := &Matcher{Name: p[1], Type: MatchType(p[2]), Value: p[3]}
	if strings.HasPrefix(m.Value, `"`) {
		v, err := strconv.Unquote(m.Value)
		if err != nil {
			return nil, fmt.Errorf("bad matcher %q: value is not a valid quoted string", s)
		}
		m.Value = v
	}
	if m.Type == MatchRegexp || m.Type == MatchNotRegexp {
		re, err := regexp.Compile("^(?:" + m.Value + ")$")
		if err != nil {
			return nil, fmt.Errorf("bad matcher %q: %v", s, err)
		}
		m.re = re
	}
	return m, nil
}

// Matchers all have to match.
type Matchers []*Matcher

// ParseMatchers reads a list of matchers.
func ParseMatchers(ss []string) (Matchers, error) {
	out := make(Matchers, 0, len(ss))
	for _, s := range ss {
		m, err := ParseMatcher(s)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// Matches reports whether every matcher matches.
func (ms Matchers) Matches(l Labels) bool {
	for _, m := range ms {
		if !m.Matches(l) {
			return false
		}
	}
	return true
}

// Strings renders the matchers.
func (ms Matchers) Strings() []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.String()
	}
	return out
}

// JSON encodes the matchers as a list of strings (the silence column).
func (ms Matchers) JSON() string {
	b, _ := json.Marshal(ms.Strings())
	return string(b)
}
