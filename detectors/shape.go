package detectors

import "math"

const (
	shapeMaxBlocks = 7  // block means in a window; features = Blocks + 1 ≤ 8
	shapeMaxProtos = 64 // prototypes
	shapeFeatures  = shapeMaxBlocks + 1
	shapeInit      = 30 // samples of exact mean/deviation that seed the median and MAD
)

// ShapeConfig parameterises the shape-novelty detector. Start from DefaultShapeConfig.
type ShapeConfig struct {
	// Block is the number of samples averaged into one block mean, and the stride between two
	// comparisons with the prototypes (≥ 1). Default 4.
	Block int
	// Blocks is the number of block means in the window, in [2,7]; the window spans
	// Block·Blocks samples. Default 7 (28 samples).
	Blocks int
	// Prototypes is the largest number of prototypes, in [1,64]. Default 32.
	Prototypes int
	// Vigilance is the radius ρ of a prototype: the root-mean-square feature distance, in units
	// of the series' robust scale, within which a window matches it (> 0). Default 0.5.
	Vigilance float64
	// Learn is the smallest step η of a matched prototype towards the window, in (0,1].
	// Default 0.05.
	Learn float64
	// Forget is the number of comparisons τ over which an unused prototype's usage halves when
	// choosing one to replace (≥ 1). Default 500.
	Forget float64
	// Squash is the half-saturation L of the feature squashing z ↦ z/(1 + |z|/L) (> 0).
	// Default 4.
	Squash float64
	// Rate is the step of the streaming median and MAD of the series, as a fraction of the MAD,
	// in (0,1). Default 0.01.
	Rate float64
	// Warmup is the number of samples before scores are reported (≥ Block·Blocks). Default 150.
	Warmup int
	// Refractory is the number of samples over which a reported surprise fades, as in
	// EnsembleConfig (≥ 1). Default 300.
	Refractory int
	// Tail is the quantile level p of the streaming p and 1−p quantiles of the series whose
	// midpoint and half-distance normalise the block means, in (0,0.5). Default 0.05.
	Tail float64
	// Spread is the weight of the log-ratio of the window's spread to its typical value (≥ 0).
	// Default 0.3.
	Spread float64
	// RelFloor and AbsFloor bound the robust scale from below, as in MADConfig. Defaults 1e-3,
	// 1e-6.
	RelFloor, AbsFloor float64
}

// DefaultShapeConfig returns the defaults listed on ShapeConfig's fields.
func DefaultShapeConfig() ShapeConfig {
	return ShapeConfig{Block: 4, Blocks: 7, Prototypes: 32, Vigilance: 0.5, Learn: 0.05,
		Forget: 500, Squash: 4, Rate: 0.01, Tail: 0.05, Spread: 0.3, Warmup: 150, Refractory: 300,
		RelFloor: 1e-3, AbsFloor: 1e-6}
}

// Validate reports the first invalid field of c.
func (c ShapeConfig) Validate() error {
	switch {
	case c.Block < 1 || c.Block > 1<<20:
		return fieldError("shape", "block", c.Block, "must be in [1,1048576]")
	case c.Blocks < 2 || c.Blocks > shapeMaxBlocks:
		return fieldError("shape", "blocks", c.Blocks, "must be in [2,7]")
	case c.Prototypes < 1 || c.Prototypes > shapeMaxProtos:
		return fieldError("shape", "prototypes", c.Prototypes, "must be in [1,64]")
	case !(c.Vigilance > 0 && c.Vigilance < math.Inf(1)):
		return fieldError("shape", "vigilance", c.Vigilance, "must be finite and > 0")
	case !(c.Learn > 0 && c.Learn <= 1):
		return fieldError("shape", "learn", c.Learn, "must be in (0,1]")
	case !(c.Forget >= 1 && c.Forget < math.Inf(1)):
		return fieldError("shape", "forget", c.Forget, "must be finite and ≥ 1")
	case !(c.Squash > 0 && c.Squash < math.Inf(1)):
		return fieldError("shape", "squash", c.Squash, "must be finite and > 0")
	case !(c.Rate > 0 && c.Rate < 1):
		return fieldError("shape", "rate", c.Rate, "must be in (0,1)")
	case !(c.Tail > 0 && c.Tail < 0.5):
		return fieldError("shape", "tail", c.Tail, "must be in (0,0.5)")
	case !(c.Spread >= 0 && c.Spread < math.Inf(1)):
		return fieldError("shape", "spread", c.Spread, "must be finite and ≥ 0")
	case c.Warmup < c.Block*c.Blocks:
		return fieldError("shape", "warmup", c.Warmup, "must be at least Block·Blocks")
	case c.Refractory < 1:
		return fieldError("shape", "refractory", c.Refractory, "must be at least 1")
	case !(c.RelFloor >= 0 && c.RelFloor < math.Inf(1)):
		return fieldError("shape", "rel_floor", c.RelFloor, "must be finite and ≥ 0")
	case !(c.AbsFloor > 0 && c.AbsFloor < math.Inf(1)):
		return fieldError("shape", "abs_floor", c.AbsFloor, "must be finite and > 0")
	}
	return nil
}

// Shape is a shape-novelty detector: it summarises the recent window of the series into a
// short feature vector, learns a bounded set of prototype windows online and reports how far
// the current window is from the nearest one; create it with NewShape.
//
// What it measures: whether the recent *pattern* (the levels visited and the spread over the
// last Block·Blocks samples) is one the series has shown before, in the spirit of adaptive
// resonance theory (ART): a window that resonates with no learnt category is novel. A
// flattened stretch, a level between the usual ones, denser spikes or a changed spread is novel
// even when no single sample is extreme; a kind of spike the series shows every day is not.
//
// Features: with m = Block and B = Blocks, the series is cut into consecutive blocks of m
// samples, each giving its mean μ and standard deviation σ_b. The series is normalised by its
// streaming Tail and 1−Tail quantiles lo and hi (frugal stochastic approximation, step
// Rate·h: lo ← lo − Rate·h·(1−p) if x < lo, lo ← lo + Rate·h·p otherwise, mirrored for hi),
// c = (lo + hi)/2 and h = max((hi − lo)/2, RelFloor·|c|, AbsFloor), so the usual range maps to
// about [−1, 1] whatever the units. Every m samples the window of the last B blocks gives
//
//	f_1 ≤ … ≤ f_B = sorted g((μ_k − c)/h)                 the levels of the blocks
//	f_{B+1} = g(Spread·ln((σ̄ + 0.01h)/(σ̃ + 0.01h)))       σ̄ = mean_k σ_k over the window
//	g(z) = z/(1 + |z|/L)                                   squashing, |g| < L = Squash
//
// with σ̃ an EW mean of σ̄ (weight max(0.01, 1/comparisons)). Sorting makes the features
// invariant to where in the window a bump or step sits, so a periodic pattern needs few
// categories; the order of events is deliberately ignored.
//
// Prototypes: P_j ∈ ℝ^F (F = B+1), j < Prototypes, with a usage count n_j and the comparison
// t_j at which it last matched. With D = min_j √(Σ_i (f_i − P_j,i)²/F)/ρ at the nearest j:
//
//	D ≤ 1:  P_j ← P_j + max(η, 1/n_j)·(f − P_j) after n_j ← n_j + 1, t_j ← now     (resonance)
//	D > 1:  a new prototype P = f with n = 1, in a free slot, else in place of the one with the
//	        least usage n_j/(1 + (now − t_j)/τ)                                    (novelty)
//
// where ρ = Vigilance, η = Learn and τ = Forget (in comparisons). The surprise is Raw = D
// (clamped to 1e9; 0 for the very first window): above 1 the window founded a new category.
// Between comparisons Raw holds the last D.
//
// Likelihood (standalone use): u = ln(1 + D) is calibrated per series into a tail probability
// exactly as one member of the "vigil" ensemble (peaks over threshold with the ensemble's
// default Level, Rate and Memory, λ = −ln P; see Ensemble), fed once per comparison after the
// warm-up, and reported at the comparison with the same non-maximum suppression over
// Refractory samples; Likelihood = 1 − e^(−λ) (compressed beyond 1 − 1e-4), 0 between
// comparisons.
//
// Cost: each sample moves two quantiles and the open block's sums (a few operations); the
// O(Prototypes·F) search runs once per Block samples.
// Warm-up: Warmup samples (default 150) learn categories and return Score{}; the calibration
// starts after them (the first categories are novel by construction). The first 30 samples
// seed lo and hi from their mean ± 1.645 standard deviations.
// Time: sample-based; t is ignored. NaN/±Inf observations return Score{} and change nothing.
// Parameters and defaults (DefaultShapeConfig): Block 4, Blocks 7, Prototypes 32, Vigilance
// 0.5, Learn 0.05, Forget 500, Squash 4, Rate 0.01, Tail 0.05, Spread 0.3, Warmup 150,
// Refractory 300, RelFloor 1e-3, AbsFloor 1e-6. Memory: about 4.9 KiB, constant (room for 64
// prototypes of 8 features).
type Shape struct {
	cfg ShapeConfig
	cal tailCalib
	ecf EnsembleConfig // Level, Rate and Memory of the standalone calibration

	lo, hi float64 // streaming Tail and 1−Tail quantiles of x
	c      float64 // their midpoint (the running mean while seeding)
	w      float64 // Welford sum of squares while seeding
	n      int64   // finite samples seen
	sdTyp  float64 // EW mean of the window's spread σ̄

	ref       float64 // reference level of the open block (numerical stability of its sums)
	sum, sq   float64 // Σ(x − ref) and Σ(x − ref)² over the open block
	k         int     // samples in the open block
	head      int     // slot of the newest block
	full      int     // completed blocks, up to Blocks
	mean, dev [shapeMaxBlocks]float64

	np    int   // prototypes in use
	cmp   int64 // comparisons made
	proto [shapeMaxProtos][shapeFeatures]float64
	cnt   [shapeMaxProtos]float64
	used  [shapeMaxProtos]int64

	fresh   bool    // the last finite sample completed a comparison
	created bool    // the last comparison founded a new prototype
	win     int     // the prototype matched or founded by the last comparison
	lastD   float64 // the last comparison's distance D
	lastU   float64 // ln(1 + lastD)

	peak float64 // last reported λ (standalone)
	age  int64   // samples since

	invF, invL float64
}

// NewShape returns a detector with the given configuration. It panics if cfg.Validate fails.
func NewShape(cfg ShapeConfig) *Shape {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	d := &Shape{cfg: cfg}
	d.Reset()
	return d
}

// Reset forgets all observations; the configuration is kept.
func (d *Shape) Reset() {
	e := DefaultEnsembleConfig()
	*d = Shape{cfg: d.cfg, ecf: EnsembleConfig{Level: e.Level, Rate: e.Rate, Memory: e.Memory},
		invF: 1 / float64(d.cfg.Blocks+1), invL: 1 / d.cfg.Squash}
}

// Observe absorbs x and, at the end of each block, scores the window against the prototypes.
func (d *Shape) Observe(_ int64, x float64) Score {
	if !d.step(x) {
		return Score{}
	}
	if d.n <= int64(d.cfg.Warmup) {
		return Score{}
	}
	s := Score{Raw: d.lastD}
	if !d.fresh {
		d.age++
		return s
	}
	lam := math.Min(d.cal.logTailProb(d.lastU, &d.ecf), maxRaw)
	if lam > d.peak*math.Max(0, 1-float64(d.age)/float64(d.cfg.Refractory)) {
		d.peak, d.age = lam, 0
		s.Likelihood = likelihood(lam, 0.9999)
	} else {
		d.age++
	}
	return s
}

// step absorbs x; it reports false (and changes nothing) for a non-finite x and sets d.fresh
// when a comparison was made, with its distance in d.lastD.
func (d *Shape) step(x float64) bool {
	d.fresh = false
	if !finite(x) {
		return false
	}
	cfg := &d.cfg
	if d.n < shapeInit {
		n := float64(d.n + 1)
		dm := x - d.c
		mean := d.c + dm/n
		w := d.w + dm*(x-mean)
		if !finite(mean) || !finite(w) {
			return false
		}
		d.c, d.w = mean, w
		h := 1.645 * math.Sqrt(w/n)
		d.lo, d.hi = mean-h, mean+h
		if d.n == 0 {
			d.ref = x
		}
	} else {
		step := cfg.Rate * d.scale()
		lo, hi := d.lo, d.hi
		if x < lo {
			lo -= step * (1 - cfg.Tail)
		} else {
			lo += step * cfg.Tail
		}
		if x > hi {
			hi += step * (1 - cfg.Tail)
		} else {
			hi -= step * cfg.Tail
		}
		if !finite(lo) || !finite(hi) {
			return false
		}
		if hi < lo {
			lo, hi = (lo+hi)/2, (lo+hi)/2
		}
		d.lo, d.hi = lo, hi
		d.c = (lo + hi) / 2
	}
	d.n++
	v := x - d.ref
	sum, sq := d.sum+v, d.sq+v*v
	if !finite(sq) { // an extreme value: count it as the reference level instead
		sum, sq = d.sum, d.sq
	}
	d.sum, d.sq = sum, sq
	d.k++
	if d.k < cfg.Block {
		return true
	}
	m := float64(d.k)
	mu := d.sum / m
	d.head++
	if d.head == cfg.Blocks {
		d.head = 0
	}
	d.mean[d.head] = d.ref + mu
	d.dev[d.head] = math.Sqrt(math.Max(0, d.sq/m-mu*mu))
	d.ref, d.sum, d.sq, d.k = d.c, 0, 0, 0
	if d.full < cfg.Blocks {
		d.full++
		if d.full < cfg.Blocks {
			return true
		}
	}
	d.compare()
	return true
}

func (d *Shape) scale() float64 {
	return math.Max((d.hi-d.lo)/2, math.Max(d.cfg.RelFloor*math.Abs(d.c), d.cfg.AbsFloor))
}

// compare builds the feature vector of the window, finds the nearest prototype and learns.
func (d *Shape) compare() {
	cfg := &d.cfg
	B := cfg.Blocks
	sc := d.scale()
	inv := 1 / sc
	var f [shapeFeatures]float64 // f[B:shapeFeatures-1] stay 0 in every vector
	sd := 0.0
	for i := range B { // the order of the blocks does not matter: they are sorted
		z := (d.mean[i] - d.c) * inv
		f[i] = z / (1 + math.Abs(z)*d.invL)
		sd += d.dev[i]
	}
	for i := 1; i < B; i++ { // insertion sort of the B block levels
		v := f[i]
		k := i - 1
		for k >= 0 && f[k] > v {
			f[k+1] = f[k]
			k--
		}
		f[k+1] = v
	}
	sd /= float64(B)
	eps := 0.01 * sc
	z := cfg.Spread * math.Log((sd+eps)/(d.sdTyp+eps))
	f[shapeFeatures-1] = z / (1 + math.Abs(z)*d.invL)
	d.sdTyp += math.Max(0.01, 1/float64(d.cmp+1)) * (sd - d.sdTyp)
	best, bi := math.Inf(1), -1
	for p := range d.np {
		pr := &d.proto[p]
		dist := 0.0
		for i := range shapeFeatures {
			e := f[i] - pr[i]
			dist += e * e
		}
		if dist < best {
			best, bi = dist, p
		}
	}
	d.cmp++
	D := math.Sqrt(best*d.invF) / cfg.Vigilance
	d.created = false
	if bi >= 0 && D <= 1 {
		d.cnt[bi]++
		a := math.Max(cfg.Learn, 1/d.cnt[bi])
		pr := &d.proto[bi]
		for i := range shapeFeatures {
			pr[i] += a * (f[i] - pr[i])
		}
		d.used[bi] = d.cmp
		d.win = bi
	} else {
		slot := d.np
		if slot < cfg.Prototypes {
			d.np++
		} else {
			low := math.Inf(1)
			for p := range d.np {
				u := d.cnt[p] / (1 + float64(d.cmp-d.used[p])/cfg.Forget)
				if u < low {
					low, slot = u, p
				}
			}
		}
		d.proto[slot] = f
		d.cnt[slot], d.used[slot] = 1, d.cmp
		d.created = true
		d.win = slot
	}
	if bi < 0 {
		D = 0 // the first window founds the first category: nothing to be surprised by
	}
	d.lastD = math.Min(D, maxRaw)
	d.lastU = math.Log1p(d.lastD)
	d.fresh = true
}

func init() {
	RegisterDetector("shape", func() Detector { return NewShape(DefaultShapeConfig()) })
}

var _ Detector = (*Shape)(nil)
