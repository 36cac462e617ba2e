package nlp

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/mozillazg/go-pinyin"
	"gopkg.in/yaml.v3"
)

// Lexicon is the domain vocabulary normalisation restores and the
// segmenter keeps whole (configs/nlp/lexicon.yaml).
type Lexicon struct {
	// Words maps each domain word to its flags ("abbr", "homophone").
	Words map[string][]string `yaml:"words"`
	// Emoji maps an emoji to the word it stands for.
	Emoji map[string]string `yaml:"emoji"`

	// lines records where each word was defined, for error messages.
	lines map[string]int
}

// ParseLexicon reads a lexicon file. name is used in errors, which have the
// form "name:line: problem".
func ParseLexicon(b []byte, name string) (*Lexicon, error) {
	var root yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&root); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	var lex Lexicon
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&lex); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	lex.lines = map[string]int{}
	if len(root.Content) > 0 {
		doc := root.Content[0]
		for i := 0; i+1 < len(doc.Content); i += 2 {
			if doc.Content[i].Value != "words" {
				continue
			}
			words := doc.Content[i+1]
			for j := 0; j+1 < len(words.Content); j += 2 {
				lex.lines[words.Content[j].Value] = words.Content[j].Line
			}
		}
	}
	if err := lex.validate(name); err != nil {
		return nil, err
	}
	return &lex, nil
}

func (l *Lexicon) validate(name string) error {
	at := func(w string) string { return fmt.Sprintf("%s:%d", name, l.lines[w]) }
	initials := map[string]string{}
	for _, w := range l.sortedWords() {
		flags := l.Words[w]
		n := utf8.RuneCountInString(w)
		if n < 2 || n > 8 {
			return fmt.Errorf("%s: word %q must be 2-8 characters", at(w), w)
		}
		for _, f := range flags {
			switch f {
			case "abbr":
				for _, key := range abbrKeys(w) {
					if prev, dup := initials[key]; dup && prev != w {
						return fmt.Errorf("%s: %q abbreviates both %q and %q", at(w), key, prev, w)
					}
					initials[key] = w
				}
			case "homophone":
			default:
				return fmt.Errorf("%s: word %q has unknown flag %q (want abbr or homophone)", at(w), w, f)
			}
		}
	}
	for e, w := range l.Emoji {
		if e == "" || w == "" {
			return fmt.Errorf("%s: emoji entries need an emoji and a word", name)
		}
		if utf8.RuneCountInString(strings.TrimSuffix(e, "\uFE0F")) != 1 {
			return fmt.Errorf("%s: emoji %q must be a single character", name, e)
		}
	}
	return nil
}

func (l *Lexicon) sortedWords() []string {
	ws := make([]string, 0, len(l.Words))
	for w := range l.Words {
		ws = append(ws, w)
	}
	sort.Strings(ws)
	return ws
}

func (l *Lexicon) has(word, flag string) bool {
	for _, f := range l.Words[word] {
		if f == flag {
			return true
		}
	}
	return false
}

// abbrKeys returns the Latin spellings that stand for a word: its pinyin
// initials (退款 -> tk) and its full toneless pinyin (tuikuan).
func abbrKeys(word string) []string {
	a := pinyin.NewArgs()
	syl := pinyin.LazyPinyin(word, a)
	if len(syl) != utf8.RuneCountInString(word) {
		return nil
	}
	var ini, full strings.Builder
	for _, s := range syl {
		ini.WriteByte(s[0])
		full.WriteString(s)
	}
	return []string{ini.String(), full.String()}
}
