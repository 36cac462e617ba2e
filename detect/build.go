package detect

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/qunshao/qunshao/nlp"
	"github.com/qunshao/qunshao/rules"
)

// Config is the detection slice of qunshao's configuration.
type Config struct {
	// RulesDir loads rule packs from a directory (and reloads them when
	// they change); empty uses the packs embedded in the binary.
	RulesDir string `yaml:"rules_dir"`
	// RulesReload is how often RulesDir is checked for changes.
	RulesReload time.Duration `yaml:"rules_reload"`
	// Model is a model file written by `qunshao model train`; empty uses
	// the embedded model.
	Model string `yaml:"model"`
	// Threshold is the malicious probability from which a message is
	// flagged.
	Threshold float64             `yaml:"threshold"`
	Segmenter nlp.SegmenterConfig `yaml:"segmenter"`
}

// DefaultConfig is the embedded default.
func DefaultConfig() Config {
	return Config{RulesReload: 10 * time.Second, Threshold: DefaultThreshold, Segmenter: nlp.DefaultSegmenterConfig()}
}

// Validate names the bad key (relative to "detect").
func (c Config) Validate() error {
	var errs []error
	if c.Threshold <= 0 || c.Threshold >= 1 {
		errs = append(errs, fmt.Errorf("threshold: must be between 0 and 1, got %v", c.Threshold))
	}
	if c.RulesReload < time.Second {
		errs = append(errs, fmt.Errorf("rules_reload: must be at least 1s, got %s", c.RulesReload))
	}
	if c.RulesDir != "" {
		if st, err := os.Stat(c.RulesDir); err != nil || !st.IsDir() {
			errs = append(errs, fmt.Errorf("rules_dir: %q is not a directory", c.RulesDir))
		}
	}
	if c.Model != "" {
		if _, err := os.Stat(c.Model); err != nil {
			errs = append(errs, fmt.Errorf("model: %v", err))
		}
	}
	if err := c.Segmenter.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("segmenter.%w", err))
	}
	return errors.Join(errs...)
}

// Embedded names the files Build reads from the embedded file system.
const (
	LexiconFile  = "nlp/lexicon.yaml"
	RulesDir     = "rules"
	ModelFile    = "model/default.json"
	TrainingFile = "model/extra.jsonl"
)

// Build loads the lexicon, analyzer, rule packs and model.
func Build(cfg Config, embedded fs.FS) (*Detector, error) {
	b, err := fs.ReadFile(embedded, LexiconFile)
	if err != nil {
		return nil, fmt.Errorf("read lexicon: %w", err)
	}
	lex, err := nlp.ParseLexicon(b, "configs/"+LexiconFile)
	if err != nil {
		return nil, err
	}
	a, err := nlp.NewAnalyzer(lex, cfg.Segmenter)
	if err != nil {
		return nil, err
	}
	var e *rules.Engine
	if cfg.RulesDir != "" {
		e, err = rules.LoadDir(cfg.RulesDir)
	} else {
		e, err = rules.LoadFS(embedded, RulesDir)
	}
	if err != nil {
		return nil, fmt.Errorf("load rule packs: %w", err)
	}
	m, err := LoadModel(cfg.Model, embedded)
	if err != nil {
		return nil, err
	}
	d := NewDetector(a, e, m)
	d.Threshold = cfg.Threshold
	return d, nil
}

// LoadModel reads a model file, or the embedded model when path is empty.
// A binary built without an embedded model runs on rules alone.
func LoadModel(path string, embedded fs.FS) (*Model, error) {
	var b []byte
	var err error
	if path != "" {
		b, err = os.ReadFile(path)
	} else {
		b, err = fs.ReadFile(embedded, ModelFile)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	m, err := UnmarshalModel(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}
