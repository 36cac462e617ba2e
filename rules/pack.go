// Package rules loads, checks, compiles and evaluates rule packs: YAML files
// of word lists, macros and rules whose conditions are expressions (parsed
// and type-checked by the expr library) over a message's normalised text,
// words, entities and the sender's role. Every rule carries examples that
// must fire and must not fire; `qunshao rules test` and go test run them.
//
// A rule that fires reports which of its lists matched and where, as rune
// offsets into the original text, so a verdict always says why.
package rules

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Categories of rules. attack_task, extortion and attack_coordination are
// the malicious labels; benign rules record evidence that a message is
// ordinary (a news report, a warning, a genuine after-sales request) and
// feed the classifier like any other rule.
const (
	AttackTask         = "attack_task"
	Extortion          = "extortion"
	AttackCoordination = "attack_coordination"
	Benign             = "benign"
)

// Categories lists the valid categories.
var Categories = []string{AttackTask, Extortion, AttackCoordination, Benign}

// Severities, lowest first.
var Severities = []string{"info", "low", "medium", "high", "critical"}

// Statuses.
const (
	Stable       = "stable"
	Experimental = "experimental"
)

// Pack is one rule-pack file.
type Pack struct {
	Name   string              `yaml:"pack"`
	Lists  map[string][]string `yaml:"lists"`
	Macros map[string]string   `yaml:"macros"`
	Rules  []*Rule             `yaml:"rules"`

	File      string         `yaml:"-"`
	listLines map[string]int // line of each list's key
	macroLine map[string]int
}

// Rule is one detection rule.
type Rule struct {
	ID          string   `yaml:"id"`
	Category    string   `yaml:"category"`
	Severity    string   `yaml:"severity"`
	Description string   `yaml:"description"`
	Condition   string   `yaml:"condition"`
	Exceptions  []string `yaml:"exceptions"`
	Tags        []string `yaml:"tags"`
	Enabled     *bool    `yaml:"enabled"`
	Status      string   `yaml:"status"`
	Examples    Examples `yaml:"examples"`

	File string `yaml:"-"`
	Line int    `yaml:"-"`

	cond   *compiled
	except []*compiled
}

// IsEnabled reports whether the rule runs (enabled unless said otherwise).
func (r *Rule) IsEnabled() bool { return r.Enabled == nil || *r.Enabled }

// Where returns "file:line" of the rule.
func (r *Rule) Where() string { return fmt.Sprintf("%s:%d", r.File, r.Line) }

// Examples are messages a rule must and must not fire on.
type Examples struct {
	Positive []Example `yaml:"positive"`
	Negative []Example `yaml:"negative"`
}

// Example is a message with an optional sender role. In YAML it is a
// string, or a mapping {text: ..., role: ...}.
type Example struct {
	Text string `yaml:"text"`
	Role string `yaml:"role"`
	Line int    `yaml:"-"`
}

// UnmarshalYAML accepts a plain string or a mapping.
func (e *Example) UnmarshalYAML(n *yaml.Node) error {
	e.Line = n.Line
	if n.Kind == yaml.ScalarNode {
		e.Text = n.Value
		return nil
	}
	type plain Example
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*e = Example(p)
	e.Line = n.Line
	return nil
}

// UnmarshalYAML records the line of each rule.
func (r *Rule) UnmarshalYAML(n *yaml.Node) error {
	type plain Rule
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*r = Rule(p)
	r.Line = n.Line
	return nil
}

// ParsePack reads one rule-pack file. Errors are "file:line: problem".
func ParsePack(b []byte, file string) (*Pack, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("%s: %s", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	p := &Pack{File: file, listLines: map[string]int{}, macroLine: map[string]int{}}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(p); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
		msg = yamlLineRE.ReplaceAllString(msg, file+":$1:")
		return nil, fmt.Errorf("%s", msg)
	}
	if len(root.Content) > 0 {
		doc := root.Content[0]
		for i := 0; i+1 < len(doc.Content); i += 2 {
			key, val := doc.Content[i].Value, doc.Content[i+1]
			if key != "lists" && key != "macros" {
				continue
			}
			for j := 0; j+1 < len(val.Content); j += 2 {
				if key == "lists" {
					p.listLines[val.Content[j].Value] = val.Content[j].Line
				} else {
					p.macroLine[val.Content[j].Value] = val.Content[j].Line
				}
			}
		}
	}
	for i, r := range p.Rules {
		if r == nil {
			return nil, fmt.Errorf("%s: rules[%d] is empty", file, i)
		}
		r.File = file
	}
	if p.Name == "" {
		return nil, fmt.Errorf("%s:1: pack has no name (pack: ...)", file)
	}
	return p, nil
}

func (p *Pack) listNames() []string {
	names := make([]string, 0, len(p.Lists))
	for n := range p.Lists {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
