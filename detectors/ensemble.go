package detectors

import "math"

// ensembleN is the number of member detectors of the ensemble.
const ensembleN = 2

// EnsembleConfig parameterises the "vigil" ensemble. Start from DefaultEnsembleConfig.
type EnsembleConfig struct {
	// Level is the quantile π of each member's surprise above which its tail is modelled as
	// exponential (peaks over threshold), in (0.5,1). Default 0.98.
	Level float64
	// Rate is the step of the streaming π-quantile, in units of the surprise's mean absolute
	// deviation, in (0,1); the mean excess over the quantile moves by 5·Rate of each new excess.
	// Default 0.01.
	Rate float64
	// Memory is the weight of a new surprise in its mean and mean absolute deviation, in (0,1).
	// Default 0.002 (~500 samples).
	Memory float64
	// Warmup is the number of samples before the ensemble reports (≥ 31). Default 150.
	Warmup int
	// Refractory is the number of samples over which a reported peak fades (≥ 1): a surprise is
	// reported only if it exceeds the last reported one, lowered linearly to 0 over Refractory
	// samples. Default 300.
	Refractory int
	// HoltWinters and MAD configure the members.
	HoltWinters HoltWintersConfig
	MAD         MADConfig
}

// DefaultEnsembleConfig returns the defaults listed on EnsembleConfig's fields; the Holt–Winters
// member adapts faster than its standalone default (Alpha 0.5, GammaDay 0.5), the MAD member
// runs with DefaultMADConfig.
func DefaultEnsembleConfig() EnsembleConfig {
	hw := DefaultHoltWintersConfig()
	hw.Alpha, hw.GammaDay = 0.5, 0.5
	return EnsembleConfig{Level: 0.98, Rate: 0.01, Memory: 0.002, Warmup: 150, Refractory: 300,
		HoltWinters: hw, MAD: DefaultMADConfig()}
}

// Validate reports the first invalid field of c.
func (c EnsembleConfig) Validate() error {
	switch {
	case !(c.Level > 0.5 && c.Level < 1):
		return fieldError("ensemble", "level", c.Level, "must be in (0.5,1)")
	case !(c.Rate > 0 && c.Rate < 1):
		return fieldError("ensemble", "rate", c.Rate, "must be in (0,1)")
	case !(c.Memory > 0 && c.Memory < 1):
		return fieldError("ensemble", "memory", c.Memory, "must be in (0,1)")
	case c.Warmup < potInit+1:
		return fieldError("ensemble", "warmup", c.Warmup, "must be at least 31")
	case c.Refractory < 1:
		return fieldError("ensemble", "refractory", c.Refractory, "must be at least 1")
	}
	if err := c.HoltWinters.Validate(); err != nil {
		return err
	}
	return c.MAD.Validate()
}

// potInit is the number of surprises a tail calibrator absorbs before its quantile moves.
const potInit = 30

// tailCalib turns one member's surprises into upper-tail probabilities (peaks over threshold).
type tailCalib struct {
	mean, dev float64 // EW mean and mean absolute deviation of the surprise
	q         float64 // streaming Level-quantile of the surprise
	excess    float64 // EW mean of the excesses u − q
	n         int64
}

// logTailProb absorbs the surprise u ≥ 0 and returns λ = −ln P(U ≥ u) under the exponential
// tail model: λ = −ln(1−π) + (u − q)/e for u > q, else 0.
func (c *tailCalib) logTailProb(u float64, cfg *EnsembleConfig) float64 {
	c.n++
	a := math.Max(cfg.Memory, 1/float64(c.n))
	d := u - c.mean
	c.mean += a * d
	c.dev += a * (math.Abs(d) - c.dev)
	if c.n <= potInit { // start from the maximum: the quantile then settles from above
		c.q = math.Max(c.q, u)
		c.excess = math.Max(c.excess, c.dev)
		return 0
	}
	sc := math.Max(c.dev, 1e-3)
	if u <= c.q || u < 1e-6 { // below the quantile, or a rounding error on a flat line
		c.q = math.Max(0, c.q-cfg.Rate*sc*(1-cfg.Level))
		return 0
	}
	lam := -math.Log1p(-cfg.Level) + (u-c.q)/math.Max(c.excess, 0.1*sc)
	c.excess += 5 * cfg.Rate * ((u - c.q) - c.excess)
	c.q += cfg.Rate * sc * cfg.Level
	return lam
}

// Ensemble is Vigil's default detector, registered as "vigil": it runs Holt–Winters (forecast
// error against level, trend, daily and weekly seasons) and the robust median/MAD z-score side
// by side, turns each member's raw statistic into a calibrated tail probability and reports
// the onset of an anomaly once; create it with NewEnsemble.
//
// Calibration: each member's surprise u_i = ln(1 + |Raw_i|) is judged against that member's own
// history on this series by peaks over threshold (as in extreme value theory): q_i is a
// streaming π-quantile of u_i (frugal stochastic approximation: q ← q + Rate·d·π when u > q,
// q ← max(0, q − Rate·d·(1−π)) otherwise, d the mean absolute deviation of u, EW weight
// Memory) and the excesses over it are taken as exponential with mean e_i (EW mean of u − q
// over the exceedances, step 5·Rate, floored at 0.1·d), so
//
//	P(U_i ≥ u) = (1 − π)·exp(−(u − q_i)/e_i)   for u > q_i,   λ_i = −ln P
//
// and λ_i = 0 for u ≤ q_i or u < 1e-6 (rounding noise on a flat line); λ = max_i λ_i.
//
// A member that is noisy on a series (heavy tail, large e_i) needs a much larger surprise to
// produce the same λ as one that is normally quiet; a series of repeated equal peaks raises
// q_i and e_i until they stop being surprising.
//
// Reporting (non-maximum suppression): a surprise is reported only if it exceeds the last
// reported one, P, lowered linearly to zero over Refractory samples: λ > P·max(0, 1 − j/
// Refractory), j samples after P was reported. Otherwise Likelihood is 0. The ensemble thus
// marks the onset of an anomaly, and again only if something stronger follows, instead of
// firing on every sample while the members re-learn the new regime.
//
// Likelihood: 1 − e^(−λ'), with λ' = λ up to λ_A = −ln(1 − 0.9999) and λ' = λ_A + ln(1 + λ − λ_A)
// beyond, so it never rounds to 1 and stronger anomalies always rank above weaker ones.
// Raw is λ before suppression (clamped to 1e9).
//
// Warm-up: Warmup samples (default 150) return Score{}; the members and calibrators learn.
// Time: t is passed to the members (Holt–Winters uses it for its seasons). NaN/±Inf return
// Score{} and change nothing.
// Parameters and defaults (DefaultEnsembleConfig): Level 0.98, Rate 0.01, Memory 0.002, Warmup
// 150, Refractory 300, Holt–Winters with Alpha 0.5 and GammaDay 0.5, default MAD. Memory: about
// 4 KiB, constant (mostly the Holt–Winters season arrays).
type Ensemble struct {
	cfg  EnsembleConfig
	hw   HoltWinters
	mad  MAD
	cal  [ensembleN]tailCalib
	n    int64
	peak float64 // last reported λ
	age  int64   // samples since it was reported
}

// NewEnsemble returns an ensemble with the given configuration. It panics if cfg.Validate
// fails.
func NewEnsemble(cfg EnsembleConfig) *Ensemble {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	e := &Ensemble{cfg: cfg}
	e.Reset()
	return e
}

// Observe feeds x to every member and returns the combined likelihood.
func (e *Ensemble) Observe(t int64, x float64) Score {
	if !finite(x) {
		return Score{}
	}
	lh := e.cal[0].logTailProb(math.Log1p(math.Abs(e.hw.Observe(t, x).Raw)), &e.cfg)
	lm := e.cal[1].logTailProb(math.Log1p(math.Abs(e.mad.Observe(t, x).Raw)), &e.cfg)
	lam := math.Min(math.Max(lh, lm), maxRaw)
	e.n++
	if e.n <= int64(e.cfg.Warmup) {
		return Score{}
	}
	s := Score{Raw: lam}
	if lam > e.peak*math.Max(0, 1-float64(e.age)/float64(e.cfg.Refractory)) {
		e.peak, e.age = lam, 0
		s.Likelihood = likelihood(lam, 0.9999)
	} else {
		e.age++
	}
	return s
}

// likelihood maps a surprise λ (nats) to 1 − e^(−λ'), compressing λ beyond the alarm level.
func likelihood(lam, alarm float64) float64 {
	if lam <= 0 {
		return 0
	}
	la := -math.Log(1 - alarm)
	if lam > la {
		lam = la + math.Log1p(lam-la)
	}
	return -math.Expm1(-lam)
}

// Reset forgets all observations; the configuration is kept.
func (e *Ensemble) Reset() {
	*e = Ensemble{cfg: e.cfg}
	e.hw = *NewHoltWinters(e.cfg.HoltWinters)
	e.mad = *NewMAD(e.cfg.MAD)
}

func init() {
	RegisterDetector("vigil", func() Detector { return NewEnsemble(DefaultEnsembleConfig()) })
}

var _ Detector = (*Ensemble)(nil)

// zLikelihood is the two-sided normal likelihood erf(|z|/√2) = 1 − 2·Q(|z|) of a z-score, with
// the tail beyond 1e-4 compressed as in the ensemble (see likelihood) so that it never rounds to
// 1 and larger |z| always rank higher.
func zLikelihood(z float64) float64 {
	if a := math.Abs(z); a < 3.8 { // below the knee: plain erf, no logarithms
		return math.Erf(a / math.Sqrt2)
	}
	return likelihood(logTail(math.Abs(z))-math.Ln2, 0.9999)
}

// logTail returns −ln Q(z), Q the standard normal upper tail, accurate for all finite z.
func logTail(z float64) float64 {
	if z < 30 {
		return -math.Log(0.5 * math.Erfc(z/math.Sqrt2))
	}
	return z*z/2 + math.Log(z*math.Sqrt(2*math.Pi)) // Mills ratio, relative error < 1e-3
}
