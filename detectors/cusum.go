package detectors

import "math"

// CUSUMConfig parameterises the two-sided CUSUM detector. Start from DefaultCUSUMConfig.
type CUSUMConfig struct {
	// Alpha is the smoothing factor of the reference mean and deviation (an EWMA, see EWMA),
	// in (0,1). Default 0.01 (~100-sample memory).
	Alpha float64
	// Warmup is the number of samples absorbed before scores are reported (≥ 2). Default 30.
	Warmup int
	// K is the allowance (slack) in units of σ: drifts smaller than K·σ are not accumulated
	// (> 0). Default 0.5, optimal for detecting a shift of 1σ.
	K float64
	// H is the decision interval in units of σ (> 0): S ≥ H is an alarm. Default 8.
	H float64
	// ZClip bounds each standardised increment to ±ZClip so one spike cannot fill S alone
	// (≥ H disables in effect). Default 4.
	ZClip float64
}

// DefaultCUSUMConfig returns the defaults listed on CUSUMConfig's fields.
func DefaultCUSUMConfig() CUSUMConfig {
	return CUSUMConfig{Alpha: 0.01, Warmup: 30, K: 0.5, H: 8, ZClip: 4}
}

// Validate reports the first invalid field of c.
func (c CUSUMConfig) Validate() error {
	switch {
	case !(c.Alpha > 0 && c.Alpha < 1):
		return fieldError("cusum", "alpha", c.Alpha, "must be in (0,1)")
	case c.Warmup < 2:
		return fieldError("cusum", "warmup", c.Warmup, "must be at least 2")
	case !(c.K > 0 && c.K < 100):
		return fieldError("cusum", "k", c.K, "must be in (0,100)")
	case !(c.H > 0 && c.H < 1e6):
		return fieldError("cusum", "h", c.H, "must be in (0,1e6)")
	case !(c.ZClip > 0 && c.ZClip < 1e6):
		return fieldError("cusum", "z_clip", c.ZClip, "must be in (0,1e6)")
	}
	return nil
}

// CUSUM is a two-sided tabular CUSUM (Page 1954) on the standardised series; create it with
// NewCUSUM.
//
// What it measures: accumulated evidence that the mean has moved up (S⁺) or down (S⁻) from its
// reference, so it sees small persistent shifts long before a single sample looks unusual.
//
// Maths, per finite observation x, with μ and σ the reference mean and floored deviation of a
// winsorised EWMA (Alpha, Warmup; see EWMA) of the earlier samples:
//
//	z  = clamp((x − μ)/σ, −ZClip, ZClip)
//	S⁺ ← max(0, S⁺ + z − K)        S⁻ ← max(0, S⁻ − z − K)
//	Raw = S⁺ if S⁺ ≥ S⁻, else −S⁻
//	Likelihood = 1 − 10^(−3·|Raw|/H)          (0.999 at the decision interval H)
//
// When max(S⁺, S⁻) ≥ H (an alarm) the score is reported, then both sums restart at 0 and the
// reference mean jumps to a fast EWMA (weight 0.2) of the recent samples, so a level shift
// gives one alarm and the detector re-arms on the new level instead of alarming forever.
//
// Warm-up: Warmup samples feed the reference only; Score{} is returned meanwhile.
// Time: sample-based; t is ignored. NaN/±Inf observations return Score{} and change nothing.
// Parameters and defaults (DefaultCUSUMConfig): Alpha 0.01, Warmup 30, K 0.5, H 8, ZClip 4.
// Memory: about 140 bytes, constant.
type CUSUM struct {
	cfg    CUSUMConfig
	ref    EWMA
	fast   float64
	sp, sn float64
}

// NewCUSUM returns a detector with the given configuration. It panics if cfg.Validate fails.
func NewCUSUM(cfg CUSUMConfig) *CUSUM {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	c := &CUSUM{cfg: cfg}
	c.Reset()
	return c
}

// Observe scores x against the reference built from earlier samples, then absorbs it.
func (c *CUSUM) Observe(t int64, x float64) Score {
	if !finite(x) {
		return Score{}
	}
	if c.ref.Count() == 0 {
		c.fast = x
	}
	warm := c.ref.Count() >= int64(c.cfg.Warmup)
	mu, sigma := c.ref.Mean(), c.ref.StdDev()
	c.ref.Observe(t, x)
	c.fast += 0.2 * (x - c.fast)
	if !warm {
		return Score{}
	}
	z := math.Max(-c.cfg.ZClip, math.Min(c.cfg.ZClip, (x-mu)/sigma))
	if z != z {
		return Score{}
	}
	c.sp = math.Max(0, c.sp+z-c.cfg.K)
	c.sn = math.Max(0, c.sn-z-c.cfg.K)
	raw := c.sp
	if c.sn > c.sp {
		raw = -c.sn
	}
	s := Score{Raw: raw, Likelihood: 1 - math.Pow(10, -3*math.Abs(raw)/c.cfg.H)}
	if math.Abs(raw) >= c.cfg.H {
		c.sp, c.sn = 0, 0
		c.ref.mu = c.fast
	}
	return s
}

// Sums returns the current upper and lower cumulative sums S⁺ and S⁻ (in σ units).
func (c *CUSUM) Sums() (up, down float64) { return c.sp, c.sn }

// Reset forgets all observations; the configuration is kept.
func (c *CUSUM) Reset() {
	ec := DefaultEWMAConfig()
	ec.Alpha, ec.Warmup = c.cfg.Alpha, c.cfg.Warmup
	*c = CUSUM{cfg: c.cfg, ref: EWMA{cfg: ec}}
}

func init() {
	RegisterDetector("cusum", func() Detector { return NewCUSUM(DefaultCUSUMConfig()) })
}

var _ Detector = (*CUSUM)(nil)
