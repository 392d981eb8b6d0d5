package detectors

import "math"

// ensembleN is the number of member detectors of the ensemble.
const ensembleN = 3

// EnsembleConfig parameterises the "vigil" ensemble. Start from DefaultEnsembleConfig.
type EnsembleConfig struct {
	// Level is the quantile π of each member's surprise above which the short-memory calibrator
	// models its tail as exponential (peaks over threshold), in (0.5,1). Default 0.98.
	Level float64
	// Rate is the step of the streaming π-quantile, in units of the surprise's mean absolute
	// deviation, in (0,1); the mean excess over the quantile moves by 5·Rate of each new excess.
	// Default 0.01.
	Rate float64
	// Memory is the weight of a new surprise in its mean and mean absolute deviation, in (0,1).
	// Default 0.002 (~500 samples).
	Memory float64
	// History is the forgetting factor per sample of the long-memory histogram calibrator, in
	// (0,0.1]. Default 1e-4 (the last ~10,000 samples).
	History float64
	// Tail is the fraction of the history, per sign of the statistic, whose surprises the
	// long-memory calibrator models as an exponential tail, in (0,0.5). Default 0.005.
	Tail float64
	// MinExcess floors the long-memory tail's mean excess, in nats of surprise (> 0). Default
	// 0.2.
	MinExcess float64
	// Season is the weight of a sample in the dispersion of its member's statistic at that hour
	// of the day, in [0,1); 0 disables the seasonal scaling. Default 0.1 (the last ~10 samples
	// that fell in the same hour).
	Season float64
	// Warmup is the number of samples before the ensemble reports (≥ 31). Default 150.
	Warmup int
	// Corroboration is the penalty, in nats, on a surprise seen by only one of the two views of
	// the series: the values' (Holt–Winters and MAD) when the context member is not in its tail,
	// and the context member's when neither value member is, in [0,∞); 0 disables it.
	// Default 1.
	Corroboration float64
	// Refractory is the number of samples over which a reported peak fades (≥ 1): a surprise is
	// reported only if it exceeds the last reported one, lowered linearly to 0 over Refractory
	// samples. Default 300.
	Refractory int
	// HoltWinters, MAD and Context configure the members (Context: the sequence-novelty
	// member, see Context).
	HoltWinters HoltWintersConfig
	MAD         MADConfig
	Context     ContextConfig
}

// DefaultEnsembleConfig returns the defaults listed on EnsembleConfig's fields; the Holt–Winters
// member adapts faster than its standalone default (Alpha 0.5, GammaDay 0.5), the MAD member
// runs with DefaultMADConfig, the context member with
// DefaultContextConfig but Orders 2 (runs of 2 and 3 bins: as good on NAB as 3 or 4, half the
// work and table load of 4).
func DefaultEnsembleConfig() EnsembleConfig {
	hw := DefaultHoltWintersConfig()
	hw.Alpha, hw.GammaDay = 0.5, 0.5
	ctx := DefaultContextConfig()
	ctx.Orders = 2
	return EnsembleConfig{Level: 0.98, Rate: 0.01, Memory: 0.002, History: 1e-4, Tail: 0.005,
		MinExcess: 0.2, Season: 0.1, Corroboration: 1, Warmup: 150, Refractory: 300, HoltWinters: hw,
		MAD: DefaultMADConfig(), Context: ctx}
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
	case !(c.History > 0 && c.History <= 0.1):
		return fieldError("ensemble", "history", c.History, "must be in (0,0.1]")
	case !(c.Tail > 0 && c.Tail < 0.5):
		return fieldError("ensemble", "tail", c.Tail, "must be in (0,0.5)")
	case !(c.MinExcess > 0 && c.MinExcess < math.Inf(1)):
		return fieldError("ensemble", "min_excess", c.MinExcess, "must be finite and > 0")
	case !(c.Season >= 0 && c.Season < 1):
		return fieldError("ensemble", "season", c.Season, "must be in [0,1)")
	case !(c.Corroboration >= 0 && c.Corroboration < math.Inf(1)):
		return fieldError("ensemble", "corroboration", c.Corroboration, "must be finite and ≥ 0")
	case c.Warmup < potInit+1:
		return fieldError("ensemble", "warmup", c.Warmup, "must be at least 31")
	case c.Refractory < 1:
		return fieldError("ensemble", "refractory", c.Refractory, "must be at least 1")
	}
	if err := c.HoltWinters.Validate(); err != nil {
		return err
	}
	if err := c.MAD.Validate(); err != nil {
		return err
	}
	return c.Context.Validate()
}

// potInit is the number of surprises a tail calibrator absorbs before it judges.
const potInit = 30

const (
	seasonBins = 24 // hours of the day (UTC) of the seasonal dispersion
	seasonClip = 6  // |z| enters the dispersions clipped at this
)

// seasonScale divides a member's statistic by how much more it disperses at this hour of the
// day than overall, so that routinely turbulent hours (daily bursts of tweets or traffic, the
// edges of a daily square wave) stop surprising while quiet hours are judged as before.
type seasonScale struct {
	hour [seasonBins]float64 // EW mean of min(|z|, seasonClip) per hour, weight Season
	seen uint32              // hours visited
	all  float64             // EW mean of min(|z|, seasonClip), weight max(Memory, 1/n)
	n    int64
}

// scale returns z/max(1, D_h/D) for a sample in hour h (D_h and D before z is absorbed) and
// absorbs z.
func (s *seasonScale) scale(h int, z float64, cfg *EnsembleConfig) float64 {
	if cfg.Season == 0 {
		return z
	}
	if s.seen&(1<<h) == 0 {
		s.seen |= 1 << h
		s.hour[h] = s.all
	}
	a := min(math.Abs(z), seasonClip)
	if s.hour[h] > s.all && s.all > 0 {
		z *= s.all / s.hour[h]
	}
	s.n++
	w := cfg.Memory
	if float64(s.n)*w < 1 {
		w = 1 / float64(s.n)
	}
	s.all += w * (a - s.all)
	s.hour[h] += cfg.Season * (a - s.hour[h])
	return z
}

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
	a := cfg.Memory
	if float64(c.n)*a < 1 { // the first 1/Memory surprises: the plain running mean
		a = max(a, 1/float64(c.n))
	}
	d := u - c.mean
	c.mean += a * d
	c.dev += a * (math.Abs(d) - c.dev)
	if c.n <= potInit { // start from the maximum: the quantile then settles from above
		c.q = max(c.q, u)
		c.excess = max(c.excess, c.dev)
		return 0
	}
	sc := max(c.dev, 1e-3)
	if u <= c.q || u < 1e-6 { // below the quantile, or a rounding error on a flat line
		c.q = max(0, c.q-cfg.Rate*sc*(1-cfg.Level))
		return 0
	}
	lam := -math.Log1p(-cfg.Level) + (u-c.q)/max(c.excess, 0.1*sc)
	c.excess += 5 * cfg.Rate * ((u - c.q) - c.excess)
	c.q += cfg.Rate * sc * cfg.Level
	return lam
}

const (
	histBins  = 64    // bins of the long-memory histogram, per sign
	histWidth = 0.125 // bin width in nats of surprise: the bins cover u < 8 (|z| < 2980)
	histRefit = 32    // the tail model is refitted every histRefit samples
)

// histCalib is the long-memory calibrator: a slowly forgetting histogram of one member's
// surprises, one per sign of its statistic, with an exponential tail fitted to the top of each.
type histCalib struct {
	w, s   [2][histBins]float64 // weight and weighted sum of u per sign and bin
	inc    float64              // weight of the next sample (grows by 1/(1−History))
	grow   float64              // 1/(1−History)
	tot    float64              // total weight
	n      int64
	q, lp  [2]float64 // tail start and −ln P(tail) per sign
	excess [2]float64 // mean excess over q per sign
}

// logTailProb judges the surprise u ≥ 0 of a statistic of sign sd (0: ≥ 0, 1: < 0) against the
// history, λ = lp + (u − q)/e for u > q, else 0, and then absorbs it.
func (c *histCalib) logTailProb(u float64, sd int, cfg *EnsembleConfig) float64 {
	var lam float64
	if c.n >= potInit && u > c.q[sd] && u >= 1e-6 {
		lam = c.lp[sd] + (u-c.q[sd])/c.excess[sd]
	}
	if c.inc == 0 {
		c.inc, c.grow = 1, 1/(1-cfg.History)
	}
	b := min(int(u*(1/histWidth)), histBins-1)
	c.w[sd][b] += c.inc
	c.s[sd][b] += c.inc * u
	c.tot += c.inc
	c.inc *= c.grow
	if c.inc > 1e100 { // rescale; the probabilities are ratios and do not change
		for j := range c.w {
			for i := range c.w[j] {
				c.w[j][i] *= 1e-100
				c.s[j][i] *= 1e-100
			}
		}
		c.tot *= 1e-100
		c.inc *= 1e-100
	}
	c.n++
	if c.n%histRefit == 0 || c.n == potInit {
		c.refit(cfg)
	}
	return lam
}

// refit finds, per sign, the highest bin edge q with at least Tail·tot of weight at or above it,
// the tail's probability and its mean excess. A sign with less weight than that in all (a
// statistic that has hardly ever been negative, say) is judged by the two signs pooled.
func (c *histCalib) refit(cfg *EnsembleConfig) {
	lim := cfg.Tail * c.tot
	for sd := range c.w {
		if !c.fit(sd, lim, cfg) {
			c.fit(-1-sd, lim, cfg)
		}
	}
}

// fit fits the tail of sign sd (or, for sd < 0, of both signs pooled, stored at −1−sd) and
// reports whether the tail weight reached lim.
func (c *histCalib) fit(sd int, lim float64, cfg *EnsembleConfig) bool {
	m, su := 0.0, 0.0
	b := histBins - 1
	for ; b >= 0; b-- {
		if sd >= 0 {
			m += c.w[sd][b]
			su += c.s[sd][b]
		} else {
			m += c.w[0][b] + c.w[1][b]
			su += c.s[0][b] + c.s[1][b]
		}
		if m >= lim {
			break
		}
	}
	if m < lim || m <= 0 {
		return false
	}
	k := max(sd, -1-sd)
	c.q[k] = float64(b) * histWidth
	c.lp[k] = -math.Log(m / c.tot)
	c.excess[k] = max(su/m-c.q[k], cfg.MinExcess)
	return true
}

// Ensemble is Vigil's default detector, registered as "vigil": it runs three members side by
// side, Holt–Winters (forecast error against level, trend, daily and weekly seasons), the
// robust median/MAD z-score and the sequence-novelty detector Context (the smoothed share r of
// runs of quantised values never seen before: contextual anomalies whose every value is in
// range), turns each member's raw statistic into a calibrated tail probability and reports the
// onset of an anomaly once; create it with NewEnsemble.
//
// Seasonal scaling: before it is judged, the raw statistic z of Holt–Winters and of MAD is
// divided by how much more it disperses at this hour of the day (UTC, 24 buckets) than overall:
//
//	z ← z / max(1, D_h/D),   D_h ← D_h + Season·(min(|z|, 6) − D_h),   D ← D + w·(min(|z|, 6) − D)
//
// with w = max(Memory, 1/n), D_h and D taken before z is absorbed and D_h starting from D at
// the hour's first visit. Routinely turbulent hours (daily bursts of tweets or traffic, the
// edges of a daily square wave) thus stop surprising; quiet hours are judged unchanged.
//
// Surprise: u_i = ln(1 + |z_i|) for the (scaled) z-scores z_i of Holt–Winters and MAD, with the
// sign of z_i; u_ctx = −ln(1 − r) for the context member (r ∈ [0,1] is a share, not a z-score,
// and has no sign: all its surprises count as sign ≥ 0), read from a table in steps of 1/1024
// of r and capped at −ln 10⁻³ ≈ 6.9. −ln(1 − r) is the information, in nats, of "every recent
// run was familiar" failing to the extent r; it grows without bound as r → 1 like ln(1 + |z|)
// as |z| grows, and keeps the top of r's range spread out for the exponential tail models
// below. The context member is judged from its own warm-up's end (Context.Warmup samples) on.
//
// Calibration: each member's surprise u_i is judged
// against that member's own history on this series twice, over a short and a long memory, and
// the two verdicts (in nats, λ = −ln P) are averaged: λ_i = (λ_i^short + λ_i^long)/2. The short
// one follows the current regime, the long one asks how rare the surprise is in the series'
// last ~1/History samples, so that a series with routine big spikes stops alarming on them
// while a quiet series still alarms on its first real break.
//
// Short memory, peaks over threshold (as in extreme value theory): q_i is a streaming
// π-quantile of u_i (frugal stochastic approximation: q ← q + Rate·d·π when u > q,
// q ← max(0, q − Rate·d·(1−π)) otherwise, d the mean absolute deviation of u, EW weight
// Memory) and the excesses over it are taken as exponential with mean e_i (EW mean of u − q
// over the exceedances, step 5·Rate, floored at 0.1·d), so
//
//	P(U_i ≥ u) = (1 − π)·exp(−(u − q_i)/e_i)   for u > q_i,   λ_i^short = −ln P
//
// and λ_i^short = 0 for u ≤ q_i or u < 1e-6 (rounding noise on a flat line).
//
// Long memory: a histogram of u_i (64 bins of 0.125 nats per sign of z_i, the last bin open),
// each sample weighted (1 − History)^age, so the sign of a deviation counts (a series that
// only ever spikes up is surprised by its first dip). Every 32 samples, per sign s, Q_s is the
// highest bin edge with at least Tail of the total weight W at or above it on that side, W_s
// that weight and E_s the mean excess u − Q_s of those samples (floored at MinExcess), so
//
//	P(U_i ≥ u, sign s) = (W_s/W)·exp(−(u − Q_s)/E_s)   for u > Q_s,   λ_i^long = −ln P
//
// and 0 below. A sign with less than Tail·W in all is fitted on both signs pooled. The
// surprise is judged before it is absorbed.
//
// Combination: the members look at the series in two ways, its values (Holt–Winters, MAD:
// λ_v = max(λ_HW, λ_MAD)) and its sequence of shapes (context: λ_c), and a surprise that only
// one view sees is weaker evidence than one both see (a z-score outlier whose run of bins has
// been seen before, a novel run of routine values), so it pays Corroboration = D nats:
//
//	λ = max(λ_v, λ_c)        if λ_v > 0 and λ_c > 0
//	λ = max(0, λ_v − D)      if λ_c = 0
//	λ = max(0, λ_c − D)      if λ_v = 0
//
// (λ_i = 0 means member i is below both of its tail thresholds). Before the context member
// has warmed up, λ = λ_v. A member that is noisy on a series (heavy tail, large e_i, E_i)
// needs a much larger surprise to produce the same λ as one that is normally quiet.
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
// Parameters and defaults (DefaultEnsembleConfig): Level 0.98, Rate 0.01, Memory 0.002,
// History 1e-4, Tail 0.005, MinExcess 0.2, Season 0.1, Corroboration 1, Warmup 150,
// Refractory 300, Holt–Winters with Alpha 0.5 and GammaDay 0.5, default MAD (its resolution
// floor keeps its z finite and meaningful on count data), default Context with Orders 2.
// Memory: about 32 KiB, constant: the context member's 16 KiB table of counters and 4 KiB
// warm-up buffer, the Holt–Winters season arrays (4 KiB), the three members' histograms
// (6 KiB) and the hourly dispersions.
type Ensemble struct {
	cfg  EnsembleConfig
	hw   HoltWinters
	mad  MAD
	ctx  Context
	cal  [ensembleN]tailCalib
	hist [ensembleN]histCalib
	seas [2]seasonScale // Holt–Winters and MAD
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
	zh, _ := e.hw.step(t, x)
	zm, _ := e.mad.step(x)
	h := bucket(t, hwDay, seasonBins)
	lam := max(e.judge(0, e.seas[0].scale(h, zh, &e.cfg)), e.judge(1, e.seas[1].scale(h, zm, &e.cfg)))
	if r, ok := e.ctx.novelty(x); ok {
		lam = corroborate(lam, e.judgeU(2, ctxSurprise[int(r*ctxSurpriseSteps)], 0), e.cfg.Corroboration)
	}
	lam = min(lam, maxRaw)
	e.n++
	if e.n <= int64(e.cfg.Warmup) {
		return Score{}
	}
	s := Score{Raw: lam}
	if lam > e.peak*max(0, 1-float64(e.age)/float64(e.cfg.Refractory)) {
		e.peak, e.age = lam, 0
		s.Likelihood = likelihood(lam, 0.9999)
	} else {
		e.age++
	}
	return s
}

// corroborate combines the values' surprise lv = max(λ_HW, λ_MAD) and the context member's lc:
// the larger of the two if both are in their tails (> 0), else the one that is, less d.
func corroborate(lv, lc, d float64) float64 {
	switch {
	case lc == 0:
		return max(0, lv-d)
	case lv == 0:
		return max(0, lc-d)
	}
	return max(lv, lc)
}

// judge returns member i's surprise λ_i for its raw statistic z (short and long memory
// averaged) and lets both calibrators absorb it.
func (e *Ensemble) judge(i int, z float64) float64 {
	sd := 0
	if z < 0 {
		sd = 1
	}
	return e.judgeU(i, log1pFast(math.Abs(z)), sd)
}

// judgeU returns member i's surprise λ_i for the surprise u ≥ 0 of a statistic of sign sd.
func (e *Ensemble) judgeU(i int, u float64, sd int) float64 {
	return 0.5 * (e.cal[i].logTailProb(u, &e.cfg) + e.hist[i].logTailProb(u, sd, &e.cfg))
}

// ctxSurpriseSteps is the resolution of the context member's surprise table.
const ctxSurpriseSteps = 1024

// ctxSurprise[i] = −ln(1 − i/ctxSurpriseSteps), the last entry −ln(1e-3): the context member's
// surprise u for a novelty share r in [i, i+1)/ctxSurpriseSteps.
var ctxSurprise = func() (u [ctxSurpriseSteps + 1]float64) {
	for i := range u {
		u[i] = -math.Log(max(1-float64(i)/ctxSurpriseSteps, 1e-3))
	}
	return u
}()

// log1pFast returns ln(1 + a) for finite a ≥ 0 with an absolute error below 1e-9 (the rounding
// of 1 + a aside), a few times faster than math.Log1p: 1 + a = m·2^k with m in [√½, √2),
// ln m = 2·atanh(s), s = (m − 1)/(m + 1), |s| ≤ 0.172, by its series up to s⁹.
func log1pFast(a float64) float64 {
	y := 1 + a
	b := math.Float64bits(y)
	k := float64(int64(b>>52) - 1023)
	m := math.Float64frombits(b&(1<<52-1) | 1023<<52) // in [1, 2)
	if m > math.Sqrt2 {
		m *= 0.5
		k++
	}
	s := (m - 1) / (m + 1)
	s2 := s * s
	return k*math.Ln2 + 2*s*(1+s2*(1.0/3+s2*(1.0/5+s2*(1.0/7+s2*(1.0/9)))))
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
	e.ctx = *NewContext(e.cfg.Context)
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
