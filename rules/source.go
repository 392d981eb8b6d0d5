package rules

import (
	"math"
	"slices"
	"time"
)

// Never is the ETA of a series that is not heading to the level.
const Never = time.Duration(math.MaxInt64)

// Source answers queries about the series of one subject at evaluation
// time. A subject is a set of series: in scope host, the series of one host;
// in the service and model scopes, the series carrying the tag service=<name>
// or model=<name> (whatever host sent them); in scope fleet, the series of
// the hosts whose role label is <name> (see Scope). When a selector matches
// several series of a subject, Value, Anomaly, Forecast and Window answer
// the maximum, ETA and ETAWithin the earliest crossing.
//
// The controller implements it; the engine calls it from the goroutine that
// calls Engine.Eval. The Source given to Engine.Eval is the host scope.
type Source interface {
	Subjects() []string                                       // sorted
	Value(subject string, sel *Selector) (v float64, ok bool) // latest sample; ok=false: no such series
	Anomaly(subject string, sel *Selector) (likelihood float64, ok bool)
	// ETA until the series crosses level; ok=false: no data. A series that
	// is not heading to the level answers ok=true with eta = Never.
	ETA(subject string, sel *Selector, level float64, now time.Time) (eta time.Duration, confidence float64, ok bool)
	// ETAWithin is the earliest ETA, among the selected series, of a
	// crossing of level that a series' forecaster expects within horizon of
	// now with a probability of at least minConfidence (its
	// detectors.HorizonForecaster ETAWithin when it has one, else its ETA;
	// see detectors.Forecast.Within); eta = Never when no series has one.
	// ok=false: no data.
	ETAWithin(subject string, sel *Selector, level float64, horizon time.Duration, minConfidence float64, now time.Time) (eta time.Duration, ok bool)
	Forecast(subject string, sel *Selector, horizon time.Duration, now time.Time) (v float64, ok bool)
	LastSeen(subject string) (time.Time, bool)

	// Window reduces the recent samples of each selected series with
	// q.Reduce and answers the maximum; ok=false: no series, or none with
	// enough samples in the window. Only selectors listed by
	// Set.WindowNeeds have a history (see WindowNeed).
	Window(subject string, sel *Selector, q WindowQuery, now time.Time) (v float64, ok bool)
	// Gaps is the number of telemetry batches of the subject known lost
	// (Vigil-Seq gaps) since the given time; ok=false: unknown subject.
	Gaps(subject string, since time.Time) (n int, ok bool)
	// Labels are the subject's identity labels (see IdentityTags); the
	// engine does not modify the map.
	Labels(subject string) map[string]string
	// Hosts are the host subjects whose role label is role ("" = every
	// host), sorted. Used by the fleet functions whatever the scope.
	Hosts(role string) []string
	// Scope answers the Source whose subjects are those of scope (one of
	// the Scope* constants); ScopeHost answers the Source itself.
	Scope(scope string) Source
}

// IdentityTags are the tag keys that describe a subject rather than a
// series. The latest value seen on any series of a subject becomes its
// label (Source.Labels): agents set them on every point (e.g. role=gpu,
// zone=eu-1). The label named after the scope (host, service, model, role)
// is always the subject itself.
var IdentityTags = []string{"role", "zone", "site", "region", "cluster", "env", "team", "service", "model"}

// IsIdentityTag reports whether key is one of IdentityTags.
func IsIdentityTag(key string) bool { return slices.Contains(IdentityTags, key) }

// ScopeTag is the tag whose values are the subjects of a scope: "service"
// and "model" on series, "role" on hosts (fleet); "" for ScopeHost.
func ScopeTag(scope string) string {
	switch scope {
	case ScopeService:
		return "service"
	case ScopeModel:
		return "model"
	case ScopeFleet:
		return "role"
	}
	return ""
}

// Sample is one observation of a series: Unix nanoseconds and value.
type Sample struct {
	T int64
	V float64
}

// WindowFunc is a reduction of the samples of a window.
type WindowFunc uint8

// The window functions; see funcs_window.go for their definitions.
const (
	WindowAvg WindowFunc = iota
	WindowMin
	WindowMax
	WindowSum
	WindowCount
	WindowStddev
	WindowQuantile
	WindowRate     // per-second increase of a counter, resets handled
	WindowIncrease // increase of a counter, resets handled
	WindowDelta    // last minus first (gauges)
)

// WindowQuery asks for one reduction of the samples of the last Window.
type WindowQuery struct {
	Func   WindowFunc
	Window time.Duration
	Q      float64 // WindowQuantile: the quantile in [0,1]
}

// WindowNeed says that a rule reads the history of the series selected by
// Selector over Span: the Source keeps, for those series only, the samples
// of the last Span (bounded; see the controller's store_window.go).
type WindowNeed struct {
	Selector *Selector
	Span     time.Duration
}

// WindowNeeds are the selectors the set's rules read with window
// functions, each with the longest window it is read over.
func (s *Set) WindowNeeds() []WindowNeed {
	var out []WindowNeed
	idx := map[string]int{}
	for _, r := range s.Rules() {
		for _, w := range r.Windows {
			if i, ok := idx[w.Selector.String()]; ok {
				out[i].Span = max(out[i].Span, w.Span)
				continue
			}
			idx[w.Selector.String()] = len(out)
			out = append(out, w)
		}
	}
	return out
}
