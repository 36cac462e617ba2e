package detect

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"sort"
	"strings"
)

// Labelled is one line of a labelled corpus (the format of
// dev_messages.jsonl): {"id","text","label","evasion","role"}.
type Labelled struct {
	ID      string `json:"id"`
	Text    string `json:"text"`
	Label   string `json:"label"`
	Evasion string `json:"evasion"`
	Role    string `json:"role"`
}

// ReadLabelled reads a labelled JSON-lines corpus. Errors name the line.
func ReadLabelled(r io.Reader, name string) ([]Labelled, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var out []Labelled
	line := 0
	for sc.Scan() {
		line++
		b := strings.TrimSpace(sc.Text())
		if b == "" || strings.HasPrefix(b, "#") {
			continue
		}
		var l Labelled
		if err := json.Unmarshal([]byte(b), &l); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, line, err)
		}
		known := false
		for _, x := range Labels {
			if x == l.Label {
				known = true
			}
		}
		if !known {
			return nil, fmt.Errorf("%s:%d: label %q, want one of %s", name, line, l.Label, strings.Join(Labels, ", "))
		}
		if l.ID == "" {
			l.ID = fmt.Sprintf("%s:%d", name, line)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// OutputLabel folds the benign kinds into "benign".
func OutputLabel(l string) string {
	if Malicious(l) {
		return l
	}
	return "benign"
}

// OutputLabels are the labels a verdict can have.
var OutputLabels = []string{"attack_task", "extortion", "attack_coordination", "benign"}

// PRF is precision, recall and F1 of one label.
type PRF struct {
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int     `json:"support"`
}

// Report is the evaluation of verdicts against labels.
type Report struct {
	N        int            `json:"n"`
	PerLabel map[string]PRF `json:"per_label"`
	// Malicious is malicious-vs-benign.
	Malicious PRF `json:"malicious"`
	// Confusion[truth][predicted] counts.
	Confusion map[string]map[string]int `json:"confusion"`
	// BenignFPR is the share of benign lines flagged malicious.
	BenignFPR float64 `json:"benign_false_positive_rate"`
	// EvasionRecall is, per evasion type, the share of malicious lines
	// flagged malicious.
	EvasionRecall map[string]float64 `json:"evasion_recall"`
	// LabelAccuracy is, on malicious lines, the share given the exact
	// label.
	LabelAccuracy  float64 `json:"label_accuracy_malicious"`
	CrossValidated int     `json:"cross_validated_folds,omitempty"`
	// Errors lists the lines judged wrongly.
	Errors []EvalError `json:"errors,omitempty"`
}

// EvalError is a misjudged line.
type EvalError struct {
	ID        string  `json:"id"`
	Text      string  `json:"text"`
	Truth     string  `json:"truth"`
	Predicted string  `json:"predicted"`
	Score     float64 `json:"score"`
}

// Evaluate compares predictions with the labelled lines (same order).
func Evaluate(lines []Labelled, verdicts []*Verdict) (*Report, error) {
	if len(lines) != len(verdicts) {
		return nil, errors.New("evaluate: lines and verdicts differ in number")
	}
	r := &Report{N: len(lines), PerLabel: map[string]PRF{}, Confusion: map[string]map[string]int{}, EvasionRecall: map[string]float64{}}
	for _, t := range OutputLabels {
		r.Confusion[t] = map[string]int{}
		for _, p := range OutputLabels {
			r.Confusion[t][p] = 0
		}
	}
	var tp, fp, fn, benign, benignFlagged, mal, malExact int
	evTotal, evHit := map[string]int{}, map[string]int{}
	for i, l := range lines {
		truth, pred := OutputLabel(l.Label), verdicts[i].Label
		r.Confusion[truth][pred]++
		tm, pm := truth != "benign", pred != "benign"
		switch {
		case tm && pm:
			tp++
		case !tm && pm:
			fp++
		case tm && !pm:
			fn++
		}
		if !tm {
			benign++
			if pm {
				benignFlagged++
			}
		} else {
			mal++
			if pred == truth {
				malExact++
			}
			ev := l.Evasion
			if ev == "" {
				ev = "none"
			}
			evTotal[ev]++
			if pm {
				evHit[ev]++
			}
		}
		if truth != pred {
			r.Errors = append(r.Errors, EvalError{ID: l.ID, Text: l.Text, Truth: l.Label, Predicted: pred, Score: verdicts[i].Score})
		}
	}
	r.Malicious = prf(tp, fp, fn)
	r.Malicious.Support = mal
	for _, lab := range OutputLabels {
		var ltp, lfp, lfn int
		for _, t := range OutputLabels {
			for _, p := range OutputLabels {
				n := r.Confusion[t][p]
				switch {
				case t == lab && p == lab:
					ltp += n
				case t != lab && p == lab:
					lfp += n
				case t == lab && p != lab:
					lfn += n
				}
			}
		}
		x := prf(ltp, lfp, lfn)
		x.Support = ltp + lfn
		r.PerLabel[lab] = x
	}
	if benign > 0 {
		r.BenignFPR = float64(benignFlagged) / float64(benign)
	}
	if mal > 0 {
		r.LabelAccuracy = float64(malExact) / float64(mal)
	}
	for ev, n := range evTotal {
		r.EvasionRecall[ev] = float64(evHit[ev]) / float64(n)
	}
	return r, nil
}

func prf(tp, fp, fn int) PRF {
	var p PRF
	if tp+fp > 0 {
		p.Precision = float64(tp) / float64(tp+fp)
	}
	if tp+fn > 0 {
		p.Recall = float64(tp) / float64(tp+fn)
	}
	if p.Precision+p.Recall > 0 {
		p.F1 = 2 * p.Precision * p.Recall / (p.Precision + p.Recall)
	}
	return p
}

// Fold assigns a line to one of k folds by a hash of its id, so folds are
// stable across runs and independent of line order.
func Fold(id string, k int) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(k))
}

// WriteText prints a report for people.
func (r *Report) WriteText(w io.Writer) {
	if r.CrossValidated > 0 {
		fmt.Fprintf(w, "%d lines, %d-fold cross-validated (the model never saw the line it judged)\n\n", r.N, r.CrossValidated)
	} else {
		fmt.Fprintf(w, "%d lines\n\n", r.N)
	}
	fmt.Fprintf(w, "%-22s %9s %9s %9s %8s\n", "label", "precision", "recall", "f1", "support")
	for _, l := range OutputLabels {
		p := r.PerLabel[l]
		fmt.Fprintf(w, "%-22s %9.3f %9.3f %9.3f %8d\n", l, p.Precision, p.Recall, p.F1, p.Support)
	}
	m := r.Malicious
	fmt.Fprintf(w, "%-22s %9.3f %9.3f %9.3f %8d\n\n", "malicious vs benign", m.Precision, m.Recall, m.F1, m.Support)
	fmt.Fprintf(w, "benign false-positive rate: %.3f\n", r.BenignFPR)
	fmt.Fprintf(w, "label accuracy on malicious lines: %.3f\n\n", r.LabelAccuracy)
	fmt.Fprintf(w, "confusion (rows: truth, columns: predicted)\n%-22s", "")
	for _, p := range OutputLabels {
		fmt.Fprintf(w, " %20s", p)
	}
	fmt.Fprintln(w)
	for _, t := range OutputLabels {
		fmt.Fprintf(w, "%-22s", t)
		for _, p := range OutputLabels {
			fmt.Fprintf(w, " %20d", r.Confusion[t][p])
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "\nrecall on malicious lines per evasion type")
	evs := make([]string, 0, len(r.EvasionRecall))
	for ev := range r.EvasionRecall {
		evs = append(evs, ev)
	}
	sort.Strings(evs)
	for _, ev := range evs {
		fmt.Fprintf(w, "  %-12s %.3f\n", ev, r.EvasionRecall[ev])
	}
}
