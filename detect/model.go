package detect

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Labels of the message corpus. The classifier learns all six; the
// verdict reports the three malicious ones and folds the benign kinds into
// "benign".
var Labels = []string{"attack_task", "extortion", "attack_coordination", "benign_promo", "benign_chat", "benign_discussion"}

// Malicious reports whether a label is one of the malicious ones.
func Malicious(label string) bool {
	return label == "attack_task" || label == "extortion" || label == "attack_coordination"
}

// Example is a labelled training message, already turned into features.
type Example struct {
	Features []string
	Label    string
	// Weight scales the example's loss (moderator feedback counts more).
	Weight float64
}

// Model is a multinomial logistic regression over binary features.
type Model struct {
	// Version identifies the training: a hash of the data and settings.
	Version   string    `json:"version"`
	TrainedAt time.Time `json:"trained_at"`
	Examples  int       `json:"examples"`
	Classes   []string  `json:"classes"`
	// Features maps a feature to its row in Weights.
	Features map[string]int `json:"features"`
	// Weights[f][k] is feature f's weight for class k; Bias[k] the
	// intercept.
	Weights [][]float64 `json:"weights"`
	Bias    []float64   `json:"bias"`
	Params  TrainParams `json:"params"`
	// Sources are the training files (name and SHA-256), for the record.
	Sources []Source `json:"sources,omitempty"`
	// Rules is the version of the rule packs the features came from: a
	// model is only valid with the rules it was trained with.
	Rules string `json:"rules"`

	names []string // row -> feature, built by index
	// flat holds Weights row after row, each already multiplied by its
	// feature's value, so scoring reads one contiguous block.
	flat    []float64
	scratch sync.Pool // *predictScratch
	// slots is an open-addressing table from a 64-bit hash of a feature
	// key to its row: looking up a hundred keys per message in a map of
	// twenty thousand strings costs more in cache misses than the rest of
	// the scoring together.
	seed  maphash.Seed
	slots []slot
	mask  uint64
}

type slot struct {
	hash uint64
	row  int32 // -1: empty
}

// lookup returns the row of a feature key.
func (m *Model) lookup(k []byte) (int, bool) {
	h := maphash.Bytes(m.seed, k)
	for i := h & m.mask; ; i = (i + 1) & m.mask {
		s := m.slots[i]
		if s.row < 0 {
			return 0, false
		}
		if s.hash == h {
			return int(s.row), true
		}
	}
}

// predictScratch dedupes features without allocating: a feature is seen in
// this call when stamp[j] == gen.
type predictScratch struct {
	stamp []uint32
	gen   uint32
	idx   []int
}

func (m *Model) index() {
	m.names = make([]string, len(m.Weights))
	for f, j := range m.Features {
		m.names[j] = f
	}
	K := len(m.Classes)
	m.flat = make([]float64, len(m.Weights)*K)
	for j, row := range m.Weights {
		v := m.Params.featureValue(m.names[j])
		for k, w := range row {
			m.flat[j*K+k] = w * v
		}
	}
	m.scratch.New = func() any { return &predictScratch{stamp: make([]uint32, len(m.Weights))} }
	m.seed = maphash.MakeSeed()
	n := 1
	for n < 2*len(m.names)+1 {
		n <<= 1
	}
	m.slots = make([]slot, n)
	for i := range m.slots {
		m.slots[i].row = -1
	}
	m.mask = uint64(n - 1)
	for j, f := range m.names {
		h := maphash.String(m.seed, f)
		i := h & m.mask
		for m.slots[i].row >= 0 {
			i = (i + 1) & m.mask
		}
		m.slots[i] = slot{hash: h, row: int32(j)}
	}
}

// Source is a training file.
type Source struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Lines  int    `json:"lines"`
}

// TrainParams are the training settings.
type TrainParams struct {
	// L2 is the regularisation strength.
	L2 float64 `json:"l2"`
	// Epochs of full-batch optimisation.
	Epochs int `json:"epochs"`
	// Rate is the Adam learning rate.
	Rate float64 `json:"rate"`
	// MinCount drops features seen in fewer training examples.
	MinCount int `json:"min_count"`
	// RuleScale is the value of rule, category and list features (the
	// others are 1): a rule is one feature against dozens of words, and
	// this lets its weight count at the same regularisation cost.
	RuleScale float64 `json:"rule_scale"`
}

// featureValue is the value of a present feature.
func (p TrainParams) featureValue(f string) float64 {
	if p.RuleScale > 0 && len(f) > 2 && f[1] == ':' && (f[0] == 'R' || f[0] == 'C' || f[0] == 'L') {
		return p.RuleScale
	}
	return 1
}

// DefaultTrainParams are the settings the shipped model was trained with.
func DefaultTrainParams() TrainParams {
	return TrainParams{L2: 0.01, Epochs: 300, Rate: 0.05, MinCount: 2, RuleScale: 1}
}

// Train fits a model. Training is deterministic: the same examples and
// parameters give the same weights, bit for bit (full-batch optimisation,
// features in sorted order, no randomness).
func Train(examples []Example, p TrainParams) (*Model, error) {
	if len(examples) == 0 {
		return nil, errors.New("no training examples")
	}
	classIdx := map[string]int{}
	for i, l := range Labels {
		classIdx[l] = i
	}
	counts := map[string]int{}
	for i, ex := range examples {
		if _, ok := classIdx[ex.Label]; !ok {
			return nil, fmt.Errorf("example %d: unknown label %q", i, ex.Label)
		}
		seen := map[string]bool{}
		for _, f := range ex.Features {
			if !seen[f] {
				seen[f] = true
				counts[f]++
			}
		}
	}
	var names []string
	for f, c := range counts {
		if c >= p.MinCount {
			names = append(names, f)
		}
	}
	sort.Strings(names)
	m := &Model{Classes: Labels, Features: make(map[string]int, len(names)), Params: p, Examples: len(examples)}
	for i, f := range names {
		m.Features[f] = i
	}
	K, F := len(Labels), len(names)
	// Encode examples as sorted feature-index lists.
	xs := make([][]int, len(examples))
	vals := make([]float64, F)
	for j, f := range names {
		vals[j] = p.featureValue(f)
	}
	ys := make([]int, len(examples))
	ws := make([]float64, len(examples))
	h := sha256.New()
	fmt.Fprintf(h, "%+v\n", p)
	for i, ex := range examples {
		seen := map[int]bool{}
		for _, f := range ex.Features {
			if j, ok := m.Features[f]; ok && !seen[j] {
				seen[j] = true
				xs[i] = append(xs[i], j)
			}
		}
		sort.Ints(xs[i])
		ys[i] = classIdx[ex.Label]
		ws[i] = ex.Weight
		if ws[i] <= 0 {
			ws[i] = 1
		}
		fmt.Fprintf(h, "%s\t%v\t%v\n", ex.Label, ws[i], ex.Features)
	}
	W := make([][]float64, F)
	for i := range W {
		W[i] = make([]float64, K)
	}
	b := make([]float64, K)
	// Adam state.
	mW, vW := zeros(F, K), zeros(F, K)
	mb, vb := make([]float64, K), make([]float64, K)
	gW := zeros(F, K)
	gb := make([]float64, K)
	const beta1, beta2, eps = 0.9, 0.999, 1e-8
	total := 0.0
	for _, w := range ws {
		total += w
	}
	probs := make([]float64, K)
	for epoch := 1; epoch <= p.Epochs; epoch++ {
		for i := range gW {
			for k := range gW[i] {
				gW[i][k] = 0
			}
		}
		for k := range gb {
			gb[k] = 0
		}
		for i, x := range xs {
			score(W, b, x, vals, probs)
			softmax(probs)
			for k := 0; k < K; k++ {
				d := probs[k]
				if k == ys[i] {
					d -= 1
				}
				d *= ws[i] / total
				gb[k] += d
				for _, j := range x {
					gW[j][k] += d * vals[j]
				}
			}
		}
		c1 := 1 - math.Pow(beta1, float64(epoch))
		c2 := 1 - math.Pow(beta2, float64(epoch))
		for j := 0; j < F; j++ {
			for k := 0; k < K; k++ {
				g := gW[j][k] + p.L2*W[j][k]
				mW[j][k] = beta1*mW[j][k] + (1-beta1)*g
				vW[j][k] = beta2*vW[j][k] + (1-beta2)*g*g
				W[j][k] -= p.Rate * (mW[j][k] / c1) / (math.Sqrt(vW[j][k]/c2) + eps)
			}
		}
		for k := 0; k < K; k++ {
			g := gb[k]
			mb[k] = beta1*mb[k] + (1-beta1)*g
			vb[k] = beta2*vb[k] + (1-beta2)*g*g
			b[k] -= p.Rate * (mb[k] / c1) / (math.Sqrt(vb[k]/c2) + eps)
		}
	}
	// Six significant digits are plenty and keep the model file small.
	for _, row := range W {
		for k := range row {
			row[k] = roundSig(row[k])
		}
	}
	for k := range b {
		b[k] = roundSig(b[k])
	}
	m.Weights, m.Bias = W, b
	m.index()
	m.Version = hex.EncodeToString(h.Sum(nil))[:16]
	return m, nil
}

func roundSig(x float64) float64 {
	if x == 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 6, 64), 64)
	return v
}

func zeros(n, k int) [][]float64 {
	out := make([][]float64, n)
	for i := range out {
		out[i] = make([]float64, k)
	}
	return out
}

func score(W [][]float64, b []float64, x []int, vals []float64, out []float64) {
	copy(out, b)
	for _, j := range x {
		for k, w := range W[j] {
			out[k] += w * vals[j]
		}
	}
}

func softmax(v []float64) {
	mx := v[0]
	for _, x := range v[1:] {
		mx = max(mx, x)
	}
	sum := 0.0
	for i, x := range v {
		v[i] = math.Exp(x - mx)
		sum += v[i]
	}
	for i := range v {
		v[i] /= sum
	}
}

// Contribution is one feature's push towards a class.
type Contribution struct {
	Feature string  `json:"feature"`
	Weight  float64 `json:"weight"`
}

// Prediction is the model's view of one message.
type Prediction struct {
	// Probs maps each class to its probability.
	Probs map[string]float64
	// Top are the features that pushed most towards the predicted class.
	Top []Contribution
}

// Predict scores a message's features.
func (m *Model) Predict(features []string) Prediction {
	return m.predict(func(emit func([]byte)) {
		var b []byte
		for _, f := range features {
			b = append(b[:0], f...)
			emit(b)
		}
	})
}

// predict scores the features a visitor emits. Keys are looked up as
// bytes, which Go does without allocating.
func (m *Model) predict(visit func(emit func([]byte))) Prediction {
	K := len(m.Classes)
	s := make([]float64, K)
	copy(s, m.Bias)
	sc := m.scratch.Get().(*predictScratch)
	defer m.scratch.Put(sc)
	sc.gen++
	if sc.gen == 0 { // wrapped: clear the stamps
		clear(sc.stamp)
		sc.gen = 1
	}
	sc.idx = sc.idx[:0]
	visit(func(k []byte) {
		j, ok := m.lookup(k)
		if !ok || sc.stamp[j] == sc.gen {
			return
		}
		sc.stamp[j] = sc.gen
		sc.idx = append(sc.idx, j)
		row := m.flat[j*K : j*K+K]
		for c := range s {
			s[c] += row[c]
		}
	})
	idx := sc.idx
	softmax(s)
	p := Prediction{Probs: make(map[string]float64, K)}
	best := 0
	for k, c := range m.Classes {
		p.Probs[c] = s[k]
		if s[k] > s[best] {
			best = k
		}
	}
	// The five strongest supporters of the predicted class.
	var top [5]Contribution
	n := 0
	for _, j := range idx {
		w := m.flat[j*K+best]
		if w <= 0 || (n == len(top) && w <= top[n-1].Weight) {
			continue
		}
		if n < len(top) {
			n++
		}
		i := n - 1
		for i > 0 && top[i-1].Weight < w {
			top[i] = top[i-1]
			i--
		}
		top[i] = Contribution{Feature: m.names[j], Weight: w}
	}
	p.Top = append([]Contribution(nil), top[:n]...)
	return p
}

// MarshalModel encodes a model as JSON.
func MarshalModel(m *Model) ([]byte, error) { return json.Marshal(m) }

// UnmarshalModel decodes and checks a model.
func UnmarshalModel(b []byte) (*Model, error) {
	var m Model
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if len(m.Classes) == 0 || len(m.Bias) != len(m.Classes) || len(m.Weights) != len(m.Features) {
		return nil, errors.New("model: inconsistent dimensions")
	}
	for f, j := range m.Features {
		if j < 0 || j >= len(m.Weights) || len(m.Weights[j]) != len(m.Classes) {
			return nil, fmt.Errorf("model: feature %q has a bad row", f)
		}
	}
	m.index()
	return &m, nil
}
