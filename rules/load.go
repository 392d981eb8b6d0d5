package rules

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vigil-sre/vigil/internal/config"
)

// LoadFiles reads and compiles rule files into one Set. A path may be a
// directory: every *.yaml and *.yml file directly in it, in name order,
// except rule unit tests (*_test.yaml, *_test.yml).
// The error is a config.Errors listing every problem in every file.
func LoadFiles(paths ...string) (*Set, error) {
	l := newLoader()
	for _, p := range paths {
		files, err := expandPath(p)
		if err != nil {
			l.errs = append(l.errs, &config.Error{File: p, Msg: err.Error()})
			continue
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				l.errs = append(l.errs, &config.Error{File: f, Msg: err.Error()})
				continue
			}
			l.file(f, data)
		}
	}
	return l.finish()
}

// Parse compiles one rule file held in memory; file names it in errors.
func Parse(file string, data []byte) (*Set, error) {
	l := newLoader()
	l.file(file, data)
	return l.finish()
}

func expandPath(p string) ([]string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if !e.IsDir() && (ext == ".yaml" || ext == ".yml") && !strings.HasSuffix(strings.TrimSuffix(e.Name(), ext), "_test") {
			out = append(out, filepath.Join(p, e.Name()))
		}
	}
	return out, nil // ReadDir sorts by name
}

// loader accumulates the groups and problems of several files.
type loader struct {
	set    *Set
	groups map[string]*Group // by name, across files
	check  *evalCtx          // type-checking context; its programs are discarded
	errs   config.Errors
}

func newLoader() *loader {
	return &loader{set: &Set{}, groups: map[string]*Group{}, check: newEvalCtx()}
}

func (l *loader) finish() (*Set, error) {
	if len(l.errs) > 0 {
		sort.SliceStable(l.errs, func(i, j int) bool {
			a, b := l.errs[i], l.errs[j]
			if a.File != b.File {
				return a.File < b.File
			}
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Col < b.Col
		})
		return nil, l.errs
	}
	return l.set, nil
}

func (l *loader) file(file string, data []byte) {
	d := &decoder{file: file, data: data}
	defer func() { l.errs = append(l.errs, d.errs...) }()
	var root yaml.Node
	if err := safeUnmarshal(data, &root); err != nil {
		d.syntaxError(err)
		return
	}
	if root.Kind == 0 || len(root.Content) == 0 || isNull(root.Content[0]) {
		return // empty file
	}
	d.mapping(root.Content[0], "rule file", []field{
		{key: "groups", fn: func(v *yaml.Node) {
			if isNull(v) {
				return
			}
			if v.Kind != yaml.SequenceNode {
				d.errorf(v, "groups: expected a list, got %s", kindName(v))
				return
			}
			for _, g := range v.Content {
				l.group(d, resolve(g))
			}
		}},
	})
}

// safeUnmarshal turns a panic of the YAML parser into an error.
func safeUnmarshal(data []byte, root *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	return yaml.Unmarshal(data, root)
}

func (l *loader) group(d *decoder, n *yaml.Node) {
	g := &Group{Scope: ScopeHost, Interval: DefaultInterval, MinConfidence: DefaultMinConfidence,
		File: d.file, Line: n.Line, Column: n.Column}
	var rules []*yaml.Node
	ok := d.mapping(n, "group", []field{
		{key: "name", required: true, fn: func(v *yaml.Node) {
			if name, ok := d.name(v, "name"); ok {
				if prev := l.groups[name]; prev != nil {
					d.errorf(v, "duplicate group name %q (first defined at %s:%d:%d)", name, prev.File, prev.Line, prev.Column)
					return
				}
				g.Name = name
				l.groups[name] = g
			}
		}},
		{key: "scope", fn: func(v *yaml.Node) {
			d.oneOf(v, "scope", &g.Scope, ScopeHost, ScopeService, ScopeModel, ScopeFleet)
		}},
		{key: "interval", fn: func(v *yaml.Node) {
			if d.duration(v, "interval", &g.Interval) && g.Interval < MinInterval {
				d.errorf(v, "interval: %s is below the minimum of %s", g.Interval, MinInterval)
			}
		}},
		{key: "min_confidence", fn: func(v *yaml.Node) {
			if d.float(v, "min_confidence", &g.MinConfidence) && !(g.MinConfidence >= 0 && g.MinConfidence <= 1) {
				d.errorf(v, "min_confidence: must be between 0 and 1, got %v", v.Value)
			}
		}},
		{key: "rules", fn: func(v *yaml.Node) {
			if isNull(v) {
				return
			}
			if v.Kind != yaml.SequenceNode {
				d.errorf(v, "rules: expected a list, got %s", kindName(v))
				return
			}
			rules = v.Content
		}},
	})
	if !ok {
		return
	}
	names := map[string]*Rule{}
	for _, rn := range rules {
		r, valid := l.rule(d, g, resolve(rn))
		if r.Name != "" {
			if prev := names[r.Name]; prev != nil {
				d.errorAt(r.Line, r.Column, "duplicate rule name %q in group %q (first defined at line %d)", r.Name, g.Name, prev.Line)
				continue
			}
			names[r.Name] = r
		}
		if valid {
			g.Rules = append(g.Rules, r)
		}
	}
	for _, r := range g.Rules {
		r.Group = g.Name
		r.computeFingerprint()
	}
	l.set.groups = append(l.set.groups, g)
}

// rule decodes one rule; valid is false when it has problems.
func (l *loader) rule(d *decoder, g *Group, n *yaml.Node) (r *Rule, valid bool) {
	r = &Rule{Severity: SeverityWarning, Mode: ModeAuto, Cooldown: DefaultCooldown, NoData: NoDataState,
		Flap: FlapPolicy{Firings: DefaultFlapFirings, Window: DefaultFlapWindow},
		File: d.file, Line: n.Line, Column: n.Column, group: g}
	var exprNode, clearNode, labelsNode, annotationsNode *yaml.Node
	before := len(d.errs)
	exprField := func(what string, out *string, node **yaml.Node) func(v *yaml.Node) {
		return func(v *yaml.Node) {
			if s, ok := d.str(v, what); ok {
				if strings.TrimSpace(s) == "" {
					d.errorf(v, "%s: must not be empty", what)
					return
				}
				*out, *node = s, v
			}
		}
	}
	ok := d.mapping(n, "rule", []field{
		{key: "name", required: true, fn: func(v *yaml.Node) { r.Name, _ = d.name(v, "name") }},
		{key: "expr", required: true, fn: exprField("expr", &r.Expr, &exprNode)},
		{key: "clear", fn: exprField("clear", &r.Clear, &clearNode)},
		{key: "for", fn: func(v *yaml.Node) { d.duration(v, "for", &r.For) }},
		{key: "keep_firing_for", fn: func(v *yaml.Node) { d.duration(v, "keep_firing_for", &r.KeepFiringFor) }},
		{key: "severity", fn: func(v *yaml.Node) {
			d.oneOf(v, "severity", &r.Severity, SeverityInfo, SeverityWarning, SeverityCritical)
		}},
		{key: "labels", fn: func(v *yaml.Node) { r.Labels, labelsNode = d.strMap(v, "labels"), v }},
		{key: "annotations", fn: func(v *yaml.Node) { r.Annotations, annotationsNode = d.strMap(v, "annotations"), v }},
		{key: "mode", fn: func(v *yaml.Node) { d.oneOf(v, "mode", &r.Mode, ModeAuto, ModeManual, ModeDryRun) }},
		{key: "cooldown", fn: func(v *yaml.Node) { d.duration(v, "cooldown", &r.Cooldown) }},
		{key: "no_data", fn: func(v *yaml.Node) {
			d.oneOf(v, "no_data", &r.NoData, NoDataState, NoDataKeep, NoDataAlert, NoDataOK)
		}},
		{key: "flapping", fn: func(v *yaml.Node) { l.flapping(d, v, &r.Flap) }},
		{key: "action", fn: func(v *yaml.Node) { r.Action = l.action(d, v) }},
	})
	if exprNode != nil {
		l.compile(d, r, r.Expr, exprNode)
	}
	if clearNode != nil {
		l.compile(d, r, r.Clear, clearNode)
	}
	r.templates = map[string]*ruleTemplate{}
	l.templates(d, r, "labels", r.Labels, labelsNode)
	l.templates(d, r, "annotations", r.Annotations, annotationsNode)
	if r.Action != nil && r.Action.Name == "" {
		r.Action.Name = r.Name
	}
	return r, ok && len(d.errs) == before
}

// flapping decodes `flapping: {firings: 4, window: 1h}` or `flapping: off`.
func (l *loader) flapping(d *decoder, n *yaml.Node, p *FlapPolicy) {
	if n.Kind == yaml.ScalarNode && (n.Value == "off" || n.Value == "false") {
		*p = FlapPolicy{}
		return
	}
	d.mapping(n, "flapping", []field{
		{key: "firings", fn: func(v *yaml.Node) {
			f := float64(p.Firings)
			if d.float(v, "firings", &f) {
				if f != math.Trunc(f) || f < 2 || f > MaxFlapFirings {
					d.errorf(v, "firings: must be a whole number from 2 to %d, got %s", MaxFlapFirings, v.Value)
					return
				}
				p.Firings = int(f)
			}
		}},
		{key: "window", fn: func(v *yaml.Node) {
			if d.duration(v, "window", &p.Window) && p.Window == 0 {
				d.errorf(v, "window: must be positive")
			}
		}},
	})
}

// templates compiles the label or annotation values that are templates.
func (l *loader) templates(d *decoder, r *Rule, what string, m map[string]string, n *yaml.Node) {
	if n == nil || n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		text, ok := m[k.Value]
		if !ok || v.Kind != yaml.ScalarNode {
			continue
		}
		name := what + "." + k.Value
		if t := d.compileTemplate(name, text, v); t != nil {
			r.templates[name] = t
		}
	}
}

func (l *loader) action(d *decoder, n *yaml.Node) *Action {
	if isNull(n) {
		return nil
	}
	a := &Action{Timeout: DefaultActionTimeout}
	programSet := false
	var paramsNode *yaml.Node
	ok := d.mapping(n, "action", []field{
		{key: "name", fn: func(v *yaml.Node) { a.Name, _ = d.name(v, "action name") }},
		{key: "kind", required: true, fn: func(v *yaml.Node) { d.oneOf(v, "kind", &a.Kind, ActionKinds()...) }},
		{key: "params", fn: func(v *yaml.Node) { a.Params, paramsNode = d.strMap(v, "params"), v }},
		{key: "program", fn: func(v *yaml.Node) {
			a.Program, _ = d.str(v, "program")
			programSet = true
			if strings.TrimSpace(a.Program) == "" {
				d.errorf(v, "program: must not be empty")
			}
		}},
		{key: "args", fn: func(v *yaml.Node) { a.Args = d.strList(v, "args") }},
		{key: "timeout", fn: func(v *yaml.Node) {
			if d.duration(v, "timeout", &a.Timeout) && a.Timeout == 0 {
				d.errorf(v, "timeout: must be positive")
			}
		}},
	})
	if ok && a.Kind == "exec" && !programSet {
		d.errorf(n, "action: kind exec needs a program")
	}
	if ok && a.Kind == "exec" && paramsNode != nil {
		d.errorf(paramsNode, "params: kind exec takes program and args, not params")
	}
	if ok && a.Kind != "" && a.Kind != "exec" {
		if programSet || a.Args != nil {
			d.errorf(n, "action: program and args are for kind exec; kind %s takes params", a.Kind)
		}
		if err := validateParams(a.Kind, a.Params); err != nil {
			at := n
			if paramsNode != nil {
				at = paramsNode
			}
			d.errorf(at, "action: %s", err)
		}
	}
	return a
}

// compile type-checks one expression of the rule (expr or clear) and
// reports its problems at their place inside the file.
func (l *loader) compile(d *decoder, r *Rule, src string, n *yaml.Node) {
	_, reads, problems := compileExpr(l.check, src)
	for _, s := range reads.sels {
		if !slices.ContainsFunc(r.Selectors, func(x *Selector) bool { return x.Text == s.Text }) {
			r.Selectors = append(r.Selectors, s)
		}
	}
	for _, w := range reads.wins {
		i := slices.IndexFunc(r.Windows, func(x WindowNeed) bool { return x.Selector.Text == w.Selector.Text })
		if i < 0 {
			r.Windows = append(r.Windows, w)
		} else {
			r.Windows[i].Span = max(r.Windows[i].Span, w.Span)
		}
	}
	if len(problems) == 0 {
		return
	}
	pos := scalarPositions(d.data, n)
	for _, p := range problems {
		line, col := pos.at(p.offset)
		d.errorAt(line, col, "%s", p.msg)
	}
}
