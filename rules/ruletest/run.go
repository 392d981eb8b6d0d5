package ruletest

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/vigil-sre/vigil/internal/config"
	"github.com/vigil-sre/vigil/rules"
)

// Epoch is time zero of every test.
var Epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Result is the outcome of one test file.
type Result struct {
	File        string
	Tests       int
	FailedTests int      // tests with at least one failed check
	Failures    []string // one per failed check, "file:line:col: test "name": ..."
}

// Expand turns paths into test files: a directory gives its *_test.yaml
// and *_test.yml files, in name order.
func Expand(paths ...string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		for _, pat := range []string{"*_test.yaml", "*_test.yml"} {
			m, _ := filepath.Glob(filepath.Join(p, pat))
			sort.Strings(m)
			out = append(out, m...)
		}
	}
	return out, nil
}

// RunFile runs the tests of one file. The error reports a file that cannot
// be run (a config.Errors with positions when it does not decode or its
// rule files do not load); failed checks are in the Result.
func RunFile(path string) (*Result, error) {
	var spec fileSpec
	doc, err := config.Load(path, &spec)
	if err != nil {
		return nil, err
	}
	var errs config.Errors
	interval := duration(doc, &errs, "evaluation_interval", spec.EvaluationInterval, 10*time.Second)
	if interval <= 0 {
		errs = append(errs, doc.Errorf("evaluation_interval", "must be positive"))
	}
	hold := duration(doc, &errs, "anomaly_hold", spec.AnomalyHold, 2*time.Minute)
	if len(spec.RuleFiles) == 0 {
		errs = append(errs, doc.Errorf("", "rule_files: at least one rule file is needed"))
	}
	var files []string
	for _, f := range spec.RuleFiles {
		if !filepath.IsAbs(f) {
			f = filepath.Join(filepath.Dir(path), f)
		}
		files = append(files, f)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	set, err := rules.LoadFiles(files...)
	if err != nil {
		return nil, err // config.Errors naming the rule files
	}
	res := &Result{File: path}
	for i := range spec.Tests {
		r := &runner{doc: doc, path: fmt.Sprintf("tests[%d]", i), spec: &spec.Tests[i], set: set, interval: interval,
			fc: cmp.Or(spec.Forecaster, "robust_trend"), det: cmp.Or(spec.Detector, "vigil"), hold: hold}
		if err := r.prepare(); err != nil {
			return nil, err
		}
		res.Tests++
		fails := r.run()
		if len(fails) > 0 {
			res.FailedTests++
		}
		res.Failures = append(res.Failures, fails...)
	}
	return res, nil
}

// runner runs one test.
type runner struct {
	doc      *config.Doc
	path     string
	spec     *testSpec
	set      *rules.Set
	interval time.Duration
	fc, det  string
	hold     time.Duration // anomaly hold
	src      *source
	alertAt  []time.Duration
	actionAt []time.Duration
	end      time.Duration
}

func (r *runner) errorf(path, format string, args ...any) *config.Error {
	return r.doc.Errorf(r.path+path, format, args...)
}

// prepare decodes the test's input series and times.
func (r *runner) prepare() error {
	var errs config.Errors
	t := r.spec
	step := duration(r.doc, &errs, r.path+".interval", t.Interval, r.interval)
	if step <= 0 {
		errs = append(errs, r.errorf(".interval", "must be positive"))
		step = r.interval
	}
	r.src = newSource(r.det, r.fc)
	for i, in := range t.InputSeries {
		p := fmt.Sprintf(".input_series[%d]", i)
		s, err := r.series(in, step)
		if err != nil {
			errs = append(errs, r.errorf(p, "%s", err))
			continue
		}
		if err := r.src.add(s); err != nil {
			return err
		}
	}
	for i, g := range t.SequenceGaps {
		at := duration(r.doc, &errs, fmt.Sprintf("%s.sequence_gaps[%d].at", r.path, i), g.At, 0)
		r.src.gaps[g.Host] = append(r.src.gaps[g.Host], gapEvent{t: Epoch.Add(at), n: g.Missing})
	}
	at := func(path, s string) time.Duration {
		d := duration(r.doc, &errs, r.path+path, s, 0)
		if d%r.interval != 0 {
			errs = append(errs, r.errorf(path, "%s is not a multiple of evaluation_interval %s", d, r.interval))
		}
		r.end = max(r.end, d)
		return d
	}
	for i, a := range t.Alerts {
		r.alertAt = append(r.alertAt, at(fmt.Sprintf(".alerts[%d].at", i), a.At))
		if r.rule(a.Rule) == nil {
			errs = append(errs, r.errorf(fmt.Sprintf(".alerts[%d].rule", i), "no rule %q in the rule files", a.Rule))
		}
	}
	if t.Actions != nil {
		for i, a := range *t.Actions {
			r.actionAt = append(r.actionAt, at(fmt.Sprintf(".actions[%d].at", i), a.At))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func (r *runner) series(in seriesSpec, step time.Duration) (*tseries, error) {
	sel, err := rules.ParseSelector(in.Series)
	if err != nil {
		return nil, fmt.Errorf("series %q: %w", in.Series, err)
	}
	s := &tseries{measurement: sel.Measurement, field: sel.Field}
	s.hold.Span = int64(r.hold)
	for _, t := range sel.Tags {
		if t.Key == "host" {
			s.host = t.Value
			continue
		}
		s.tags = append(s.tags, t)
	}
	if s.host == "" {
		return nil, fmt.Errorf("series %q: needs a host tag, like {host=h1}", in.Series)
	}
	vals, err := parseValues(in.Values)
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	for i, v := range vals {
		if !math.IsNaN(v) {
			s.input = append(s.input, rules.Sample{T: Epoch.Add(time.Duration(i) * step).UnixNano(), V: v})
		}
	}
	return s, nil
}

// rule finds a rule by "name" or "group/name".
func (r *runner) rule(name string) *rules.Rule {
	for _, x := range r.set.Rules() {
		if x.Name == name || x.Group+"/"+x.Name == name {
			return x
		}
	}
	return nil
}

type gotIntent struct {
	at time.Duration
	in rules.Intent
}

// run evaluates the engine over the test's timeline and checks it.
func (r *runner) run() []string {
	e := rules.NewEngine(r.set)
	last := map[string]rules.Transition{} // group/rule/subject
	var intents []gotIntent
	var failures []string
	for now := time.Duration(0); now <= r.end; now += r.interval {
		t := Epoch.Add(now)
		r.src.now = t
		r.src.advance(t)
		e.Eval(t, r.src, func(tr rules.Transition) {
			last[tr.Rule.Group+"/"+tr.Rule.Name+"/"+tr.Subject] = tr
		}, func(in rules.Intent) { intents = append(intents, gotIntent{now, in}) })
		for i, at := range r.alertAt {
			if at == now {
				failures = append(failures, r.checkAlerts(i, e.States(), last)...)
			}
		}
	}
	if r.spec.Actions != nil {
		failures = append(failures, r.checkActions(intents)...)
	}
	return failures
}

func (r *runner) fail(path, format string, args ...any) string {
	e := r.errorf(path, format, args...)
	e.Msg = fmt.Sprintf("test %q: %s", r.spec.Name, e.Msg)
	return e.Error()
}
