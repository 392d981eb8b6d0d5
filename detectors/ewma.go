package detectors

import "math"

// maxRaw bounds Score.Raw so it can always be written to InfluxDB (which rejects ±Inf).
const maxRaw = 1e9

// EWMAConfig parameterises the EWMA z-score detector. Start from DefaultEWMAConfig.
type EWMAConfig struct {
	// Alpha is the smoothing factor in (0,1): the weight of the newest sample. Default 0.05.
	// AlphaForHalfLife converts a half-life in samples.
	Alpha float64
	// Warmup is the number of samples absorbed before scores are reported (≥ 2). Default 30.
	Warmup int
	// Clip winsorises the state update at μ ± Clip·σ; 0 disables, otherwise ≥ 2. Default 4.
	Clip float64
	// RelFloor is the smallest σ relative to |μ| (≥ 0). Default 1e-3.
	RelFloor float64
	// AbsFloor is the smallest σ in the series' units (> 0). Default 1e-6.
	AbsFloor float64
}

// DefaultEWMAConfig returns the defaults listed on EWMAConfig's fields.
func DefaultEWMAConfig() EWMAConfig {
	return EWMAConfig{Alpha: 0.05, Warmup: 30, Clip: 4, RelFloor: 1e-3, AbsFloor: 1e-6}
}

// AlphaForHalfLife returns the smoothing factor whose weights halve every h samples (h > 0).
func AlphaForHalfLife(h float64) float64 { return 1 - math.Exp2(-1/h) }

// Validate reports the first invalid field of c.
func (c EWMAConfig) Validate() error {
	switch {
	case !(c.Alpha > 0 && c.Alpha < 1):
		return fieldError("ewma", "alpha", c.Alpha, "must be in (0,1)")
	case c.Warmup < 2:
		return fieldError("ewma", "warmup", c.Warmup, "must be at least 2")
	case c.Clip != 0 && !(c.Clip >= 2):
		return fieldError("ewma", "clip", c.Clip, "must be 0 (off) or at least 2")
	case !(c.RelFloor >= 0 && c.RelFloor < math.Inf(1)):
		return fieldError("ewma", "rel_floor", c.RelFloor, "must be finite and ≥ 0")
	case !(c.AbsFloor > 0 && c.AbsFloor < math.Inf(1)):
		return fieldError("ewma", "abs_floor", c.AbsFloor, "must be finite and > 0")
	}
	return nil
}

// EWMA is the EWMA z-score detector for one series; create it with NewEWMA.
//
// What it measures: how far each observation lies from the recent level of the series, in units
// of the recent spread, both tracked by exponentially weighted moving averages.
//
// Maths, per finite observation x (n = number of observations absorbed so far):
//
//	σ_eff = max(√v, RelFloor·|μ|, AbsFloor)            spread with a floor
//	z     = (x − μ) / σ_eff                             computed BEFORE μ, v absorb x
//	Raw   = z (clamped to ±1e9 so it is always finite)
//	Likelihood = erf(|z|/√2) = P(|N(0,1)| < |z|)
//
// then the state absorbs x with the weight a = max(Alpha, 1/(n+1)):
//
//	δ = x − μ, winsorised to [−Clip·σ_eff, +Clip·σ_eff] once n ≥ Warmup (Clip > 0)
//	μ ← μ + a·δ
//	v ← (1 − a)·(v + a·δ²)
//
// With a = 1/(n+1) the first samples give the exact running mean and (population) variance, so
// the warm-up is not biased towards the first value; once 1/(n+1) < Alpha the weights decay
// geometrically, a memory of about 1/Alpha samples (half-life ln 2 / −ln(1−Alpha)).
//
// Warm-up: while n < Warmup, Observe only absorbs x and returns Score{} (Raw and Likelihood 0).
//
// Under Gaussian noise the Likelihood is about uniform on [0,1]: a threshold p flags about 1−p of
// normal samples (0.99 ≈ |z| > 2.58, 0.9973 ≈ |z| > 3; a little more, as σ is estimated).
//
// Outliers: the update is winsorised at μ ± Clip·σ_eff, so one spike of any size moves μ by at
// most Alpha·Clip·σ and multiplies v by at most (1−Alpha)(1+Alpha·Clip²) (1.71 with the
// defaults) instead of blinding the detector for the next ~1/Alpha samples. A genuine level
// shift still wins: while it lasts, v grows by that factor every sample, so the clip widens
// geometrically and the detector adapts to the new level within a few dozen samples.
//
// Flat lines: σ_eff never drops below RelFloor·|μ| or AbsFloor, so a constant series followed by
// a tiny wiggle gives a finite (and, relative to the level, small) z instead of ±Inf.
//
// Time: the detector is sample-based; t is accepted for the Detector interface and ignored, so
// irregular sampling weighs each sample equally. NaN/±Inf observations return Score{} and leave
// the state untouched; a finite update that would overflow is likewise not absorbed.
//
// Parameters and defaults (DefaultEWMAConfig): Alpha 0.05 (~20-sample memory, half-life ≈ 13.5
// samples), Warmup 30 samples, Clip 4 σ, RelFloor 1e-3, AbsFloor 1e-6.
// Memory: 64 bytes (three state words and the config), independent of the series length.
type EWMA struct {
	cfg EWMAConfig
	mu  float64 // exponentially weighted mean
	v   float64 // exponentially weighted variance
	n   int64   // finite observations absorbed since Reset
}

// NewEWMA returns a detector with the given configuration. It panics if cfg.Validate fails:
// validate configurations read from files first.
func NewEWMA(cfg EWMAConfig) *EWMA {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &EWMA{cfg: cfg}
}

// Observe scores x against the state built from earlier samples, then absorbs it.
func (e *EWMA) Observe(_ int64, x float64) Score {
	if !finite(x) {
		return Score{}
	}
	sigma := e.sigma()
	warm := e.n >= int64(e.cfg.Warmup)
	var s Score
	if warm {
		z := (x - e.mu) / sigma
		z = math.Max(-maxRaw, math.Min(maxRaw, z)) // also maps an overflowed ±Inf to ±maxRaw
		s = Score{Raw: z, Likelihood: zLikelihood(z)}
	}
	a := math.Max(e.cfg.Alpha, 1/float64(e.n+1))
	d := x - e.mu
	if warm && e.cfg.Clip > 0 {
		lim := e.cfg.Clip * sigma
		d = math.Max(-lim, math.Min(lim, d))
	}
	mu := e.mu + a*d
	v := (1 - a) * (e.v + a*d*d)
	if finite(mu) && finite(v) {
		e.mu, e.v = mu, v
		e.n++
	}
	return s
}

// sigma is the floored standard deviation σ_eff.
func (e *EWMA) sigma() float64 {
	return math.Max(math.Sqrt(e.v), math.Max(e.cfg.RelFloor*math.Abs(e.mu), e.cfg.AbsFloor))
}

// Reset forgets all observations; the configuration is kept.
func (e *EWMA) Reset() { *e = EWMA{cfg: e.cfg} }

// Mean returns the current weighted mean μ (0 before the first observation).
func (e *EWMA) Mean() float64 { return e.mu }

// StdDev returns the current floored standard deviation σ_eff used to score the next sample.
func (e *EWMA) StdDev() float64 { return e.sigma() }

// Count returns the number of observations absorbed since the last Reset.
func (e *EWMA) Count() int64 { return e.n }

func init() {
	RegisterDetector("ewma", func() Detector { return NewEWMA(DefaultEWMAConfig()) })
}

var _ Detector = (*EWMA)(nil)
