package rules

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr/ast"
)

// The functions of rule expressions. Each is an expr.Function with a typed
// signature (expr checks arguments at load time and converts integer
// literals to float64); its implementation reads the evaluation context the
// Engine sets before every run. To add a function, add a funcSpec.
//
//	value(sel) float64                   latest sample
//	anomaly(sel) float64                 anomaly likelihood in [0,1], held over detectors.anomaly_hold
//	eta(sel, level) time.Duration        time until the series crosses level;
//	                                     Never if it is not heading there or
//	                                     the forecast's confidence is below the
//	                                     group's min_confidence
//	eta_confidence(sel, level) float64   that forecast's confidence in [0,1]
//	eta_within(sel, level, horizon) time.Duration
//	                                     time until the series crosses level,
//	                                     for a crossing the forecaster expects
//	                                     within horizon with a probability of at
//	                                     least the group's min_confidence (its
//	                                     peak envelope and ramp test included:
//	                                     detectors.HorizonForecaster); Never
//	                                     otherwise. So it is ≤ horizon or Never.
//	                                     horizon: a constant duration in
//	                                     (0, MaxWindow]
//	forecast(sel, horizon) float64       predicted value at now+horizon
//	since_seen() time.Duration           time since the subject was last heard from
//
// A selector argument must be a string literal (see Selector); it is parsed
// at load time. When the Source has no data for a call, the evaluation's
// outcome is NoData whatever the expression answers.
//
// Every call records the value it returned under a key, for transitions,
// intents and the API:
//
//	value:<selector>   anomaly:<selector>   since_seen
//	eta:<selector>:<level>   eta_confidence:<selector>:<level>
//	eta_within:<selector>:<level>:<horizon>
//	forecast:<selector>:<horizon>
//
// where <selector> is the canonical form (Selector.String), <level> is
// formatted like 100 or 0.5, and <horizon> like 30m or 1h30m. Durations are
// recorded in seconds; an eta of Never is recorded as -1 (JSON and line
// protocol have no infinity). Values that are NaN or infinite are not
// recorded. Calls that found no data record nothing.

// funcSpec is one function of rule expressions.
type funcSpec struct {
	name     string
	types    []any            // expr signatures, like new(func(string) float64)
	selector bool             // the argument selArg is a selector literal
	selArg   int              // index of the selector argument
	winArg   int              // > 0: index of a window argument that must be a constant duration
	horArg   int              // > 0: index of a horizon argument that must be a constant duration
	lits     map[int][]string // arguments that must be one of these string literals
	fleet    bool             // reads the hosts of a role, not only the subject's series
	// reads, if set, answers a selector covering the subject's series the
	// call reads when they are not named by a selector argument (drift)
	reads func(args []ast.Node) *Selector
	call  func(c *evalCtx, args []any) (any, error)
}

var funcSpecs = []*funcSpec{
	{name: "value", selector: true, types: []any{new(func(string) float64)}, call: callValue},
	{name: "anomaly", selector: true, types: []any{new(func(string) float64)}, call: callAnomaly},
	{name: "eta", selector: true, types: []any{new(func(string, float64) time.Duration)}, call: callETA},
	{name: "eta_confidence", selector: true, types: []any{new(func(string, float64) float64)}, call: callETAConfidence},
	{name: "eta_within", selector: true, horArg: 2, types: []any{new(func(string, float64, time.Duration) time.Duration)}, call: callETAWithin},
	{name: "forecast", selector: true, types: []any{new(func(string, time.Duration) float64)}, call: callForecast},
	{name: "since_seen", types: []any{new(func() time.Duration)}, call: callSinceSeen},
}

func init() {
	funcSpecs = append(funcSpecs, windowFuncSpecs()...)
	funcSpecs = append(funcSpecs, moreFuncSpecs...)
	funcSpecs = append(funcSpecs, fleetFuncSpecs...)
}

func lookupFunc(name string) *funcSpec {
	for _, f := range funcSpecs {
		if f.name == name {
			return f
		}
	}
	return nil
}

// evalCtx is what the functions of one Engine read: set by the Engine
// before every run, on the single goroutine that evaluates.
type evalCtx struct {
	src           Source // the scope's source
	root          Source // the host scope, for fleet functions
	subject       string
	now           time.Time
	minConfidence float64
	sels          map[string]*selEntry // by selector literal

	noData   bool
	missing  string // key of the first call that found no data
	captures []capture
	minETA   time.Duration // earliest finite eta() or eta_within() answer; Never if none

	round      uint64                // the engine's evaluation round; fleet answers are cached per round
	fleetRound uint64                // the round c.fleet holds
	fleet      map[fleetKey]fleetVal // fleet function answers of fleetRound
	drifts     map[driftKey]driftSel // selectors built by drift()
}

type capture struct {
	key string
	v   float64
}

// selEntry is a parsed selector literal and the capture keys built for it.
type selEntry struct {
	sel   *Selector
	canon string
	keys  []argKey
}

type argKey struct {
	fn        string
	arg, arg2 float64
	key       string
}

const maxCachedKeys = 64

func newEvalCtx() *evalCtx {
	return &evalCtx{sels: map[string]*selEntry{}, minETA: Never,
		fleet: map[fleetKey]fleetVal{}, drifts: map[driftKey]driftSel{}}
}

func (c *evalCtx) addSelector(sel *Selector) {
	if c.sels[sel.Text] == nil {
		c.sels[sel.Text] = &selEntry{sel: sel, canon: sel.String()}
	}
}

// reset prepares the context for one evaluation.
func (c *evalCtx) reset(src Source, subject string, now time.Time, minConfidence float64) {
	c.src, c.subject, c.now, c.minConfidence = src, subject, now, minConfidence
	c.noData, c.missing = false, ""
	c.captures = c.captures[:0]
	c.minETA = Never
}

func (c *evalCtx) entry(arg any) (*selEntry, error) {
	s, _ := arg.(string)
	if e := c.sels[s]; e != nil {
		return e, nil
	}
	return nil, fmt.Errorf("selector %q was not compiled", s)
}

// key is the capture key of fn on this selector with an argument, cached.
func (e *selEntry) key(fn string, arg float64, dur bool) string {
	return e.key2(fn, noArg, arg, dur)
}

// key2 is the capture key of fn with two arguments: arg2 (a number, NaN
// for none) and arg (a duration if dur).
func (e *selEntry) key2(fn string, arg2, arg float64, dur bool) string {
	for _, k := range e.keys {
		if k.fn == fn && math.Float64bits(k.arg) == math.Float64bits(arg) && math.Float64bits(k.arg2) == math.Float64bits(arg2) {
			return k.key
		}
	}
	var b strings.Builder
	b.WriteString(fn)
	b.WriteByte(':')
	b.WriteString(e.canon)
	if !math.IsNaN(arg2) {
		b.WriteByte(':')
		b.WriteString(strconv.FormatFloat(arg2, 'g', -1, 64))
	}
	switch {
	case dur:
		b.WriteByte(':')
		b.WriteString(formatDuration(time.Duration(arg)))
	case !math.IsNaN(arg):
		b.WriteByte(':')
		b.WriteString(strconv.FormatFloat(arg, 'g', -1, 64))
	}
	if len(e.keys) < maxCachedKeys {
		e.keys = append(e.keys, argKey{fn: fn, arg: arg, arg2: arg2, key: b.String()})
	}
	return b.String()
}

func (c *evalCtx) record(key string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	c.captures = append(c.captures, capture{key, v})
}

func (c *evalCtx) noDataFor(key string) {
	if !c.noData {
		c.noData, c.missing = true, key
	}
}

// noArg marks capture keys of functions without a second argument.
var noArg = math.NaN()

// Boxed constants, so that returning them allocates nothing.
var (
	boxedNever   any = Never
	boxedZeroDur any = time.Duration(0)
	boxedZeroNum any = 0.0
)

func callValue(c *evalCtx, args []any) (any, error) {
	e, err := c.entry(args[0])
	if err != nil {
		return nil, err
	}
	v, ok := c.src.Value(c.subject, e.sel)
	return c.number(e.key("value", noArg, false), v, ok), nil
}

func callAnomaly(c *evalCtx, args []any) (any, error) {
	e, err := c.entry(args[0])
	if err != nil {
		return nil, err
	}
	v, ok := c.src.Anomaly(c.subject, e.sel)
	return c.number(e.key("anomaly", noArg, false), v, ok), nil
}

func (c *evalCtx) number(key string, v float64, ok bool) any {
	if !ok {
		c.noDataFor(key)
		return boxedZeroNum
	}
	c.record(key, v)
	return v
}

func callETA(c *evalCtx, args []any) (any, error) {
	e, err := c.entry(args[0])
	if err != nil {
		return nil, err
	}
	level, err := toFloat(args[1])
	if err != nil {
		return nil, err
	}
	eta, conf, ok := c.src.ETA(c.subject, e.sel, level, c.now)
	return c.etaResult(e.key("eta", level, false), eta, ok, conf >= c.minConfidence), nil
}

// etaResult records and returns an ETA the forecaster gave (ok: it had data
// for the selector; holds: the ETA answers the function's question), or
// never: recorded as −1, or as no data.
func (c *evalCtx) etaResult(key string, eta time.Duration, ok, holds bool) any {
	if !ok {
		c.noDataFor(key)
		return boxedNever
	}
	if eta == Never || !holds {
		c.record(key, -1)
		return boxedNever
	}
	eta = max(eta, 0)
	c.record(key, eta.Seconds())
	c.minETA = min(c.minETA, eta)
	return eta
}

func callETAWithin(c *evalCtx, args []any) (any, error) {
	e, err := c.entry(args[0])
	if err != nil {
		return nil, err
	}
	level, err := toFloat(args[1])
	if err != nil {
		return nil, err
	}
	horizon, err := toDuration(args[2])
	if err != nil {
		return nil, err
	}
	eta, ok := c.src.ETAWithin(c.subject, e.sel, level, horizon, c.minConfidence, c.now)
	return c.etaResult(e.key2("eta_within", level, float64(horizon), true), eta, ok, eta <= horizon), nil
}

func callETAConfidence(c *evalCtx, args []any) (any, error) {
	e, err := c.entry(args[0])
	if err != nil {
		return nil, err
	}
	level, err := toFloat(args[1])
	if err != nil {
		return nil, err
	}
	_, conf, ok := c.src.ETA(c.subject, e.sel, level, c.now)
	return c.number(e.key("eta_confidence", level, false), conf, ok), nil
}

func callForecast(c *evalCtx, args []any) (any, error) {
	e, err := c.entry(args[0])
	if err != nil {
		return nil, err
	}
	horizon, err := toDuration(args[1])
	if err != nil {
		return nil, err
	}
	v, ok := c.src.Forecast(c.subject, e.sel, horizon, c.now)
	return c.number(e.key("forecast", float64(horizon), true), v, ok), nil
}

func callSinceSeen(c *evalCtx, _ []any) (any, error) {
	const key = "since_seen"
	t, ok := c.src.LastSeen(c.subject)
	if !ok {
		c.noDataFor(key)
		return boxedZeroDur, nil
	}
	d := c.now.Sub(t)
	if d < 0 {
		d = 0
	}
	c.record(key, d.Seconds())
	return d, nil
}

func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case float32:
		return float64(x), nil
	case time.Duration:
		return float64(x), nil
	}
	return 0, fmt.Errorf("want a number, got %T", v)
}

func toDuration(v any) (time.Duration, error) {
	switch x := v.(type) {
	case time.Duration:
		return x, nil
	case int:
		return time.Duration(x), nil
	case int64:
		return time.Duration(x), nil
	}
	return 0, fmt.Errorf("want a duration, got %T", v)
}

// formatDuration writes d without zero units: 1h, 30m, 1h30m, 90s → 1m30s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if len(s) > 2 && s[len(s)-2:] == "0s" && (s[len(s)-3] == 'm' || s[len(s)-3] == 'h') {
		s = s[:len(s)-2]
	}
	if len(s) > 2 && s[len(s)-2:] == "0m" && s[len(s)-3] == 'h' {
		s = s[:len(s)-2]
	}
	return s
}
