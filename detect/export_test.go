package detect

import "github.com/qunshao/qunshao/nlp"

// JudgeForTest exposes judge to benchmarks.
func (d *Detector) JudgeForTest(a *nlp.Analysis, role string) *Verdict {
	return d.judge(a, role, d.Engine(), d.Model())
}
