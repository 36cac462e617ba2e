package nlp

import (
	"strings"
	"unicode/utf8"

	"github.com/mozillazg/go-pinyin"
)

// homophones finds windows of text that sound like a lexicon word: every
// character shares a reading (fuzzy, toneless, any of its heteronyms) with
// the word's character in the same place. Readings come from the pinyin
// library, so any sound-alike spelling is covered, not a list of known
// misspellings.
type homophones struct {
	readings [][]uint16 // per CJK rune (index r-cjkLo), fuzzy syllable ids
	words    [][]rune
	// wordReadings[w][k] is the reading of character k in word w.
	wordReadings [][][]uint16
	byFirst      map[uint16][]int
	// byID is byFirst as a slice; mayStart marks the characters that can
	// start a window at all, so most characters cost one table read.
	byID     [][]int
	mayStart []bool
	isStart  []bool // first characters of exact words (dense)
	exact    map[string]bool
	starts   map[rune]bool // first characters of exact words
	maxLen   int
}

// fuzzySyllable folds the distinctions chat writers (and input methods)
// blur: zh/z, ch/c, sh/s, n/l, and front/back nasals an/ang, en/eng, in/ing.
func fuzzySyllable(s string) string {
	switch {
	case strings.HasPrefix(s, "zh"):
		s = "z" + s[2:]
	case strings.HasPrefix(s, "ch"):
		s = "c" + s[2:]
	case strings.HasPrefix(s, "sh"):
		s = "s" + s[2:]
	case strings.HasPrefix(s, "l"):
		s = "n" + s[1:]
	}
	if strings.HasSuffix(s, "ng") && (strings.HasSuffix(s, "ang") || strings.HasSuffix(s, "eng") || strings.HasSuffix(s, "ing")) {
		s = s[:len(s)-1]
	}
	return s
}

func newHomophones(words []string) *homophones {
	h := &homophones{
		readings: make([][]uint16, cjkHi-cjkLo+1),
		byFirst:  map[uint16][]int{},
		exact:    map[string]bool{},
		starts:   map[rune]bool{},
	}
	ids := map[string]uint16{}
	a := pinyin.NewArgs()
	a.Heteronym = true
	for r := rune(cjkLo); r <= cjkHi; r++ {
		syl := pinyin.SinglePinyin(r, a)
		if len(syl) == 0 {
			continue
		}
		seen := make([]uint16, 0, len(syl))
	next:
		for _, s := range syl {
			f := fuzzySyllable(s)
			id, ok := ids[f]
			if !ok {
				id = uint16(len(ids) + 1)
				ids[f] = id
			}
			for _, x := range seen {
				if x == id {
					continue next
				}
			}
			seen = append(seen, id)
		}
		h.readings[r-cjkLo] = seen
	}
	wa := pinyin.NewArgs()
	for _, w := range words {
		wr := []rune(w)
		// A lexicon word is read as it is pronounced in the word (单 in
		// 下单 is dan, never shan); the window being compared may use
		// any reading of its characters.
		syl := pinyin.LazyPinyin(w, wa)
		if len(syl) != len(wr) {
			continue
		}
		wread := make([][]uint16, len(wr))
		for k, sy := range syl {
			id, ok := ids[fuzzySyllable(sy)]
			if !ok {
				wread = nil
				break
			}
			wread[k] = []uint16{id}
		}
		if wread == nil {
			continue
		}
		idx := len(h.words)
		h.words = append(h.words, wr)
		h.wordReadings = append(h.wordReadings, wread)
		h.exact[w] = true
		h.starts[wr[0]] = true
		h.maxLen = max(h.maxLen, len(wr))
		h.byFirst[wread[0][0]] = append(h.byFirst[wread[0][0]], idx)
	}
	h.byID = make([][]int, len(ids)+1)
	for id, ws := range h.byFirst {
		h.byID[id] = ws
	}
	h.mayStart = make([]bool, cjkHi-cjkLo+1)
	h.isStart = make([]bool, cjkHi-cjkLo+1)
	for i, rs := range h.readings {
		for _, id := range rs {
			if len(h.byID[id]) > 0 {
				h.mayStart[i] = true
			}
		}
	}
	for r := range h.starts {
		if r >= cjkLo && r <= cjkHi {
			h.isStart[r-cjkLo] = true
		}
	}
	return h
}

func (h *homophones) read(r rune) []uint16 {
	if r < cjkLo || r > cjkHi {
		return nil
	}
	return h.readings[r-cjkLo]
}

func share(a, b []uint16) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

// match returns the longest lexicon word the window starting at i sounds
// like, or -1. A window that is the word itself is not a match; one that
// shares no character with the word is not either (too many real words
// sound alike by chance).
func (h *homophones) match(r []rune, i int) (word, length int) {
	word = -1
	if r[i] < cjkLo || r[i] > cjkHi || !h.mayStart[r[i]-cjkLo] {
		return word, 0
	}
	for _, id := range h.read(r[i]) {
		for _, wi := range h.byID[id] {
			w := h.words[wi]
			if len(w) <= length || i+len(w) > len(r) {
				continue
			}
			same, ok := 0, true
			for k, wr := range w {
				c := r[i+k]
				if c == wr {
					same++
					continue
				}
				if !share(h.read(c), h.wordReadings[wi][k]) {
					ok = false
					break
				}
			}
			if ok && same > 0 && same < len(w) {
				word, length = wi, len(w)
			}
		}
	}
	return word, length
}

// homophones replaces sound-alike spellings of lexicon words (退宽 ->
// 退款, 库纯 -> 库存), unless the spelling is a common word of its own.
func (n *Normalizer) homophones(in *text, out *Normalized) *text {
	h := n.homo
	if h == nil || len(h.words) == 0 {
		return in
	}
	var t *text
	r := in.r
	for i := 0; i < len(r); {
		if i >= MaxNormalizeRunes || !isCJK(r[i]) {
			if t != nil {
				t.add(r[i], in.m[i])
			}
			i++
			continue
		}
		// A lexicon word already spelled right is left alone, and so is
		// the character after it.
		if l := h.exactAt(r, i); l > 0 {
			if t != nil {
				t.r = append(t.r, r[i:i+l]...)
				t.m = append(t.m, in.m[i:i+l]...)
			}
			i += l
			continue
		}
		wi, l := h.match(r, i)
		if wi >= 0 {
			window := string(r[i : i+l])
			if !n.isWord(window) {
				if t == nil {
					t = &text{r: append(make([]rune, 0, len(r)), r[:i]...), m: append(make([]Span, 0, len(r)), in.m[:i]...)}
				}
				w := h.words[wi]
				for k, wr := range w {
					t.add(wr, in.m[i+k])
				}
				out.change(ChangeHomophone, Span{in.m[i].Start, in.m[i+l-1].End}, window, string(w))
				i += l
				continue
			}
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

// exactAt returns the length of the longest lexicon word spelled exactly at
// i, or 0.
func (h *homophones) exactAt(r []rune, i int) int {
	if r[i] < cjkLo || r[i] > cjkHi || !h.isStart[r[i]-cjkLo] {
		return 0
	}
	var buf [64]byte
	for l := min(h.maxLen, len(r)-i); l >= 2; l-- {
		b := buf[:0]
		for _, c := range r[i : i+l] {
			b = utf8.AppendRune(b, c)
		}
		if h.exact[string(b)] { // no allocation: Go looks up []byte keys in place
			return l
		}
	}
	return 0
}
