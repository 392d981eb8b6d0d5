package detectors

import "math"

// ensembleN is the number of member detectors of the ensemble (Holt–Winters, MAD, context,
// seasonal block).
const ensembleN = 4

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
	// Tolerance is the number of samples by which the context member's surprise may precede a
	// value surprise and still corroborate it (≥ 0): a novel sequence often shows a few samples
	// before the value that breaks out. Default 5.
	Tolerance int
	// Refractory is the number of samples over which a reported peak fades (≥ 1): a surprise is
	// reported only if it exceeds the last reported one, lowered linearly to 0 over Refractory
	// samples. Default 300.
	Refractory int
	// Repeat and RepeatGain: within Repeat samples after a report, a new report needs a surprise
	// RepeatGain nats above the last reported one (≥ 0 each; 0 and 0: only the Refractory bar).
	// An anomaly that grows over a few samples is reported again only when it becomes markedly
	// less likely (by e^RepeatGain), not at every small step. Defaults 30 and 0.5.
	Repeat     int
	RepeatGain float64
	// Confirm is the confirmation delay d, in samples (≥ 0; 0 reports at the onset): a report
	// whose surprise is below the alarm level λ_A = −ln 10⁻⁴ is emitted d samples after its onset,
	// with the mean surprise of those d samples, weighted ConfirmWeight, added to it (see
	// Ensemble). Like an alert rule's "for:", it trades d samples of latency for telling a
	// lasting anomaly from a lone blip. Default 5.
	Confirm int
	// ConfirmWeight is the weight w of the confirmation samples' mean surprise, in [0,∞).
	// Default 0.5.
	ConfirmWeight float64
	// Multiplicity is the horizon H, in samples, over which the ensemble counts its own reports
	// (≥ 0; 0 disables): each emitted report's surprise is lowered by ln k, k ≥ 1 the reports
	// of the last ~H samples (see Ensemble), so a series that keeps reporting is judged as having
	// had k chances to produce its latest one. Default 3000.
	Multiplicity int
	// HoltWinters, MAD and Context configure the members (Context: the sequence-novelty
	// member, see Context).
	HoltWinters HoltWintersConfig
	MAD         MADConfig
	Context     ContextConfig
	// Block configures the seasonal block member (see SeasonBlock); a zero Block.Block
	// disables it.
	Block SeasonBlockConfig
}

// DefaultEnsembleConfig returns the defaults listed on EnsembleConfig's fields; the Holt–Winters
// member adapts faster than its standalone default (Alpha 0.5, GammaDay 0.5), the MAD member
// runs with DefaultMADConfig, the seasonal block member with DefaultSeasonBlockConfig, the
// context member with
// DefaultContextConfig but Orders 2 (runs of 2 and 3 bins: as good on NAB as 3 or 4, half the
// work and table load of 4).
func DefaultEnsembleConfig() EnsembleConfig {
	hw := DefaultHoltWintersConfig()
	hw.Alpha, hw.GammaDay = 0.5, 0.5
	ctx := DefaultContextConfig()
	ctx.Orders = 2
	return EnsembleConfig{Level: 0.98, Rate: 0.01, Memory: 0.002, History: 1e-4, Tail: 0.005,
		MinExcess: 0.2, Season: 0.1, Corroboration: 1, Tolerance: 5, Warmup: 150, Refractory: 300,
		Repeat: 30, RepeatGain: 0.5, Confirm: 5, ConfirmWeight: 0.5, Multiplicity: 3000,
		HoltWinters: hw, MAD: DefaultMADConfig(), Context: ctx, Block: DefaultSeasonBlockConfig()}
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
	case c.Tolerance < 0:
		return fieldError("ensemble", "tolerance", c.Tolerance, "must be ≥ 0")
	case c.Warmup < potInit+1:
		return fieldError("ensemble", "warmup", c.Warmup, "must be at least 31")
	case c.Refractory < 1:
		return fieldError("ensemble", "refractory", c.Refractory, "must be at least 1")
	case c.Repeat < 0:
		return fieldError("ensemble", "repeat", c.Repeat, "must be ≥ 0")
	case !(c.RepeatGain >= 0 && c.RepeatGain < math.Inf(1)):
		return fieldError("ensemble", "repeat_gain", c.RepeatGain, "must be finite and ≥ 0")
	case c.Confirm < 0:
		return fieldError("ensemble", "confirm", c.Confirm, "must be ≥ 0")
	case !(c.ConfirmWeight >= 0 && c.ConfirmWeight < math.Inf(1)):
		return fieldError("ensemble", "confirm_weight", c.ConfirmWeight, "must be finite and ≥ 0")
	case c.Multiplicity < 0:
		return fieldError("ensemble", "multiplicity", c.Multiplicity, "must be ≥ 0")
	}
	if err := c.HoltWinters.Validate(); err != nil {
		return err
	}
	if err := c.MAD.Validate(); err != nil {
		return err
	}
	if c.Block.Block != 0 {
		if err := c.Block.Validate(); err != nil {
			return err
		}
	}
	return c.Context.Validate()
}

// Ensemble is Vigil's default detector, registered as "vigil": it runs four members side by
// side, Holt–Winters (forecast error against level, trend, daily and weekly seasons), the
// robust median/MAD z-score, the seasonal block detector SeasonBlock (the mean of each 30-min
// block against the same hour of previous weeks: holidays, storms, days unlike their weekday)
// and the sequence-novelty detector Context (the smoothed share r of runs of quantised values
// never seen before: contextual anomalies whose every value is in range), turns each member's
// raw statistic into a calibrated tail probability and reports the onset of an anomaly once;
// create it with NewEnsemble.
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
// Surprise: u_i = ln(1 + |z_i|) for the (scaled) z-scores z_i of Holt–Winters and MAD and the
// block z-score of SeasonBlock (not scaled: it has its own hourly dispersions), with the sign of
// z_i; u_ctx = −ln(1 − r) for the context member (r ∈ [0,1] is a share, not a z-score,
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
// Seasonal block member: SeasonBlock scores a block only when the first sample of the next one
// arrives, so its surprise λ_B is judged (and its calibrators absorb) once per block, 0 at the
// other samples; its calibrators thus count blocks, not samples, and it joins the values view.
// A long contextual anomaly (a holiday whose every value is in range and whose change the fast
// Holt–Winters level absorbs within a few samples) keeps its blocks far from the same hours of
// other weeks. On NAB (labels used only to evaluate), the member raises the standard score by
// about 4.8 points (grid mean; low FP +6.2, low FN +4.6), mostly by finding nyc_taxi's holidays
// and blizzard and art_daily_jumpsdown; blocks of 15–30 min score within 0.7 of each other,
// 45 min 3.7 lower, 1 h 3.9 lower (grid means 77.3 / 77.9 / 74.3 / 74.1; they lose nyc_taxi
// windows: with one block per profile cell and week, the first comparisons with the July 4
// weekend of nyc_taxi's first week and the holiday season's own variation leave a heavier tail
// of z, against which the later holidays are less surprising; before SeasonBlock's
// young-dispersion rule 1 h was 4.5 lower); Rate 0.2–0.4 and Clip 2.5–4 within 0.4,
// DispersionRate 0.1–0.2 within 0.25, 0.05 1.9 lower.
//
// Combination: the members look at the series in two ways, its values (Holt–Winters, MAD,
// seasonal block: λ_v = max(λ_HW, λ_MAD, λ_B)) and its sequence of shapes (context: λ_c), and
// a surprise that only one view sees is weaker evidence than one both see (a z-score outlier
// whose run of bins has been seen before, a novel run of routine values), so it pays
// Corroboration = D nats:
//
//	λ = max(λ_v', λ_c'),   λ_v' = λ_v if λ_c(t−j) > 0 for some 0 ≤ j ≤ K, else max(0, λ_v − D),
//	                       λ_c' = λ_c if λ_v > 0, else max(0, λ_c − D)
//
// (λ_i = 0 means member i is below both of its tail thresholds). A novel sequence may precede
// the value that breaks out by a few samples, so the context member's surprise corroborates
// value surprises for Tolerance = K samples after it. The converse is not granted: a novel
// sequence right after a value surprise is mostly its aftermath (on NAB, granting it added
// false alarms). Before the context
// member has warmed up, λ = λ_v. A member that is noisy on a series (heavy tail, large e_i, E_i)
// needs a much larger surprise to produce the same λ as one that is normally quiet.
//
// Reporting (non-maximum suppression): a surprise is reported only if it exceeds the last
// reported one, P, lowered linearly to zero over Refractory samples: λ > P·max(0, 1 − j/
// Refractory), j samples after P was reported — and, while j < Repeat, λ > P + RepeatGain.
// Otherwise Likelihood is 0. The ensemble thus marks the onset of an anomaly, and again only if
// something markedly stronger follows, instead of firing on every sample while the members
// re-learn the new regime or while a burst builds up over a few samples.
//
// Confirmation (like an alert rule's "for:"): a report at sample t whose λ_0 is below the
// alarm level λ_A = −ln(1 − 0.9999) ≈ 9.21 is held for d = Confirm samples and emitted at t+d as
//
//	λ* = λ_0' + w·(1/d)·Σ_{j=1..d} λ_{t+j},   w = ConfirmWeight,
//
// with λ_{t+j} the surprises of the following samples before suppression (0 outside every
// tail) and λ_0' the largest report among t..t+d (a report during the hold is folded into it,
// not emitted apart). A lasting anomaly keeps the members surprised after its onset, a lone
// blip does not (on NAB, of the next 10 samples a median of 7 are surprising after a true
// report, 4 after a false one), so λ* ranks the first above the second at the cost of d samples
// of latency: d × the sampling interval (50 s at 10 s samples with the default 5). An onset
// already at or above λ_A needs no confirmation and is emitted at once, as is a held report the
// moment a report during the hold reaches λ_A (the sum of the samples seen so far still divided
// by d, so an early emission is never boosted more than a full hold would be). The rows of the hold emit 0 (NaN/±Inf do not count as samples).
// Confirm 0 emits every report at once. On NAB (labels used only to evaluate), Confirm 5 and
// ConfirmWeight 0.5 raise the standard score by about 2 points, mostly by ranking false alarms
// lower; Confirm 5–10 and ConfirmWeight 0.3–0.7 score within 0.5 of each other.
//
// Multiplicity (a Bonferroni correction per series): each report, confirmed or not, is emitted
// with its surprise lowered by the log of the number of reports the series has made lately,
//
//	λ_emit = λ* − ln max(1, k),   k ← (1 − 1/H)·k + [the sample is a report],   H = Multiplicity,
//
// k counted over every sample after the warm-up, this one included (reports folded into a held
// one count too). λ* = −ln P judges one sample; a series that has reported k times over the last
// ~H samples had k chances to reach its latest report's level, and P(the largest of k reports ≥
// it) ≤ k·P. The threshold chosen for a fleet of series (one for all, as on NAB) thus stops
// being set by the few series that report all the time (bursty tweet volumes, machines that
// change regime every few days), while a series' first report is judged unchanged and one after
// ~H quiet samples nearly so. A report whose λ_emit falls to 0 or below is not emitted
// (likelihood 0).
// On NAB (labels used only to evaluate), H = 3000 raises the standard score by about 0.8
// (grid mean) and the low-FP score by about 1.4; H from 2500 to 3500 scores within 0.1 of it,
// 2000 and 5000 within 0.4; a weight of ln k other than 1 (0.5–1.5) within 0.7.
//
// Likelihood: 1 − e^(−λ'), with λ' = λ up to λ_A = −ln(1 − 0.9999) and λ' = λ_A + ln(1 + λ − λ_A)
// beyond, so it never rounds to 1 and stronger anomalies always rank above weaker ones.
// Raw is λ before suppression, confirmation and the multiplicity correction (clamped to 1e9).
//
// Warm-up: Warmup samples (default 150) return Score{}; the members and calibrators learn.
// Time: t is passed to the members (Holt–Winters uses it for its seasons). NaN/±Inf return
// Score{} and change nothing.
// Parameters and defaults (DefaultEnsembleConfig): Level 0.98, Rate 0.01, Memory 0.002,
// History 1e-4, Tail 0.005, MinExcess 0.2, Season 0.1, Corroboration 1, Tolerance 5, Warmup 150,
// Refractory 300, Repeat 30, RepeatGain 0.5, Confirm 5, ConfirmWeight 0.5, Multiplicity 3000,
// Holt–Winters with Alpha 0.5 and GammaDay 0.5, default MAD (its resolution floor keeps its z finite and meaningful on count data), default
// SeasonBlock (a zero Block.Block disables it), default Context with Orders 2.
// Memory: about 36 KiB, constant: the context member's 16 KiB table of counters and 4 KiB
// warm-up buffer, the Holt–Winters season arrays (4 KiB), the four members' histograms
// (8.5 KiB with their padding to cache lines), the seasonal block member (2.4 KiB), the hourly
// dispersions, 24 bytes for the report being confirmed and 8 for the report count.
//
// Layout: the controller keeps thousands of series, mostly cold in the cache, so a sample should
// touch few cache lines. The long-memory calibrators come first (an Ensemble is large enough to
// be allocated page-aligned, so each of them starts a cache line), then the small state every
// sample reads, packed together, then the members' large arrays (TestEnsembleLayout).
type Ensemble struct {
	hist     [ensembleN]histCalib
	n        int64
	peak     float64 // last reported λ
	age      int64   // samples since it was reported
	ctxQuiet int64   // samples since the context member was last in its tail
	held     int     // samples since the onset of the report being confirmed, +1; 0: none
	heldLam  float64 // its λ_0' (largest report since the onset)
	heldSum  float64 // sum of the surprises since the onset
	reports  float64 // k: reports over the last ~Multiplicity samples (exponentially weighted)
	cal      [ensembleN]tailCalib
	cfg      EnsembleConfig
	mad      MAD
	seas     seasonScale // Holt–Winters and MAD
	hw       HoltWinters
	blk      SeasonBlock
	ctx      Context
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
	z := e.seas.scale(bucket(t, hwDay, seasonBins), [2]float64{zh, zm}, &e.cfg)
	lam := max(e.judge(0, z[0]), e.judge(1, z[1]))
	if e.blk.cfg.Block > 0 { // e.cfg.Block.Block, read where the member's state is
		if zb, ok := e.blk.step(t, x); ok {
			lam = max(lam, e.judge(3, zb))
		}
	}
	if r, ok := e.ctx.novelty(x); ok {
		lam = e.corroborate(lam, e.judgeU(2, ctxSurprise[int(r*ctxSurpriseSteps)], 0))
	}
	lam = min(lam, maxRaw)
	e.n++
	if e.n <= int64(e.cfg.Warmup) {
		return Score{}
	}
	s := Score{Raw: lam}
	bar := 0.0 // P·max(0, 1 − j/Refractory), 0 before the first report (P = 0) and once faded
	if e.peak > 0 && e.age < int64(e.cfg.Refractory) {
		bar = e.peak * max(0, 1-float64(e.age)/float64(e.cfg.Refractory))
	}
	if e.peak > 0 && e.age < int64(e.cfg.Repeat) { // only after a report
		bar = max(bar, e.peak+e.cfg.RepeatGain)
	}
	rep := lam > bar
	if e.cfg.Multiplicity > 0 && e.reports > 0 { // k = 0 stays 0
		e.reports -= e.reports / float64(e.cfg.Multiplicity)
	}
	if rep {
		e.peak, e.age = lam, 0
		e.reports++
	} else {
		e.age++
	}
	s.Likelihood = e.confirm(lam, rep)
	return s
}

// alarmLam is the alarm level λ_A = −ln(1 − 0.9999) = ln 10⁴ of the likelihood mapping.
const alarmLam = 9.210340371976184

// confirm returns the likelihood to emit for a sample of surprise lam, rep telling whether
// non-maximum suppression let it through: a report below alarmLam is held for Confirm samples
// and emitted with their mean surprise, weighted ConfirmWeight, added (see Ensemble).
func (e *Ensemble) confirm(lam float64, rep bool) float64 {
	if e.held > 0 {
		e.heldSum += lam
		if rep {
			e.heldLam = max(e.heldLam, lam)
		}
		if e.held < e.cfg.Confirm && !(rep && lam >= alarmLam) {
			e.held++
			return 0
		}
		e.held = 0
		return e.emit(e.heldLam + e.cfg.ConfirmWeight*e.heldSum/float64(e.cfg.Confirm))
	}
	if !rep {
		return 0
	}
	if e.cfg.Confirm == 0 || lam >= alarmLam {
		return e.emit(lam)
	}
	e.held, e.heldLam, e.heldSum = 1, lam, 0
	return 0
}

// emit returns the likelihood of a report of surprise lam, lowered by ln k for the k ≥ 1 recent
// reports of the series when Multiplicity > 0 (see Ensemble).
func (e *Ensemble) emit(lam float64) float64 {
	if e.cfg.Multiplicity > 0 && e.reports > 1 {
		lam -= math.Log(e.reports)
	}
	return likelihood(lam, 0.9999)
}

// corroborate combines the values' surprise lv = max(λ_HW, λ_MAD) and the context member's lc:
// each counts in full if the other view is in its tail (> 0) now, or, for lv, was in one of the
// last Tolerance samples; otherwise it pays Corroboration nats (never below 0). It tracks how
// long the context member has been out of its tail.
func (e *Ensemble) corroborate(lv, lc float64) float64 {
	if lc > 0 {
		e.ctxQuiet = 0
	} else if e.ctxQuiet <= int64(e.cfg.Tolerance) {
		e.ctxQuiet++
	}
	d := e.cfg.Corroboration
	if lv == 0 {
		lc = max(0, lc-d)
	}
	if e.ctxQuiet > int64(e.cfg.Tolerance) {
		lv = max(0, lv-d)
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
// It allocates nothing: the members are reset in place (a member's zero value with its
// configuration is its initial state).
func (e *Ensemble) Reset() {
	cfg := e.cfg
	*e = Ensemble{cfg: cfg, ctxQuiet: math.MaxInt32}
	e.hw.cfg, e.mad.cfg, e.ctx.cfg, e.blk.cfg = cfg.HoltWinters, cfg.MAD, cfg.Context, cfg.Block
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
