package detectors

import "math"

const (
	hwDay       = int64(24 * 3600 * 1e9)
	hwWeek      = 7 * hwDay
	hwDayBins   = 288 // 5-minute buckets of the time of day
	hwWeekBins  = 168 // 1-hour buckets of the time of week
	hwMaxSteps  = 10  // a gap extrapolates the trend over at most this many sampling intervals
	hwMAEWeight = 0.02
)

// HoltWintersConfig parameterises the additive Holt–Winters detector. Start from
// DefaultHoltWintersConfig.
type HoltWintersConfig struct {
	// Alpha is the level smoothing factor in (0,1). Default 0.2.
	Alpha float64
	// Beta is the trend smoothing factor in [0,1). Default 0.01.
	Beta float64
	// Phi damps the trend per sampling interval, in (0,1]. Default 0.95.
	Phi float64
	// GammaDay is the smoothing factor of the time-of-day season per visit of a bucket, in
	// [0,1). Default 0.25; 0 disables the daily season.
	GammaDay float64
	// GammaWeek is the smoothing factor of the time-of-week season per visit of a bucket, in
	// [0,1). Default 0.05; 0 disables the weekly season.
	GammaWeek float64
	// Warmup is the number of samples absorbed before scores are reported (≥ 2). Default 30.
	Warmup int
	// Clip winsorises the error used to update the state at ±Clip·σ (≥ 2). Default 4.
	Clip float64
	// RelFloor and AbsFloor bound σ from below, as in EWMAConfig. Defaults 1e-3, 1e-6.
	RelFloor, AbsFloor float64
}

// DefaultHoltWintersConfig returns the defaults listed on HoltWintersConfig's fields.
func DefaultHoltWintersConfig() HoltWintersConfig {
	return HoltWintersConfig{Alpha: 0.2, Beta: 0.01, Phi: 0.95, GammaDay: 0.25, GammaWeek: 0.05,
		Warmup: 30, Clip: 4, RelFloor: 1e-3, AbsFloor: 1e-6}
}

// Validate reports the first invalid field of c.
func (c HoltWintersConfig) Validate() error {
	switch {
	case !(c.Alpha > 0 && c.Alpha < 1):
		return fieldError("holtwinters", "alpha", c.Alpha, "must be in (0,1)")
	case !(c.Beta >= 0 && c.Beta < 1):
		return fieldError("holtwinters", "beta", c.Beta, "must be in [0,1)")
	case !(c.Phi > 0 && c.Phi <= 1):
		return fieldError("holtwinters", "phi", c.Phi, "must be in (0,1]")
	case !(c.GammaDay >= 0 && c.GammaDay < 1):
		return fieldError("holtwinters", "gamma_day", c.GammaDay, "must be in [0,1)")
	case !(c.GammaWeek >= 0 && c.GammaWeek < 1):
		return fieldError("holtwinters", "gamma_week", c.GammaWeek, "must be in [0,1)")
	case c.Warmup < 2:
		return fieldError("holtwinters", "warmup", c.Warmup, "must be at least 2")
	case !(c.Clip >= 2 && c.Clip < math.Inf(1)):
		return fieldError("holtwinters", "clip", c.Clip, "must be finite and at least 2")
	case !(c.RelFloor >= 0 && c.RelFloor < math.Inf(1)):
		return fieldError("holtwinters", "rel_floor", c.RelFloor, "must be finite and ≥ 0")
	case !(c.AbsFloor > 0 && c.AbsFloor < math.Inf(1)):
		return fieldError("holtwinters", "abs_floor", c.AbsFloor, "must be finite and > 0")
	}
	return nil
}

// HoltWinters is an additive Holt–Winters (triple exponential smoothing) detector with a
// damped trend and two seasons found from the timestamps, the time of day and the time of week;
// create it with NewHoltWinters.
//
// What it measures: the one-step-ahead forecast error of a level + trend + daily + weekly
// model, in units of its recent typical error, so a value that is normal at 3 pm but not at
// 3 am, or a broken daily pattern, stands out.
//
// Seasons from time: the season index of a sample is its bucket of the time of day (288 buckets
// of 5 min, UTC) and of the time of week (168 buckets of 1 h), taken from t; no period has to be
// configured and gaps or irregular sampling keep the phase. The sampling interval δ is an
// EWMA (weight 0.1) of the gaps between samples, each clamped to [δ/4, 4δ], and k = Δt/δ is the
// number of intervals since the previous sample (at most 10).
//
// Maths, per finite x at time t, with d = day bucket, w = week bucket:
//
//	ŷ  = ℓ + b·(φ + … + φ^k) + S_d[d] + S_w[w]            forecast from earlier samples
//	e  = x − ŷ;  σ = max(1.2533·MAE, RelFloor·|ℓ|, AbsFloor)
//	Raw = e/σ (clamped to ±1e9); Likelihood = erf(|Raw|/√2)
//	ε  = clamp(e, −Clip·σ, Clip·σ)                          once warm: outliers do not teach
//	ℓ ← ℓ + b·(φ + … + φ^k) + α·ε;  b ← φ^k·b + α·β·ε
//	S_d[d] ← S_d[d] + g_d·(1−α)·ε;  S_w[w] ← S_w[w] + g_w·(1−α)·ε
//	MAE ← MAE + 0.02·(min(|e|, Clip·σ) − MAE)
//
// with g = Gamma·min(1, Δt/bucket width), so a bucket moves by about Gamma per visit however
// densely it is sampled. The first visit of a day bucket sets S_d[d] = (1−α)·e, so a strong
// daily shape is learnt in one day. 1.2533·MAE is σ for normal errors.
//
// Warm-up: Warmup samples train the model and return Score{} (seasonal deviations are only
// learnt after a full day; until then the daily shape shows up as error).
// Time: t drives the seasons and the trend; a sample not after the previous one extrapolates
// nothing (k = 0). NaN/±Inf observations return Score{} and change nothing.
// Parameters and defaults (DefaultHoltWintersConfig): Alpha 0.2, Beta 0.01, Phi 0.95,
// GammaDay 0.25, GammaWeek 0.05, Warmup 30, Clip 4, RelFloor 1e-3, AbsFloor 1e-6.
// Memory: 3.7 KiB, constant (the two bucket arrays).
type HoltWinters struct {
	cfg      HoltWintersConfig
	level, b float64
	mae      float64
	dt       float64 // estimated sampling interval, ns
	last     int64
	n        int64
	damp1    float64 // φ + … + φ^k for k = 1, the regularly sampled case
	seen     [(hwDayBins + 63) / 64]uint64
	day      [hwDayBins]float64
	week     [hwWeekBins]float64
}

// NewHoltWinters returns a detector with the given configuration. It panics if cfg.Validate
// fails.
func NewHoltWinters(cfg HoltWintersConfig) *HoltWinters {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &HoltWinters{cfg: cfg}
}

// Observe scores x against the forecast made from earlier samples, then absorbs it.
func (h *HoltWinters) Observe(t int64, x float64) Score {
	z, ok := h.step(t, x)
	if !ok {
		return Score{}
	}
	return Score{Raw: z, Likelihood: zLikelihood(z)}
}

// step is Observe without the likelihood: it returns Raw and whether x was scored.
func (h *HoltWinters) step(t int64, x float64) (float64, bool) {
	if !finite(x) {
		return 0, false
	}
	if h.n == 0 {
		h.level, h.last, h.n = x, t, 1
		h.damp1 = h.damping(1, h.cfg.Phi)
		return 0, false
	}
	gap := float64(t - h.last)
	k := 0.0
	if gap > 0 {
		switch {
		case h.dt == 0:
			h.dt = gap
		case gap != h.dt: // a gap equal to δ leaves it unchanged
			h.dt += 0.1 * (max(h.dt/4, min(4*h.dt, gap)) - h.dt)
		}
		k = 1 // regular sampling: gap/δ = 1 exactly
		if gap != h.dt {
			k = min(gap/h.dt, hwMaxSteps)
		}
	}
	d, w := bucket(t, hwDay, hwDayBins), bucket(t, hwWeek, hwWeekBins)
	phik, damp := h.cfg.Phi, h.damp1 // math.Pow(φ, 1) is φ
	if k != 1 {
		phik = math.Pow(h.cfg.Phi, k)
		damp = h.damping(k, phik)
	}
	lvl := h.level + h.b*damp
	e := x - (lvl + h.day[d] + h.week[w])
	sigma := max(1.2533*h.mae, max(h.cfg.RelFloor*math.Abs(h.level), h.cfg.AbsFloor))
	warm := h.n >= int64(h.cfg.Warmup)
	var z float64
	eps := e
	if warm {
		z = max(-maxRaw, min(maxRaw, e/sigma))
		lim := h.cfg.Clip * sigma
		eps = max(-lim, min(lim, e))
	}
	a := h.cfg.Alpha
	if !finite(e) || !finite(lvl+a*eps) {
		return z, warm
	}
	h.level = lvl + a*eps
	h.b = phik*h.b + a*h.cfg.Beta*eps
	if gap > 0 {
		gd := h.cfg.GammaDay // × min(1, gap/bucket width); the quotient is ≥ 1 iff gap ≥ width
		if gap < float64(hwDay/hwDayBins) {
			gd *= gap / float64(hwDay/hwDayBins)
		}
		gw := h.cfg.GammaWeek
		if gap < float64(hwWeek/hwWeekBins) {
			gw *= gap / float64(hwWeek/hwWeekBins)
		}
		if h.seen[d/64]&(1<<(d%64)) == 0 && h.cfg.GammaDay > 0 {
			h.seen[d/64] |= 1 << (d % 64)
			gd = 1
		}
		h.day[d] += gd * (1 - a) * eps
		h.week[w] += gw * (1 - a) * eps
	}
	if warm {
		h.mae += hwMAEWeight * (min(math.Abs(e), h.cfg.Clip*sigma) - h.mae)
	} else {
		h.mae += max(hwMAEWeight, 1/float64(h.n)) * (math.Abs(e) - h.mae)
	}
	h.last = max(h.last, t)
	h.n++
	return z, warm
}

// damping returns φ + … + φ^k for φ^k = phik.
func (h *HoltWinters) damping(k, phik float64) float64 {
	if h.cfg.Phi < 1 {
		return h.cfg.Phi * (1 - phik) / (1 - h.cfg.Phi)
	}
	return k
}

// bucket returns the index of t's bucket in a season of the given period (ns) and bucket count.
func bucket(t, period int64, bins int) int {
	p := t % period
	if p < 0 {
		p += period
	}
	return int(p / (period / int64(bins)))
}

// Level returns the current level ℓ (without trend or seasons).
func (h *HoltWinters) Level() float64 { return h.level }

// Reset forgets all observations; the configuration is kept.
func (h *HoltWinters) Reset() { *h = HoltWinters{cfg: h.cfg} }

func init() {
	RegisterDetector("holtwinters", func() Detector { return NewHoltWinters(DefaultHoltWintersConfig()) })
}

var _ Detector = (*HoltWinters)(nil)
