package detectors

import "math"

// MADConfig parameterises the robust median/MAD detector. Start from DefaultMADConfig.
type MADConfig struct {
	// Rate is the step of the streaming quantile estimates, as a fraction of the current MAD,
	// in (0,1). Default 0.02: the median moves at most 1% of a MAD per sample.
	Rate float64
	// Warmup is the number of samples absorbed before scores are reported (≥ 2). Default 30.
	Warmup int
	// RelFloor is the smallest MAD relative to |median| (≥ 0). Default 1e-3.
	RelFloor float64
	// AbsFloor is the smallest MAD in the series' units (> 0). Default 1e-6.
	AbsFloor float64
	// ResFloor is the smallest MAD relative to the series' resolution r, the smallest positive
	// difference between consecutive samples seen so far (≥ 0; 0 disables). Default 0.5.
	ResFloor float64
}

// DefaultMADConfig returns the defaults listed on MADConfig's fields.
func DefaultMADConfig() MADConfig {
	return MADConfig{Rate: 0.02, Warmup: 30, RelFloor: 1e-3, AbsFloor: 1e-6, ResFloor: 0.5}
}

// Validate reports the first invalid field of c.
func (c MADConfig) Validate() error {
	switch {
	case !(c.Rate > 0 && c.Rate < 1):
		return fieldError("mad", "rate", c.Rate, "must be in (0,1)")
	case c.Warmup < 2:
		return fieldError("mad", "warmup", c.Warmup, "must be at least 2")
	case !(c.RelFloor >= 0 && c.RelFloor < math.Inf(1)):
		return fieldError("mad", "rel_floor", c.RelFloor, "must be finite and ≥ 0")
	case !(c.AbsFloor > 0 && c.AbsFloor < math.Inf(1)):
		return fieldError("mad", "abs_floor", c.AbsFloor, "must be finite and > 0")
	case !(c.ResFloor >= 0 && c.ResFloor < math.Inf(1)):
		return fieldError("mad", "res_floor", c.ResFloor, "must be finite and ≥ 0")
	}
	return nil
}

// MAD is a robust z-score detector: distance from a streaming median in units of a streaming
// median absolute deviation; create it with NewMAD.
//
// What it measures: how unusual x is relative to the bulk of recent samples, ignoring the
// outliers themselves: a median and a MAD have a 50% breakdown point, so bursts of spikes do
// not inflate the yardstick the way they inflate a standard deviation.
//
// Maths: both quantiles are tracked by stochastic approximation (Robbins–Monro; the "frugal"
// streaming quantile), with a step proportional to the current scale so the estimate is
// unit-free. With m the median, d the MAD, r the resolution (below) and
// d_eff = max(d, ResFloor·r, RelFloor·|m|, AbsFloor), per finite x:
//
//	z = (x − m) / (1.4826·d_eff)            computed before the update (1.4826: σ of a normal)
//	Raw = z (clamped to ±1e9); Likelihood = erf(|z|/√2)
//	m ← m + Rate·d_eff·sign(x − m)
//	d ← d + Rate·d_eff·(1{|x − m| > d} − ½)·2
//	r ← min(r, |x − x_prev|) if |x − x_prev| > 0         after scoring x
//
// At equilibrium P(x > m) = ½ and P(|x − m| > d) = ½, i.e. m is the median and d the MAD of
// the recent distribution. m moves at most Rate·d_eff per sample, whatever x is, and d changes
// by at most a factor 1 ± Rate per sample, so after a level shift of k MADs the estimates catch
// up geometrically in about ln(k)/Rate samples.
//
// Resolution floor: on quantised data (counts, rounded readings) more than half of the samples
// often equal the median, so the MAD falls to 0 and, without a floor tied to the data, every
// step of one unit would score like a catastrophe (z ~ 1e6) and the median, which moves by
// Rate·d_eff, would freeze. The resolution r, the smallest positive change between consecutive
// samples, is the data's quantum; a value known only to ±r/2 has a MAD of at least about r/2,
// hence ResFloor 0.5. On continuous data r is tiny and the floor never binds. r is lowered only
// after x is scored, so the first change of a flat line still scores in full.
//
// Warm-up: the first Warmup samples give exact running mean and deviation (Welford), which seed
// m = mean and d = 0.6745·deviation; Score{} is returned meanwhile.
// Time: sample-based; t is ignored. NaN/±Inf observations return Score{} and change nothing.
// Parameters and defaults (DefaultMADConfig): Rate 0.02, Warmup 30, RelFloor 1e-3,
// AbsFloor 1e-6, ResFloor 0.5. Memory: about 100 bytes, constant.
type MAD struct {
	cfg  MADConfig
	m, d float64
	w    float64 // Welford sum of squares during the warm-up
	n    int64
	prev float64 // previous finite sample
	res  float64 // smallest positive |x − prev| seen; 0 until a change is seen
}

// NewMAD returns a detector with the given configuration. It panics if cfg.Validate fails.
func NewMAD(cfg MADConfig) *MAD {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &MAD{cfg: cfg}
}

// Observe scores x against the median and MAD of earlier samples, then absorbs it.
func (m *MAD) Observe(_ int64, x float64) Score {
	z, ok := m.step(x)
	if !ok {
		return Score{}
	}
	return Score{Raw: z, Likelihood: zLikelihood(z)}
}

// step is Observe without the likelihood: it returns Raw and whether x was scored.
func (m *MAD) step(x float64) (float64, bool) {
	if !finite(x) {
		return 0, false
	}
	if m.n < int64(m.cfg.Warmup) {
		m.absorbRes(x)
		n := float64(m.n + 1)
		dm := x - m.m
		mean := m.m + dm/n
		w := m.w + dm*(x-mean)
		if finite(mean) && finite(w) {
			m.m, m.w, m.n = mean, w, m.n+1
			m.d = 0.6745 * math.Sqrt(w/n)
		}
		return 0, false
	}
	d := m.scale()
	z := (x - m.m) / (1.4826 * d)
	z = max(-maxRaw, min(maxRaw, z))
	med, mad := medianMADStep(m.m, m.d, x, m.cfg.Rate*d)
	if finite(med) && finite(mad) {
		m.m, m.d = med, max(mad, 0)
		m.n++
	}
	m.absorbRes(x)
	return z, true
}

// medianMADStep moves a streaming median estimate med and absolute
// deviation estimate mad one step of size step towards sample x (the
// stochastic-approximation quantile update, for the 0.5 quantile of x and
// of |x − med|). Callers keep the result only if it is finite; mad may go
// below 0 and is clamped by them.
func medianMADStep(med, mad, x, step float64) (float64, float64) {
	switch {
	case x > med:
		med += step
	case x < med:
		med -= step
	}
	if math.Abs(x-med) > mad {
		return med, mad + step
	}
	return med, mad - step
}

func (m *MAD) scale() float64 {
	return max(m.d, m.cfg.ResFloor*m.res, m.cfg.RelFloor*math.Abs(m.m), m.cfg.AbsFloor)
}

// absorbRes lowers the resolution r to |x − prev| if that is positive, finite and smaller, and
// remembers x as prev. The first sample only sets prev.
func (m *MAD) absorbRes(x float64) {
	if c := math.Abs(x - m.prev); m.n > 0 && c > 0 && c < math.Inf(1) && (m.res == 0 || c < m.res) {
		m.res = c
	}
	m.prev = x
}

// Median returns the current median estimate.
func (m *MAD) Median() float64 { return m.m }

// Deviation returns the current floored MAD estimate d_eff.
func (m *MAD) Deviation() float64 { return m.scale() }

// Reset forgets all observations; the configuration is kept.
func (m *MAD) Reset() { *m = MAD{cfg: m.cfg} }

func init() {
	RegisterDetector("mad", func() Detector { return NewMAD(DefaultMADConfig()) })
}

var _ Detector = (*MAD)(nil)
