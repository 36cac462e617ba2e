package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/coregx/ahocorasick"
	"github.com/qunshao/qunshao/nlp"
)

// Engine is a loaded, compiled set of rule packs. It is immutable and safe
// for concurrent use; reloading builds a new Engine.
type Engine struct {
	Packs []*Pack
	Rules []*Rule
	// Version is a hash of the pack files: verdicts record it.
	Version string

	lists     []string       // list names by id
	listID    map[string]int // name -> id
	listTerms [][]string     // id -> normalised terms
	listWhere []string       // id -> file:line

	terms     []string // unique terms, by pattern index
	termLists [][]int  // pattern index -> list ids
	termIndex map[string]int
	ac        *ahocorasick.Automaton

	pool sync.Pool
}

// Hit is a rule that fired on a message.
type Hit struct {
	Rule *Rule
	// Spans are rune offsets into the original text of the terms that
	// made the rule fire, merged and sorted.
	Spans []nlp.Span
	// Terms are those terms as matched in the normalised text.
	Terms []string
}

// Result is what the engine found in one message.
type Result struct {
	Hits []Hit
	// Lists are the names of the lists with a term in the message, for
	// the classifier.
	Lists []string
}

var ruleIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)
var listNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// LoadFS loads every *.yaml file under dir in fsys.
func LoadFS(fsys fs.FS, dir string) (*Engine, error) {
	files := map[string][]byte{}
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || (path.Ext(p) != ".yaml" && path.Ext(p) != ".yml") {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		files[p] = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read rule packs in %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no rule packs (*.yaml) in %s", dir)
	}
	return Load(files)
}

// LoadDir loads every *.yaml file in a directory of the file system.
func LoadDir(dir string) (*Engine, error) {
	e, err := LoadFS(os.DirFS(dir), ".")
	if err != nil {
		return nil, err
	}
	for _, p := range e.Packs {
		p.File = filepath.Join(dir, p.File)
	}
	for _, r := range e.Rules {
		r.File = filepath.Join(dir, r.File)
	}
	return e, nil
}

// Load parses, checks and compiles packs given as file name -> contents.
// It reports every problem it finds, each as "file:line: problem".
func Load(files map[string][]byte) (*Engine, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	e := &Engine{listID: map[string]int{}, termIndex: map[string]int{}}
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(files[n]))
		h.Write(files[n])
	}
	e.Version = hex.EncodeToString(h.Sum(nil))[:12]
	var errs []error
	for _, n := range names {
		p, err := ParsePack(files[n], n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		e.Packs = append(e.Packs, p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// Lists first: rules anywhere may use lists from any pack.
	for _, p := range e.Packs {
		for _, name := range p.listNames() {
			where := fmt.Sprintf("%s:%d", p.File, p.listLines[name])
			if !listNameRE.MatchString(name) {
				errs = append(errs, fmt.Errorf("%s: list name %q must be lower_case_with_underscores", where, name))
				continue
			}
			if id, dup := e.listID[name]; dup {
				errs = append(errs, fmt.Errorf("%s: list %q already defined at %s", where, name, e.listWhere[id]))
				continue
			}
			e.listID[name] = len(e.lists)
			e.lists = append(e.lists, name)
			e.listWhere = append(e.listWhere, where)
		}
	}
	// Then terms, resolving @list references.
	raw := map[string][]string{}
	for _, p := range e.Packs {
		for name, items := range p.Lists {
			raw[name] = items
		}
	}
	e.listTerms = make([][]string, len(e.lists))
	for id, name := range e.lists {
		terms, err := e.resolve(name, raw, map[string]bool{})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: list %q: %w", e.listWhere[id], name, err))
			continue
		}
		if len(terms) == 0 {
			errs = append(errs, fmt.Errorf("%s: list %q is empty", e.listWhere[id], name))
		}
		e.listTerms[id] = terms
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	e.buildMatcher()
	// Then rules.
	ids := map[string]string{}
	for _, p := range e.Packs {
		for _, r := range p.Rules {
			if err := e.compileRule(p, r); err != nil {
				errs = append(errs, fmt.Errorf("%s: rule %q: %w", r.Where(), r.ID, err))
				continue
			}
			if prev, dup := ids[r.ID]; dup {
				errs = append(errs, fmt.Errorf("%s: rule id %q already used at %s", r.Where(), r.ID, prev))
				continue
			}
			ids[r.ID] = r.Where()
			e.Rules = append(e.Rules, r)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	e.pool.New = func() any { return &ctx{e: e} }
	return e, nil
}

func (e *Engine) resolve(name string, raw map[string][]string, visiting map[string]bool) ([]string, error) {
	if visiting[name] {
		return nil, fmt.Errorf("includes itself")
	}
	visiting[name] = true
	defer delete(visiting, name)
	var out []string
	for _, it := range raw[name] {
		if strings.HasPrefix(it, "@") {
			sub, ok := raw[it[1:]]
			if !ok || sub == nil {
				return nil, fmt.Errorf("includes unknown list %q", it[1:])
			}
			terms, err := e.resolve(it[1:], raw, visiting)
			if err != nil {
				return nil, err
			}
			out = append(out, terms...)
			continue
		}
		t := normalizeTerm(it)
		if t == "" {
			return nil, fmt.Errorf("has an empty term")
		}
		out = append(out, t)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// normalizeTerm brings a list term to the form normalised text has: lower
// case, no surrounding space. (Terms are written in simplified Chinese.)
func normalizeTerm(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

func (e *Engine) buildMatcher() {
	for id, terms := range e.listTerms {
		for _, t := range terms {
			i, ok := e.termIndex[t]
			if !ok {
				i = len(e.terms)
				e.termIndex[t] = i
				e.terms = append(e.terms, t)
				e.termLists = append(e.termLists, nil)
			}
			e.termLists[i] = append(e.termLists[i], id)
		}
	}
	if len(e.terms) == 0 {
		return // packs without lists: nothing to match
	}
	ac, err := ahocorasick.NewBuilder().AddStrings(e.terms).Build()
	if err != nil {
		// Only an empty pattern set fails, handled above.
		panic(fmt.Sprintf("rules: build matcher: %v", err))
	}
	e.ac = ac
}

func (e *Engine) compileRule(p *Pack, r *Rule) error {
	if !ruleIDRE.MatchString(r.ID) {
		return fmt.Errorf("id must be lower case letters, digits, '.', '_' or '-'")
	}
	if !slices.Contains(Categories, r.Category) {
		return fmt.Errorf("category %q, want one of %s", r.Category, strings.Join(Categories, ", "))
	}
	if !slices.Contains(Severities, r.Severity) {
		return fmt.Errorf("severity %q, want one of %s", r.Severity, strings.Join(Severities, ", "))
	}
	switch r.Status {
	case "":
		r.Status = Stable
	case Stable, Experimental:
	default:
		return fmt.Errorf("status %q, want stable or experimental", r.Status)
	}
	if strings.TrimSpace(r.Condition) == "" {
		return fmt.Errorf("condition is empty")
	}
	if strings.TrimSpace(r.Description) == "" {
		return fmt.Errorf("description is empty")
	}
	if len(r.Examples.Positive) == 0 || len(r.Examples.Negative) == 0 {
		return fmt.Errorf("needs at least one positive and one negative example")
	}
	c, err := e.compileCondition(r.Condition, p.Macros)
	if err != nil {
		return err
	}
	r.cond = c
	r.except = nil
	for i, ex := range r.Exceptions {
		c, err := e.compileCondition(ex, p.Macros)
		if err != nil {
			return fmt.Errorf("exceptions[%d]: %w", i, err)
		}
		r.except = append(r.except, c)
	}
	return nil
}

// ListNames returns every list name, sorted.
func (e *Engine) ListNames() []string {
	out := slices.Clone(e.lists)
	sort.Strings(out)
	return out
}

// ListTerms returns the terms of a list.
func (e *Engine) ListTerms(name string) []string {
	if id, ok := e.listID[name]; ok {
		return slices.Clone(e.listTerms[id])
	}
	return nil
}

// Rule returns a rule by id.
func (e *Engine) Rule(id string) *Rule {
	for _, r := range e.Rules {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// Evaluate runs every enabled rule on an analysed message.
func (e *Engine) Evaluate(a *nlp.Analysis, role string) *Result {
	c := e.pool.Get().(*ctx)
	defer e.pool.Put(c)
	c.reset(a, role)
	res := &Result{}
	n := 0
	for _, ms := range c.matches {
		if len(ms) > 0 {
			n++
		}
	}
	res.Lists = make([]string, 0, n)
	for id, ms := range c.matches {
		if len(ms) > 0 {
			res.Lists = append(res.Lists, e.lists[id])
		}
	}
	for _, r := range e.Rules {
		if !r.IsEnabled() || !c.fires(r) {
			continue
		}
		res.Hits = append(res.Hits, c.hit(r))
	}
	return res
}

// fires evaluates a rule's guard, condition and exceptions.
func (c *ctx) fires(r *Rule) bool {
	if g := r.cond.guard; g != nil {
		any := false
		for _, l := range g {
			if len(c.matches[l]) > 0 {
				any = true
				break
			}
		}
		if !any {
			return false
		}
	}
	if !r.cond.eval(c) {
		return false
	}
	for _, ex := range r.except {
		if ex.eval(c) {
			return false
		}
	}
	return true
}

func (c *ctx) hit(r *Rule) Hit {
	h := Hit{Rule: r}
	var spans []nlp.Span
	for _, l := range r.cond.positive {
		for _, m := range c.matches[l] {
			spans = append(spans, c.a.OrigSpan(m.start, m.end))
			t := c.e.terms[m.term]
			if !slices.Contains(h.Terms, t) {
				h.Terms = append(h.Terms, t)
			}
		}
	}
	h.Spans = mergeSpans(spans)
	return h
}

func mergeSpans(s []nlp.Span) []nlp.Span {
	if len(s) == 0 {
		return nil
	}
	sort.Slice(s, func(i, j int) bool { return s[i].Start < s[j].Start || s[i].Start == s[j].Start && s[i].End < s[j].End })
	out := []nlp.Span{s[0]}
	for _, x := range s[1:] {
		last := &out[len(out)-1]
		if x.Start <= last.End {
			last.End = max(last.End, x.End)
			continue
		}
		out = append(out, x)
	}
	return out
}

// match is one occurrence of a term, in normalised rune offsets.
type match struct {
	start, end int
	term       int
}

// ctx is the per-message state conditions read. It is pooled.
type ctx struct {
	e        *Engine
	a        *nlp.Analysis
	role     string
	money    float64
	matches  [][]match
	wordDone bool
	words    []bool
	runeAt   []int

	quotesDone bool
	quotes     [][2]int
	buf        []byte
}

func (c *ctx) reset(a *nlp.Analysis, role string) {
	e := c.e
	c.a, c.role, c.money, c.wordDone, c.quotesDone = a, role, 0, false, false
	if cap(c.matches) < len(e.lists) {
		c.matches = make([][]match, len(e.lists))
		c.words = make([]bool, len(e.lists))
	}
	c.matches = c.matches[:len(e.lists)]
	for i := range c.matches {
		c.matches[i] = c.matches[i][:0]
	}
	for _, en := range a.Entities {
		if en.Type == nlp.EntMoney {
			if v, err := strconv.ParseFloat(en.Value, 64); err == nil {
				c.money = max(c.money, v)
			}
		}
	}
	text := a.Text
	if text == "" {
		return
	}
	// Byte offset -> rune offset.
	if cap(c.runeAt) < len(text)+1 {
		c.runeAt = make([]int, len(text)+1)
	}
	c.runeAt = c.runeAt[:len(text)+1]
	ri := 0
	for bi := 0; bi < len(text); {
		_, sz := utf8.DecodeRuneInString(text[bi:])
		for k := 0; k < sz; k++ {
			c.runeAt[bi+k] = ri
		}
		bi += sz
		ri++
	}
	c.runeAt[len(text)] = ri
	if e.ac == nil {
		return
	}
	c.buf = append(c.buf[:0], text...)
	for _, m := range e.ac.FindAllOverlapping(c.buf) {
		t := m.PatternID
		s, en := c.runeAt[m.Start], c.runeAt[m.End]
		for _, l := range e.termLists[t] {
			c.matches[l] = append(c.matches[l], match{s, en, t})
		}
	}
}

func (c *ctx) has(l int) bool { return len(c.matches[l]) > 0 }

func (c *ctx) hits(l int) int {
	ms := c.matches[l]
	if len(ms) < 2 {
		return len(ms)
	}
	n := 0
	for i, m := range ms {
		dup := false
		for _, p := range ms[:i] {
			if p.term == m.term {
				dup = true
				break
			}
		}
		if !dup {
			n++
		}
	}
	return n
}

func (c *ctx) near(a, b, n int, ordered bool) bool {
	for _, x := range c.matches[a] {
		for _, y := range c.matches[b] {
			if ordered {
				if y.start >= x.end && y.start-x.end <= n {
					return true
				}
				continue
			}
			gap := max(x.start, y.start) - min(x.end, y.end)
			if gap <= n && !(x.start == y.start && x.end == y.end) {
				return true
			}
		}
	}
	return false
}

// inquote reports whether list l matches and every match lies inside
// quotation marks (a quoted demand is not a demand).
func (c *ctx) inquote(l int) bool {
	ms := c.matches[l]
	if len(ms) == 0 {
		return false
	}
	if !c.quotesDone {
		c.quotes = c.quotes[:0]
		open := -1
		var closer rune
		for i, r := range c.a.Runes {
			if open >= 0 {
				if r == closer {
					c.quotes = append(c.quotes, [2]int{open, i})
					open = -1
				}
				continue
			}
			if cl, ok := quotePairs[r]; ok {
				open, closer = i, cl
			}
		}
		c.quotesDone = true
	}
	for _, m := range ms {
		inside := false
		for _, q := range c.quotes {
			if m.start > q[0] && m.end <= q[1] {
				inside = true
				break
			}
		}
		if !inside {
			return false
		}
	}
	return true
}

var quotePairs = map[rune]rune{'“': '”', '「': '」', '『': '』', '"': '"', '‘': '’', '《': '》'}

func (c *ctx) word(l int) bool {
	if !c.wordDone {
		for i := range c.words {
			c.words[i] = false
		}
		for _, t := range c.a.Tokens {
			if i, ok := c.e.termIndex[t.Text]; ok {
				for _, id := range c.e.termLists[i] {
					c.words[id] = true
				}
			}
		}
		c.wordDone = true
	}
	return c.words[l]
}

func (c *ctx) entityCount(t string) int {
	n := 0
	for _, en := range c.a.Entities {
		if string(en.Type) == t {
			n++
		}
	}
	return n
}

func (c *ctx) evaded(kind string) bool {
	for _, ch := range c.a.Changes {
		if kind == "any" || string(ch.Kind) == kind {
			return true
		}
	}
	return false
}

func knownEntity(t string) bool { return slices.Contains(entityTypes(), t) }

func entityTypes() []string {
	return []string{"item_link", "shop_link", "short_link", "url", "item_id", "tao_token", "shop", "money", "count",
		"deadline", "time", "qq", "wechat", "phone", "alipay", "bank_account", "mention", "payment_code"}
}

func knownEvasion(k string) bool { return slices.Contains(evasionKinds(), k) }

func evasionKinds() []string {
	return []string{"any", "width", "traditional", "invisible", "separator", "repeat", "homophone", "pinyin", "emoji", "numeral"}
}
