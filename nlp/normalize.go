package nlp

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/longbridgeapp/opencc"
	"golang.org/x/text/unicode/norm"
)

// Normalizer undoes the disguises chat text uses to slip past keyword
// filters. It is safe for concurrent use; build it once per process.
type Normalizer struct {
	t2s   []rune // traditional -> simplified for cjkLo..cjkHi; 0 = unchanged
	abbr  map[string][]rune
	emoji map[rune][]rune
	homo  *homophones
	// isWord reports whether a CJK string is a common word on its own, so
	// a real word is never "corrected" into a lexicon word.
	isWord func(string) bool
}

// CJK Unified Ideographs (with Extension A), the range tables cover.
const (
	cjkLo = 0x3400
	cjkHi = 0x9FFF
)

func isCJK(r rune) bool {
	return (r >= cjkLo && r <= cjkHi) || (r >= 0xF900 && r <= 0xFAFF) || (r >= 0x20000 && r <= 0x3134F)
}

// NewNormalizer builds the tables: traditional -> simplified from OpenCC's
// t2s data, pinyin readings for homophones, abbreviations and emoji from the
// lexicon. isWord may be nil.
func NewNormalizer(lex *Lexicon, isWord func(string) bool) (*Normalizer, error) {
	cc, err := opencc.New("t2s")
	if err != nil {
		return nil, fmt.Errorf("load OpenCC t2s: %w", err)
	}
	n := &Normalizer{
		t2s:    make([]rune, cjkHi-cjkLo+1),
		abbr:   map[string][]rune{},
		emoji:  map[rune][]rune{},
		isWord: isWord,
	}
	if n.isWord == nil {
		n.isWord = func(string) bool { return false }
	}
	var b [4]byte
	for r := rune(cjkLo); r <= cjkHi; r++ {
		s := string(b[:utf8.EncodeRune(b[:], r)])
		out, err := cc.Convert(s)
		if err != nil {
			return nil, fmt.Errorf("OpenCC t2s %q: %w", s, err)
		}
		if out != s && utf8.RuneCountInString(out) == 1 {
			o, _ := utf8.DecodeRuneInString(out)
			n.t2s[r-cjkLo] = o
		}
	}
	var homoWords []string
	for _, w := range lex.sortedWords() {
		if lex.has(w, "abbr") {
			for _, k := range abbrKeys(w) {
				n.abbr[k] = []rune(w)
			}
		}
		if lex.has(w, "homophone") {
			homoWords = append(homoWords, w)
		}
	}
	for e, w := range lex.Emoji {
		r, _ := utf8.DecodeRuneInString(e)
		n.emoji[r] = []rune(w)
	}
	n.homo = newHomophones(homoWords)
	return n, nil
}

// Simplify converts traditional characters to simplified and changes
// nothing else (for names shown to people, such as shop names).
func (n *Normalizer) Simplify(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if r >= cjkLo && r <= cjkHi {
			if to := n.t2s[r-cjkLo]; to != 0 {
				r = to
			}
		}
		b.WriteRune(r)
	}
	return b.String()
}

// text is a working copy: runes and, for each, the original range.
type text struct {
	r []rune
	m []Span
}

func (t *text) add(r rune, s Span) {
	t.r = append(t.r, r)
	t.m = append(t.m, s)
}

func (t *text) reset() {
	t.r, t.m = t.r[:0], t.m[:0]
}

// MaxNormalizeRunes bounds the work on one message: text beyond it is
// passed through unchanged (but still mapped), so a 1 MB message costs
// linear time.
const MaxNormalizeRunes = 1 << 16

// Normalize normalises s. It is idempotent: normalising the result again
// changes nothing.
func (n *Normalizer) Normalize(s string) *Normalized {
	out := &Normalized{Original: s}
	cur := n.base(s, out)
	// Steps feed each other (a separator removed between pinyin initials
	// makes an initialism; a numeral restored next to a unit makes a
	// money amount), so the pipeline runs until nothing changes.
	for pass := 0; pass < 4; pass++ {
		next := n.pass(cur, out)
		if next == cur {
			break // no step changed anything: a fixed point
		}
		same := len(next.r) == len(cur.r)
		for i := 0; same && i < len(next.r); i++ {
			same = next.r[i] == cur.r[i]
		}
		cur = next
		if same {
			break
		}
	}
	out.Runes, out.Map = cur.r, cur.m
	out.Text = string(cur.r)
	return out
}

// base converts the original text rune by rune: compatibility forms,
// case, traditional characters, invisible characters, whitespace.
func (n *Normalizer) base(s string, out *Normalized) *text {
	t := &text{r: make([]rune, 0, len(s)), m: make([]Span, 0, len(s))}
	i := 0
	var prevCR bool
	for _, r := range s {
		sp := Span{i, i + 1}
		i++
		if i > MaxNormalizeRunes {
			t.add(r, sp)
			continue
		}
		switch {
		case r == '\r':
			t.add('\n', sp)
			prevCR = true
			continue
		case r == '\n':
			if prevCR {
				t.m[len(t.m)-1].End = sp.End
				prevCR = false
				continue
			}
			t.add('\n', sp)
		case r < 0x80:
			if r >= 'A' && r <= 'Z' {
				if r == 'W' {
					// "65W" is watts, "1w" is ten thousand: numerals
					// needs to know which was written.
					if out.upperW == nil {
						out.upperW = map[int]bool{}
					}
					out.upperW[sp.Start] = true
				}
				r += 'a' - 'A'
			}
			if r == '\t' || r == '\v' || r == '\f' {
				r = ' '
			}
			if r < 0x20 || r == 0x7f {
				out.change(ChangeInvisible, sp, string(r), "")
				break
			}
			t.add(r, sp)
		case r >= cjkLo && r <= cjkHi:
			if to := n.t2s[r-cjkLo]; to != 0 {
				out.change(ChangeTraditional, sp, string(r), string(to))
				r = to
			}
			t.add(r, sp)
		case r >= 0x3001 && r <= 0x303F:
			// CJK punctuation (。、「」…) stays as it is.
			t.add(r, sp)
		case isFullwidthPunct(r):
			// Kept full-width: it is clause punctuation, not a
			// separator. It becomes ASCII inside Latin text (a
			// full-width URL) in pass.
			t.add(r, sp)
		case unicode.IsSpace(r):
			t.add(' ', sp)
		case invisible(r):
			out.change(ChangeInvisible, sp, string(r), "")
		default:
			var rb [utf8.UTFMax]byte
			p := norm.NFKC.Properties(rb[:utf8.EncodeRune(rb[:], r)])
			if d := p.Decomposition(); d != nil {
				to := strings.ToLower(string(d))
				changed := false
				for _, dr := range to {
					if invisible(dr) {
						continue
					}
					if dr >= cjkLo && dr <= cjkHi && n.t2s[dr-cjkLo] != 0 {
						dr = n.t2s[dr-cjkLo]
					}
					if unicode.IsSpace(dr) {
						dr = ' '
					}
					t.add(dr, sp)
					changed = true
				}
				if changed {
					out.change(ChangeWidth, sp, string(r), to)
				}
				break
			}
			t.add(unicode.ToLower(r), sp)
		}
		prevCR = false
	}
	out.OrigLen = i
	return t
}

// invisible reports characters that carry nothing visible: zero-width
// characters, bidi controls, variation selectors, combining marks (the
// keycap of 5️⃣) and other controls.
func invisible(r rune) bool {
	if r == 0x200D || r == 0x200B || r == 0x200C || r == 0x2060 || r == 0xFEFF {
		return true
	}
	if r >= 0xFE00 && r <= 0xFE0F || r >= 0xE0100 && r <= 0xE01EF {
		return true
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Mn, unicode.Me, unicode.Co, unicode.Cs)
}

// isFullwidthPunct reports full-width ASCII punctuation (！＂＃…～).
func isFullwidthPunct(r rune) bool {
	if r < 0xFF01 || r > 0xFF5E {
		return false
	}
	a := r - 0xFEE0
	return !(a >= '0' && a <= '9' || a >= 'a' && a <= 'z' || a >= 'A' && a <= 'Z')
}

func (out *Normalized) change(k ChangeKind, s Span, from, to string) {
	out.Changes = append(out.Changes, Change{Kind: k, Orig: s, From: from, To: to})
}

func isASCIIAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z'
}

func isLetter(r rune) bool { return r >= 'a' && r <= 'z' }
func isDigit(r rune) bool  { return r >= '0' && r <= '9' }

// isSep reports characters that evasion inserts inside words: ASCII
// spaces, punctuation and symbols, and symbols/emoji outside the lexicon.
// Clause punctuation written full-width or CJK-style (，。、) is not one.
func isSep(r rune) bool {
	if r < 0x80 {
		// '@' starts a mention, which must survive.
		return r == ' ' || (r > 0x20 && r < 0x7f && r != '@' && !isASCIIAlnum(r))
	}
	if isCJK(r) || (r >= 0x3000 && r <= 0x303F) || (r >= 0xFF00 && r <= 0xFFEF) || r == '\n' {
		return false
	}
	return unicode.In(r, unicode.So, unicode.Sk, unicode.Sm, unicode.Pc, unicode.Pd, unicode.Po, unicode.Ps, unicode.Pe, unicode.Zs)
}

// pass runs every step once.
func (n *Normalizer) pass(in *text, out *Normalized) *text {
	t := n.latinPunct(in)
	t = n.spaces(t)
	t = n.repeats(t, out)
	t = n.emojiWords(t, out)
	t = n.joins(t, out)
	t = n.pinyinWords(t, out)
	t = n.cjkSeparators(t, out)
	t = n.homophones(t, out)
	t = n.numerals(t, out)
	return t
}

// latinPunct turns full-width punctuation between ASCII letters or digits
// into ASCII, so a full-width URL reads as a URL.
func (n *Normalizer) latinPunct(in *text) *text {
	r := in.r
	for i := 0; i < len(r); i++ {
		if !isFullwidthPunct(r[i]) || i == 0 || !isASCIIAlnum(r[i-1]) {
			continue
		}
		j := i
		for j < len(r) && isFullwidthPunct(r[j]) {
			j++
		}
		if j < len(r) && isASCIIAlnum(r[j]) {
			for k := i; k < j; k++ {
				r[k] -= 0xFEE0
			}
		}
		i = j
	}
	return in
}

// spaces collapses whitespace runs and trims both ends.
func (n *Normalizer) spaces(in *text) *text {
	clean := len(in.r) == 0 || (in.r[0] != ' ' && in.r[len(in.r)-1] != ' ' && in.r[len(in.r)-1] != '\n')
	for i := 1; clean && i < len(in.r); i++ {
		if in.r[i] == ' ' && (in.r[i-1] == ' ' || in.r[i-1] == '\n') || in.r[i] == '\n' && in.r[i-1] == ' ' {
			clean = false
		}
	}
	if clean {
		return in
	}
	t := &text{r: make([]rune, 0, len(in.r)), m: make([]Span, 0, len(in.m))}
	for i, r := range in.r {
		if r == ' ' && (len(t.r) == 0 || t.r[len(t.r)-1] == ' ' || t.r[len(t.r)-1] == '\n') {
			continue
		}
		if r == '\n' && len(t.r) > 0 && t.r[len(t.r)-1] == ' ' {
			t.r, t.m = t.r[:len(t.r)-1], t.m[:len(t.m)-1]
		}
		t.add(r, in.m[i])
	}
	for len(t.r) > 0 && (t.r[len(t.r)-1] == ' ' || t.r[len(t.r)-1] == '\n') {
		t.r, t.m = t.r[:len(t.r)-1], t.m[:len(t.m)-1]
	}
	return t
}

// repeats collapses runs of three or more of the same Chinese character
// (退退退款, 差差差评) to one. Latin letters are left alone: "www" and ids
// repeat letters on purpose.
func (n *Normalizer) repeats(in *text, out *Normalized) *text {
	run := 1
	found := false
	for i := 1; i < len(in.r); i++ {
		if in.r[i] == in.r[i-1] {
			run++
			if run >= 3 && isCJK(in.r[i]) {
				found = true
				break
			}
		} else {
			run = 1
		}
	}
	if !found {
		return in
	}
	t := &text{r: make([]rune, 0, len(in.r)), m: make([]Span, 0, len(in.m))}
	for i := 0; i < len(in.r); {
		r := in.r[i]
		j := i + 1
		for j < len(in.r) && in.r[j] == r {
			j++
		}
		if j-i >= 3 && isCJK(r) && i < MaxNormalizeRunes {
			sp := Span{in.m[i].Start, in.m[j-1].End}
			t.add(r, sp)
			out.change(ChangeRepeat, sp, strings.Repeat(string(r), j-i), string(r))
		} else {
			t.r = append(t.r, in.r[i:j]...)
			t.m = append(t.m, in.m[i:j]...)
		}
		i = j
	}
	return t
}

// emojiWords replaces emoji that stand for words (🔒 -> 锁).
func (n *Normalizer) emojiWords(in *text, out *Normalized) *text {
	if len(n.emoji) == 0 {
		return in
	}
	var t *text
	for i, r := range in.r {
		w, ok := n.emoji[r]
		if !ok || r < 0x80 {
			if t != nil {
				t.add(r, in.m[i])
			}
			continue
		}
		if t == nil {
			t = &text{r: append(make([]rune, 0, len(in.r)+4), in.r[:i]...), m: append(make([]Span, 0, len(in.m)+4), in.m[:i]...)}
		}
		for _, wr := range w {
			t.add(wr, in.m[i])
		}
		out.change(ChangeEmoji, in.m[i], string(r), string(w))
	}
	if t == nil {
		return in
	}
	return t
}

// joins removes separators between single digits (5.0.0.0, 2 0 0) and
// between single letters (t.k, c-p).
func (n *Normalizer) joins(in *text, out *Normalized) *text {
	// Quick check: a single letter or digit followed by a separator and
	// another letter or digit.
	found := false
	for i := 0; i+2 < len(in.r); i++ {
		if isASCIIAlnum(in.r[i]) && isSep(in.r[i+1]) && isASCIIAlnum(in.r[i+2]) {
			found = true
			break
		}
	}
	if !found {
		return in
	}
	t := &text{r: make([]rune, 0, len(in.r)), m: make([]Span, 0, len(in.m))}
	r := in.r
	for i := 0; i < len(r); {
		if i < MaxNormalizeRunes && (isDigit(r[i]) || isLetter(r[i])) && (i == 0 || !latinBoundary(r[i-1])) {
			class := isDigit
			if isLetter(r[i]) {
				class = isLetter
			}
			// Pattern: x s x s x ... with single-character x and one
			// repeated separator s.
			j := i
			count := 1
			for j+2 < len(r) && isSep(r[j+1]) && r[j+1] != '\n' && class(r[j+2]) &&
				(j+3 >= len(r) || !isASCIIAlnum(r[j+3])) && (count == 1 || r[j+1] == r[i+1]) {
				j += 2
				count++
			}
			min := 2
			if class(r[i]) && isDigit(r[i]) {
				min = 3 // "9.9" is a price, "5.0.0.0" is 5000
			}
			if count >= min && (j+1 >= len(r) || !latinBoundary(r[j+1])) {
				var from strings.Builder
				for k := i; k <= j; k++ {
					from.WriteRune(r[k])
					if k%2 == i%2 {
						sp := in.m[k]
						if k+1 <= j {
							sp.End = in.m[k+1].End
						}
						t.add(r[k], sp)
					}
				}
				out.change(ChangeSeparator, Span{in.m[i].Start, in.m[j].End}, from.String(), string(t.r[len(t.r)-count:]))
				i = j + 1
				continue
			}
		}
		t.add(r[i], in.m[i])
		i++
	}
	return t
}

// latinBoundary reports characters that may not touch a Latin token for it
// to be read as pinyin (it would be part of a URL, an address or an id).
func latinBoundary(r rune) bool {
	return isASCIIAlnum(r) || strings.ContainsRune("./@:=&?_#%-\\~+$", r)
}

// pinyinWords expands pinyin initialisms and pinyin words of lexicon words
// (tk -> 退款, chaping -> 差评) when they stand alone in a Chinese message.
func (n *Normalizer) pinyinWords(in *text, out *Normalized) *text {
	hasCJK := false
	for _, r := range in.r {
		if isCJK(r) {
			hasCJK = true
			break
		}
	}
	if !hasCJK || len(n.abbr) == 0 {
		return in
	}
	var t *text
	r := in.r
	for i := 0; i < len(r); {
		if isLetter(r[i]) && (i == 0 || !latinBoundary(r[i-1])) {
			j := i
			for j < len(r) && isLetter(r[j]) {
				j++
			}
			if j-i >= 2 && j-i <= 16 && (j == len(r) || isDigit(r[j]) || !latinBoundary(r[j])) {
				if w, ok := n.abbr[string(r[i:j])]; ok {
					if t == nil {
						t = &text{r: append(make([]rune, 0, len(r)+8), r[:i]...), m: append(make([]Span, 0, len(r)+8), in.m[:i]...)}
					}
					sp := Span{in.m[i].Start, in.m[j-1].End}
					for _, wr := range w {
						t.add(wr, sp)
					}
					out.change(ChangePinyin, sp, string(r[i:j]), string(w))
					i = j
					continue
				}
			}
			if t != nil {
				t.r = append(t.r, r[i:j]...)
				t.m = append(t.m, in.m[i:j]...)
			}
			i = j
			continue
		}
		if t != nil {
			t.add(r[i], in.m[i])
		}
		i++
	}
	if t == nil {
		return in
	}
	return t
}

// cjkSeparators removes up to three separator characters between two
// Chinese characters (退*款, 锁.库.存, 差🙂评, 退 款).
func (n *Normalizer) cjkSeparators(in *text, out *Normalized) *text {
	var t *text
	r := in.r
	for i := 0; i < len(r); i++ {
		if t != nil {
			t.add(r[i], in.m[i])
		}
		if !isCJK(r[i]) || i >= MaxNormalizeRunes {
			continue
		}
		j := i + 1
		for j < len(r) && j-i <= 4 && isSep(r[j]) {
			j++
		}
		if j == i+1 || j-i > 4 || j >= len(r) || !isCJK(r[j]) {
			continue
		}
		if t == nil {
			t = &text{r: append(make([]rune, 0, len(r)), r[:i+1]...), m: append(make([]Span, 0, len(r)), in.m[:i+1]...)}
		}
		out.change(ChangeSeparator, Span{in.m[i+1].Start, in.m[j-1].End}, string(r[i+1:j]), "")
		i = j - 1
	}
	if t == nil {
		return in
	}
	return t
}
