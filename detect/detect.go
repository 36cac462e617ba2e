// Package detect turns an analysed message into a verdict (attack task,
// extortion, attack coordination or benign) with its explanation, and
// correlates verdicts over time into campaigns, organisers and a risk score
// per group.
//
// A verdict combines two layers. Rule packs (package rules) say what they
// matched and where; a logistic-regression classifier over the message's
// words, character pairs, the lists and rules it hit, its entities and the
// sender's role weighs all of it, including what no rule names. The
// verdict reports both.
package detect

import (
	"strconv"
	"strings"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/qunshao/qunshao/nlp"
	"github.com/qunshao/qunshao/rules"
)

// Verdict is the judgement on one message.
type Verdict struct {
	// Label is attack_task, extortion, attack_coordination or benign.
	Label string `json:"label"`
	// Score is the probability that the message is malicious.
	Score    float64 `json:"score"`
	Severity string  `json:"severity"`
	// Rules are the rules that fired, with what they matched.
	Rules []RuleHit `json:"rules"`
	// Entities found in the message.
	Entities []nlp.Entity `json:"entities"`
	// Model is the classifier's view.
	Model ModelView `json:"model"`
	// Evasions are the disguises normalisation undid.
	Evasions []string `json:"evasions,omitempty"`
}

// RuleHit is a fired rule in a verdict.
type RuleHit struct {
	ID       string     `json:"id"`
	Category string     `json:"category"`
	Severity string     `json:"severity"`
	Tags     []string   `json:"tags,omitempty"`
	Spans    []nlp.Span `json:"spans"`
	Terms    []string   `json:"terms,omitempty"`
}

// ModelView is the classifier's contribution to a verdict.
type ModelView struct {
	Version string             `json:"version"`
	Label   string             `json:"label"`
	Probs   map[string]float64 `json:"probs"`
	Top     []Contribution     `json:"top,omitempty"`
}

// Detector produces verdicts. The rule engine and the model can be swapped
// while it runs (rule reload, retraining); each message sees one
// consistent pair.
type Detector struct {
	analyzer *nlp.Analyzer
	engine   atomic.Pointer[rules.Engine]
	model    atomic.Pointer[Model]
	// Threshold is the malicious probability from which a message is
	// labelled malicious.
	Threshold float64
}

// DefaultThreshold is the malicious probability from which a message is
// flagged.
const DefaultThreshold = 0.5

// NewDetector wires an analyzer, a rule engine and a model.
func NewDetector(a *nlp.Analyzer, e *rules.Engine, m *Model) *Detector {
	d := &Detector{analyzer: a, Threshold: DefaultThreshold}
	d.engine.Store(e)
	d.model.Store(m)
	return d
}

// SetEngine swaps the rule engine (after a reload).
func (d *Detector) SetEngine(e *rules.Engine) { d.engine.Store(e) }

// SetModel swaps the model (after retraining).
func (d *Detector) SetModel(m *Model) { d.model.Store(m) }

// Engine returns the current rule engine.
func (d *Detector) Engine() *rules.Engine { return d.engine.Load() }

// Model returns the current model.
func (d *Detector) Model() *Model { return d.model.Load() }

// Analyzer returns the analyzer.
func (d *Detector) Analyzer() *nlp.Analyzer { return d.analyzer }

// Detect judges one message. role is the sender's role at the time, or ""
// when unknown.
func (d *Detector) Detect(text, role string) *Verdict {
	a := d.analyzer.Analyze(text)
	return d.judge(a, role, d.engine.Load(), d.model.Load())
}

// Features returns the classifier features of a message (for training).
func (d *Detector) Features(text, role string) []string {
	a := d.analyzer.Analyze(text)
	res := d.engine.Load().Evaluate(a, role)
	return Features(a, res, role)
}

func (d *Detector) judge(a *nlp.Analysis, role string, e *rules.Engine, m *Model) *Verdict {
	res := e.Evaluate(a, role)
	v := &Verdict{Label: "benign", Entities: a.Entities, Rules: []RuleHit{}}
	if v.Entities == nil {
		v.Entities = []nlp.Entity{}
	}
	seen := map[nlp.ChangeKind]bool{}
	for _, c := range a.Changes {
		if !seen[c.Kind] {
			seen[c.Kind] = true
			v.Evasions = append(v.Evasions, string(c.Kind))
		}
	}
	for _, h := range res.Hits {
		v.Rules = append(v.Rules, RuleHit{ID: h.Rule.ID, Category: h.Rule.Category, Severity: h.Rule.Severity, Tags: h.Rule.Tags, Spans: h.Spans, Terms: h.Terms})
	}
	if m == nil {
		rulesOnly(v)
		return v
	}
	p := m.predict(func(emit func([]byte)) { visitFeatures(a, res, role, make([]byte, 0, 64), emit) })
	v.Model = ModelView{Version: m.Version, Probs: p.Probs, Top: p.Top}
	best, bestP := "", -1.0
	for _, l := range m.Classes {
		if p.Probs[l] > bestP {
			best, bestP = l, p.Probs[l]
		}
	}
	v.Model.Label = best
	mal := 0.0
	bestMal, bestMalP := "", -1.0
	for _, l := range m.Classes {
		if Malicious(l) {
			mal += p.Probs[l]
			if p.Probs[l] > bestMalP {
				bestMal, bestMalP = l, p.Probs[l]
			}
		}
	}
	v.Score = mal
	// Rules move the bar: a benign context with no malicious rule (a news
	// report, a shop serving its customers) needs a surer model to be
	// flagged; a malicious rule with no benign context, a less sure one.
	if mal >= d.threshold(v.Rules) {
		v.Label = bestMal
	}
	v.Severity = severity(v, mal)
	return v
}

// rulesOnly labels a verdict from the rules alone (no model loaded): the
// category of the most severe malicious rule that fired.
func rulesOnly(v *Verdict) {
	best := -1
	for _, r := range v.Rules {
		if Malicious(r.Category) && severityRank[r.Severity] > best {
			best = severityRank[r.Severity]
			v.Label, v.Severity = r.Category, r.Severity
		}
	}
	v.Score = map[int]float64{-1: 0.05, 0: 0.3, 1: 0.55, 2: 0.7, 3: 0.85, 4: 0.95}[best]
	if v.Severity == "" {
		v.Severity = "info"
	}
}

// Margins by which rule evidence moves the malicious threshold.
const (
	benignContextMargin = 0.25
	maliciousRuleMargin = 0.1
)

func (d *Detector) threshold(hits []RuleHit) float64 {
	benign, malicious := false, false
	for _, h := range hits {
		if Malicious(h.Category) {
			malicious = true
		} else {
			benign = true
		}
	}
	switch {
	case benign && !malicious:
		return min(0.95, d.Threshold+benignContextMargin)
	case malicious && !benign:
		return max(0.05, d.Threshold-maliciousRuleMargin)
	}
	return d.Threshold
}

var severityRank = map[string]int{"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

// severity is the highest severity of the rules that support the label,
// or one derived from the score when no rule names the label.
func severity(v *Verdict, score float64) string {
	if v.Label == "benign" {
		return "info"
	}
	best := ""
	for _, r := range v.Rules {
		if r.Category == v.Label && (best == "" || severityRank[r.Severity] > severityRank[best]) {
			best = r.Severity
		}
	}
	if best != "" {
		return best
	}
	switch {
	case score >= 0.9:
		return "high"
	case score >= 0.7:
		return "medium"
	}
	return "low"
}

// Features turns an analysed message into classifier features: its words
// and word pairs, pairs of Chinese characters (robust to segmentation
// errors), the lists and rules it hit, entity types, money and length
// buckets, and the sender's role.
func Features(a *nlp.Analysis, res *rules.Result, role string) []string {
	var f []string
	visitFeatures(a, res, role, make([]byte, 0, 64), func(k []byte) { f = append(f, string(k)) })
	return f
}

// visitFeatures emits every feature key into buf and calls emit with it.
// Prediction looks keys up without turning them into strings, which keeps
// the per-message cost free of allocations.
func visitFeatures(a *nlp.Analysis, res *rules.Result, role string, buf []byte, emit func([]byte)) {
	key := func(prefix, part string) {
		buf = append(append(buf[:0], prefix...), part...)
		emit(buf)
	}
	prev := ""
	for _, t := range a.Tokens {
		w := t.Text
		if !wordy(w) {
			prev = ""
			continue
		}
		key("w:", w)
		if prev != "" {
			buf = append(append(append(append(buf[:0], "b:"...), prev...), '_'), w...)
			emit(buf)
		}
		prev = w
	}
	var last rune
	for _, r := range a.Runes {
		if isHan(r) {
			if last != 0 {
				buf = append(buf[:0], "c:"...)
				buf = utf8.AppendRune(buf, last)
				buf = utf8.AppendRune(buf, r)
				emit(buf)
			}
			last = r
		} else {
			last = 0
		}
	}
	for _, l := range res.Lists {
		key("L:", l)
	}
	for _, h := range res.Hits {
		key("R:", h.Rule.ID)
		key("C:", h.Rule.Category)
	}
	money := 0.0
	for _, e := range a.Entities {
		key("E:", string(e.Type))
		if e.Type == nlp.EntMoney {
			if v, err := strconv.ParseFloat(e.Value, 64); err == nil {
				money = max(money, v)
			}
		}
	}
	switch {
	case money >= 1000:
		key("money:1000+", "")
	case money >= 100:
		key("money:100+", "")
	case money > 0:
		key("money:<100", "")
	}
	if role != "" && role != "unknown" {
		key("role:", role)
	}
	switch n := len(a.Runes); {
	case n <= 6:
		key("len:short", "")
	case n >= 40:
		key("len:long", "")
	}
}

func isHan(r rune) bool {
	return r >= 0x4E00 && r <= 0x9FFF || r >= 0x3400 && r <= 0x4DBF || r >= 0xF900 && r <= 0xFAFF || r >= 0x20000 && r <= 0x3134F
}

func wordy(w string) bool {
	for _, r := range w {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return !strings.ContainsAny(w, "\n")
		}
	}
	return false
}
