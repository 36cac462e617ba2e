package detect_test

import (
	"testing"

	"github.com/qunshao/qunshao/detect"
	"github.com/qunshao/qunshao/nlp"
)

func BenchmarkStages(b *testing.B) {
	d, texts := detector(b), benchTexts(b)
	a := d.Analyzer()
	e := d.Engine()
	var ns []*nlp.Normalized
	var as []*nlp.Analysis
	for _, t := range texts {
		x := a.Analyze(t)
		as = append(as, x)
		ns = append(ns, x.Normalized)
	}
	b.Run("normalize", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			a.Norm.Normalize(texts[i%len(texts)])
		}
	})
	b.Run("tokens", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			a.Seg.Tokens(ns[i%len(ns)])
		}
	})
	b.Run("entities", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			nlp.ExtractEntities(ns[i%len(ns)])
		}
	})
	b.Run("analyze", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			a.Analyze(texts[i%len(texts)])
		}
	})
	b.Run("rules", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			e.Evaluate(as[i%len(as)], "")
		}
	})
	b.Run("features", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			x := as[i%len(as)]
			detect.Features(x, e.Evaluate(x, ""), "")
		}
	})
	b.Run("detect", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			d.Detect(texts[i%len(texts)], "")
		}
	})
}

func BenchmarkPredict(b *testing.B) {
	d, texts := detector(b), benchTexts(b)
	e, m := d.Engine(), d.Model()
	var fs [][]string
	for _, t := range texts {
		x := d.Analyzer().Analyze(t)
		fs = append(fs, detect.Features(x, e.Evaluate(x, ""), ""))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Predict(fs[i%len(fs)])
	}
}

func BenchmarkJudge(b *testing.B) {
	d, texts := detector(b), benchTexts(b)
	var as []*nlp.Analysis
	for _, t := range texts {
		as = append(as, d.Analyzer().Analyze(t))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.JudgeForTest(as[i%len(as)], "")
	}
}
