package rules

import (
	"fmt"
	"strings"

	"github.com/expr-lang/expr/vm"

	"github.com/qunshao/qunshao/nlp"
)

// ExampleFailure is a rule example that did not behave as declared.
type ExampleFailure struct {
	Rule     *Rule
	Example  Example
	Positive bool
}

func (f ExampleFailure) String() string {
	want := "should fire but did not"
	if !f.Positive {
		want = "should not fire but did"
	}
	return fmt.Sprintf("%s:%d: rule %s %s on %q", f.Rule.File, f.Example.Line, f.Rule.ID, want, f.Example.Text)
}

// TestExamples runs every rule's examples through the whole engine (so
// exceptions count) and returns those that misbehave.
func (e *Engine) TestExamples(analyze func(string) *nlp.Analysis) []ExampleFailure {
	var out []ExampleFailure
	fired := func(r *Rule, ex Example) bool {
		res := e.Evaluate(analyze(ex.Text), ex.Role)
		for _, h := range res.Hits {
			if h.Rule == r {
				return true
			}
		}
		return false
	}
	for _, r := range e.Rules {
		for _, ex := range r.Examples.Positive {
			if !fired(r, ex) {
				out = append(out, ExampleFailure{r, ex, true})
			}
		}
		for _, ex := range r.Examples.Negative {
			if fired(r, ex) {
				out = append(out, ExampleFailure{r, ex, false})
			}
		}
	}
	return out
}

// Problem is a lint finding.
type Problem struct {
	Where   string
	Message string
	Warning bool
}

func (p Problem) String() string {
	kind := "error"
	if p.Warning {
		kind = "warning"
	}
	return fmt.Sprintf("%s: %s: %s", p.Where, kind, p.Message)
}

// Lint reports warnings about a loaded engine: lists no rule uses, terms
// that appear in a list twice, disabled and experimental rules. (Errors
// such as unknown lists, bad expressions and duplicate ids stop Load.)
func (e *Engine) Lint() []Problem {
	used := map[string]bool{}
	for _, p := range e.Packs {
		for _, l := range p.Lists {
			for _, it := range l {
				if len(it) > 1 && it[0] == '@' {
					used[it[1:]] = true
				}
			}
		}
	}
	for _, r := range e.Rules {
		for _, c := range append([]*compiled{r.cond}, r.except...) {
			for name := range e.listID {
				if containsQuoted(c.source, name) {
					used[name] = true
				}
			}
		}
	}
	var out []Problem
	for id, name := range e.lists {
		if !used[name] {
			out = append(out, Problem{Where: e.listWhere[id], Message: fmt.Sprintf("list %q is not used by any rule", name), Warning: true})
		}
	}
	for _, p := range e.Packs {
		for _, name := range p.listNames() {
			seen := map[string]bool{}
			for _, it := range p.Lists[name] {
				t := normalizeTerm(it)
				if seen[t] {
					out = append(out, Problem{Where: fmt.Sprintf("%s:%d", p.File, p.listLines[name]), Message: fmt.Sprintf("list %q has %q twice", name, it), Warning: true})
				}
				seen[t] = true
			}
		}
	}
	for _, r := range e.Rules {
		if !r.IsEnabled() {
			out = append(out, Problem{Where: r.Where(), Message: fmt.Sprintf("rule %s is disabled", r.ID), Warning: true})
		}
	}
	return out
}

func containsQuoted(src, name string) bool {
	for _, q := range []string{`"` + name + `"`, "'" + name + "'"} {
		if strings.Contains(src, q) {
			return true
		}
	}
	return false
}

// CrossCheck evaluates every rule's condition and exceptions on one message
// with both the compiled closures and expr's own VM and reports the first
// disagreement. Tests use it to prove the closures implement expr's
// semantics.
func (e *Engine) CrossCheck(a *nlp.Analysis, role string) error {
	c := e.pool.Get().(*ctx)
	defer e.pool.Put(c)
	c.reset(a, role)
	env := map[string]any{"role": role, "staff": role == "owner" || role == "admin", "money": c.money, "text": a.Text, "length": len(a.Runes)}
	for _, r := range e.Rules {
		for i, cmp := range append([]*compiled{r.cond}, r.except...) {
			st := &vmState{c: c}
			prog, err := e.compileVMWith(cmp.source, st)
			if err != nil {
				return err
			}
			got, err := vm.Run(prog, env)
			if err != nil {
				return fmt.Errorf("rule %s condition %d: expr: %w", r.ID, i, err)
			}
			if want := cmp.eval(c); got != want {
				return fmt.Errorf("rule %s condition %d (%s): closures say %v, expr says %v", r.ID, i, cmp.source, want, got)
			}
		}
	}
	return nil
}
