// Package nlp turns a chat message into what detection reads: a normalised
// text that undoes the usual disguises (full-width and circled characters,
// traditional characters, zero-width and separator characters inside
// words, repeated characters, homophones and look-alikes, pinyin
// initialisms, emoji standing for words, Chinese numerals), an offset map
// from every normalised character back to the original characters it came
// from, gse word segmentation, and entities (links, item ids, 淘口令, shop
// names, money, counts, deadlines, contact and payment details).
//
// All offsets exposed to callers are rune offsets. Offsets into the
// original text are what explanations and the console highlight.
package nlp

// Span is a half-open range [Start, End) of rune offsets.
type Span struct {
	Start int `json:"start"`
	End   int `json:"end"`
}

// Normalized is a message after normalisation.
type Normalized struct {
	// Original is the message text as received.
	Original string
	// Text is the normalised text.
	Text string
	// Runes is Text as runes; Map[i] is the original rune range that
	// normalised rune i came from. Several normalised runes may share one
	// original range (a numeral "三千五" becomes "3500"), and one
	// normalised rune may cover several original runes ("退*款" loses its
	// separator into the span of a neighbour).
	Runes []rune
	Map   []Span
	// Changes lists what normalisation undid, in order, for explanations
	// and as evidence of evasion.
	Changes []Change
	// OrigLen is the length of Original in runes.
	OrigLen int

	upperW map[int]bool // original positions of a capital W
}

// ChangeKind names a normalisation step.
type ChangeKind string

// Normalisation steps that are recorded as changes.
const (
	ChangeWidth       ChangeKind = "width"       // full-width, circled and other compatibility forms
	ChangeTraditional ChangeKind = "traditional" // traditional -> simplified
	ChangeInvisible   ChangeKind = "invisible"   // zero-width, control and format characters
	ChangeSeparator   ChangeKind = "separator"   // symbols, spaces or emoji inside a word
	ChangeRepeat      ChangeKind = "repeat"      // runs of one repeated character
	ChangeHomophone   ChangeKind = "homophone"   // homophone or look-alike of a lexicon word
	ChangePinyin      ChangeKind = "pinyin"      // pinyin word or initialism of a lexicon word
	ChangeEmoji       ChangeKind = "emoji"       // emoji standing for a word
	ChangeNumeral     ChangeKind = "numeral"     // Chinese or mixed numeral to digits
)

// Change records one normalisation that altered the text.
type Change struct {
	Kind ChangeKind `json:"kind"`
	// Orig is the affected range of the original text, Norm the range of
	// the normalised text that replaced it.
	Orig Span   `json:"orig"`
	Norm Span   `json:"norm"`
	From string `json:"from"`
	To   string `json:"to"`
}

// OrigSpan maps a normalised rune range [start, end) to the original rune
// range it came from. Out-of-range input is clamped; an empty range maps to
// an empty range at the corresponding original position.
func (n *Normalized) OrigSpan(start, end int) Span {
	if len(n.Map) == 0 {
		return Span{}
	}
	if start < 0 {
		start = 0
	}
	if end > len(n.Map) {
		end = len(n.Map)
	}
	if start >= len(n.Map) {
		return Span{n.OrigLen, n.OrigLen}
	}
	if end <= start {
		p := n.Map[start].Start
		return Span{p, p}
	}
	s := Span{n.Map[start].Start, n.Map[end-1].End}
	for i := start; i < end; i++ {
		s.Start = min(s.Start, n.Map[i].Start)
		s.End = max(s.End, n.Map[i].End)
	}
	return s
}

// OrigText returns the original text of a normalised rune range.
func (n *Normalized) OrigText(start, end int) string {
	s := n.OrigSpan(start, end)
	return runeSlice(n.Original, s.Start, s.End)
}

// runeSlice returns s[start:end] counted in runes.
func runeSlice(s string, start, end int) string {
	if start >= end {
		return ""
	}
	i, bs, be := 0, -1, len(s)
	for b := range s {
		if i == start {
			bs = b
		}
		if i == end {
			be = b
			break
		}
		i++
	}
	if bs < 0 {
		return ""
	}
	return s[bs:be]
}

// Identity wraps text without normalising it: every rune maps to itself.
// Tests of later stages use it to isolate them from normalisation.
func Identity(s string) *Normalized {
	r := []rune(s)
	m := make([]Span, len(r))
	for i := range r {
		m[i] = Span{i, i + 1}
	}
	return &Normalized{Original: s, Text: s, Runes: r, Map: m, OrigLen: len(r)}
}
