package detectors

import "math"

// LevelShiftConfig parameterises the level-shift / variance-change detector. Start from
// DefaultLevelShiftConfig.
type LevelShiftConfig struct {
	// Fast is the weight of a new sample in the short-term mean and variance, in (0,1).
	// Default 0.1 (~10 samples).
	Fast float64
	// Slow is the weight of a new sample in the long-term reference, in (0, Fast). Default
	// 0.005 (~200 samples).
	Slow float64
	// Warmup is the number of samples absorbed before scores are reported (≥ 2). Default 30.
	Warmup int
	// RelFloor and AbsFloor bound the reference deviation from below, as in EWMAConfig.
	// Defaults 1e-3 and 1e-6.
	RelFloor, AbsFloor float64
}

// DefaultLevelShiftConfig returns the defaults listed on LevelShiftConfig's fields.
func DefaultLevelShiftConfig() LevelShiftConfig {
	return LevelShiftConfig{Fast: 0.1, Slow: 0.005, Warmup: 30, RelFloor: 1e-3, AbsFloor: 1e-6}
}

// Validate reports the first invalid field of c.
func (c LevelShiftConfig) Validate() error {
	switch {
	case !(c.Fast > 0 && c.Fast < 1):
		return fieldError("levelshift", "fast", c.Fast, "must be in (0,1)")
	case !(c.Slow > 0 && c.Slow < c.Fast):
		return fieldError("levelshift", "slow", c.Slow, "must be in (0, fast)")
	case c.Warmup < 2:
		return fieldError("levelshift", "warmup", c.Warmup, "must be at least 2")
	case !(c.RelFloor >= 0 && c.RelFloor < math.Inf(1)):
		return fieldError("levelshift", "rel_floor", c.RelFloor, "must be finite and ≥ 0")
	case !(c.AbsFloor > 0 && c.AbsFloor < math.Inf(1)):
		return fieldError("levelshift", "abs_floor", c.AbsFloor, "must be finite and > 0")
	}
	return nil
}

// LevelShift compares a short-term window of the series with its long-term reference and
// reports the stronger of two standardised differences: of the mean (a level shift) and of the
// log-variance (a variance change); create it with NewLevelShift.
//
// Maths: two exponentially weighted (mean, variance) pairs, fast (μf, vf; weight Fast) and slow
// (μs, vs; weight Slow), each updated as in EWMA with weights max(w, 1/(n+1)). With σs the
// floored √vs, per finite x (scored after the fast pair and before the slow pair absorb x):
//
//	cf  = Fast/(2 − Fast)                   variance of an EWMA of unit white noise
//	Zl  = (μf − μs) / (σs·√cf)               ~N(0,1) while the level is unchanged
//	Zv  = ln(vf/σs²) / √(2·cf)               ~N(0,1)-ish while the variance is unchanged
//	Raw = Zl if |Zl| ≥ |Zv|, else Zv         (sign: up or down)
//	Likelihood = erf(|Raw|/√2)
//
// A level shift of k·σ lifts |Zl| to about k/√cf = 4.4·k with the defaults within ~10 samples,
// then fades as the slow reference follows (~1/Slow samples). The fast variance is floored at
// 1e-12·σs² so a sudden flat line gives a finite (negative) Zv.
//
// Warm-up: Warmup samples feed both pairs and return Score{}.
// Time: sample-based; t is ignored. NaN/±Inf observations return Score{} and change nothing.
// Parameters and defaults (DefaultLevelShiftConfig): Fast 0.1, Slow 0.005, Warmup 30,
// RelFloor 1e-3, AbsFloor 1e-6. Memory: about 100 bytes, constant.
type LevelShift struct {
	cfg    LevelShiftConfig
	mf, vf float64
	ms, vs float64
	n      int64
}

// NewLevelShift returns a detector with the given configuration. It panics if cfg.Validate
// fails.
func NewLevelShift(cfg LevelShiftConfig) *LevelShift {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &LevelShift{cfg: cfg}
}

// ewStep returns the exponentially weighted (mean, variance) after absorbing x with weight a.
func ewStep(mean, v, x, a float64) (float64, float64) {
	d := x - mean
	return mean + a*d, (1 - a) * (v + a*d*d)
}

// Observe updates the fast pair with x, scores it against the slow pair, then updates that.
func (l *LevelShift) Observe(_ int64, x float64) Score {
	if !finite(x) {
		return Score{}
	}
	inv := 1 / float64(l.n+1)
	mf, vf := ewStep(l.mf, l.vf, x, math.Max(l.cfg.Fast, inv))
	ms, vs := ewStep(l.ms, l.vs, x, math.Max(l.cfg.Slow, inv))
	if !finite(mf) || !finite(vf) || !finite(ms) || !finite(vs) {
		return Score{}
	}
	var s Score
	if l.n >= int64(l.cfg.Warmup) {
		sd := math.Max(math.Sqrt(l.vs), math.Max(l.cfg.RelFloor*math.Abs(l.ms), l.cfg.AbsFloor))
		cf := l.cfg.Fast / (2 - l.cfg.Fast)
		zl := (mf - l.ms) / (sd * math.Sqrt(cf))
		zv := math.Log(math.Max(vf, 1e-12*sd*sd)/(sd*sd)) / math.Sqrt(2*cf)
		raw := zl
		if math.Abs(zv) > math.Abs(zl) {
			raw = zv
		}
		raw = math.Max(-maxRaw, math.Min(maxRaw, raw))
		s = Score{Raw: raw, Likelihood: zLikelihood(raw)}
	}
	l.mf, l.vf, l.ms, l.vs = mf, vf, ms, vs
	l.n++
	return s
}

// Reset forgets all observations; the configuration is kept.
func (l *LevelShift) Reset() { *l = LevelShift{cfg: l.cfg} }

func init() {
	RegisterDetector("levelshift", func() Detector { return NewLevelShift(DefaultLevelShiftConfig()) })
}

var _ Detector = (*LevelShift)(nil)
