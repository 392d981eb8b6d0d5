// Package detectors holds Vigil's streaming anomaly detectors and trend forecasters.
//
// Every type here is a pure, single-series state machine: it is fed (t, x) pairs, t being the
// observation time in Unix nanoseconds, and never reads the clock, does I/O or allocates while
// observing. One instance serves one series and is not safe for concurrent use; the controller's
// series-state goroutine owns it.
//
// Detectors and forecasters are registered by name (see RegisterDetector, RegisterForecaster) so
// configuration files can name them; each lives in its own file with the maths in its doc comment.
package detectors

import (
	"fmt"
	"math"
	"time"
)

// Score is one detector verdict for one observation.
type Score struct {
	Raw        float64 // the detector's raw statistic (e.g. a z-score)
	Likelihood float64 // normalised anomaly likelihood in [0,1]; 0 during warm-up
}

// Detector scores each observation of one series. Observe is O(1) time and memory,
// allocation-free, and never calls time.Now: t is the observation time in Unix nanoseconds.
// NaN/±Inf observations return a zero Score and must never poison the state.
type Detector interface {
	Observe(t int64, x float64) Score
	Reset()
}

// Forecast answers "when will this series cross level L".
type Forecast struct {
	ETA        time.Duration // time from `now` until the crossing; valid only if OK
	Confidence float64       // in [0,1]: how sure the model is that the series is heading to the level (not noise)
	OK         bool          // false: warming up, flat, or moving away from the level
}

// Forecaster models the trend of one series. Observe is O(1) time and memory and
// allocation-free; NaN/±Inf observations and observations older than the latest one are ignored.
type Forecaster interface {
	Observe(t int64, x float64)
	ETA(now int64, level float64) Forecast
	// Predict returns the point forecast at now+horizon and a ~95% prediction interval [lo, hi];
	// ok is false while warming up.
	Predict(now int64, horizon time.Duration) (value, lo, hi float64, ok bool)
	Slope() float64          // estimated trend, units per second
	Level(now int64) float64 // fitted value at now
	Reset()
}

// finite reports whether x is neither NaN nor ±Inf (|NaN| ≤ MaxFloat64 is false: one comparison).
func finite(x float64) bool { return math.Abs(x) <= math.MaxFloat64 }

// fieldError describes an invalid configuration field; key is the snake_case config key.
func fieldError(kind, key string, v any, why string) error {
	return fmt.Errorf("detectors: %s %s = %v: %s", kind, key, v, why)
}
