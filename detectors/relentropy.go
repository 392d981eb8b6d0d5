package detectors

import "math"

// relEntMaxBins and relEntMaxWindow bound RelEntropyConfig.Bins and .Window (fixed arrays).
const (
	relEntMaxBins   = 32
	relEntMaxWindow = 128
)

// RelEntropyConfig parameterises the windowed relative-entropy detector. Start from
// DefaultRelEntropyConfig.
type RelEntropyConfig struct {
	// Bins is the number of quantisation bins B, in [4, 32]. Default 16.
	Bins int
	// Width is the half-width of the binned range in robust standard deviations: the bins split
	// [m − Width·σ, m + Width·σ] evenly and the two outer bins also take everything beyond.
	// In (0, 100]. Default 5.
	Width float64
	// Window is the length W of the recent window, in [8, 128] samples. Default 32.
	Window int
	// Memory is the weight of a sample leaving the recent window in the reference histogram,
	// in (0,1). Default 0.002 (~500 samples).
	Memory float64
	// Rate is the step of the streaming median and MAD that place the bins, as a fraction of
	// the current MAD, in (0,1). Default 0.01.
	Rate float64
}

// DefaultRelEntropyConfig returns the defaults listed on RelEntropyConfig's fields.
func DefaultRelEntropyConfig() RelEntropyConfig {
	return RelEntropyConfig{Bins: 16, Width: 5, Window: 32, Memory: 0.002, Rate: 0.01}
}

// Validate reports the first invalid field of c.
func (c RelEntropyConfig) Validate() error {
	switch {
	case c.Bins < 4 || c.Bins > relEntMaxBins:
		return fieldError("relentropy", "bins", c.Bins, "must be in [4, 32]")
	case !(c.Width > 0 && c.Width <= 100):
		return fieldError("relentropy", "width", c.Width, "must be in (0, 100]")
	case c.Window < 8 || c.Window > relEntMaxWindow:
		return fieldError("relentropy", "window", c.Window, "must be in [8, 128]")
	case !(c.Memory > 0 && c.Memory < 1):
		return fieldError("relentropy", "memory", c.Memory, "must be in (0,1)")
	case !(c.Rate > 0 && c.Rate < 1):
		return fieldError("relentropy", "rate", c.Rate, "must be in (0,1)")
	}
	return nil
}

// relEntSeed is the number of samples that seed the median and MAD (exact mean and deviation).
const relEntSeed = 30

// RelEntropy is a distribution-change detector: it compares the histogram of the last Window
// samples with a long, exponentially fading reference histogram of the samples before them and
// reports their relative entropy (Kullback–Leibler divergence); create it with NewRelEntropy.
//
// What it measures: a change in the shape of the value distribution that a point detector
// misses because no single sample is extreme: a variance collapse (a flat line), a variance
// burst inside the usual range, the series settling on a level that used to be rare, a
// different mix of levels.
//
// Quantisation: a streaming median m and MAD d (frugal stochastic approximation as in MAD,
// step Rate·d_eff, d_eff = max(d, 1e-3·|m|, 1e-9)) place B = Bins equal bins on
// m ± Width·σ, σ = 1.4826·d_eff:
//
//	b(x) = clamp(⌊(x − m + Width·σ)/(2·Width·σ)·B⌋, 0, B−1)
//
// computed before m and d absorb x. A ring buffer keeps b of the last W = Window samples, with
// their counts c_b (Σ c_b = W). The bin of the sample leaving the window is added to the
// reference r_b with weight 1, after every r_b is multiplied by (1 − Memory) (kept as a single
// growing scale factor, so the fade is O(1)). With R = Σ r_b and a Jeffreys-like prior of half
// a recent sample per bin, α = ½:
//
//	q_b  = (r_b + α)/(R + B·α)                                      reference distribution
//	KL   = Σ_{c_b>0} (c_b/W)·ln((c_b/W)/q_b)                        nats, ≥ 0
//	Raw  = W·KL
//	G    = 2·Raw ≈ χ²(B − 1) while the distribution is unchanged (the G-test)
//	Likelihood = erf(z/√2) for z > 0, else 0, z the Wilson–Hilferty normal score of G:
//	z    = ((G/ν)^(1/3) − 1 + 2/(9ν)) / √(2/(9ν)),  ν = B − 1
//
// The window's samples are not in the reference, so a change is compared with the past only.
// Because samples overlap between successive windows, Raw is strongly autocorrelated and G is
// only roughly χ²: the ensemble calibrates Raw against its own history instead of trusting the
// likelihood.
//
// Cost: O(B) per Observe (the logarithms only for occupied recent bins, ≤ min(B, W)).
// Warm-up: 30 samples seed m and d (exact mean and deviation), then W samples fill the window
// and W more start the reference: 30 + 2·W samples (94 with the defaults) return Score{}.
// Time: sample-based; t is ignored. NaN/±Inf observations return Score{} and change nothing.
// Parameters and defaults (DefaultRelEntropyConfig): Bins 16, Width 5, Window 32, Memory 0.002,
// Rate 0.01. Memory: about 560 bytes, constant.
type RelEntropy struct {
	cfg   RelEntropyConfig
	m, d  float64 // median and MAD (after the seed)
	w     float64 // Welford sum of squares during the seed
	n     int64   // samples absorbed
	ring  [relEntMaxWindow]uint8
	head  int
	cnt   [relEntMaxBins]int32   // recent counts c_b
	ref   [relEntMaxBins]float64 // reference r_b, scaled by g
	total float64                // Σ ref, scaled by g
	g     float64                // scale of ref: true r_b = ref[b]/g
}

// NewRelEntropy returns a detector with the given configuration. It panics if cfg.Validate
// fails.
func NewRelEntropy(cfg RelEntropyConfig) *RelEntropy {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	r := &RelEntropy{cfg: cfg}
	r.Reset()
	return r
}

// Observe bins x, scores the recent window against the reference and absorbs x.
func (r *RelEntropy) Observe(_ int64, x float64) Score {
	raw, ok := r.observe(x)
	if !ok {
		return Score{}
	}
	return Score{Raw: raw, Likelihood: gTestLikelihood(2*raw, float64(r.cfg.Bins-1))}
}

// observe is Observe without the likelihood (the ensemble calibrates Raw itself); ok is false
// during the warm-up and for ignored samples.
func (r *RelEntropy) observe(x float64) (raw float64, ok bool) {
	if !finite(x) {
		return 0, false
	}
	if r.n < relEntSeed {
		n := float64(r.n + 1)
		dm := x - r.m
		mean := r.m + dm/n
		w := r.w + dm*(x-mean)
		if finite(mean) && finite(w) {
			r.m, r.w, r.n = mean, w, r.n+1
			r.d = 0.6745 * math.Sqrt(w/n)
		}
		return 0, false
	}
	b, ok := r.bin(x)
	if !ok {
		return 0, false
	}
	r.n++
	W := int64(r.cfg.Window)
	k := r.n - relEntSeed // samples binned so far, including x
	if k > W {            // the oldest sample leaves the window for the reference
		old := r.ring[r.head]
		r.cnt[old]--
		r.g /= 1 - r.cfg.Memory
		r.ref[old] += r.g
		r.total += r.g
		if r.g > 1e100 {
			r.rescale()
		}
	}
	r.ring[r.head] = b
	r.cnt[b]++
	if r.head++; r.head == r.cfg.Window {
		r.head = 0
	}
	if k <= 2*W {
		return 0, false
	}
	return math.Min(float64(W)*r.divergence(), maxRaw), true
}

// bin returns the bin of x and absorbs x into the median and MAD; ok is false if an update
// would overflow (x is then ignored).
func (r *RelEntropy) bin(x float64) (uint8, bool) {
	d := math.Max(r.d, math.Max(1e-3*math.Abs(r.m), 1e-9))
	sig := 1.4826 * d
	u := (x - r.m + r.cfg.Width*sig) / (2 * r.cfg.Width * sig) * float64(r.cfg.Bins)
	b := 0
	if u > 0 { // also false for NaN
		b = int(math.Min(u, float64(r.cfg.Bins-1)))
	}
	med, mad := medianMADStep(r.m, r.d, x, r.cfg.Rate*d)
	if !finite(med) || !finite(mad) {
		return 0, false
	}
	r.m, r.d = med, math.Max(mad, 0)
	return uint8(b), true
}

// divergence returns KL(recent ‖ reference) in nats.
func (r *RelEntropy) divergence() float64 {
	W := float64(r.cfg.Window)
	a := 0.5 * r.g // the prior α in the scaled units of ref
	var s float64
	for b, c := range r.cnt[:r.cfg.Bins] {
		if c > 0 {
			fc := float64(c)
			s += fc * math.Log(fc/(r.ref[b]+a))
		}
	}
	return math.Max(0, s/W-math.Log(W)+math.Log(r.total+float64(r.cfg.Bins)*a))
}

// rescale divides the reference and its scale by g, keeping r_b.
func (r *RelEntropy) rescale() {
	for b := range r.ref {
		r.ref[b] /= r.g
	}
	r.total /= r.g
	r.g = 1
}

// gTestLikelihood is the normal likelihood of G ~ χ²(ν) by Wilson–Hilferty, 0 below the median.
func gTestLikelihood(g, nu float64) float64 {
	v := 2 / (9 * nu)
	z := (math.Cbrt(g/nu) - 1 + v) / math.Sqrt(v)
	if !(z > 0) {
		return 0
	}
	return zLikelihood(z)
}

// Reset forgets all observations; the configuration is kept.
func (r *RelEntropy) Reset() { *r = RelEntropy{cfg: r.cfg, g: 1} }

func init() {
	RegisterDetector("relentropy", func() Detector { return NewRelEntropy(DefaultRelEntropyConfig()) })
}

var _ Detector = (*RelEntropy)(nil)
