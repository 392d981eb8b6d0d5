package detectors

import "math"

// PageHinkleyConfig parameterises the Page–Hinkley detector. Start from
// DefaultPageHinkleyConfig.
type PageHinkleyConfig struct {
	// MinWeight is the smallest weight of a new sample in the reference mean and variance,
	// in (0,1): the reference is the plain mean since the last alarm until 1/n < MinWeight, then
	// an EWMA. Default 0.005 (~200-sample memory).
	MinWeight float64
	// Warmup is the number of samples absorbed before scores are reported (≥ 2). Default 30.
	Warmup int
	// Delta is the tolerated drift per sample in units of σ (≥ 0). Default 0.25.
	Delta float64
	// Lambda is the alarm threshold on the PH statistic in units of σ (> 0). Default 10.
	Lambda float64
	// Fading is the forgetting factor of the cumulative sums, in (0,1]. Default 0.995.
	Fading float64
	// ZClip bounds each standardised increment to ±ZClip. Default 4.
	ZClip float64
}

// DefaultPageHinkleyConfig returns the defaults listed on PageHinkleyConfig's fields.
func DefaultPageHinkleyConfig() PageHinkleyConfig {
	return PageHinkleyConfig{MinWeight: 0.005, Warmup: 30, Delta: 0.25, Lambda: 10, Fading: 0.995, ZClip: 4}
}

// Validate reports the first invalid field of c.
func (c PageHinkleyConfig) Validate() error {
	switch {
	case !(c.MinWeight > 0 && c.MinWeight < 1):
		return fieldError("page_hinkley", "min_weight", c.MinWeight, "must be in (0,1)")
	case c.Warmup < 2:
		return fieldError("page_hinkley", "warmup", c.Warmup, "must be at least 2")
	case !(c.Delta >= 0 && c.Delta < 100):
		return fieldError("page_hinkley", "delta", c.Delta, "must be in [0,100)")
	case !(c.Lambda > 0 && c.Lambda < 1e6):
		return fieldError("page_hinkley", "lambda", c.Lambda, "must be in (0,1e6)")
	case !(c.Fading > 0 && c.Fading <= 1):
		return fieldError("page_hinkley", "fading", c.Fading, "must be in (0,1]")
	case !(c.ZClip > 0 && c.ZClip < 1e6):
		return fieldError("page_hinkley", "z_clip", c.ZClip, "must be in (0,1e6)")
	}
	return nil
}

// PageHinkley is a two-sided Page–Hinkley change detector with a fading factor (Page 1954,
// Hinkley 1971; the fading form of Gama et al. 2013); create it with NewPageHinkley.
//
// What it measures: how far the cumulative deviation from the mean of the samples since the
// last change has climbed above its own running minimum (increase) or fallen below its running
// maximum (decrease), i.e. a sustained change of the mean.
//
// Maths, per finite observation x, with x̄ and s² the mean and variance since the last alarm
// (weights max(1/n, MinWeight)), σ = max(s, 1e-3·|x̄|, 1e-9) and n the samples since it:
//
//	z   = clamp((x − x̄)/σ, −ZClip, ZClip)      computed before x̄ absorbs x
//	m⁺ ← Fading·m⁺ + (z − Delta)     M⁺ = min over time of m⁺     PH⁺ = m⁺ − M⁺
//	m⁻ ← Fading·m⁻ + (−z − Delta)    M⁻ = min over time of m⁻     PH⁻ = m⁻ − M⁻
//	Raw = PH⁺ if PH⁺ ≥ PH⁻, else −PH⁻
//	Likelihood = 1 − 10^(−3·|Raw|/Lambda)      (0.999 at the threshold)
//
// The running minimum fades with the sums (M ← Fading·M before the min), so old history cannot
// keep the statistic high forever. When max(PH⁺, PH⁻) ≥ Lambda the score is reported and the
// test restarts: sums, minima and the reference mean start again from the next sample, with
// the reference seeded by the current sample and the old variance.
//
// Warm-up: Warmup samples after Reset feed the reference only and return Score{}. After an
// alarm, scores resume at once (the old variance keeps them calibrated).
// Time: sample-based; t is ignored. NaN/±Inf observations return Score{} and change nothing.
// Parameters and defaults (DefaultPageHinkleyConfig): MinWeight 0.005, Warmup 30, Delta 0.25,
// Lambda 10, Fading 0.995, ZClip 4. Memory: about 120 bytes, constant.
type PageHinkley struct {
	cfg            PageHinkleyConfig
	mean, v        float64
	n, total       int64
	mp, mn, lp, ln float64 // m⁺, m⁻ and their running minima
}

// NewPageHinkley returns a detector with the given configuration. It panics if cfg.Validate
// fails.
func NewPageHinkley(cfg PageHinkleyConfig) *PageHinkley {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &PageHinkley{cfg: cfg}
}

// Observe scores x, then absorbs it.
func (p *PageHinkley) Observe(_ int64, x float64) Score {
	if !finite(x) {
		return Score{}
	}
	sigma := math.Max(math.Sqrt(p.v), math.Max(1e-3*math.Abs(p.mean), 1e-9))
	z := math.Max(-p.cfg.ZClip, math.Min(p.cfg.ZClip, (x-p.mean)/sigma))
	if p.n == 0 || z != z {
		z = 0
	}
	if !p.absorb(x) {
		return Score{}
	}
	if p.total <= int64(p.cfg.Warmup) {
		return Score{}
	}
	f := p.cfg.Fading
	p.mp = f*p.mp + z - p.cfg.Delta
	p.mn = f*p.mn - z - p.cfg.Delta
	p.lp = math.Min(f*p.lp, p.mp)
	p.ln = math.Min(f*p.ln, p.mn)
	up, down := p.mp-p.lp, p.mn-p.ln
	raw := up
	if down > up {
		raw = -down
	}
	s := Score{Raw: raw, Likelihood: 1 - math.Pow(10, -3*math.Abs(raw)/p.cfg.Lambda)}
	if math.Abs(raw) >= p.cfg.Lambda {
		p.mp, p.mn, p.lp, p.ln = 0, 0, 0, 0
		p.mean, p.n = x, 1
	}
	return s
}

// absorb folds x into the reference mean and variance; it reports false (and changes nothing)
// if the update would overflow.
func (p *PageHinkley) absorb(x float64) bool {
	a := math.Max(p.cfg.MinWeight, 1/float64(p.n+1))
	d := x - p.mean
	mean := p.mean + a*d
	v := (1 - a) * (p.v + a*d*d)
	if p.n == 0 {
		v = p.v // one sample says nothing about the spread; keep the old one
	}
	if !finite(mean) || !finite(v) {
		return false
	}
	p.mean, p.v = mean, v
	p.n++
	p.total++
	return true
}

// Reset forgets all observations; the configuration is kept.
func (p *PageHinkley) Reset() { *p = PageHinkley{cfg: p.cfg} }

func init() {
	RegisterDetector("pagehinkley", func() Detector { return NewPageHinkley(DefaultPageHinkleyConfig()) })
}

var _ Detector = (*PageHinkley)(nil)
