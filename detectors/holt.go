package detectors

import (
	"math"
	"time"
)

// HoltConfig parameterises Holt's double exponential smoothing. Start from DefaultHoltConfig.
type HoltConfig struct {
	// LevelWindow is the level's time constant τ_L: a sample Δt after the previous one moves
	// the level by α = 1 − e^(−Δt/τ_L) of its one-step error. Default 10m.
	LevelWindow time.Duration
	// TrendWindow is the trend's time constant τ_T (β = 1 − e^(−Δt/τ_T)). Default 30m.
	TrendWindow time.Duration
	// MinSamples before forecasting (≥ 3). Default 10.
	MinSamples int
	// MinSpan of time the samples must cover before forecasting (≤ 3 × TrendWindow).
	// Default 2m.
	MinSpan time.Duration
}

// DefaultHoltConfig returns the defaults listed on HoltConfig's fields.
func DefaultHoltConfig() HoltConfig {
	return HoltConfig{LevelWindow: 10 * time.Minute, TrendWindow: 30 * time.Minute, MinSamples: 10, MinSpan: 2 * time.Minute}
}

// Validate reports the first invalid field of c.
func (c HoltConfig) Validate() error {
	switch {
	case c.LevelWindow <= 0:
		return fieldError("holt", "level_window", c.LevelWindow, "must be positive")
	case c.TrendWindow <= 0:
		return fieldError("holt", "trend_window", c.TrendWindow, "must be positive")
	case c.MinSamples < 3:
		return fieldError("holt", "min_samples", c.MinSamples, "must be at least 3")
	case c.MinSpan < 0 || c.MinSpan > 3*c.TrendWindow:
		return fieldError("holt", "min_span", c.MinSpan, "must be between 0 and 3 × trend_window")
	}
	return nil
}

// Holt is Holt's linear (double) exponential smoothing for irregularly sampled series: a level
// L and a trend T in units per second, answering "when will this series reach level L*" and
// "what will it be in h"; create it with NewHolt.
//
// Update, for a sample x taken Δt > 0 seconds after the previous one (Wright's extension of
// Holt's method to irregular time: the smoothing weights follow elapsed time):
//
//	e  = x − (L + T·Δt)                      one-step error
//	α  = 1 − e^(−Δt/τ_L),  β = 1 − e^(−Δt/τ_T)   (max(α, 1/n), max(β, 1/(n−1)) while n is small)
//	L' = L + T·Δt + α·e
//	T' = T + β·((L' − L)/Δt − T)              = T + β·α·e/Δt
//
// Uncertainty, propagated with the same recursions, treating one-step errors as independent
// with variance σ² (a time-discounted mean of e², weight 1 − e^(−Δt/τ_L)):
//
//	Var T' = (1−β)²·Var T + (β·α/Δt)²·σ²
//	Var L' = (1−α)²·(Var L + Δt²·Var T) + α²·σ²
//
// both multiplied, when used, by k = (1+ρ)/(1−ρ), ρ ∈ [0, 0.9] the discounted lag-1
// autocorrelation of the one-step errors (wandering noise has fewer independent samples than
// samples).
//
// ETA(now, level): the series is at x̂ = L + T·a, a the time since the newest sample; as for
// Trend, it approaches the level from the side of L; moving towards it gives
// ETA = (level − x̂)/T (0 when x̂ is at or past the level), moving away or T = 0 gives OK = false.
// Confidence = Φ(dir·T/√(k·Var T)), the probability that the true trend leads to the level.
// Predict(now, h): x̂(now+h) ± 1.96·√(k·(Var L + (a+h)²·Var T) + σ²).
//
// Warm-up: nothing is forecast until MinSamples samples spanning MinSpan were seen. A gap
// longer than 5·τ_T restarts the warm-up. Samples with the time of the newest one, older
// samples and NaN/±Inf values are ignored. Memory: O(1), about 140 bytes.
//
// Defaults (DefaultHoltConfig): LevelWindow 10m, TrendWindow 30m, MinSamples 10, MinSpan 2m.
type Holt struct {
	cfg        HoltConfig
	tl, tt     float64 // τ_L, τ_T in seconds
	first      int64   // time of the first sample since the last (re)start, Unix ns
	last       int64   // time of the newest sample, Unix ns
	n          int64
	lvl, trend float64
	varL, varT float64 // variances of L and T, before the factor k
	s2         float64 // discounted mean of e²
	ee, prevE  float64 // discounted mean of e·e_prev; the previous e
}

// NewHolt returns a forecaster with the given configuration. It panics if cfg.Validate fails.
func NewHolt(cfg HoltConfig) *Holt {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &Holt{cfg: cfg, tl: cfg.LevelWindow.Seconds(), tt: cfg.TrendWindow.Seconds()}
}

// Observe absorbs the sample x taken at t (Unix ns).
func (h *Holt) Observe(t int64, x float64) {
	if !finite(x*x) || !finite(x-h.lvl) {
		return
	}
	if h.n > 0 && t <= h.last {
		return
	}
	dt := float64(t-h.last) / 1e9
	if h.n == 0 || dt > 5*h.tt {
		*h = Holt{cfg: h.cfg, tl: h.tl, tt: h.tt, first: t, last: t, n: 1, lvl: x}
		return
	}
	h.n++
	a := 1 - expNeg(dt/h.tl)
	b := 1 - expNeg(dt/h.tt)
	if f := 1 / float64(h.n); a < f {
		a = f
	}
	if f := 1 / float64(h.n-1); b < f {
		b = f
	}
	e := x - h.lvl - h.trend*dt
	s2 := h.s2
	if h.n == 2 {
		s2 = 0
	}
	h.lvl += h.trend*dt + a*e
	h.trend += b * a * e / dt
	g := b * a / dt
	h.varT = (1-b)*(1-b)*h.varT + g*g*s2
	h.varL = (1-a)*(1-a)*(h.varL+dt*dt*h.varT) + a*a*s2
	// Error statistics: plain means over the first samples, then discounted by τ_L.
	w := 1 / float64(h.n-1)
	if aw := 1 - expNeg(dt/h.tl); w < aw {
		w = aw
	}
	h.s2 += w * (e*e - h.s2)
	h.ee += w * (e*h.prevE - h.ee)
	h.prevE = e
	h.last = t
}

// Ready reports whether the warm-up is over.
func (h *Holt) Ready() bool {
	return h.n >= int64(h.cfg.MinSamples) && h.last-h.first >= int64(h.cfg.MinSpan) && h.s2 >= 0
}

// k returns the autocorrelation factor (1+ρ)/(1−ρ).
func (h *Holt) k() float64 {
	if h.s2 <= 0 {
		return 1
	}
	rho := math.Min(0.9, math.Max(0, h.ee/h.s2))
	return (1 + rho) / (1 - rho)
}

// Slope returns the smoothed trend T in units per second.
func (h *Holt) Slope() float64 { return h.trend }

// Level returns the forecast value at now (Unix ns): L + T·(now − newest sample).
func (h *Holt) Level(now int64) float64 { return h.lvl + h.trend*float64(now-h.last)/1e9 }

// ETA returns when the smoothed trend reaches level, seen from now (Unix ns).
func (h *Holt) ETA(now int64, level float64) Forecast {
	if !h.Ready() || !finite(level) || h.trend == 0 {
		return Forecast{}
	}
	b := h.trend
	dir := math.Copysign(1, level-h.lvl)
	if level == h.lvl {
		dir = math.Copysign(1, b)
	}
	se := math.Sqrt(h.k() * h.varT)
	fc := Forecast{Confidence: normCDF(dir * b / se)}
	if b*dir < 0 {
		return fc
	}
	gap := level - h.Level(now)
	if gap*dir <= 0 {
		fc.OK = true
		return fc
	}
	eta := gap / b * 1e9
	if !(eta < math.MaxInt64) {
		return fc
	}
	fc.ETA, fc.OK = time.Duration(eta), true
	return fc
}

// Predict returns the forecast at now+horizon with an approximate 95% prediction interval.
func (h *Holt) Predict(now int64, horizon time.Duration) (value, lo, hi float64, ok bool) {
	if !h.Ready() {
		return 0, 0, 0, false
	}
	v := float64(now-h.last)/1e9 + horizon.Seconds()
	value = h.lvl + h.trend*v
	half := 1.96 * math.Sqrt(h.k()*(h.varL+v*v*h.varT)+h.s2)
	return value, value - half, value + half, true
}

// Reset forgets all samples; the configuration is kept.
func (h *Holt) Reset() { *h = Holt{cfg: h.cfg, tl: h.tl, tt: h.tt} }

func init() {
	RegisterForecaster("holt", func() Forecaster { return NewHolt(DefaultHoltConfig()) })
}

var _ Forecaster = (*Holt)(nil)
