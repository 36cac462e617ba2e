package rules

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
)

var yamlLineRE = regexp.MustCompile(`line (\d+):`)

// The condition language: expr syntax (&&, ||, !, and/or/not, comparison,
// arithmetic, in [...], contains, startsWith, endsWith) over these names.
// Lists are referenced by name in string literals, so a typo is caught
// when the pack is loaded.
//
//	has("list")            a term of the list occurs in the normalised text
//	hits("list")           how many distinct terms of the list occur
//	word("list")           a word (gse token) equals a term of the list
//	inquote("list")        the list matches, and only inside quotation marks
//	near("a", "b", n)      a term of a and a term of b at most n characters apart
//	before("a", "b", n)    a term of a, then within n characters a term of b
//	entity("type")         an entity of the type is present (money, shop, item_link, ...)
//	entities("type")       how many
//	evaded("kind")         normalisation undid this disguise (homophone, pinyin, ...; "any")
//	role                   sender's role: owner, admin, member or unknown
//	staff                  role is owner or admin
//	money                  largest money amount in yuan (0 if none)
//	text                   the normalised text
//	length                 its length in characters
//
// Macros are written $name and stand for their expression in parentheses.
var declEnv = map[string]any{
	"role":   "",
	"staff":  false,
	"money":  0.0,
	"text":   "",
	"length": 0,
}

// functions are the condition language's functions with their signatures.
var functions = []struct {
	name string
	typ  any
	// listArgs are the argument positions that name lists.
	listArgs []int
}{
	{"has", new(func(string) bool), []int{0}},
	{"hits", new(func(string) int), []int{0}},
	{"word", new(func(string) bool), []int{0}},
	{"inquote", new(func(string) bool), []int{0}},
	{"near", new(func(string, string, int) bool), []int{0, 1}},
	{"before", new(func(string, string, int) bool), []int{0, 1}},
	{"entity", new(func(string) bool), nil},
	{"entities", new(func(string) int), nil},
	{"evaded", new(func(string) bool), nil},
}

var macroRE = regexp.MustCompile(`\$([A-Za-z_][A-Za-z0-9_]*)`)

// expandMacros replaces $name with the macro's expression, recursively.
func expandMacros(cond string, macros map[string]string, depth int) (string, error) {
	if depth > 10 {
		return "", fmt.Errorf("macros nest more than 10 deep (a macro refers to itself?)")
	}
	var err error
	out := macroRE.ReplaceAllStringFunc(cond, func(m string) string {
		name := m[1:]
		body, ok := macros[name]
		if !ok {
			if err == nil {
				err = fmt.Errorf("unknown macro $%s", name)
			}
			return m
		}
		exp, e := expandMacros(body, macros, depth+1)
		if e != nil && err == nil {
			err = fmt.Errorf("in macro $%s: %w", name, e)
		}
		return "(" + exp + ")"
	})
	return out, err
}

// compiled is a checked condition ready to evaluate.
type compiled struct {
	source string
	eval   func(*ctx) bool
	// positive are the lists whose matches explain a true result: those
	// referenced outside any negation.
	positive []int
	// guard, when not nil, lists lists at least one of which must match
	// for the condition to be true; the rule is skipped otherwise.
	guard []int
	// program is expr's own compilation, used to cross-check the closures.
	program *vm.Program
}

// vmState carries the message a cross-check evaluates; the expr functions
// registered for the VM read it.
type vmState struct{ c *ctx }

// compileCondition parses and type-checks cond with expr, then compiles its
// tree into closures. Parsing, checking and error positions are expr's;
// the closures evaluate the checked tree without interpreting it again per
// message (expr's VM costs 0.3-2 µs per rule, which the message budget of
// a few µs cannot afford).
func (e *Engine) compileCondition(cond string, macros map[string]string) (*compiled, error) {
	src, err := expandMacros(cond, macros, 0)
	if err != nil {
		return nil, err
	}
	st := &vmState{}
	opts := []expr.Option{expr.Env(declEnv), expr.AsBool(), expr.Optimize(false)}
	for _, f := range functions {
		opts = append(opts, expr.Function(f.name, e.vmFunction(f.name, st), f.typ))
	}
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, fmt.Errorf("condition %q: %s", oneLine(src), strings.ReplaceAll(err.Error(), "\n", " "))
	}
	c := &compiled{source: src, program: prog}
	node := prog.Node()
	if err := e.checkLists(node); err != nil {
		return nil, err
	}
	b, err := e.boolFn(node)
	if err != nil {
		return nil, fmt.Errorf("condition %q: %w", oneLine(src), err)
	}
	c.eval = b
	pos := map[int]bool{}
	e.positiveLists(node, false, pos)
	for id := range pos {
		c.positive = append(c.positive, id)
	}
	sortInts(c.positive)
	if g, ok := e.needAny(node); ok {
		c.guard = g
	}
	return c, nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// checkLists makes sure every list a function names exists.
func (e *Engine) checkLists(node ast.Node) error {
	var err error
	ast.Find(node, func(n ast.Node) bool {
		call, ok := n.(*ast.CallNode)
		if !ok || err != nil {
			return false
		}
		id, ok := call.Callee.(*ast.IdentifierNode)
		if !ok {
			return false
		}
		for _, f := range functions {
			if f.name != id.Value {
				continue
			}
			for _, pos := range f.listArgs {
				if pos >= len(call.Arguments) {
					continue
				}
				s, ok := call.Arguments[pos].(*ast.StringNode)
				if !ok {
					err = fmt.Errorf("%s: argument %d must be a list name in quotes", f.name, pos+1)
					return true
				}
				if _, ok := e.listID[s.Value]; !ok {
					err = fmt.Errorf("unknown list %q in %s(...)", s.Value, f.name)
					return true
				}
			}
			if f.name == "entity" || f.name == "entities" {
				if s, ok := call.Arguments[0].(*ast.StringNode); !ok || !knownEntity(s.Value) {
					err = fmt.Errorf("%s: unknown entity type (one of %s)", f.name, strings.Join(entityTypes(), ", "))
					return true
				}
			}
			if f.name == "evaded" {
				if s, ok := call.Arguments[0].(*ast.StringNode); !ok || !knownEvasion(s.Value) {
					err = fmt.Errorf("evaded: unknown kind (one of %s)", strings.Join(evasionKinds(), ", "))
					return true
				}
			}
		}
		return false
	})
	return err
}

func (e *Engine) listArg(n ast.Node) int {
	return e.listID[n.(*ast.StringNode).Value]
}

// positiveLists collects lists referenced under an even number of
// negations.
func (e *Engine) positiveLists(n ast.Node, negated bool, out map[int]bool) {
	switch x := n.(type) {
	case *ast.UnaryNode:
		e.positiveLists(x.Node, negated != (x.Operator == "!" || x.Operator == "not"), out)
	case *ast.BinaryNode:
		e.positiveLists(x.Left, negated, out)
		e.positiveLists(x.Right, negated, out)
	case *ast.CallNode:
		if negated {
			return
		}
		id, _ := x.Callee.(*ast.IdentifierNode)
		if id == nil {
			return
		}
		for _, f := range functions {
			if f.name == id.Value {
				for _, p := range f.listArgs {
					out[e.listArg(x.Arguments[p])] = true
				}
			}
		}
	case *ast.ConditionalNode:
		e.positiveLists(x.Exp1, negated, out)
		e.positiveLists(x.Exp2, negated, out)
	}
}

// needAny derives lists of which at least one must match for n to be
// true; ok is false when nothing can be said.
func (e *Engine) needAny(n ast.Node) ([]int, bool) {
	switch x := n.(type) {
	case *ast.BinaryNode:
		switch x.Operator {
		case "&&", "and":
			l, lok := e.needAny(x.Left)
			r, rok := e.needAny(x.Right)
			switch {
			case lok && rok:
				if len(l) <= len(r) {
					return l, true
				}
				return r, true
			case lok:
				return l, true
			case rok:
				return r, true
			}
		case "||", "or":
			l, lok := e.needAny(x.Left)
			r, rok := e.needAny(x.Right)
			if lok && rok {
				return mergeInts(l, r), true
			}
		case ">", ">=":
			// hits("x") > 0 and the like need x.
			if call, ok := x.Left.(*ast.CallNode); ok {
				if num, ok := x.Right.(*ast.IntegerNode); ok && (num.Value > 0 || x.Operator == ">" && num.Value >= 0) {
					return e.needAny(call)
				}
			}
		}
	case *ast.CallNode:
		id, _ := x.Callee.(*ast.IdentifierNode)
		if id == nil {
			return nil, false
		}
		switch id.Value {
		case "has", "hits", "word", "inquote":
			return []int{e.listArg(x.Arguments[0])}, true
		case "near", "before":
			return []int{e.listArg(x.Arguments[0])}, true
		}
	}
	return nil, false
}

func mergeInts(a, b []int) []int {
	seen := map[int]bool{}
	var out []int
	for _, x := range append(append([]int{}, a...), b...) {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	sortInts(out)
	return out
}

func sortInts(a []int) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

var (
	boolType   = reflect.TypeOf(true)
	stringType = reflect.TypeOf("")
)

func isNumeric(t reflect.Type) bool {
	if t == nil {
		return false
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Float64, reflect.Float32, reflect.Uint, reflect.Uint64:
		return true
	}
	return false
}

func unsupported(n ast.Node) error {
	return fmt.Errorf("%T (%s) is not supported in rule conditions", n, n.String())
}

// boolFn compiles a boolean-valued node.
func (e *Engine) boolFn(n ast.Node) (func(*ctx) bool, error) {
	switch x := n.(type) {
	case *ast.BoolNode:
		v := x.Value
		return func(*ctx) bool { return v }, nil
	case *ast.IdentifierNode:
		if x.Value == "staff" {
			return func(c *ctx) bool { return c.role == "owner" || c.role == "admin" }, nil
		}
	case *ast.UnaryNode:
		if x.Operator == "!" || x.Operator == "not" {
			f, err := e.boolFn(x.Node)
			if err != nil {
				return nil, err
			}
			return func(c *ctx) bool { return !f(c) }, nil
		}
	case *ast.ConditionalNode:
		c0, err := e.boolFn(x.Cond)
		if err != nil {
			return nil, err
		}
		a, err := e.boolFn(x.Exp1)
		if err != nil {
			return nil, err
		}
		b, err := e.boolFn(x.Exp2)
		if err != nil {
			return nil, err
		}
		return func(c *ctx) bool {
			if c0(c) {
				return a(c)
			}
			return b(c)
		}, nil
	case *ast.BinaryNode:
		return e.binaryBool(x)
	case *ast.CallNode:
		return e.callBool(x)
	}
	return nil, unsupported(n)
}

func (e *Engine) binaryBool(x *ast.BinaryNode) (func(*ctx) bool, error) {
	switch x.Operator {
	case "&&", "and", "||", "or":
		l, err := e.boolFn(x.Left)
		if err != nil {
			return nil, err
		}
		r, err := e.boolFn(x.Right)
		if err != nil {
			return nil, err
		}
		if x.Operator == "&&" || x.Operator == "and" {
			return func(c *ctx) bool { return l(c) && r(c) }, nil
		}
		return func(c *ctx) bool { return l(c) || r(c) }, nil
	case "==", "!=", "<", "<=", ">", ">=":
		lt, rt := x.Left.Type(), x.Right.Type()
		neg := x.Operator == "!="
		switch {
		case isNumeric(lt) && isNumeric(rt):
			l, err := e.numFn(x.Left)
			if err != nil {
				return nil, err
			}
			r, err := e.numFn(x.Right)
			if err != nil {
				return nil, err
			}
			switch x.Operator {
			case "==":
				return func(c *ctx) bool { return l(c) == r(c) }, nil
			case "!=":
				return func(c *ctx) bool { return l(c) != r(c) }, nil
			case "<":
				return func(c *ctx) bool { return l(c) < r(c) }, nil
			case "<=":
				return func(c *ctx) bool { return l(c) <= r(c) }, nil
			case ">":
				return func(c *ctx) bool { return l(c) > r(c) }, nil
			case ">=":
				return func(c *ctx) bool { return l(c) >= r(c) }, nil
			}
		case lt == stringType && rt == stringType && (x.Operator == "==" || x.Operator == "!="):
			l, err := e.strFn(x.Left)
			if err != nil {
				return nil, err
			}
			r, err := e.strFn(x.Right)
			if err != nil {
				return nil, err
			}
			return func(c *ctx) bool { return (l(c) == r(c)) != neg }, nil
		case lt == boolType && rt == boolType && (x.Operator == "==" || x.Operator == "!="):
			l, err := e.boolFn(x.Left)
			if err != nil {
				return nil, err
			}
			r, err := e.boolFn(x.Right)
			if err != nil {
				return nil, err
			}
			return func(c *ctx) bool { return (l(c) == r(c)) != neg }, nil
		}
	case "contains", "startsWith", "endsWith":
		l, err := e.strFn(x.Left)
		if err != nil {
			return nil, err
		}
		r, err := e.strFn(x.Right)
		if err != nil {
			return nil, err
		}
		switch x.Operator {
		case "contains":
			return func(c *ctx) bool { return strings.Contains(l(c), r(c)) }, nil
		case "startsWith":
			return func(c *ctx) bool { return strings.HasPrefix(l(c), r(c)) }, nil
		default:
			return func(c *ctx) bool { return strings.HasSuffix(l(c), r(c)) }, nil
		}
	case "in", "not in":
		arr, ok := x.Right.(*ast.ArrayNode)
		if !ok {
			break
		}
		l, err := e.strFn(x.Left)
		if err != nil {
			return nil, err
		}
		set := map[string]bool{}
		for _, it := range arr.Nodes {
			s, ok := it.(*ast.StringNode)
			if !ok {
				return nil, fmt.Errorf("in [...] takes string literals")
			}
			set[s.Value] = true
		}
		neg := x.Operator == "not in"
		return func(c *ctx) bool { return set[l(c)] != neg }, nil
	}
	return nil, unsupported(x)
}

func (e *Engine) callBool(x *ast.CallNode) (func(*ctx) bool, error) {
	id, _ := x.Callee.(*ast.IdentifierNode)
	if id == nil {
		return nil, unsupported(x)
	}
	str := func(i int) string { return x.Arguments[i].(*ast.StringNode).Value }
	switch id.Value {
	case "has":
		l := e.listArg(x.Arguments[0])
		return func(c *ctx) bool { return c.has(l) }, nil
	case "word":
		l := e.listArg(x.Arguments[0])
		return func(c *ctx) bool { return c.word(l) }, nil
	case "inquote":
		l := e.listArg(x.Arguments[0])
		return func(c *ctx) bool { return c.inquote(l) }, nil
	case "near", "before":
		a, b := e.listArg(x.Arguments[0]), e.listArg(x.Arguments[1])
		nf, err := e.numFn(x.Arguments[2])
		if err != nil {
			return nil, err
		}
		ordered := id.Value == "before"
		return func(c *ctx) bool { return c.near(a, b, int(nf(c)), ordered) }, nil
	case "entity":
		t := str(0)
		return func(c *ctx) bool { return c.entityCount(t) > 0 }, nil
	case "evaded":
		k := str(0)
		return func(c *ctx) bool { return c.evaded(k) }, nil
	}
	return nil, unsupported(x)
}

// numFn compiles a numeric node; integers and floats are both float64.
func (e *Engine) numFn(n ast.Node) (func(*ctx) float64, error) {
	switch x := n.(type) {
	case *ast.IntegerNode:
		v := float64(x.Value)
		return func(*ctx) float64 { return v }, nil
	case *ast.FloatNode:
		v := x.Value
		return func(*ctx) float64 { return v }, nil
	case *ast.IdentifierNode:
		switch x.Value {
		case "money":
			return func(c *ctx) float64 { return c.money }, nil
		case "length":
			return func(c *ctx) float64 { return float64(len(c.a.Runes)) }, nil
		}
	case *ast.UnaryNode:
		if x.Operator == "-" {
			f, err := e.numFn(x.Node)
			if err != nil {
				return nil, err
			}
			return func(c *ctx) float64 { return -f(c) }, nil
		}
	case *ast.BinaryNode:
		l, err := e.numFn(x.Left)
		if err != nil {
			return nil, err
		}
		r, err := e.numFn(x.Right)
		if err != nil {
			return nil, err
		}
		switch x.Operator {
		case "+":
			return func(c *ctx) float64 { return l(c) + r(c) }, nil
		case "-":
			return func(c *ctx) float64 { return l(c) - r(c) }, nil
		case "*":
			return func(c *ctx) float64 { return l(c) * r(c) }, nil
		case "/":
			return func(c *ctx) float64 {
				d := r(c)
				if d == 0 {
					return math.Inf(1)
				}
				return l(c) / d
			}, nil
		}
	case *ast.CallNode:
		id, _ := x.Callee.(*ast.IdentifierNode)
		if id == nil {
			break
		}
		switch id.Value {
		case "hits":
			l := e.listArg(x.Arguments[0])
			return func(c *ctx) float64 { return float64(c.hits(l)) }, nil
		case "entities":
			t := x.Arguments[0].(*ast.StringNode).Value
			return func(c *ctx) float64 { return float64(c.entityCount(t)) }, nil
		}
	}
	return nil, unsupported(n)
}

func (e *Engine) strFn(n ast.Node) (func(*ctx) string, error) {
	switch x := n.(type) {
	case *ast.StringNode:
		v := x.Value
		return func(*ctx) string { return v }, nil
	case *ast.IdentifierNode:
		switch x.Value {
		case "role":
			return func(c *ctx) string { return c.role }, nil
		case "text":
			return func(c *ctx) string { return c.a.Text }, nil
		}
	}
	return nil, unsupported(n)
}

// compileVMWith compiles an already expanded condition for expr's VM with
// functions reading st.
func (e *Engine) compileVMWith(src string, st *vmState) (*vm.Program, error) {
	opts := []expr.Option{expr.Env(declEnv), expr.AsBool(), expr.Optimize(false)}
	for _, f := range functions {
		opts = append(opts, expr.Function(f.name, e.vmFunction(f.name, st), f.typ))
	}
	return expr.Compile(src, opts...)
}

// vmFunction implements a condition function for expr's VM, reading the
// message from st. Only the cross-check uses it.
func (e *Engine) vmFunction(name string, st *vmState) func(params ...any) (any, error) {
	return func(p ...any) (any, error) {
		c := st.c
		if c == nil {
			return nil, fmt.Errorf("%s called without a message", name)
		}
		list := func(i int) int { return e.listID[p[i].(string)] }
		switch name {
		case "has":
			return c.has(list(0)), nil
		case "hits":
			return c.hits(list(0)), nil
		case "word":
			return c.word(list(0)), nil
		case "inquote":
			return c.inquote(list(0)), nil
		case "near", "before":
			return c.near(list(0), list(1), p[2].(int), name == "before"), nil
		case "entity":
			return c.entityCount(p[0].(string)) > 0, nil
		case "entities":
			return c.entityCount(p[0].(string)), nil
		case "evaded":
			return c.evaded(p[0].(string)), nil
		}
		return nil, fmt.Errorf("unknown function %s", name)
	}
}
