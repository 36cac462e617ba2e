package nlp

import (
	"fmt"
	"sync"
	"time"
)

// Analysis is everything detection reads about one message.
type Analysis struct {
	*Normalized
	Tokens   []Token
	Entities []Entity
}

// Analyzer runs normalisation, segmentation and entity extraction. Build
// one per process (loading takes about half a second) and share it.
type Analyzer struct {
	Norm *Normalizer
	Seg  *Segmenter
	// LoadTime is how long NewAnalyzer took.
	LoadTime time.Duration
}

// NewAnalyzer loads the segmenter dictionary and the normaliser tables
// (concurrently: they are independent).
func NewAnalyzer(lex *Lexicon, cfg SegmenterConfig) (*Analyzer, error) {
	start := time.Now()
	var seg *Segmenter
	var segErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		seg, segErr = NewSegmenter(lex, cfg)
	}()
	// The normaliser asks the segmenter's dictionary whether a spelling is
	// a real word; it only does so while normalising, after both loaded.
	var a Analyzer
	norm, err := NewNormalizer(lex, func(w string) bool { return a.Seg.IsWord(w) })
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if segErr != nil {
		return nil, fmt.Errorf("load segmenter: %w", segErr)
	}
	a.Norm, a.Seg = norm, seg
	a.LoadTime = time.Since(start)
	return &a, nil
}

// Analyze normalises, segments and extracts entities from a message.
func (a *Analyzer) Analyze(text string) *Analysis {
	n := a.Norm.Normalize(text)
	return &Analysis{Normalized: n, Tokens: a.Seg.Tokens(n), Entities: ExtractEntities(n)}
}
