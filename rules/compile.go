package rules

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// exprEnv is the typed environment of rule expressions: the variables.
// Functions are expr.Functions (see funcs.go).
type exprEnv struct {
	Host    string            `expr:"host"`    // scope host: the subject; otherwise ""
	Service string            `expr:"service"` // scope service: the subject; otherwise the label service
	Model   string            `expr:"model"`   // scope model: the subject; otherwise the label model
	Role    string            `expr:"role"`    // scope fleet: the subject; otherwise the label role
	Subject string            `expr:"subject"` // the subject, whatever the scope
	Labels  map[string]string `expr:"labels"`  // the subject's identity labels (Source.Labels)
}

// exprProblem is a problem at a rune offset of an expression.
type exprProblem struct {
	offset int
	msg    string
}

// exprReads is what an expression reads, found at compile time.
type exprReads struct {
	sels  []*Selector  // every selector argument, in order of first use
	wins  []WindowNeed // selectors read over a window, with their longest window
	own   []*Selector  // series of the subject itself the functions read (not fleet functions')
	fleet bool         // a fleet function is called: the answer depends on other hosts
}

// compileExpr compiles src as a bool condition whose functions read ctx.
// It answers what the expression reads and every problem found.
func compileExpr(ctx *evalCtx, src string) (program *vm.Program, reads exprReads, problems []exprProblem) {
	v := &callVisitor{src: []rune(src)}
	defer func() {
		if r := recover(); r != nil { // expr must not take the loader down
			program = nil
			problems = append(problems, exprProblem{0, fmt.Sprintf("expr: internal error: %v", r)})
		}
	}()
	opts := []expr.Option{
		expr.Env(exprEnv{}),
		expr.AsBool(),
		expr.DisableBuiltin("now"), // evaluation time is an argument, never the wall clock
		expr.Patch(v),
	}
	for _, f := range funcSpecs {
		opts = append(opts, expr.Function(f.name, bind(ctx, f), f.types...))
	}
	program, err := expr.Compile(src, opts...)
	problems = v.problems
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			problems = append(problems, exprProblem{fe.From, "expr: " + strings.TrimSpace(fe.Message)})
		} else {
			problems = append(problems, exprProblem{0, "expr: " + strings.TrimSpace(err.Error())})
		}
		program = nil
	}
	reads = exprReads{sels: v.sels, wins: v.wins, own: v.own, fleet: v.fleet}
	if len(problems) > 0 {
		return nil, reads, problems
	}
	for _, s := range v.sels {
		ctx.addSelector(s)
	}
	return program, reads, nil
}

// bind gives a function its evaluation context.
func bind(ctx *evalCtx, f *funcSpec) func(args ...any) (any, error) {
	return func(args ...any) (any, error) { return f.call(ctx, args) }
}

// callVisitor checks, before expr type-checks the tree, that every
// selector argument is a string literal holding a valid selector.
type callVisitor struct {
	src      []rune
	sels     []*Selector
	wins     []WindowNeed
	own      []*Selector
	fleet    bool
	problems []exprProblem
}

func (v *callVisitor) Visit(node *ast.Node) {
	if b, ok := (*node).(*ast.BuiltinNode); ok && b.Name == "duration" {
		v.foldDuration(node, b.Arguments)
		return
	}
	call, ok := (*node).(*ast.CallNode)
	if !ok {
		return
	}
	id, ok := call.Callee.(*ast.IdentifierNode)
	if !ok {
		return
	}
	f := lookupFunc(id.Value)
	if f == nil {
		return
	}
	v.checkLiterals(f, call.Arguments)
	if f.horArg > 0 && len(call.Arguments) > f.horArg {
		v.horizon(f, call.Arguments[f.horArg])
	}
	v.fleet = v.fleet || f.fleet
	if f.reads != nil {
		if sel := f.reads(call.Arguments); sel != nil {
			v.addOwn(sel)
		}
	}
	if !f.selector || len(call.Arguments) <= f.selArg {
		return
	}
	arg := call.Arguments[f.selArg]
	lit, ok := arg.(*ast.StringNode)
	if !ok {
		v.problems = append(v.problems, exprProblem{leftmost(arg),
			fmt.Sprintf("%s(): the selector must be a string literal, like \"mem.used_percent\"", f.name)})
		return
	}
	sel, err := ParseSelector(lit.Value)
	if err != nil {
		var se *SelectorError
		errors.As(err, &se)
		v.problems = append(v.problems, exprProblem{v.literalOffset(lit, se.Offset), fmt.Sprintf("%s(): bad selector %q: %s", f.name, lit.Value, se.Msg)})
		return
	}
	known := false
	for _, s := range v.sels {
		if s.Text == sel.Text {
			sel, known = s, true
			break
		}
	}
	if !known {
		v.sels = append(v.sels, sel)
	}
	if !f.fleet {
		v.addOwn(sel)
	}
	if f.winArg > 0 && len(call.Arguments) > f.winArg {
		v.window(f, sel, call.Arguments[f.winArg])
	}
}

// addOwn records a selector of the subject's own series, once.
func (v *callVisitor) addOwn(sel *Selector) {
	if !slices.ContainsFunc(v.own, func(x *Selector) bool { return x.Text == sel.Text }) {
		v.own = append(v.own, sel)
	}
}

// checkLiterals reports arguments that must be one of a set of string
// literals and are not.
func (v *callVisitor) checkLiterals(f *funcSpec, args []ast.Node) {
	for i, allowed := range f.lits {
		if i >= len(args) {
			continue
		}
		lit, ok := args[i].(*ast.StringNode)
		if !ok {
			v.problems = append(v.problems, exprProblem{leftmost(args[i]),
				fmt.Sprintf("%s(): argument %d must be a string literal, one of %s", f.name, i+1, strings.Join(allowed, " "))})
			continue
		}
		if !slices.Contains(allowed, lit.Value) {
			v.problems = append(v.problems, exprProblem{v.literalOffset(lit, 0),
				fmt.Sprintf("%s(): %q is not one of %s", f.name, lit.Value, strings.Join(allowed, " "))})
		}
	}
}

// window records the window a function reads sel over; it must be a
// constant duration (folded from duration("10m")) within MaxWindow.
func (v *callVisitor) window(f *funcSpec, sel *Selector, arg ast.Node) {
	c, ok := arg.(*ast.ConstantNode)
	d, isDur := time.Duration(0), false
	if ok {
		d, isDur = c.Value.(time.Duration)
	}
	if b, ok := arg.(*ast.BuiltinNode); ok && b.Name == "duration" {
		return // a bad duration literal, reported by foldDuration
	}
	switch {
	case !isDur:
		v.problems = append(v.problems, exprProblem{leftmost(arg),
			fmt.Sprintf("%s(): the window must be a constant duration, like duration(\"10m\")", f.name)})
		return
	case d <= 0 || d > MaxWindow:
		v.problems = append(v.problems, exprProblem{leftmost(arg),
			fmt.Sprintf("%s(): the window must be positive and at most %s, got %s", f.name, formatDuration(MaxWindow), d)})
		return
	}
	for i := range v.wins {
		if v.wins[i].Selector == sel {
			v.wins[i].Span = max(v.wins[i].Span, d)
			return
		}
	}
	v.wins = append(v.wins, WindowNeed{Selector: sel, Span: d})
}

// horizon checks a forecast horizon argument: a constant duration
// (folded from duration("2h")) in (0, MaxWindow].
func (v *callVisitor) horizon(f *funcSpec, arg ast.Node) {
	switch a := arg.(type) {
	case *ast.BuiltinNode:
		if a.Name == "duration" {
			return // a bad duration literal, reported by foldDuration
		}
	case *ast.IntegerNode, *ast.FloatNode, *ast.StringNode, *ast.BoolNode, *ast.NilNode:
		return // not a duration at all: expr's type check says so
	}
	c, ok := arg.(*ast.ConstantNode)
	d, isDur := time.Duration(0), false
	if ok {
		d, isDur = c.Value.(time.Duration)
	}
	switch {
	case !isDur:
		v.problems = append(v.problems, exprProblem{leftmost(arg),
			fmt.Sprintf("%s(): the horizon must be a constant duration, like duration(\"2h\")", f.name)})
	case d <= 0 || d > MaxWindow:
		v.problems = append(v.problems, exprProblem{leftmost(arg),
			fmt.Sprintf("%s(): the horizon must be positive and at most %s, got %s", f.name, formatDuration(MaxWindow), formatDuration(d))})
	}
}

// foldDuration replaces duration("30m") by its value, which expr would
// otherwise parse on every run, and reports a bad literal at load time.
// Anything else is left to expr.
func (v *callVisitor) foldDuration(node *ast.Node, args []ast.Node) {
	if len(args) != 1 {
		return
	}
	lit, ok := args[0].(*ast.StringNode)
	if !ok {
		return
	}
	d, err := time.ParseDuration(lit.Value)
	if err != nil {
		v.problems = append(v.problems, exprProblem{v.literalOffset(lit, 0),
			fmt.Sprintf("duration(): invalid duration %q (want e.g. 30s, 5m, 1h)", lit.Value)})
		return
	}
	ast.Patch(node, &ast.ConstantNode{Value: d})
}

// literalOffset is the offset in the expression of rune i of a string
// literal's value; the literal's start when escapes make it unknowable.
func (v *callVisitor) literalOffset(lit *ast.StringNode, i int) int {
	loc := lit.Location()
	if loc.From < 0 || loc.To > len(v.src) || loc.From >= loc.To {
		return loc.From
	}
	raw := string(v.src[loc.From:loc.To])
	if raw == `"`+lit.Value+`"` || raw == `'`+lit.Value+`'` || raw == "`"+lit.Value+"`" {
		return loc.From + 1 + i
	}
	return loc.From
}

// leftmost is the smallest offset of a node of the tree (binary nodes are
// located at their operator).
func leftmost(n ast.Node) int {
	m := &minVisitor{min: n.Location().From}
	ast.Walk(&n, m)
	return m.min
}

type minVisitor struct{ min int }

func (m *minVisitor) Visit(n *ast.Node) {
	if loc := (*n).Location(); loc.To > loc.From && loc.From < m.min {
		m.min = loc.From
	}
}
