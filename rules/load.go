package rules

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vigil-sre/vigil/internal/config"
)

// LoadFiles reads and compiles rule files into one Set. A path may be a
// directory: every *.yaml and *.yml file directly in it, in name order.
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
		if !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
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
			d.oneOf(v, "scope", &g.Scope, ScopeHost)
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
	r = &Rule{Severity: SeverityWarning, Mode: ModeAuto, Cooldown: DefaultCooldown,
		File: d.file, Line: n.Line, Column: n.Column, group: g}
	var exprNode *yaml.Node
	before := len(d.errs)
	ok := d.mapping(n, "rule", []field{
		{key: "name", required: true, fn: func(v *yaml.Node) { r.Name, _ = d.name(v, "name") }},
		{key: "expr", required: true, fn: func(v *yaml.Node) {
			if s, ok := d.str(v, "expr"); ok {
				if strings.TrimSpace(s) == "" {
					d.errorf(v, "expr: must not be empty")
					return
				}
				r.Expr, exprNode = s, v
			}
		}},
		{key: "for", fn: func(v *yaml.Node) { d.duration(v, "for", &r.For) }},
		{key: "keep_firing_for", fn: func(v *yaml.Node) { d.duration(v, "keep_firing_for", &r.KeepFiringFor) }},
		{key: "severity", fn: func(v *yaml.Node) {
			d.oneOf(v, "severity", &r.Severity, SeverityInfo, SeverityWarning, SeverityCritical)
		}},
		{key: "labels", fn: func(v *yaml.Node) { r.Labels = d.strMap(v, "labels") }},
		{key: "annotations", fn: func(v *yaml.Node) { r.Annotations = d.strMap(v, "annotations") }},
		{key: "mode", fn: func(v *yaml.Node) {
			if s, _ := d.str(v, "mode"); s == "manual" {
				d.errorf(v, "mode: manual is not supported yet (use auto or dry_run)")
				return
			}
			d.oneOf(v, "mode", &r.Mode, ModeAuto, ModeDryRun)
		}},
		{key: "cooldown", fn: func(v *yaml.Node) { d.duration(v, "cooldown", &r.Cooldown) }},
		{key: "action", fn: func(v *yaml.Node) { r.Action = l.action(d, v) }},
	})
	if exprNode != nil {
		l.compile(d, r, exprNode)
	}
	if r.Action != nil && r.Action.Name == "" {
		r.Action.Name = r.Name
	}
	return r, ok && len(d.errs) == before
}

func (l *loader) action(d *decoder, n *yaml.Node) *Action {
	if isNull(n) {
		return nil
	}
	a := &Action{Timeout: DefaultActionTimeout}
	programSet := false
	ok := d.mapping(n, "action", []field{
		{key: "name", fn: func(v *yaml.Node) { a.Name, _ = d.name(v, "action name") }},
		{key: "kind", required: true, fn: func(v *yaml.Node) { d.oneOf(v, "kind", &a.Kind, "exec") }},
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
	return a
}

// compile type-checks the rule's expression and reports its problems at
// their place inside the file.
func (l *loader) compile(d *decoder, r *Rule, n *yaml.Node) {
	_, sels, problems := compileExpr(l.check, r.Expr)
	r.Selectors = sels
	if len(problems) == 0 {
		return
	}
	pos := scalarPositions(d.data, n)
	for _, p := range problems {
		line, col := pos.at(p.offset)
		d.errorAt(line, col, "%s", p.msg)
	}
}
