package rules

import (
	"fmt"
	"sync"
	"time"

	"github.com/expr-lang/expr/ast"
)

// More functions of rule expressions:
//
//	drift(model, feature, stat) float64  latest drift statistic of a model feature: the series
//	                                     model_drift.<stat>{model=<model>,feature=<feature>} of the
//	                                     subject; feature "*" = the largest over every feature;
//	                                     stat is a literal, one of psi, ks, js, wasserstein
//	age(sel) time.Duration               now minus the latest sample read as a Unix time in seconds
//	                                     (e.g. backup.last_success); 0 if that is in the future
//	gaps(window) int                     telemetry batches of the subject known lost (Vigil-Seq
//	                                     gaps) within the last window
//	complete(window) bool                the subject was heard from within the window and lost
//	                                     no batch in it: its data can be trusted
//	hour() int                           hour of the evaluation time, 0-23, UTC
//	weekday() int                        day of the week of the evaluation time, 0 = Sunday, UTC
//
// Capture keys: drift:<model>:<feature>:<stat>, age:<selector>, gaps:<window>,
// complete:<window> (1 or 0).

// DriftStatistics are the fields of the model_drift measurement.
var DriftStatistics = []string{"psi", "ks", "js", "wasserstein"}

var moreFuncSpecs = []*funcSpec{
	{name: "drift", types: []any{new(func(string, string, string) float64)},
		lits: map[int][]string{2: DriftStatistics}, reads: driftReads, call: callDrift},
	{name: "age", selector: true, types: []any{new(func(string) time.Duration)}, call: callAge},
	{name: "gaps", winArg: 0, types: []any{new(func(time.Duration) int)}, call: callGaps},
	{name: "complete", types: []any{new(func(time.Duration) bool)}, call: callComplete},
	{name: "hour", types: []any{new(func() int)}, call: func(c *evalCtx, _ []any) (any, error) {
		return c.now.UTC().Hour(), nil
	}},
	{name: "weekday", types: []any{new(func() int)}, call: func(c *evalCtx, _ []any) (any, error) {
		return int(c.now.UTC().Weekday()), nil
	}},
}

// driftReads answers, for a drift() call, the selector model_drift.<stat>:
// every series the call can read (model and feature may be dynamic).
func driftReads(args []ast.Node) *Selector {
	if len(args) < 3 {
		return nil
	}
	lit, ok := args[2].(*ast.StringNode)
	if !ok {
		return nil
	}
	sel := &Selector{Measurement: "model_drift", Field: lit.Value}
	sel.Text = sel.String()
	return sel
}

type driftKey struct{ model, feature, stat string }

type driftSel struct {
	sel *Selector
	key string
}

// maxDriftSels bounds the selectors drift() builds for dynamic arguments.
const maxDriftSels = 4096

func callDrift(c *evalCtx, args []any) (any, error) {
	model, _ := args[0].(string)
	feature, _ := args[1].(string)
	stat, _ := args[2].(string)
	k := driftKey{model, feature, stat}
	d, ok := c.drifts[k]
	if !ok {
		tags := []Tag{{Key: "model", Value: model}}
		if feature != "*" {
			tags = append([]Tag{{Key: "feature", Value: feature}}, tags...)
		}
		sel := &Selector{Measurement: "model_drift", Field: stat, Tags: tags}
		sel.Text = sel.String()
		d = driftSel{sel: sel, key: fmt.Sprintf("drift:%s:%s:%s", model, feature, stat)}
		if len(c.drifts) >= maxDriftSels {
			clear(c.drifts)
		}
		c.drifts[k] = d
	}
	v, ok := c.src.Value(c.subject, d.sel)
	return c.number(d.key, v, ok), nil
}

func callAge(c *evalCtx, args []any) (any, error) {
	e, err := c.entry(args[0])
	if err != nil {
		return nil, err
	}
	key := e.key("age", noArg, false)
	v, ok := c.src.Value(c.subject, e.sel)
	if !ok {
		c.noDataFor(key)
		return boxedZeroDur, nil
	}
	d := c.now.Sub(time.Unix(0, int64(v*1e9)))
	if d < 0 {
		d = 0
	}
	c.record(key, d.Seconds())
	return d, nil
}

func callGaps(c *evalCtx, args []any) (any, error) {
	w, err := toDuration(args[0])
	if err != nil {
		return nil, err
	}
	key := durKey("gaps:", w)
	n, ok := c.src.Gaps(c.subject, c.now.Add(-w))
	if !ok {
		c.noDataFor(key)
		return 0, nil
	}
	c.record(key, float64(n))
	return n, nil
}

func callComplete(c *evalCtx, args []any) (any, error) {
	w, err := toDuration(args[0])
	if err != nil {
		return nil, err
	}
	key := durKey("complete:", w)
	n, ok := c.src.Gaps(c.subject, c.now.Add(-w))
	seen, sok := c.src.LastSeen(c.subject)
	if !ok || !sok {
		c.noDataFor(key)
		return false, nil
	}
	complete := n == 0 && c.now.Sub(seen) <= w
	c.record(key, b2f(complete))
	return complete, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var durKeysMu sync.Mutex

type durKeyK struct {
	prefix string
	d      time.Duration
}

var durKeys = map[durKeyK]string{}

// durKey is prefix + the formatted duration, cached (the engine runs on one
// goroutine, but several engines may exist: guarded).
func durKey(prefix string, d time.Duration) string {
	durKeysMu.Lock()
	defer durKeysMu.Unlock()
	k := durKeyK{prefix, d}
	s, ok := durKeys[k]
	if !ok {
		s = prefix + formatDuration(d)
		if len(durKeys) < 4096 {
			durKeys[k] = s
		}
	}
	return s
}
