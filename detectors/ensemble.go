package detectors

import "math"

// ensembleN is the number of member detectors of the ensemble.
const ensembleN = 6

// EnsembleConfig parameterises the "vigil" ensemble. Start from DefaultEnsembleConfig; the
// members run with their own defaults.
type EnsembleConfig struct {
	// Memory is the weight of a new surprise in each member's long-term surprise mean and
	// deviation, in (0,1). Default 0.002 (~500 samples).
	Memory float64
	// Decay is the factor by which each member's record surprise fades per sample, in (0,1).
	// Default 0.9995 (the record halves in ~1400 samples).
	Decay float64
	// Gain converts a record excess, in long-term deviations of the surprise, into nats (> 0).
	// Default 3.
	Gain float64
	// Warmup is the number of samples before the ensemble reports (≥ 2; the members warm up in
	// 30). Default 150.
	Warmup int
	// Alarm is the likelihood at or above which a sample counts as an alarm and starts the
	// refractory period, in (0,1). Default 0.97.
	Alarm float64
	// Refractory is the number of samples after an alarm during which the surprise is lowered
	// (≥ 0), by Damping nats at first, linearly less until the end. Default 200.
	Refractory int
	// Damping is the surprise removed right after an alarm, in nats (≥ 0). Default 10.
	Damping float64
}

// DefaultEnsembleConfig returns the defaults listed on EnsembleConfig's fields.
func DefaultEnsembleConfig() EnsembleConfig {
	return EnsembleConfig{Memory: 0.002, Decay: 0.9995, Gain: 3, Warmup: 150, Alarm: 0.97,
		Refractory: 200, Damping: 10}
}

// Validate reports the first invalid field of c.
func (c EnsembleConfig) Validate() error {
	switch {
	case !(c.Memory > 0 && c.Memory < 1):
		return fieldError("ensemble", "memory", c.Memory, "must be in (0,1)")
	case !(c.Decay > 0 && c.Decay < 1):
		return fieldError("ensemble", "decay", c.Decay, "must be in (0,1)")
	case !(c.Gain > 0 && c.Gain < 1e6):
		return fieldError("ensemble", "gain", c.Gain, "must be in (0,1e6)")
	case c.Warmup < 2:
		return fieldError("ensemble", "warmup", c.Warmup, "must be at least 2")
	case !(c.Alarm > 0 && c.Alarm < 1):
		return fieldError("ensemble", "alarm", c.Alarm, "must be in (0,1)")
	case c.Refractory < 0:
		return fieldError("ensemble", "refractory", c.Refractory, "must be ≥ 0")
	case !(c.Damping >= 0 && c.Damping < 1e6):
		return fieldError("ensemble", "damping", c.Damping, "must be in [0,1e6)")
	}
	return nil
}

// calib judges one member's raw statistic against that member's own history on this series.
type calib struct {
	record  float64 // fading maximum of the surprise
	mean, v float64 // long-term mean and variance of the surprise
	n       int64
}

// surprise returns Gain·max(0, u − record)/max(s, 0.05) for u = ln(1+|raw|), s the long-term
// deviation of u, then absorbs u.
func (c *calib) surprise(raw float64, cfg *EnsembleConfig) float64 {
	u := math.Log1p(math.Abs(raw))
	sd := math.Max(math.Sqrt(c.v), 0.05)
	lam := cfg.Gain * math.Max(0, u-c.record) / sd
	c.record = math.Max(c.record*cfg.Decay, u)
	a := math.Max(cfg.Memory, 1/float64(c.n+1))
	d := u - c.mean
	if c.n >= 10 {
		d = math.Min(d, 4*sd) // winsorised: anomalies do not widen the yardstick at once
	}
	c.mean += a * d
	c.v = (1 - a) * (c.v + a*d*d)
	c.n++
	return lam
}

// logTail returns −ln Q(z), Q the standard normal upper tail, accurate for all finite z.
func logTail(z float64) float64 {
	if z < 30 {
		return -math.Log(0.5 * math.Erfc(z/math.Sqrt2))
	}
	return z*z/2 + math.Log(z*math.Sqrt(2*math.Pi)) // Mills ratio, relative error < 1e-3
}

// Ensemble is Vigil's default detector, registered as "vigil": it runs the EWMA z-score, the
// robust median/MAD, the two-sided CUSUM, Page–Hinkley, Holt–Winters and the level-shift /
// variance-change detectors side by side and turns their raw statistics into one calibrated
// anomaly likelihood; create it with NewEnsemble.
//
// Calibration: the raw statistics of the members live on different scales (z-scores, CUSUM
// sums in σ·samples, log-variance ratios) and each series makes each of them behave
// differently (a seasonal series keeps the EWMA z-scores high, a noisy one the CUSUM). So each
// member i is judged against its own history on this series: its surprise u_i = ln(1 + |Raw_i|)
// is compared with its record R_i, the largest surprise it has produced so far, fading by Decay
// per sample, in units of s_i, the long-term deviation of u_i (EWMA with weight Memory,
// winsorised at 4·s_i so an anomaly does not immediately widen the yardstick):
//
//	λ_i = Gain·max(0, u_i − R_i)/max(s_i, 0.05)        then R_i ← max(Decay·R_i, u_i)
//	λ   = max_i λ_i
//
// An observation is anomalous when some member has not seen anything like it for a long time
// (≈ 1/(1−Decay) samples): a member that fires all the time on a series has a high record
// there and loses its voice, one that is normally quiet is heard at once, and a repeated
// pattern (a daily spike) stops being news after its first occurrence.
//
// Refractory period: when an alarm was raised (likelihood ≥ Alarm) j < Refractory samples ago,
// λ is lowered by Damping·(1 − j/Refractory): the ensemble reports the onset of an anomaly and
// stays quiet while the members re-learn the new regime, unless something much stronger comes.
//
// Likelihood: p = e^(−λ'), with λ' = λ up to λ_A = −ln(1 − 0.9999) and λ' = λ_A + ln(1 + λ − λ_A)
// beyond, Likelihood = 1 − p, so it never rounds to 1 and stronger anomalies always rank above
// weaker ones. Raw is λ before damping (clamped to 1e9).
//
// Warm-up: Warmup samples (default 150) return Score{}; the members and calibrators learn.
// Time: t is passed to the members (Holt–Winters uses it for its seasons). NaN/±Inf return
// Score{} and change nothing.
// Parameters and defaults (DefaultEnsembleConfig): Memory 0.002, Decay 0.9995, Gain 3, Warmup
// 150, Alarm 0.97, Refractory 200, Damping 10. Memory: about 4.7 KiB, constant (mostly the
// Holt–Winters season arrays).
type Ensemble struct {
	cfg   EnsembleConfig
	ewma  EWMA
	mad   MAD
	cusum CUSUM
	ph    PageHinkley
	hw    HoltWinters
	ls    LevelShift
	cal   [ensembleN]calib
	n     int64
	since int64 // samples since the last alarm; -1: none
}

// NewEnsemble returns an ensemble with the given configuration and default members. It panics
// if cfg.Validate fails.
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
	raws := [ensembleN]float64{
		e.ewma.Observe(t, x).Raw,
		e.mad.Observe(t, x).Raw,
		e.cusum.Observe(t, x).Raw,
		e.ph.Observe(t, x).Raw,
		e.hw.Observe(t, x).Raw,
		e.ls.Observe(t, x).Raw,
	}
	lam := 0.0
	for i, r := range raws {
		lam = math.Max(lam, e.cal[i].surprise(r, &e.cfg))
	}
	e.n++
	if e.n <= int64(e.cfg.Warmup) {
		return Score{}
	}
	out := lam
	if e.since >= 0 && e.since < int64(e.cfg.Refractory) {
		out -= e.cfg.Damping * (1 - float64(e.since)/float64(e.cfg.Refractory))
	}
	if e.since >= 0 {
		e.since++
	}
	l := likelihood(out, 0.9999)
	if l >= e.cfg.Alarm {
		e.since = 0
	}
	return Score{Raw: math.Min(lam, maxRaw), Likelihood: l}
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
	*e = Ensemble{cfg: e.cfg, since: -1}
	e.ewma = *NewEWMA(DefaultEWMAConfig())
	e.mad = *NewMAD(DefaultMADConfig())
	e.cusum = *NewCUSUM(DefaultCUSUMConfig())
	e.ph = *NewPageHinkley(DefaultPageHinkleyConfig())
	e.hw = *NewHoltWinters(DefaultHoltWintersConfig())
	e.ls = *NewLevelShift(DefaultLevelShiftConfig())
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
