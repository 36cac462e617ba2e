package rules_test

import (
	"io/fs"
	"strings"
	"sync"
	"testing"

	"github.com/qunshao/qunshao/configs"
	"github.com/qunshao/qunshao/nlp"
	"github.com/qunshao/qunshao/rules"
)

var (
	analyzerOnce sync.Once
	analyzer     *nlp.Analyzer
)

func testAnalyzer(t testing.TB) *nlp.Analyzer {
	t.Helper()
	analyzerOnce.Do(func() {
		b, err := fs.ReadFile(configs.Files, "nlp/lexicon.yaml")
		if err != nil {
			panic(err)
		}
		lex, err := nlp.ParseLexicon(b, "configs/nlp/lexicon.yaml")
		if err != nil {
			panic(err)
		}
		analyzer, err = nlp.NewAnalyzer(lex, nlp.DefaultSegmenterConfig())
		if err != nil {
			panic(err)
		}
	})
	return analyzer
}

func embedded(t testing.TB) *rules.Engine {
	t.Helper()
	e, err := rules.LoadFS(configs.Files, "rules")
	if err != nil {
		t.Fatalf("embedded rule packs: %v", err)
	}
	return e
}

// TestRuleExamples is `qunshao rules test` in go test: every rule fires on
// its positive examples and not on its negative ones.
func TestRuleExamples(t *testing.T) {
	e := embedded(t)
	a := testAnalyzer(t)
	for _, f := range e.TestExamples(a.Analyze) {
		t.Error(f)
	}
}

func TestLintOfEmbeddedPacksIsClean(t *testing.T) {
	for _, p := range embedded(t).Lint() {
		t.Error(p)
	}
}

func TestSpansPointAtTheOriginalText(t *testing.T) {
	e := embedded(t)
	a := testAnalyzer(t)
	text := "今晚任务：每人去他家拍３件，拍下不要付-款，把库纯锁死"
	res := e.Evaluate(a.Analyze(text), "owner")
	var hit *rules.Hit
	for i := range res.Hits {
		if res.Hits[i].Rule.ID == "task.stock_lock" {
			hit = &res.Hits[i]
		}
	}
	if hit == nil {
		t.Fatalf("task.stock_lock did not fire: %+v", res.Hits)
	}
	r := []rune(text)
	var got []string
	for _, s := range hit.Spans {
		got = append(got, string(r[s.Start:s.End]))
	}
	joined := strings.Join(got, "|")
	for _, want := range []string{"不要付-款", "库纯锁死"} {
		if !strings.Contains(joined, want) {
			t.Errorf("spans %q do not highlight %q in the original", joined, want)
		}
	}
}
