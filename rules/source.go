package rules

import (
	"math"
	"time"
)

// Never is the ETA of a series that is not heading to the level.
const Never = time.Duration(math.MaxInt64)

// Source answers queries about the series of one subject (a host) at
// evaluation time. When a selector matches several series of a subject,
// Value and Anomaly answer the maximum, ETA the earliest crossing.
// The controller implements it; the engine calls it from the goroutine
// that calls Engine.Eval.
type Source interface {
	Subjects() []string                                       // sorted
	Value(subject string, sel *Selector) (v float64, ok bool) // latest sample; ok=false: no such series
	Anomaly(subject string, sel *Selector) (likelihood float64, ok bool)
	// ETA until the series crosses level; ok=false: no data. A series that
	// is not heading to the level answers ok=true with eta = Never.
	ETA(subject string, sel *Selector, level float64, now time.Time) (eta time.Duration, confidence float64, ok bool)
	Forecast(subject string, sel *Selector, horizon time.Duration, now time.Time) (v float64, ok bool)
	LastSeen(subject string) (time.Time, bool)
}
