package rules_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qunshao/qunshao/nlp"
	"github.com/qunshao/qunshao/rules"
)

const goodLists = `pack: lists
lists:
  refund: [退款, 仅退款]
  directive: [每人, 大家]
  shop: [他家, "@refund"]
`

func rule(cond string) string {
	return `pack: r
rules:
  - id: t.one
    category: attack_task
    severity: high
    description: d
    condition: ` + cond + `
    examples:
      positive: [每人去退款]
      negative: [你好]
`
}

// TestLoadErrorsNameFileAndLine feeds broken packs and checks each error
// names the file, the line and the problem.
func TestLoadErrorsNameFileAndLine(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"unknown list", map[string]string{"l.yaml": goodLists, "r.yaml": rule(`has("refnd")`)}, []string{"r.yaml:3:", `unknown list "refnd"`}},
		{"bad expression", map[string]string{"l.yaml": goodLists, "r.yaml": rule(`has("refund") &&`)}, []string{"r.yaml:3:", "t.one"}},
		{"type error", map[string]string{"l.yaml": goodLists, "r.yaml": rule(`has("refund") + 1`)}, []string{"r.yaml:3:"}},
		{"unknown function", map[string]string{"l.yaml": goodLists, "r.yaml": rule(`hass("refund")`)}, []string{"r.yaml:3:"}},
		{"unknown macro", map[string]string{"l.yaml": goodLists, "r.yaml": rule(`$nope`)}, []string{"r.yaml:3:", "unknown macro $nope"}},
		{"unknown entity", map[string]string{"l.yaml": goodLists, "r.yaml": rule(`entity("spaceship")`)}, []string{"r.yaml:3:", "unknown entity type"}},
		{"duplicate id", map[string]string{"l.yaml": goodLists, "r.yaml": rule(`has("refund")`) + strings.TrimPrefix(rule(`has("refund")`), "pack: r\nrules:\n")},
			[]string{"r.yaml:11:", `rule id "t.one" already used at r.yaml:3`}},
		{"duplicate list", map[string]string{"l.yaml": goodLists, "m.yaml": "pack: m\nlists:\n  refund: [退]\n"}, []string{"m.yaml:3:", `list "refund" already defined at l.yaml:3`}},
		{"list cycle", map[string]string{"l.yaml": "pack: l\nlists:\n  a: [\"@b\"]\n  b: [\"@a\"]\n"}, []string{"l.yaml:", "includes itself"}},
		{"unknown key", map[string]string{"l.yaml": goodLists + "colour: red\n"}, []string{"l.yaml:6:", "colour"}},
		{"bad category", map[string]string{"l.yaml": goodLists, "r.yaml": strings.Replace(rule(`has("refund")`), "attack_task", "spam", 1)}, []string{"r.yaml:3:", `category "spam"`}},
		{"no examples", map[string]string{"l.yaml": goodLists, "r.yaml": strings.Replace(rule(`has("refund")`), "      negative: [你好]\n", "", 1)}, []string{"r.yaml:3:", "negative example"}},
		{"broken yaml", map[string]string{"l.yaml": "pack: [\n"}, []string{"l.yaml"}},
	}
	for _, c := range cases {
		files := map[string][]byte{}
		for n, b := range c.files {
			files[n] = []byte(b)
		}
		_, err := rules.Load(files)
		if err == nil {
			t.Errorf("%s: loaded", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", c.name, err, w)
			}
		}
	}
}

func TestConditionFunctions(t *testing.T) {
	e, err := rules.Load(map[string][]byte{"l.yaml": []byte(goodLists), "r.yaml": []byte(`pack: r
macros:
  told: has("directive")
rules:
  - id: a
    category: attack_task
    severity: high
    description: near and macros
    condition: $told && near("directive", "refund", 3) && hits("refund") >= 1 && role in ["owner", "admin"]
    examples: {positive: [x], negative: [y]}
  - id: b
    category: benign
    severity: info
    description: quotes
    condition: inquote("refund")
    examples: {positive: [x], negative: [y]}
  - id: c
    category: extortion
    severity: high
    description: money and text
    condition: money >= 1000 && text contains "转" && !staff
    examples: {positive: [x], negative: [y]}
`)})
	if err != nil {
		t.Fatal(err)
	}
	a := testAnalyzer(t)
	fired := func(text, role string) string {
		var ids []string
		for _, h := range e.Evaluate(a.Analyze(text), role).Hits {
			ids = append(ids, h.Rule.ID)
		}
		return strings.Join(ids, ",")
	}
	for _, c := range []struct{ text, role, want string }{
		{"每人去仅退款", "owner", "a"},
		{"每人去仅退款", "member", ""},
		{"每人今天下午都去申请仅退款", "owner", ""}, // too far apart
		{"他说“退款”就行", "member", "b"},
		{"退款，他说“退款”", "member", ""},
		{"给我转5000元", "member", "c"},
		{"给我转5000元", "admin", ""},
		{"给我转500元", "member", ""},
	} {
		if got := fired(c.text, c.role); got != c.want {
			t.Errorf("%q as %s fired %q, want %q", c.text, c.role, got, c.want)
		}
	}
}

// TestClosuresAgreeWithExpr evaluates every embedded rule condition both
// with the compiled closures and with expr's own VM on many messages.
func TestClosuresAgreeWithExpr(t *testing.T) {
	e := embedded(t)
	a := testAnalyzer(t)
	var texts []string
	for _, r := range e.Rules {
		for _, ex := range append(append([]rules.Example{}, r.Examples.Positive...), r.Examples.Negative...) {
			texts = append(texts, ex.Text)
		}
	}
	for _, role := range []string{"owner", "member", ""} {
		for _, text := range texts {
			an := a.Analyze(text)
			if err := e.CrossCheck(an, role); err != nil {
				t.Fatalf("%q as %q: %v", text, role, err)
			}
		}
	}
}

func FuzzLoad(f *testing.F) {
	f.Add(goodLists, rule(`has("refund") && near("directive", "refund", 2)`))
	f.Add("pack: x\nlists: {a: [\"@a\"]}", "")
	f.Add(goodLists, rule(`$x`))
	f.Add("", "")
	f.Add("pack: r\nrules: []\n", "")
	f.Fuzz(func(t *testing.T, a, b string) {
		e, err := rules.Load(map[string][]byte{"a.yaml": []byte(a), "b.yaml": []byte(b)})
		if err != nil {
			return
		}
		e.Evaluate(&nlp.Analysis{Normalized: nlp.Identity("每人去退款，他家仅退款")}, "owner")
		e.Lint()
	})
}

func TestWatcherReloadsAndKeepsGoodRules(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("l.yaml", goodLists)
	write("r.yaml", rule(`has("refund")`))
	var current *rules.Engine
	w := &rules.Watcher{Dir: dir, Interval: time.Second, Apply: func(e *rules.Engine) { current = e }}
	if changed, err := w.Reload(); err != nil || !changed || current == nil {
		t.Fatalf("first load: %v %v", changed, err)
	}
	first := current
	if changed, _ := w.Reload(); changed {
		t.Fatal("reloaded without a change")
	}
	// A broken edit is reported and the previous engine stays.
	write("r.yaml", rule(`has("nolist")`))
	if changed, err := w.Reload(); err == nil || changed || current != first {
		t.Fatalf("broken pack: changed=%v err=%v", changed, err)
	}
	// A good edit replaces it.
	write("r.yaml", strings.Replace(rule(`has("directive")`), "t.one", "t.two", 1))
	if changed, err := w.Reload(); err != nil || !changed || current.Rule("t.two") == nil || current.Version == first.Version {
		t.Fatalf("good edit: changed=%v err=%v", changed, err)
	}
	// Run picks up edits by itself.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan *rules.Engine, 4)
	w2 := &rules.Watcher{Dir: dir, Interval: 20 * time.Millisecond, Apply: func(e *rules.Engine) { got <- e }}
	w2.Reload()
	<-got
	go w2.Run(ctx)
	write("r.yaml", strings.Replace(rule(`has("shop")`), "t.one", "t.three", 1))
	select {
	case e := <-got:
		if e.Rule("t.three") == nil {
			t.Fatal("reloaded engine lacks the new rule")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watcher did not reload")
	}
}
