package detectors

import (
	"math"
	"time"
)

// gapReset is the gap, in Windows, after which Trend forgets everything and warms up afresh.
const gapReset = 5

// TrendConfig parameterises the trend forecaster. Start from DefaultTrendConfig.
type TrendConfig struct {
	// Window is the time constant τ of the discount: a sample of age a weighs exp(−a/τ).
	// Default 10m.
	Window time.Duration
	// MinSamples is the smallest effective number of samples (Σw)²/Σw² before forecasting
	// (≥ 3). Default 5.
	MinSamples int
	// MinSpan is the smallest time span the weighted samples must cover before forecasting,
	// measured as √12 × their weighted standard deviation in time (the length of an evenly
	// sampled interval with the same spread); at most 3 × Window. Default 30s.
	MinSpan time.Duration
}

// DefaultTrendConfig returns the defaults listed on TrendConfig's fields.
func DefaultTrendConfig() TrendConfig {
	return TrendConfig{Window: 10 * time.Minute, MinSamples: 5, MinSpan: 30 * time.Second}
}

// Validate reports the first invalid field of c.
func (c TrendConfig) Validate() error {
	switch {
	case c.Window <= 0:
		return fieldError("trend", "window", c.Window, "must be positive")
	case c.MinSamples < 3:
		return fieldError("trend", "min_samples", c.MinSamples, "must be at least 3")
	case c.MinSpan < 0 || c.MinSpan > 3*c.Window:
		return fieldError("trend", "min_span", c.MinSpan, "must be between 0 and 3 × window")
	}
	return nil
}

// Trend is a linear-trend forecaster for one series: it answers "when will this series reach
// level L" and "what will it be in h"; create it with NewTrend.
//
// Model: an exponentially time-discounted weighted least-squares line x ≈ α + β·u fitted to all
// samples so far, u being time in seconds. A sample of age a = t_now − t_i weighs
// w_i = exp(−a/τ), τ = Window, so irregular sampling and gaps are weighted by elapsed time, not by
// sample count. A gap longer than 5·τ resets the fit (the old samples would weigh < 0.7% and the
// line would mostly measure the jump across the gap); the warm-up starts again.
//
// Memory: O(1), 120 bytes including the config. State: the weighted sums S0 = Σw and W2 = Σw²,
// the weighted means ū, x̄ and the central co-moments Cuu = Σw(u−ū)², Cux = Σw(u−ū)(x−x̄),
// Cxx = Σw(x−x̄)², plus A = Σw²(u−ū) and Q = Σw²(u−ū)² for the variance of the fit. Time is
// measured from the newest sample (u = 0), so the origin is re-centred on every observation and
// Unix-nanosecond timestamps never meet a float64; the means and co-moments are updated
// West/Welford style, so a large offset (1e12 bytes) does not swamp small changes either.
// A new sample at time t first
// decays the state by d = exp(−Δ/τ), Δ = t − t_last: S0, Cuu, Cux, Cxx scale by d; W2, A, Q by
// d²; ū moves by −Δ. It then joins with w = 1 (f = 1/(S0+1), δu = −ū, δx = x − x̄):
//
//	ū += f·δu;  x̄ += f·δx;  Cuu += (1−f)·δu²;  Cux += (1−f)·δu·δx;  Cxx += (1−f)·δx²
//
// Fit, with n_eff = S0²/W2 (Kish's effective sample size):
//
//	β = Cux / Cuu                                    Slope, units per second
//	x̂(u) = x̄ + β·(u − ū)                             Level
//	s² = (Cxx − Cux²/Cuu) / (S0·(1 − 2/n_eff))         residual variance
//	Var β = s²·Q / Cuu²
//	Var x̂(u) = s²·(W2/S0² + 2(u−ū)·A/(S0·Cuu) + (u−ū)²·Q/Cuu²)
//
// These are the exact sampling variances of the weighted estimators under independent,
// homoscedastic noise; autocorrelated noise (e.g. a random walk) makes them too small, hence
// the Confidence too high.
//
// ETA(now, level): the level is approached from the side of the recent weighted mean x̄.
// Moving towards it (sign β = sign(level − x̄)) gives ETA = (level − x̂(now))/β, or ETA = 0 if
// x̂(now) is already at or past the level (the fitted line has crossed it within about a
// Window); moving away, β = 0 or an ETA beyond ~290 years give OK = false. Rules that care
// about a level that has been exceeded for a while must test the value itself as well.
// Confidence = Φ(sign(level − x̄)·β/√Var β), the normal-approximation probability that the true
// slope has the sign that leads to the level (1 or 0 when the fit is exact; 0 when β = 0).
//
// Predict(now, h): x̂(now+h) ± 1.96·√(Var x̂(now+h) + s²), an approximate 95% prediction
// interval for one observation.
//
// Warm-up: nothing is forecast (ETA gives Forecast{}, Predict gives ok = false) until n_eff,
// rounded, reaches MinSamples (n_eff of n samples is just under n) and √(12·Cuu/S0) ≥ MinSpan.
// For regular sampling at interval Δ ≪ τ, n_eff ≈ 2τ/Δ, so Window must span at least
// MinSamples/2 sampling intervals (better: many).
//
// Parameters and defaults (DefaultTrendConfig): Window 10m, MinSamples 5, MinSpan 30s.
// NaN/±Inf values, values whose square overflows, and samples older than the newest one are
// ignored; a sample with the same time as the newest is accepted.
type Trend struct {
	cfg  TrendConfig
	tau  float64 // Window in seconds
	last int64   // time of the newest sample, Unix ns; u = 0 there
	n    int64   // samples absorbed since Reset

	s0, w2   float64 // Σw, Σw²
	mu, mx   float64 // weighted means of u (seconds, ≤ 0) and x
	cuu, cux float64 // Σw(u−ū)², Σw(u−ū)(x−x̄)
	cxx      float64 // Σw(x−x̄)²
	a, q     float64 // Σw²(u−ū), Σw²(u−ū)²
}

// NewTrend returns a forecaster with the given configuration. It panics if cfg.Validate fails:
// validate configurations read from files first.
func NewTrend(cfg TrendConfig) *Trend {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &Trend{cfg: cfg, tau: cfg.Window.Seconds()}
}

// Observe absorbs the sample x taken at t (Unix ns).
func (tr *Trend) Observe(t int64, x float64) { tr.observeW(t, x, 1) }

// observeW absorbs the sample x taken at t with weight w > 0.
func (tr *Trend) observeW(t int64, x, w float64) {
	dx := x - tr.mx
	if !finite(dx * dx) {
		return
	}
	if tr.n > 0 {
		if t < tr.last {
			return
		}
		if t > tr.last {
			tr.decay(float64(t-tr.last) / 1e9)
		}
	}
	tr.last = t
	tr.addW(x, w)
}

// decay ages the state by dt seconds.
func (tr *Trend) decay(dt float64) {
	if dt > gapReset*tr.tau {
		tr.clearSums()
		return
	}
	d := expNeg(dt / tr.tau)
	d2 := d * d
	tr.s0 *= d
	tr.cuu *= d
	tr.cux *= d
	tr.cxx *= d
	tr.w2 *= d2
	tr.a *= d2
	tr.q *= d2
	tr.mu -= dt
}

// addW joins the sample x at u = 0 with weight w > 0 (West's weighted update:
// f = w/(S0+w), C += w·(1−f)·δ·δ'; W2, A, Q take w²).
func (tr *Trend) addW(x, w float64) {
	s0 := tr.s0 + w
	f := w / s0
	g := w * tr.s0 / s0 // w·(1 − f)
	du := -tr.mu
	dx := x - tr.mx
	shift := du * f // how far ū moves
	// Re-centre A and Q on the new ū (using the old A), then add the new sample's terms.
	tr.q += shift * (shift*tr.w2 - 2*tr.a)
	tr.a -= shift * tr.w2
	tr.mu += shift
	tr.mx += dx * f
	tr.cuu += g * du * du
	tr.cux += g * du * dx
	tr.cxx += g * dx * dx
	dev := -tr.mu
	w2 := w * w
	tr.w2 += w2
	tr.a += w2 * dev
	tr.q += w2 * dev * dev
	tr.s0 = s0
	tr.n++
}

func (tr *Trend) clearSums() {
	tr.s0, tr.w2, tr.mu, tr.mx = 0, 0, 0, 0
	tr.cuu, tr.cux, tr.cxx, tr.a, tr.q = 0, 0, 0, 0, 0
}

// Ready reports whether the warm-up is over (see the type's documentation).
func (tr *Trend) Ready() bool {
	if tr.s0 <= 0 || tr.cuu <= 0 {
		return false
	}
	if tr.s0*tr.s0 < (float64(tr.cfg.MinSamples)-0.5)*tr.w2 { // n_eff rounded ≥ MinSamples
		return false
	}
	span := tr.cfg.MinSpan.Seconds()
	return 12*tr.cuu >= span*span*tr.s0
}

// Slope returns the fitted trend β in units per second; 0 until two distinct times were seen.
// It is an estimate worth acting on only once Ready.
func (tr *Trend) Slope() float64 {
	if tr.cuu <= 0 {
		return 0
	}
	return tr.cux / tr.cuu
}

// Level returns the fitted value x̂ at now (Unix ns): the weighted mean until two distinct
// times were seen, 0 before the first sample.
func (tr *Trend) Level(now int64) float64 {
	return tr.mx + tr.Slope()*(tr.age(now)-tr.mu)
}

// age converts now into the model's time axis (seconds since the newest sample).
func (tr *Trend) age(now int64) float64 { return float64(now-tr.last) / 1e9 }

// resVar is the residual variance s²; valid only when Ready.
func (tr *Trend) resVar() float64 {
	ssr := math.Max(0, tr.cxx-tr.cux*tr.cux/tr.cuu)
	return ssr / (tr.s0 - 2*tr.w2/tr.s0)
}

// ETA returns when the fitted trend reaches level, seen from now (Unix ns).
func (tr *Trend) ETA(now int64, level float64) Forecast {
	if !tr.Ready() || !finite(level) {
		return Forecast{}
	}
	return tr.etaWith(now, level, tr.resVar(), math.Inf(1))
}

// etaWith is ETA with the residual variance s2 given, the Confidence Student-t with nu
// degrees of freedom instead of normal (nu = +Inf: Trend's Φ); the caller checked Ready.
func (tr *Trend) etaWith(now int64, level, s2, nu float64) Forecast {
	fc, z, ok := tr.etaZ(now, level, s2)
	if !ok {
		return Forecast{}
	}
	fc.Confidence = studentCDF(z, nu)
	return fc
}

// etaZ is etaWith before the distribution: fc's ETA and OK are etaWith's, z = dir·β/√Var β is
// the standardised slope whose distribution function is the Confidence; ok is false when
// β = 0 (no forecast at all).
func (tr *Trend) etaZ(now int64, level, s2 float64) (fc Forecast, z float64, ok bool) {
	b := tr.cux / tr.cuu
	if b == 0 {
		return Forecast{}, 0, false
	}
	dir := math.Copysign(1, level-tr.mx) // direction from where the series comes from
	if level == tr.mx {
		dir = math.Copysign(1, b)
	}
	se := math.Sqrt(math.Max(0, s2*tr.q/(tr.cuu*tr.cuu)))
	z = dir * b / se
	if b*dir < 0 {
		return fc, z, true // moving away
	}
	gap := level - tr.Level(now)
	if gap*dir <= 0 {
		fc.OK = true // already at or past the level
		return fc, z, true
	}
	eta := gap / b * 1e9
	if !(eta < math.MaxInt64) {
		return fc, z, true // ~flat: beyond time.Duration's range
	}
	fc.ETA, fc.OK = time.Duration(eta), true
	return fc, z, true
}

// ETAWithin is ETA with the Confidence replaced by the probability that the series reaches
// level within horizon of now (see crossProbWith), never more than ETA's.
func (tr *Trend) ETAWithin(now int64, level float64, horizon time.Duration) Forecast {
	fc := tr.ETA(now, level)
	if fc.OK {
		s2 := tr.resVar()
		fc.Confidence = math.Min(fc.Confidence, tr.crossProbWith(now, level, tr.dirTo(level), horizon, s2, math.Inf(1)))
	}
	return fc
}

// dirTo is the side the level is approached from: +1 from below, −1 from above.
func (tr *Trend) dirTo(level float64) float64 {
	if level == tr.mx {
		return math.Copysign(1, tr.Slope())
	}
	return math.Copysign(1, level-tr.mx)
}

// crossProbWith returns the probability that the fitted line has reached target, approached
// from the side dir, at now+horizon: Φ(dir·(x̂(now+h) − target)/√Var x̂(now+h)), the variance
// with residual variance s2, so both the level's and the slope's uncertainty count. A line is
// monotonic, so that is the probability that the trend crosses target within the horizon —
// unlike ETA's Confidence, which only asks whether the slope points the right way. The caller
// checked Ready. nu: as etaWith's (Trend itself passes +Inf).
func (tr *Trend) crossProbWith(now int64, target, dir float64, horizon time.Duration, s2, nu float64) float64 {
	return studentCDF(tr.crossZ(now, target, dir, horizon, s2), nu)
}

// crossZ is crossProbWith before the distribution: the standardised distance
// dir·(x̂(now+h) − target)/√Var x̂(now+h), ±Inf when the variance is 0 (+Inf when the line
// is there).
func (tr *Trend) crossZ(now int64, target, dir float64, horizon time.Duration, s2 float64) float64 {
	b := tr.cux / tr.cuu
	v := tr.age(now) + horizon.Seconds() - tr.mu // distance from ū
	z := dir * (tr.mx + b*v - target)
	fit := s2 * (tr.w2/(tr.s0*tr.s0) + 2*v*tr.a/(tr.s0*tr.cuu) + v*v*tr.q/(tr.cuu*tr.cuu))
	if !(fit > 0) {
		if z >= 0 {
			return math.Inf(1)
		}
		return math.Inf(-1)
	}
	return z / math.Sqrt(fit)
}

// Predict returns the fitted value at now+horizon with an approximate 95% prediction interval.
func (tr *Trend) Predict(now int64, horizon time.Duration) (value, lo, hi float64, ok bool) {
	if !tr.Ready() {
		return 0, 0, 0, false
	}
	return tr.predictWith(now, horizon, tr.resVar())
}

// predictWith is Predict with the residual variance s2 given; the caller checked Ready.
func (tr *Trend) predictWith(now int64, horizon time.Duration, s2 float64) (value, lo, hi float64, ok bool) {
	b := tr.cux / tr.cuu
	v := tr.age(now) + horizon.Seconds() - tr.mu // distance from ū
	value = tr.mx + b*v
	fit := s2 * (tr.w2/(tr.s0*tr.s0) + 2*v*tr.a/(tr.s0*tr.cuu) + v*v*tr.q/(tr.cuu*tr.cuu))
	half := 1.96 * math.Sqrt(math.Max(0, fit)+s2)
	return value, value - half, value + half, true
}

// Reset forgets all samples; the configuration is kept.
func (tr *Trend) Reset() { *tr = Trend{cfg: tr.cfg, tau: tr.tau} }

// expNeg returns e^(−x) for x ≥ 0. Sampling intervals are usually far below the Window, and
// there a degree-6 Taylor polynomial (error < x⁷/7! < 5e-17 for x ≤ 1/64) is several times
// faster than math.Exp.
func expNeg(x float64) float64 {
	if x > 1.0/64 {
		return math.Exp(-x)
	}
	return 1 - x*(1-x*(1.0/2-x*(1.0/6-x*(1.0/24-x*(1.0/120-x*(1.0/720))))))
}

// normCDF is the standard normal distribution function Φ.
func normCDF(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }

func init() {
	RegisterForecaster("trend", func() Forecaster { return NewTrend(DefaultTrendConfig()) })
}

var (
	_ Forecaster        = (*Trend)(nil)
	_ HorizonForecaster = (*Trend)(nil)
)

// studentCDF is the distribution function of Student's t with nu > 0 degrees of freedom
// (nu = +Inf: the normal Φ). For |t| it uses P(T > |t|) = ½·I_x(ν/2, ½), x = ν/(ν+t²), the
// regularised incomplete beta function evaluated by its continued fraction (modified Lentz;
// at most studentIter terms, which bounds the cost and is far more than the ν ≤ 10⁴ it is
// used with need: relative error < 1e-12 there). No allocation. To evaluate several t with
// one ν, use newTDist(nu).cdf: the same values, ν's log-gammas computed once.
func studentCDF(t, nu float64) float64 { return newTDist(nu).cdf(t) }

// tDist is Student's t distribution with ν degrees of freedom, ready for cdf.
type tDist struct {
	nu  float64
	lnB float64 // ln B(ν/2, ½) = ln Γ(ν/2) + ln Γ(½) − ln Γ(ν/2 + ½)
}

// newTDist returns the t distribution with nu degrees of freedom (see studentCDF).
func newTDist(nu float64) tDist {
	d := tDist{nu: nu}
	if nu > 0 && nu <= 1e7 {
		g := lnSqrtPi // ln Γ(ν/2), exact for ν = 1
		if nu != 1 {
			g, _ = math.Lgamma(nu / 2)
		}
		gab, _ := math.Lgamma(nu/2 + 0.5)
		d.lnB = g + lnSqrtPi - gab
	}
	return d
}

// cdf returns P(T ≤ t) (see studentCDF).
func (d tDist) cdf(t float64) float64 {
	nu := d.nu
	switch {
	case math.IsNaN(t) || !(nu > 0):
		return math.NaN()
	case math.IsInf(nu, 1) || nu > 1e7:
		return normCDF(t)
	case math.IsInf(t, 0):
		return math.Max(0, math.Copysign(1, t))
	}
	t2 := t * t
	// P(T > |t|) = ½·I_x(a, b), a = ν/2, b = ½. The fraction converges fast for
	// x < (a+1)/(a+b+2); beyond it the complement I_x(a,b) = 1 − I_(1−x)(b,a) is used.
	x, xc := nu/(nu+t2), t2/(nu+t2)
	a, b := nu/2, 0.5
	var tail float64
	if x < (a+1)/(a+b+2) {
		tail = 0.5 * incBetaFrac(x, xc, a, b, d.lnB)
	} else {
		tail = 0.5 * (1 - incBetaFrac(xc, x, b, a, d.lnB))
	}
	if t < 0 {
		return tail
	}
	return 1 - tail
}

// studentIter bounds the terms of the incomplete beta continued fraction; lnSqrtPi is
// ln Γ(½) = ln √π.
const (
	studentIter = 300
	lnSqrtPi    = 0.5723649429247001
)

// incBetaFrac returns I_x(a, b) by its continued fraction, xc = 1 − x given separately for
// precision, lnB = ln B(a, b). Accurate when x < (a+1)/(a+b+2).
//
//	I_x(a,b) = x^a·(1−x)^b / (a·B(a,b)) · 1/(1+ d₁/(1+ d₂/(1+ …)))
//	d_(2m+1) = −(a+m)(a+b+m)·x / ((a+2m)(a+2m+1))     d_(2m) = m(b−m)·x / ((a+2m−1)(a+2m))
func incBetaFrac(x, xc, a, b, lnB float64) float64 {
	if x <= 0 {
		return 0
	}
	front := math.Exp(a*math.Log(x)+b*math.Log(xc)-lnB) / a
	const tiny = 1e-300
	// Modified Lentz evaluation of 1/(1+ d₁/(1+ d₂/(1+ …))).
	f, c, d := 1.0, 1.0, 0.0
	for i := 0; i < studentIter; i++ {
		m := float64(i / 2)
		var num float64
		switch {
		case i == 0:
			num = 1
		case i%2 == 0:
			num = m * (b - m) * x / ((a + 2*m - 1) * (a + 2*m))
		default:
			num = -(a + m) * (a + b + m) * x / ((a + 2*m) * (a + 2*m + 1))
		}
		d = 1 + num*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		d = 1 / d
		c = 1 + num/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		cd := c * d
		f *= cd
		if math.Abs(cd-1) < 1e-14 {
			break
		}
	}
	return front * (f - 1)
}
