package detectors

import (
	"math"
	"slices"
)

const (
	ctxTableBits = 14
	ctxTableSize = 1 << ctxTableBits // counters in the transition table
	ctxTilings   = 2                 // quantisations, offset by half a bin
	ctxMaxOrder  = 8
	ctxMaxWarmup = 512
	ctxMaxBin    = 1 << 40 // bin indices are clamped to ±ctxMaxBin
)

// ContextConfig parameterises the sequence-novelty detector. Start from DefaultContextConfig.
type ContextConfig struct {
	// Bins is the number of quantisation bins across the central 90% of the warm-up values
	// (their 5% to 95% quantiles), in [2,1000]. Default 10.
	Bins float64
	// Orders is the number of context lengths k = 1..Orders whose transitions are counted, in
	// [1,8]. Default 4.
	Orders int
	// Warmup is the number of samples buffered before the bin width is fixed (in [16,512] and
	// ≥ Orders+1). Default 150.
	Warmup int
	// Memory is the number of samples after which every counter has been halved once (the
	// counts' aging), at least 64. Default 2048.
	Memory int
	// Smooth is the weight of the newest surprise in the reported exponentially weighted
	// average, in (0,1]. Default 0.4.
	Smooth float64
}

// DefaultContextConfig returns the defaults listed on ContextConfig's fields.
func DefaultContextConfig() ContextConfig {
	return ContextConfig{Bins: 10, Orders: 4, Warmup: 150, Memory: 2048, Smooth: 0.4}
}

// Validate reports the first invalid field of c.
func (c ContextConfig) Validate() error {
	switch {
	case !(c.Bins >= 2 && c.Bins <= 1000):
		return fieldError("context", "bins", c.Bins, "must be in [2,1000]")
	case c.Orders < 1 || c.Orders > ctxMaxOrder:
		return fieldError("context", "orders", c.Orders, "must be in [1,8]")
	case c.Warmup < 16 || c.Warmup > ctxMaxWarmup || c.Warmup < c.Orders+1:
		return fieldError("context", "warmup", c.Warmup, "must be in [16,512] and above orders")
	case c.Memory < 64:
		return fieldError("context", "memory", c.Memory, "must be at least 64")
	case !(c.Smooth > 0 && c.Smooth <= 1):
		return fieldError("context", "smooth", c.Smooth, "must be in (0,1]")
	}
	return nil
}

// Context is a sequence-novelty detector, registered as "context": it quantises the series into
// bins, remembers which short sequences of bins have occurred, and scores the fraction of the
// sequences ending at the current sample that were never seen before; create it with
// NewContext.
//
// What it measures: contextual anomalies, values that are ordinary in range but not in
// sequence, e.g. a flat stretch where the series normally cycles, a cycle that stops short, a
// burst of spikes denser than ever seen. Point detectors (z-scores, forecast errors) see
// little there because every single value is within its usual range.
//
// Quantisation: the first Warmup samples are buffered; their 5% and 95% quantiles q₅, q₉₅ fix
// the origin o = q₅ and the bin width w = max(q₉₅ − q₅, 10⁻³·|median|, 10⁻⁹)/Bins for the rest
// of the series (no look-ahead). Tiling τ ∈ {0, 1} maps x to the bin b_τ = ⌊(x − o)/w + τ/2⌋:
// two grids offset by half a bin, so that noise around one grid's bin edge is not all novelty.
// Values outside the warm-up range fall into new bins, which are novel by construction. The
// buffered samples are then replayed into the table, so the warm-up is also learned.
//
// Memory of sequences: a table of 2^14 saturating 8-bit counters indexed by a hash of
// (τ, b_τ,t−k, …, b_τ,t−1, b_τ,t), the (k+1)-gram of bins ending at t, for each tiling τ and
// order k = 1..Orders. With n_τ,k the counter of x_t's gram before x_t is counted,
//
//	u_t = (1 / (2·Orders)) · Σ_τ Σ_k 1{n_τ,k = 0}         (fraction of never-seen grams)
//	r_t = r_{t−1} + Smooth·(u_t − r_{t−1})
//
// and every gram's counter is then incremented. Hash collisions can only make a sequence look
// familiar (a missed novelty), never the reverse.
//
// Aging: every counter is halved once per Memory samples, the table's 2^11 words (eight
// counters each) in turn, ⌈2^11/Memory⌉ or fewer per sample, so there is no periodic spike of
// work; a gram seen c times is forgotten after about log₂(c)+1 periods of Memory samples:
// patterns that stopped occurring become novel again and a new regime becomes familiar.
//
// Likelihood: 1 − e^(−r), r ∈ [0,1], which is not calibrated across series (a noisy series
// makes novel grams all the time); the "vigil" ensemble (Ensemble) calibrates it against the
// series' own history. Raw is r.
//
// Warm-up: Warmup samples (default 150) return Score{}. Time: sample-based; t is ignored.
// NaN/±Inf return Score{} and change nothing. Parameters and defaults (DefaultContextConfig):
// Bins 10, Orders 4, Warmup 150, Memory 2048, Smooth 0.4. Memory: about 20 KiB, constant (the
// 16 KiB table and the 4 KiB warm-up buffer).
type Context struct {
	// The state every sample reads comes first, the table after it and the warm-up buffer,
	// unused once the grid is fixed, last: fewer cache lines per sample.
	cfg    ContextConfig
	origin float64
	width  float64
	r      float64 // smoothed surprise
	n      int64
	age    int                            // samples into the current aging period
	cursor int                            // next word of the table to halve in this period
	hist   [ctxMaxOrder][ctxTilings]int64 // hist[k][τ]: bin k+1 samples back; hist[0] is the latest
	tab    [ctxTableSize / 8]uint64       // 8-bit counters, eight to a word
	buf    [ctxMaxWarmup]float64
}

// NewContext returns a detector with the given configuration. It panics if cfg.Validate fails.
func NewContext(cfg ContextConfig) *Context {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	c := &Context{cfg: cfg}
	c.Reset()
	return c
}

// Reset forgets all observations; the configuration is kept.
func (c *Context) Reset() {
	cfg := c.cfg
	*c = Context{cfg: cfg}
}

// Observe scores x against the sequences seen so far, then absorbs it.
func (c *Context) Observe(_ int64, x float64) Score {
	if !finite(x) {
		return Score{}
	}
	r, ok := c.novelty(x)
	if !ok {
		return Score{}
	}
	return Score{Raw: r, Likelihood: -math.Expm1(-r)}
}

// novelty is Observe without the likelihood for finite x: it returns the smoothed surprise r
// and whether x was scored (false during the warm-up).
func (c *Context) novelty(x float64) (float64, bool) {
	if c.n < int64(c.cfg.Warmup) {
		c.buf[c.n] = x
		c.n++
		if c.n == int64(c.cfg.Warmup) {
			c.fixScale()
		}
		return 0, false
	}
	c.n++
	u := c.step(x)
	c.r += c.cfg.Smooth * (u - c.r)
	return c.r, true
}

// fixScale sets the grid from the buffered warm-up samples and replays them.
func (c *Context) fixScale() {
	w := c.cfg.Warmup
	var tmp [ctxMaxWarmup]float64
	copy(tmp[:w], c.buf[:w])
	slices.Sort(tmp[:w])
	c.setGrid(tmp[:w])
	for i, x := range c.buf[:w] {
		b0, b1 := c.bins(x)
		if i >= c.cfg.Orders {
			c.learn(b0, b1)
		}
		c.push(b0, b1)
	}
}

func (c *Context) setGrid(sorted []float64) {
	n := len(sorted)
	lo, hi := sorted[n/20], sorted[n-1-n/20]
	med := sorted[n/2]
	span := math.Max(hi-lo, math.Max(1e-3*math.Abs(med), 1e-9))
	c.origin, c.width = lo, span/c.cfg.Bins
	if !finite(c.width) || c.width <= 0 { // a span overflowing float64
		c.width = math.MaxFloat64 / 4
	}
}

// bins returns x's bin on both grids.
func (c *Context) bins(x float64) (int64, int64) {
	v := (x - c.origin) / c.width
	v = max(-ctxMaxBin, min(ctxMaxBin, v)) // also maps an overflowed ±Inf (v is never NaN)
	return int64(math.Floor(v)), int64(math.Floor(v + 0.5))
}

func (c *Context) push(b0, b1 int64) {
	for j := c.cfg.Orders - 1; j > 0; j-- {
		c.hist[j] = c.hist[j-1]
	}
	c.hist[0] = [ctxTilings]int64{b0, b1}
}

// ctxMix folds v into the hash h.
func ctxMix(h uint64, v int64) uint64 {
	h = (h ^ uint64(v)) * 0x9e3779b97f4a7c15
	return h ^ h>>31
}

func ctxIndex(h uint64) uint32 { return uint32(h >> (64 - ctxTableBits)) }

// learn counts the contexts and transitions into bins (b0, b1) without scoring.
func (c *Context) learn(b0, b1 int64) { c.visit(b0, b1, false) }

// step scores x, learns it, ages the table and returns the mean surprise.
func (c *Context) step(x float64) float64 {
	b0, b1 := c.bins(x)
	u := c.visit(b0, b1, true)
	c.push(b0, b1)
	c.age++ // halve the words in turn, all of them once per Memory samples
	for to := c.age * len(c.tab) / c.cfg.Memory; c.cursor < to; c.cursor++ {
		c.tab[c.cursor] = c.tab[c.cursor] >> 1 & 0x7f7f7f7f7f7f7f7f
	}
	if c.age >= c.cfg.Memory {
		c.age, c.cursor = 0, 0
	}
	return u
}

// visit counts the grams ending in bins (b0, b1) and, if score, returns the fraction of them
// never seen before (within the memory).
func (c *Context) visit(b0, b1 int64, score bool) float64 {
	novel := 0
	for tau, b := range [ctxTilings]int64{b0, b1} {
		h := ctxMix(uint64(0x5bd1e995+tau), b) // the unigram (b)
		for k := range c.cfg.Orders {
			h = ctxMix(h, c.hist[k][tau]) // the (k+2)-gram (b, b₋₁, …, b₋ₖ₋₁)
			i := ctxIndex(h)
			w := &c.tab[i>>3]
			sh := i & 7 * 8
			switch uint8(*w >> sh) {
			case 0:
				novel++
			case 255:
				continue
			}
			*w += 1 << sh
		}
	}
	if !score {
		return 0
	}
	return float64(novel) / float64(ctxTilings*c.cfg.Orders)
}

func init() {
	RegisterDetector("context", func() Detector { return NewContext(DefaultContextConfig()) })
}

var _ Detector = (*Context)(nil)
