package detectors

import (
	"math"
	"time"
)

// RobustTrendConfig parameterises the robust trend forecaster. Start from
// DefaultRobustTrendConfig.
type RobustTrendConfig struct {
	// Window, MinSamples and MinSpan are those of the underlying discounted regression (see
	// TrendConfig). Defaults 1h, 5, 10m.
	Window     time.Duration
	MinSamples int
	MinSpan    time.Duration
	// Huber: residuals beyond Huber·σ weigh Huber·σ/|r| (> 0). Default 3.
	Huber float64
	// Jump: a change between two samples larger than Jump·σ_d is a candidate step or spike
	// (> 0). Default 6.
	Jump float64
	// Margin: the ETA is when the fitted line comes within Margin·σ of the level, σ the
	// residual scale: a noisy series first touches the level about that early (≥ 0). Default 1.
	Margin float64
	// BaseWindow is the time constant of the slow baseline under the peaks (≥ Window; 0
	// turns the peak envelope off). Default 3h.
	BaseWindow time.Duration
	// BaseHuber: samples above the baseline by more than BaseHuber·σ_b weigh BaseHuber·σ_b/r
	// (> 0). Default 1.
	BaseHuber float64
	// PeakQuantile is the quantile of the excursions above the baseline taken as the peak
	// height J (in (0.5, 1)). Default 0.98.
	PeakQuantile float64
	// PeakMemory is how long J takes to forget a peak: while no excursion reaches it, J sinks
	// by 4·σ_b per PeakMemory (> 0). Default 24h.
	PeakMemory time.Duration
	// FastBaseWindow is the time constant of the fast baseline whose slope the peak envelope
	// borrows while the ramp test sees a ramp (0 turns it off; ≤ BaseWindow). Default 45m.
	FastBaseWindow time.Duration
	// RampBlock is the length of the blocks whose means the ramp test fits (0 turns the ramp
	// test off). Default 5m.
	RampBlock time.Duration
	// RampBlocks is the number of block means in the ramp test's window, [6, 32]. Default 10.
	RampBlocks int
	// RampZ is the window slope, in units of the series' own typical window slope, at which
	// the ramp test alone is 90 % sure of a ramp (> 0). Default 3.
	RampZ float64
}

// DefaultRobustTrendConfig returns the defaults listed on RobustTrendConfig's fields.
func DefaultRobustTrendConfig() RobustTrendConfig {
	return RobustTrendConfig{Window: 60 * time.Minute, MinSamples: 5, MinSpan: 10 * time.Minute, Huber: 3, Jump: 6, Margin: 1,
		BaseWindow: 3 * time.Hour, BaseHuber: 1, PeakQuantile: 0.98, PeakMemory: 24 * time.Hour,
		FastBaseWindow: 45 * time.Minute,
		RampBlock:      5 * time.Minute, RampBlocks: 10, RampZ: 3}
}

// Validate reports the first invalid field of c.
func (c RobustTrendConfig) Validate() error {
	if err := c.trend().Validate(); err != nil {
		return err
	}
	switch {
	case !(c.Huber > 0) || math.IsInf(c.Huber, 0):
		return fieldError("robust_trend", "huber", c.Huber, "must be positive")
	case !(c.Jump > 0) || math.IsInf(c.Jump, 0):
		return fieldError("robust_trend", "jump", c.Jump, "must be positive")
	case !(c.Margin >= 0) || math.IsInf(c.Margin, 0):
		return fieldError("robust_trend", "margin", c.Margin, "must be zero or positive")
	case c.BaseWindow != 0 && c.BaseWindow < c.Window:
		return fieldError("robust_trend", "base_window", c.BaseWindow, "must be 0 or at least window")
	case c.RampBlock < 0:
		return fieldError("robust_trend", "ramp_block", c.RampBlock, "must be zero or positive")
	case c.RampBlock > 0 && (c.RampBlocks < 6 || c.RampBlocks > maxRampBlocks):
		return fieldError("robust_trend", "ramp_blocks", c.RampBlocks, "must be in [6, 32]")
	case c.RampBlock > 0 && (!(c.RampZ > 0) || math.IsInf(c.RampZ, 0)):
		return fieldError("robust_trend", "ramp_z", c.RampZ, "must be positive")
	case c.BaseWindow == 0:
		return nil
	case !(c.BaseHuber > 0) || math.IsInf(c.BaseHuber, 0):
		return fieldError("robust_trend", "base_huber", c.BaseHuber, "must be positive")
	case !(c.PeakQuantile > 0.5 && c.PeakQuantile < 1):
		return fieldError("robust_trend", "peak_quantile", c.PeakQuantile, "must be in (0.5, 1)")
	case c.PeakMemory <= 0:
		return fieldError("robust_trend", "peak_memory", c.PeakMemory, "must be positive")
	case c.FastBaseWindow < 0 || c.FastBaseWindow > c.BaseWindow:
		return fieldError("robust_trend", "fast_base_window", c.FastBaseWindow, "must be in [0, base_window]")
	}
	return nil
}

func (c RobustTrendConfig) trend() TrendConfig {
	return TrendConfig{Window: c.Window, MinSamples: c.MinSamples, MinSpan: c.MinSpan}
}

// RobustTrend is a linear-trend forecaster that spikes, steps (a deletion, a job starting) and
// heavy-tailed or autocorrelated noise do not fool; create it with NewRobustTrend.
//
// Model: Trend's exponentially time-discounted weighted least-squares line (time constant
// τ = Window; see Trend for the sums, the fit and the gap reset), with these changes.
//
// Spikes and steps. Each sample's innovation d = x − x_prev − β·Δt (β the current slope, x_prev
// the previous accepted sample, Δt the time between them) is compared with σ_d, a robust scale
// of d. An isolated |d| > Jump·σ_d (the previous sample was not itself a large move) is held
// back for one sample, then judged by the next one, x':
//
//	|x' − (x + β·Δt')|      < |d|/2   a step: the whole history is moved by d (x̄ += d), so the
//	                                  slope is kept and the level follows at once
//	|x' − (x_prev + β·Δt'')| < |d|/2  a spike: x is dropped
//	otherwise                         a ramp (a burst of writes): x joins the fit as usual
//
// A step therefore never reads as a trend, in either direction: a deletion does not cancel a
// fill, and a job that takes 20% of memory at once is not a leak. A burst spread over several
// samples is growth and is fitted as such.
//
// Outliers. A sample joins with Huber weight w = min(1, Huber·σ/|r|), r = x − x̂(t) its residual
// from the line before it joins — except from the third outlier in a row on the same side of
// the line, which joins with w = 1: such a run is a change of trend (a flat series that starts
// to fill), not noise, and down-weighting it would keep the old line for hours; σ = √(π/2)·E|r|, E a time-discounted mean (weight
// 1 − e^(−Δt/τ)) of |r| clipped at 4σ (so an outlier moves it little but a lasting change of
// noise is followed). σ_d is kept the same way from d.
//
// Confidence and intervals. Residual variance is σ², not Trend's weighted s² (which outliers
// inflate), times the autocorrelation factor k = (1+ρ)/(1−ρ), ρ the discounted lag-1
// autocorrelation of successive residuals: slowly wandering noise (load, temperature) has
// fewer independent samples than it has samples, and k corrects the variance of the slope for
// that, so a wander is not taken for a confident trend. The scales E|r|, E|d| and ρ's sums are
// discounted means over all samples so far (weight 1/S, S ← S·e^(−Δt/τ) + 1: plain means at
// first, weight 1 − e^(−Δt/τ) once a window is in), and ρ is shrunk towards the prior
// ρ₀ = 0.99 held by a window's worth of samples seen before the first one, discounted like
// the data (weight P = e^(−age/τ), age since the first sample):
//
//	ρ_k = (1−P)·min(ρ̂, 0.9) + P·ρ₀       in k, so k ≤ 19 once the prior is forgotten
//	ρ_ν = (1−P)·min(ρ̂, ρ₀) + P·ρ₀         in ν below
//
// The first minutes' residuals (from lines fitted to few samples) are smaller and less
// correlated than the noise: an AR noise with a 2-minute correlation time reads as ρ̂ ≈ 0.2–0.8
// over its first 10 minutes instead of 0.92. With little evidence the confidence is also
// humbler: the standardised errors are Student-t with ν = max(1, n_eff − 2) degrees of
// freedom, n_eff = (S0²/W2)·(1−ρ_ν)/(1+ρ_ν) the window's effective number of independent
// samples (Kish's n of the discounted weights, times the AR(1) factor), instead of normal:
// 20 minutes of that noise hold about 5 independent samples, ν ≈ 3. ETA, Confidence and
// Predict are then Trend's, with s² → k·σ² and Φ → the t distribution (Predict keeps 1.96),
// except that the ETA is to level ∓ Margin·σ (the side the series
// comes from): the first sample over the level comes about when the line is that far short of
// it, so ETA is the expected first passage of the series, not of its mean. ETAWithin (what a
// Watch uses) replaces the Confidence — which only says the slope points the right way — by
// the probability that the line, level and slope uncertain with variance k·σ², is within
// Margin·σ of the level at now + horizon (t tail with ν as above): a slope that extrapolates
// to the level just at the horizon is a coin toss, not a certainty.
//
// Peak envelope. What fails a host is often not its mean but its peaks: a leak brings the
// baseline to 80 %, and the next ordinary job (+5–15 %) crosses 95 % while the mean line is
// still hours away. So the series is also split as x(t) = m(t) + e(t):
//
//	m   a slow baseline: a second discounted regression (τ_b = BaseWindow) fed every finite
//	    sample — spikes and held-back jumps too — with asymmetric Huber weights: a residual
//	    r_b = x − m(t) above BaseHuber·σ_b weighs BaseHuber·σ_b/r_b, one below −Huber·σ_b
//	    weighs Huber·σ_b/|r_b|, σ_b = √(π/2)·E|r_b| over the residuals below m (clipped at 4σ_b,
//	    discounted with τ_b), so jobs and other upward excursions barely lift it
//	e   the excursions; J is their PeakQuantile-quantile (q), by stochastic approximation:
//	    per sample, with s = 4·σ_b·min(Δt, 10 min)/PeakMemory,
//	        e > J:  J ← min(e, J + s·q/(1−q))      e ≤ J:  J ← J − s
//	    at equilibrium a share 1−q of the samples exceeds J; a peak is forgotten at about
//	    4·σ_b per PeakMemory, so a deletion or a step that m follows late does not hold J
//	    up for more than a day or so
//
// ETAWithin (not ETA) then also forecasts the upper envelope m + J: with b the baseline slope,
// its variance k_b·s_b² (s_b² the baseline's weighted residual variance, k_b = (1+ρ_b)/(1−ρ_b)
// from the lag-1 autocorrelation of its clipped residuals, ρ_b ≤ 0.99: excursions that last
// hours leave few independent samples), the envelope forecast is
//
//	ETA_env = max(0, (level − J − m(now)) / b),   b > 0 required
//	P_env   = min(Φ(b/se_b), P(m(now+h) ≥ level − J))   (Trend.crossProbWith on the baseline)
//
// and replaces the mean-trend forecast when P_env is the larger, with ETA the earlier of the
// two. The 3 h baseline follows a leak late (its slope a fraction of the leak's for hours), so
// the envelope may borrow the slope of a fast baseline: a third discounted regression
// (τ_f = FastBaseWindow) fed like m, its weights from its own residuals and the same σ_b. When
// its slope b_f exceeds b, the forecast keeps m's level and uses b_f, its standard error se_f
// from its own residual variance times k_b:
//
//	ETA_env = max(0, (level − J − m(now)) / b_f)
//	P_env   = min(Φ(b_f/se_f), Φ((m(now) + b_f·h − (level − J)) / √(Var m(now) + h²·se_f²)))
//
// A job's step would lend a false slope: the fast baseline, which weighs the samples above it
// little, climbs towards the job's level for an hour or two after it starts. So it lends only
// while the ramp test (below) has seen no upward level shift for fastHold·FastBaseWindow =
// 2h15m: a window whose best fit is a split with a shift up of more than J/2 and a residual
// variance per degree of freedom at least 5 times smaller than the single line's (both sides
// at least two blocks). A ramp keeps the lend; a job start stops it (the ramp test off: no
// lending). Only levels above the series (approached from below) are watched this way. A flat
// host whose peaks sit just under the level is not predicted: the slope must be clearly
// positive. The envelope speaks only after PeakMemory/2 of samples (J must have seen some
// excursions); a gap of 5·Window resets it with the rest.
//
// Ramp test. A job's heat-up or a deployment's memory is a level shift that settles within
// minutes; a failing fan or a leak keeps climbing at a nearly constant rate for tens of
// minutes — long before the 1 h line, which still weighs the flat hours before the climb,
// follows it. So the series is also cut into blocks of RampBlock, and the means m_i of the
// newest RampBlocks of them (the window, times u_i) are fitted by ordinary least squares with
// one common slope b, either as a single line or split at a candidate level shift: block k is
// left out (rampSettle = 1: the shift is still settling in it) and the blocks before and after
// it get levels of their own (either side may be empty or a single block, so a shift at the
// window's edges is explained away too). Of the m+1 models the one with the smallest residual
// variance per degree of freedom gives b and S = Σ(u−ū)² over the blocks it used. Then
//
//	t   = b·√S / σ_m               σ_m = √(π/2)·E|Δ²m|/√6, the block means' noise were they
//	                               independent (Δ²m = m_i − 2m_(i−1) + m_(i−2), clipped at 4σ)
//	z   = t / (√(π/2)·E|t|)        E|t| over the past windows (clipped at 4·√(π/2)·E|t|)
//	s_b = √(π/2)·E|t|·σ_m/√S       the slope's standard error
//
// E a discounted mean with time constant rampMemory = 24 h: z measures the slope against this
// series' own slopes, whatever its noise's correlation, its jobs and the split's cost in
// precision. A ramp must persist: z_min, the z of the newest rampPersist+1 = 3 windows that is
// closest to 0 (0 when their signs differ), must point to the level. The ramp forecast is
// then, with y(now) the window's line at now, target = level ∓ Margin·σ as above and h_r =
// min(horizon, RampBlocks·RampBlock) (a line seen over 50 min is not extrapolated further):
//
//	ETA_ramp = max(0, (target − y(now)) / b)
//	P_ramp   = min(Φ(z_min − RampZ + 1.2816), Φ((b·h_r − (target − y(now))) / (s_b·h_r)))
//
// the first factor is 0.9 at z_min = RampZ (RampZ 3 rather than 1.28 pays for looking at every
// window of a week), the second the probability that the line reaches the target within h_r.
// Like the envelope's, it replaces the forecast when P_ramp is the larger, with ETA the
// earlier of the two, in ETAWithin only. The window is refitted when a block closes (every
// RampBlock), so ETAWithin stays O(1). A gap of half the window's span empties the window
// (the scales stay).
//
// Warm-up: as Trend's (MinSamples effective samples spanning MinSpan), then the prior on ρ
// fades over about a Window (P = 0.37 after one); jumps are judged only
// after MinSamples accepted samples; the peak envelope after PeakMemory/2; the ramp test once
// the window is full and rampMinScored = 90 windows were scored (7.5 h at the defaults).
// Memory: O(1), about 1.35 KiB (mostly the ring of ≤ 32 block means). NaN/±Inf values and samples
// older than the newest one are ignored; a sample held back is released by the next one.
//
// Defaults (DefaultRobustTrendConfig): Window 1h, MinSamples 5, MinSpan 10m, Huber 3, Jump 6,
// Margin 1, BaseWindow 3h, BaseHuber 1, PeakQuantile 0.98, PeakMemory 24h, FastBaseWindow 45m,
// RampBlock 5m, RampBlocks 10, RampZ 3 (chosen with `vigil bench forecast` over seeds 1, 7, 101, 202, 303,
// 404, 505, 606 × 12 hosts; BaseWindow 2.5–3.5h, BaseHuber 0.75–1.5, PeakQuantile 0.97–0.99
// and PeakMemory 12–48h score alike; with FastBaseWindow 45m, fastHold 2.5–3.5 and stepRatio
// 4–6 score alike (stepRatio 3 loses a latency creep); RampBlock 4–6m with windows of 40–60 min and RampZ
// 2.5–3.5 trade a few late thermal climbs against a few false alarms).
type RobustTrend struct {
	cfg RobustTrendConfig
	fit Trend
	tau float64 // Window, seconds

	prevT      int64   // the last accepted sample
	prevX      float64 // (its value, on the current level: moved with the steps)
	prevBig    bool    // the last accepted sample was a large move (part of a ramp)
	accepted   int64
	absR, absD absScale // σ and σ_d: discounted E|r|, E|d|
	res        lag1     // ρ̂ of the clipped residuals
	sw         float64  // discounted count of the samples in absR, absD, res
	prior      float64  // weight of ρ's prior: 1 at the first sample, discounted since
	side       int      // consecutive outlying residuals on one side: + above, − below

	pending    bool // a sample is held back
	pendT      int64
	pendX      float64
	pendD      float64
	steps      int64 // steps and spikes seen (diagnostics)
	spikes     int64
	lastAnyObs int64 // the newest time seen, accepted or held back

	env  envelope
	ramp ramp
}

// envelope is the slow baseline and the peak height above it.
type envelope struct {
	base        Trend
	fast        Trend    // the fast baseline (FastBaseWindow), whose slope the envelope may borrow
	absLow      absScale // σ_b: discounted E|r_b| over residuals below the baseline
	res         lag1     // ρ_b of the clipped baseline residuals
	peak        float64  // J
	first, last int64    // the first and newest sample since the last reset
	n           int64
}

// NewRobustTrend returns a forecaster with the given configuration. It panics if cfg.Validate
// fails: validate configurations read from files first.
func NewRobustTrend(cfg RobustTrendConfig) *RobustTrend {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	rt := &RobustTrend{cfg: cfg, fit: *NewTrend(cfg.trend()), tau: cfg.Window.Seconds()}
	if cfg.BaseWindow > 0 {
		rt.env.base = *NewTrend(TrendConfig{Window: cfg.BaseWindow, MinSamples: cfg.MinSamples, MinSpan: cfg.MinSpan})
		if cfg.FastBaseWindow > 0 {
			rt.env.fast = *NewTrend(TrendConfig{Window: cfg.FastBaseWindow, MinSamples: cfg.MinSamples, MinSpan: cfg.MinSpan})
		}
	}
	return rt
}

// Observe absorbs the sample x taken at t (Unix ns).
func (rt *RobustTrend) Observe(t int64, x float64) {
	if !finite(x*x) || rt.accepted > 0 && t < rt.lastAnyObs {
		return
	}
	rt.lastAnyObs = t
	if rt.cfg.BaseWindow > 0 {
		rt.observeEnvelope(t, x)
	}
	if rt.cfg.RampBlock > 0 {
		rt.observeRamp(t, x)
	}
	if rt.pending {
		rt.resolve(t, x)
		return
	}
	rt.process(t, x, false)
}

// resolve judges the held-back sample by the sample (t, x) that follows it.
func (rt *RobustTrend) resolve(t int64, x float64) {
	rt.pending = false
	b := rt.fit.Slope()
	d := rt.pendD
	eStep := math.Abs(x - rt.pendX - b*float64(t-rt.pendT)/1e9)
	eSpike := math.Abs(x - rt.prevX - b*float64(t-rt.prevT)/1e9)
	switch {
	case eStep < math.Abs(d)/2 && eStep <= eSpike:
		rt.steps++
		rt.fit.mx += d
		rt.prevX += d
		rt.process(rt.pendT, rt.pendX, true)
	case eSpike < math.Abs(d)/2:
		rt.spikes++
	default:
		rt.process(rt.pendT, rt.pendX, true)
		rt.prevBig = true
	}
	rt.process(t, x, false)
}

// process judges (jump=false) and joins one sample.
func (rt *RobustTrend) process(t int64, x float64, judged bool) {
	if rt.accepted == 0 || rt.fit.n == 0 {
		if rt.accepted == 0 {
			rt.prior = 1
		}
		rt.fit.Observe(t, x)
		rt.prevT, rt.prevX, rt.accepted = t, x, rt.accepted+1
		return
	}
	dt := float64(t-rt.prevT) / 1e9
	b := rt.fit.Slope()
	d := x - rt.prevX - b*dt
	r := x - rt.fit.Level(t)
	warm := rt.accepted >= int64(rt.fit.cfg.MinSamples)
	big := warm && math.Abs(d) > rt.cfg.Jump*rt.absD.sigma()
	if big && !judged && !rt.prevBig {
		rt.pending, rt.pendT, rt.pendX, rt.pendD = true, t, x, d
		return
	}
	w := 1.0
	sig := rt.absR.sigma()
	if warm && math.Abs(r) > rt.cfg.Huber*sig {
		w = rt.cfg.Huber * sig / math.Abs(r)
		rt.side = nextSide(rt.side, r)
		if rt.side >= sideRun || rt.side <= -sideRun {
			w = 1 // a run of outliers on one side is a new trend, not noise
		}
	} else {
		rt.side = 0
	}
	rt.updateScales(dt, r, d)
	rt.fit.observeW(t, x, w)
	rt.prevT, rt.prevX, rt.prevBig = t, x, big
	rt.accepted++
}

// sideRun consecutive residuals beyond Huber·σ on the same side of the line
// mean the line is wrong (the trend changed, e.g. a flat series starts to
// fill): from the sideRun-th on they join with full weight. Isolated
// outliers, which alternate or stand alone, keep their Huber weight.
const sideRun = 3

func nextSide(side int, r float64) int {
	switch {
	case r > 0 && side >= 0:
		return side + 1
	case r < 0 && side <= 0:
		return side - 1
	case r > 0:
		return 1
	default:
		return -1
	}
}

// updateScales moves E|r|, E|d| and the autocorrelation sums towards this sample's r and d.
func (rt *RobustTrend) updateScales(dt, r, d float64) {
	dec := expNeg(dt / rt.tau)
	rt.sw = rt.sw*dec + 1 // discounted count: plain means while few samples are in
	rt.prior *= dec
	a := 1 / rt.sw
	rc := rt.absR.add(r, a)
	rt.absD.add(d, a)
	rt.res.add(math.Copysign(rc, r), a)
}

// variance returns k·σ² (see the type's documentation).
func (rt *RobustTrend) variance() float64 {
	v, _ := rt.spread()
	return v
}

// Constants of the confidence: ρ is capped at rhoMax in k and at rhoPrior in ν, and shrunk
// towards rhoPrior with the weight of a window of samples seen before the first one.
const (
	rhoMax   = 0.9
	rhoPrior = 0.99
)

// spread returns k·σ² and the degrees of freedom ν of the confidence's t tail (see the
// type's documentation).
func (rt *RobustTrend) spread() (v, nu float64) {
	sig := rt.absR.sigma()
	rho := rt.res.rho()
	p := rt.prior
	rk := (1-p)*math.Min(rhoMax, rho) + p*rhoPrior   // ρ of k
	rn := (1-p)*math.Min(rhoPrior, rho) + p*rhoPrior // ρ of ν
	nu = 1
	if rt.fit.w2 > 0 {
		nu = math.Max(1, rt.fit.s0*rt.fit.s0/rt.fit.w2*(1-rn)/(1+rn)-2)
	}
	return sig * sig * (1 + rk) / (1 - rk), nu
}

// Constants of the peak envelope: J sinks by peakSink·σ_b per PeakMemory while no
// excursion reaches it, and the baseline residuals' lag-1 autocorrelation is capped at
// baseRhoMax (k ≤ 199: excursions lasting hours leave few independent samples).
const (
	peakSink   = 4
	baseRhoMax = 0.99
)

// Constants of the slope the envelope borrows: a window of the ramp test whose best fit is a
// split with a level shift up of more than stepPeak·J, at least stepRatio times smaller in
// residual variance per degree of freedom than the single line's, is a step (a job starting);
// the fast baseline's slope is not lent for fastHold·FastBaseWindow after it (the fast baseline,
// which weighs the samples above it little, is still climbing towards the new level then).
const (
	stepPeak  = 0.5
	stepRatio = 5
	fastHold  = 3
)

// observeEnvelope moves the baseline and the peak height J with the sample (t, x).
func (rt *RobustTrend) observeEnvelope(t int64, x float64) {
	e := &rt.env
	if e.n > 0 && float64(t-e.last)/1e9 > gapReset*rt.tau {
		*e = envelope{base: e.base, fast: e.fast}
		e.base.Reset()
		e.fast.Reset()
	}
	if e.n == 0 {
		e.first = t
	}
	dt := float64(t-e.last) / 1e9
	r := x - e.base.Level(t)
	warm := e.n >= int64(rt.cfg.MinSamples)
	sig := e.absLow.sigma()
	if !warm {
		sig = 0 // full weights until the scale has MinSamples behind it
	}
	e.base.observeW(t, x, rt.baseWeight(r, sig))
	if rt.cfg.FastBaseWindow > 0 {
		e.fast.observeW(t, x, rt.baseWeight(x-e.fast.Level(t), sig))
	}
	e.n++
	e.last = t
	if e.n == 1 {
		return
	}
	a := 1 / float64(e.n-1)
	if aw := 1 - expNeg(dt/e.base.tau); e.n > int64(rt.cfg.MinSamples) {
		a = aw
	}
	if r < 0 {
		e.absLow.add(r, a)
	}
	e.res.add(math.Copysign(e.absLow.clip(r), r), a)
	if sig == 0 {
		return
	}
	step := peakSink * sig * math.Min(dt, 600) / rt.cfg.PeakMemory.Seconds()
	q := rt.cfg.PeakQuantile
	if r > e.peak {
		e.peak = math.Min(r, e.peak+step*q/(1-q))
	} else {
		e.peak -= step
	}
}

// baseWeight is a baseline's weight of a sample r above it, σ_b = sig (0: not yet known, weight
// 1): BaseHuber·σ_b/r above BaseHuber·σ_b, Huber·σ_b/|r| below −Huber·σ_b, else 1.
func (rt *RobustTrend) baseWeight(r, sig float64) float64 {
	if sig > 0 {
		if lim := rt.cfg.BaseHuber * sig; r > lim {
			return lim / r
		} else if lim := rt.cfg.Huber * sig; r < -lim {
			return lim / -r
		}
	}
	return 1
}

// envelopeETA is the forecast of the upper envelope, baseline + J, reaching level (from
// below) within horizon; OK false while the envelope is warming up.
func (rt *RobustTrend) envelopeETA(now int64, level float64, horizon time.Duration) Forecast {
	e := &rt.env
	if rt.cfg.BaseWindow == 0 || !e.base.Ready() || float64(e.last-e.first)/1e9 < rt.cfg.PeakMemory.Seconds()/2 {
		return Forecast{}
	}
	if level <= rt.fit.mx {
		return Forecast{} // the level is below the series: the envelope watches peaks only
	}
	target := level - e.peak
	rho := math.Min(baseRhoMax, e.res.rho())
	s2 := e.base.resVar() * (1 + rho) / (1 - rho)
	b := e.base.Slope()
	se := math.Sqrt(math.Max(0, s2*e.base.q/(e.base.cuu*e.base.cuu)))
	lent := false
	if bf, sef, ok := rt.lendSlope(s2 / e.base.resVar()); ok && bf > b {
		b, se, lent = bf, sef, true
	}
	if !(b > 0) {
		return Forecast{}
	}
	fc := Forecast{OK: true}
	m := e.base.Level(now)
	if gap := target - m; gap > 0 {
		eta := gap / b * 1e9
		if !(eta < math.MaxInt64) {
			return Forecast{}
		}
		fc.ETA = time.Duration(eta)
	}
	if !lent {
		fc.Confidence = math.Min(normCDF(b/se), e.base.crossProbWith(now, target, 1, horizon, s2, math.Inf(1)))
		return fc
	}
	// The slow level, the borrowed slope: Var = Var m(now) + h²·se².
	h := horizon.Seconds()
	v := e.base.age(now) - e.base.mu
	lv := s2 * (e.base.w2/(e.base.s0*e.base.s0) + 2*v*e.base.a/(e.base.s0*e.base.cuu) + v*v*e.base.q/(e.base.cuu*e.base.cuu))
	fc.Confidence = math.Min(normCDF(b/se), normCDF((m+b*h-target)/math.Sqrt(math.Max(0, lv)+h*h*se*se)))
	return fc
}

// lendSlope returns the fast baseline's slope and its standard error, k·s_f² its residual
// variance, and whether the envelope may borrow it: the ramp test is on and has seen no upward
// level shift for fastHold·FastBaseWindow (see RobustTrend).
func (rt *RobustTrend) lendSlope(k float64) (b, se float64, ok bool) {
	f, r := &rt.env.fast, &rt.ramp
	if rt.cfg.FastBaseWindow == 0 || rt.cfg.RampBlock == 0 || !f.Ready() {
		return 0, 0, false
	}
	if r.stepSeen && float64(rt.env.last-r.upStep) <= fastHold*float64(rt.cfg.FastBaseWindow) {
		return 0, 0, false // a job or another step still lifts the fast baseline
	}
	if !(k > 0) || math.IsInf(k, 0) {
		k = 1
	}
	return f.Slope(), math.Sqrt(math.Max(0, k*f.resVar()*f.q/(f.cuu*f.cuu))), true
}

// Ready reports whether the warm-up is over.
func (rt *RobustTrend) Ready() bool { return rt.fit.Ready() }

// Slope returns the fitted trend in units per second.
func (rt *RobustTrend) Slope() float64 { return rt.fit.Slope() }

// Level returns the fitted value at now (Unix ns).
func (rt *RobustTrend) Level(now int64) float64 { return rt.fit.Level(now) }

// ETA returns when the fitted trend reaches level, seen from now (Unix ns).
func (rt *RobustTrend) ETA(now int64, level float64) Forecast {
	if !rt.fit.Ready() || !finite(level) {
		return Forecast{}
	}
	k, nu := rt.spread()
	fc, z, ok := rt.eta(now, level, k)
	if ok {
		fc.Confidence = studentCDF(z, nu)
	}
	return fc
}

// eta is ETA before its Confidence, with k·σ² given: fc's ETA and OK, and the standardised
// slope z whose t distribution function is the Confidence; ok false: no forecast at all (see
// Trend.etaZ). The caller checked Ready.
func (rt *RobustTrend) eta(now int64, level, k float64) (fc Forecast, z float64, ok bool) {
	fc, z, ok = rt.fit.etaZ(now, level, k)
	if m := rt.margin(); fc.OK && fc.ETA > 0 && m > 0 {
		// The noisy series reaches the level about when its fitted line is m short of it.
		dir := math.Copysign(1, level-rt.fit.mx)
		if e, _, _ := rt.fit.etaZ(now, level-dir*m, k); e.OK {
			fc.ETA = e.ETA
		} else {
			fc.ETA = 0
		}
	}
	if fc.OK && fc.ETA > 0 && (rt.prevX-level)*math.Copysign(1, level-rt.fit.mx) >= 0 {
		fc.ETA = 0 // the newest sample is already there, whatever the lagging line says
	}
	return fc, z, ok
}

// margin returns Margin·σ, how far short of a level the fitted line is when the noisy series
// first reaches it.
func (rt *RobustTrend) margin() float64 { return rt.absR.sigma() * rt.cfg.Margin }

// ETAWithin is ETA with the Confidence replaced by the probability that the series reaches
// level within horizon of now: that the fitted line, with k·σ² as residual variance, is
// within Margin·σ of level at now+horizon (Trend.crossProbWith); never more than ETA's.
func (rt *RobustTrend) ETAWithin(now int64, level float64, horizon time.Duration) Forecast {
	if !finite(level) {
		return Forecast{}
	}
	var fc Forecast
	if rt.fit.Ready() {
		k, nu := rt.spread()
		var z float64
		var ok bool
		fc, z, ok = rt.eta(now, level, k)
		if ok {
			t := newTDist(nu) // one t distribution for ETA's Confidence and the crossing's
			fc.Confidence = t.cdf(z)
			if fc.OK {
				dir := rt.fit.dirTo(level)
				p := t.cdf(rt.fit.crossZ(now, level-dir*rt.margin(), dir, horizon, k))
				fc.Confidence = math.Min(fc.Confidence, p)
			}
		}
	}
	if ef := rt.envelopeETA(now, level, horizon); ef.OK && (!fc.OK || ef.Confidence > fc.Confidence) {
		if fc.OK && fc.ETA < ef.ETA {
			ef.ETA = fc.ETA
		}
		fc = ef
	}
	if rf := rt.rampETA(now, level, horizon); rf.OK && (!fc.OK || rf.Confidence > fc.Confidence) {
		if fc.OK && fc.ETA < rf.ETA {
			rf.ETA = fc.ETA
		}
		fc = rf
	}
	return fc
}

// Predict returns the fitted value at now+horizon with an approximate 95% prediction interval.
func (rt *RobustTrend) Predict(now int64, horizon time.Duration) (value, lo, hi float64, ok bool) {
	if !rt.fit.Ready() {
		return 0, 0, 0, false
	}
	k := rt.variance()
	return rt.fit.predictWith(now, horizon, k)
}

// Reset forgets all samples; the configuration is kept.
func (rt *RobustTrend) Reset() { *rt = *NewRobustTrend(rt.cfg) }

func init() {
	RegisterForecaster("robust_trend", func() Forecaster { return NewRobustTrend(DefaultRobustTrendConfig()) })
}

var (
	_ Forecaster        = (*RobustTrend)(nil)
	_ HorizonForecaster = (*RobustTrend)(nil)
)

// Constants of the ramp test: the window's ring holds at most maxRampBlocks block means; the
// rampSettle block(s) after a candidate level shift are left out of the fit (a shift that
// settles with a time constant of a few minutes is still moving in them); a ramp must hold in
// rampPersist+1 consecutive windows; the scales (discounted over rampMemory) are trusted after
// rampMinScored windows.
const (
	maxRampBlocks = 32
	rampSettle    = 1
	rampPersist   = 2
	rampMinScored = 90
	rampMemory    = 24 * time.Hour
)

// ramp is the state of the ramp test (see RobustTrend).
type ramp struct {
	bStart int64   // the open block's first sample
	bN     float64 // samples in the open block (0: none)
	bT, bX float64 // their sums of (t − bStart) seconds and of x

	ring  blockRing            // the window: the newest RampBlocks block means, in ts, xs
	ts    [maxRampBlocks]int64 // block mean times
	xs    [maxRampBlocks]float64
	lastT int64 // time of the newest block mean

	absD2  absScale // discounted E|Δ²m| of successive block means
	absT   absScale // discounted E|t| of the window statistics
	scored int64    // windows scored

	zs   [rampPersist + 1]float64 // the newest windows' z, ring
	zn   int
	zmin float64 // the z of the newest rampPersist+1 windows closest to 0 (0 if signs differ)

	upStep   int64 // the time of the newest upward level shift seen (if stepSeen)
	stepSeen bool

	// the newest window's fit: slope b (per second) with standard error se, and the line's
	// value y0 at t0
	ok    bool
	b, se float64
	t0    int64
	y0    float64
}

// observeRamp adds the sample (t, x) to the open block; a block that is RampBlock old is
// closed first, and closing it refits the window.
func (rt *RobustTrend) observeRamp(t int64, x float64) {
	r := &rt.ramp
	if r.bN > 0 && t-r.bStart >= int64(rt.cfg.RampBlock) {
		if last := r.bStart + int64(r.bT/r.bN*1e9); t-last > rt.rampGap() {
			// A gap: the open block is stale and the window afresh (the scales stay).
			r.ring.clear()
			r.zn, r.ok = 0, false
		} else {
			rt.closeBlock(last, r.bX/r.bN)
		}
		r.bN, r.bT, r.bX = 0, 0, 0
	}
	if r.bN == 0 {
		r.bStart = t
	}
	r.bN++
	r.bT += float64(t-r.bStart) / 1e9
	r.bX += x
}

// rampGap is the silence after which the ramp test's window starts afresh: half the window.
func (rt *RobustTrend) rampGap() int64 {
	return int64(rt.cfg.RampBlocks) * int64(rt.cfg.RampBlock) / 2
}

// closeBlock joins the block mean x at t to the ring and, once the ring is full, refits the
// window and scores it.
func (rt *RobustTrend) closeBlock(t int64, x float64) {
	r := &rt.ramp
	m := rt.cfg.RampBlocks
	if r.ring.n > 0 && t-r.lastT > rt.rampGap() {
		r.ring.clear() // a gap: the window starts afresh (the scales stay)
		r.zn, r.ok = 0, false
	}
	a := 1.0 // weight of this block in the discounted scales: plain means while few are in
	if r.scored > 0 {
		a = 1 / float64(r.scored+1)
		if aw := -math.Expm1(-float64(t-r.lastT) / 1e9 / rampMemory.Seconds()); r.scored >= rampMinScored {
			a = aw
		}
	}
	if r.ring.n >= 2 {
		r.absD2.add(x-2*r.xs[r.ring.back(0, m)]+r.xs[r.ring.back(1, m)], a)
	}
	r.lastT = t
	j := r.ring.push(m)
	r.ts[j], r.xs[j] = t, x
	r.ok = false
	if r.ring.n < m {
		return
	}
	b, xx, mu, my, up, ok := rt.fitWindow(t, x)
	if ok && up > 0 {
		r.upStep, r.stepSeen = up, true
	}
	sblk := r.absD2.sigma() / math.Sqrt(6) // the block means' noise, were they independent
	if !ok || !(sblk > 0) {
		return
	}
	tb := b * math.Sqrt(xx) / sblk // the slope's t statistic for independent block means
	s := r.absT.sigma()
	z := 0.0
	if r.scored > 0 && s > 0 {
		z = tb / s
	}
	r.b, r.se, r.t0, r.y0 = b, s*sblk/math.Sqrt(xx), t, x+my-b*mu
	r.zs[r.zn%len(r.zs)] = z
	r.zn++
	r.zmin = z
	for i := 1; i <= rampPersist; i++ {
		v := 0.0
		if i < r.zn {
			v = r.zs[(r.zn-1-i)%len(r.zs)]
		}
		if v*r.zmin <= 0 {
			r.zmin = 0
			break
		}
		if math.Abs(v) < math.Abs(r.zmin) {
			r.zmin = v
		}
	}
	r.absT.add(tb, a)
	r.scored++
	r.ok = r.scored >= rampMinScored && s > 0
}

// fitWindow fits the ring's block means (the newest, x at t, last): the single line and every
// split into a level before and a level after a left-out settling block, with one common
// slope; the fit with the smallest residual variance per degree of freedom wins. It returns
// the slope b, the Σ(u−ū)² it was estimated from, and the newest segment's centre (mu seconds
// relative to t, my relative to x; 0, 0 when no block follows the split: the line then runs
// through the newest block); up, when the winning split is a step up (see RobustTrend), is
// the time of its left-out block, else 0.
func (rt *RobustTrend) fitWindow(t int64, x float64) (b, xx, mu, my float64, up int64, ok bool) {
	r := &rt.ramp
	m := rt.cfg.RampBlocks
	var p [6][maxRampBlocks + 1]float64 // prefix sums of 1, u, y, u², u·y, y²
	for i := 0; i < m; i++ {
		j := r.ring.back(m-1-i, m)
		u, y := float64(r.ts[j]-t)/1e9, r.xs[j]-x
		p[0][i+1] = p[0][i] + 1
		p[1][i+1] = p[1][i] + u
		p[2][i+1] = p[2][i] + y
		p[3][i+1] = p[3][i] + u*u
		p[4][i+1] = p[4][i] + u*y
		p[5][i+1] = p[5][i] + y*y
	}
	seg := func(lo, hi int) (sxx, sxy, syy, mu, my float64) {
		nn := p[0][hi] - p[0][lo]
		su, sy := p[1][hi]-p[1][lo], p[2][hi]-p[2][lo]
		mu, my = su/nn, sy/nn
		return p[3][hi] - p[3][lo] - su*mu, p[4][hi] - p[4][lo] - su*my, p[5][hi] - p[5][lo] - sy*my, mu, my
	}
	sxx, sxy, syy, mu, my := seg(0, m)
	if !(sxx > 0) {
		return 0, 0, 0, 0, 0, false
	}
	b, xx = sxy/sxx, sxx
	best := (syy - b*sxy) / float64(m-2)
	single := best
	var bLevel, aLevel float64 // the winning split's levels before and after, at u = 0
	split := -1
	for k := 0; k+rampSettle <= m; k++ {
		var cx, cy, cyy, smu, smy, pmu, pmy float64
		pts, par := 0, 1 // points used, parameters (the slope and one level per segment)
		if k > 0 {
			cx, cy, cyy, pmu, pmy = seg(0, k)
			pts, par = k, 2
		}
		if k+rampSettle < m {
			bx, by, byy, bmu, bmy := seg(k+rampSettle, m)
			cx, cy, cyy, smu, smy = cx+bx, cy+by, cyy+byy, bmu, bmy
			pts, par = pts+m-k-rampSettle, par+1
		}
		if !(cx > 0) || pts-par < 3 {
			continue
		}
		bk := cy / cx
		if v := (cyy - bk*cy) / float64(pts-par); v < best {
			best, b, xx, mu, my = v, bk, cx, smu, smy
			split, bLevel, aLevel = -1, pmy-bk*pmu, smy-bk*smu
			if k >= 2 && k+rampSettle <= m-2 {
				split = k
			}
		}
	}
	if split >= 0 && aLevel-bLevel > stepPeak*rt.env.peak && best*stepRatio < single {
		up = r.ts[r.ring.back(m-1-split, m)]
	}
	return b, xx, mu, my, up, true
}

// rampETA is the ramp test's forecast of the series reaching level within horizon (capped at
// the window's span); OK false while it warms up or when the window's slope points away.
func (rt *RobustTrend) rampETA(now int64, level float64, horizon time.Duration) Forecast {
	r := &rt.ramp
	if rt.cfg.RampBlock == 0 || !r.ok || !(r.se > 0) || now-r.lastT > 2*int64(rt.cfg.RampBlock) {
		return Forecast{} // warming up, no slope, or a window gone stale (the series went quiet)
	}
	y := r.y0 + r.b*float64(now-r.t0)/1e9
	dir := math.Copysign(1, level-y)
	z := dir * r.zmin
	if !(z > 0) {
		return Forecast{}
	}
	target := level - dir*rt.margin()
	h := math.Min(horizon.Seconds(), float64(rt.cfg.RampBlocks)*rt.cfg.RampBlock.Seconds())
	gap := dir * (target - y)
	fc := Forecast{OK: true,
		Confidence: math.Min(normCDF(z-rt.cfg.RampZ+rampZ90), normCDF((dir*r.b*h-gap)/(r.se*h)))}
	if gap > 0 {
		eta := gap / (dir * r.b) * 1e9
		if !(eta < math.MaxInt64) {
			return Forecast{}
		}
		fc.ETA = time.Duration(eta)
	}
	return fc
}

// rampZ90 is Φ⁻¹(0.9): at z = RampZ the ramp alone is 90 % sure.
const rampZ90 = 1.2816
