package detect

import (
	"runtime"
	"sync"

	"github.com/qunshao/qunshao/nlp"
)

// prepared is a labelled line analysed once, for training and evaluation.
type prepared struct {
	line     Labelled
	analysis *nlp.Analysis
	features []string
}

// prepare analyses lines on every core.
func (d *Detector) prepare(lines []Labelled) []prepared {
	out := make([]prepared, len(lines))
	e := d.Engine()
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				a := d.analyzer.Analyze(lines[i].Text)
				out[i] = prepared{line: lines[i], analysis: a, features: Features(a, e.Evaluate(a, lines[i].Role), lines[i].Role)}
			}
		}()
	}
	for i := range lines {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

func examplesOf(ps []prepared, weight float64) []Example {
	out := make([]Example, len(ps))
	for i, p := range ps {
		out[i] = Example{Features: p.features, Label: p.line.Label, Weight: weight}
	}
	return out
}

// Train fits a model on labelled lines with the detector's analyzer and
// rules. extra lines (moderator feedback) are weighted feedbackWeight.
func (d *Detector) Train(lines, feedback []Labelled, p TrainParams, feedbackWeight float64) (*Model, error) {
	ex := examplesOf(d.prepare(lines), 1)
	ex = append(ex, examplesOf(d.prepare(feedback), feedbackWeight)...)
	m, err := Train(ex, p)
	if err != nil {
		return nil, err
	}
	m.Rules = d.Engine().Version
	return m, nil
}

// CrossValidate trains k models, each without one fold of lines (extra
// lines are always in training), and evaluates each on the fold it did not
// see. The report is therefore an honest estimate of quality on unseen
// lines written in the same style.
func (d *Detector) CrossValidate(lines, extra []Labelled, k int, p TrainParams) (*Report, error) {
	ps := d.prepare(lines)
	extraEx := examplesOf(d.prepare(extra), 1)
	verdicts := make([]*Verdict, len(lines))
	e := d.Engine()
	for f := 0; f < k; f++ {
		var train []prepared
		var test []int
		for i, pr := range ps {
			if Fold(pr.line.ID, k) == f {
				test = append(test, i)
			} else {
				train = append(train, pr)
			}
		}
		m, err := Train(append(examplesOf(train, 1), extraEx...), p)
		if err != nil {
			return nil, err
		}
		for _, i := range test {
			verdicts[i] = d.judge(ps[i].analysis, ps[i].line.Role, e, m)
		}
	}
	r, err := Evaluate(lines, verdicts)
	if err != nil {
		return nil, err
	}
	r.CrossValidated = k
	return r, nil
}

// EvaluateLines judges lines with the current model and compares.
func (d *Detector) EvaluateLines(lines []Labelled) (*Report, error) {
	ps := d.prepare(lines)
	verdicts := make([]*Verdict, len(lines))
	e, m := d.Engine(), d.Model()
	for i, p := range ps {
		verdicts[i] = d.judge(p.analysis, p.line.Role, e, m)
	}
	return Evaluate(lines, verdicts)
}
