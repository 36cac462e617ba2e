package rules_test

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"

	"github.com/qunshao/qunshao/nlp"
)

func BenchmarkEvaluate(b *testing.B) {
	e := embedded(b)
	a := testAnalyzer(b)
	var as []*nlp.Analysis
	for _, p := range []string{"../../shared/corpus/dev_messages.jsonl", "../configs/model/extra.jsonl"} {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var l struct{ Text string }
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				as = append(as, a.Analyze(l.Text))
			}
		}
		f.Close()
		break
	}
	if len(as) == 0 {
		b.Skip("no corpus")
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.Evaluate(as[i%len(as)], "member")
	}
}
