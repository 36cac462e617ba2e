package nlp

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"
)

// benchTexts reads realistic messages: the development corpus if present,
// else the embedded training lines.
func benchTexts(b *testing.B) []string {
	var texts []string
	for _, p := range []string{"../../shared/corpus/dev_messages.jsonl", "../configs/model/extra.jsonl"} {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var l struct{ Text string }
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				texts = append(texts, l.Text)
			}
		}
		f.Close()
		if len(texts) > 0 {
			return texts
		}
	}
	b.Skip("no corpus for benchmarks")
	return nil
}

func BenchmarkNormalize(b *testing.B) {
	n, texts := normalizer(b), benchTexts(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n.Normalize(texts[i%len(texts)])
	}
}

func BenchmarkTokens(b *testing.B) {
	n, texts := normalizer(b), benchTexts(b)
	seg := testSegmenter(b)
	norms := make([]*Normalized, len(texts))
	for i, t := range texts {
		norms[i] = n.Normalize(t)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		seg.Tokens(norms[i%len(norms)])
	}
}

func BenchmarkSegmentRaw(b *testing.B) {
	texts := benchTexts(b)
	seg := testSegmenter(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		seg.Segment(texts[i%len(texts)])
	}
}

// BenchmarkSegmentModes backs the choice of gse's shortest-path mode.
func BenchmarkSegmentModes(b *testing.B) {
	texts := benchTexts(b)
	s := testSegmenter(b)
	for _, m := range []struct {
		name string
		f    func(string)
	}{
		{"shortest-path", func(t string) { s.seg.Cut(t) }},
		{"dag", func(t string) { s.seg.Cut(t, false) }},
		{"dag+hmm", func(t string) { s.seg.Cut(t, true) }},
	} {
		b.Run(m.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				m.f(texts[i%len(texts)])
			}
		})
	}
}
