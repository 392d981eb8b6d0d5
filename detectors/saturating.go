package detectors

import (
	"math"
	"time"
)

// maxBlocks is the capacity of SaturatingTrend's ring of block means.
const maxBlocks = 16

// SaturatingTrendConfig parameterises the saturating trend forecaster. Start from
// DefaultSaturatingTrendConfig.
type SaturatingTrendConfig struct {
	// Slow is the robust linear trend that forecasts by default (see RobustTrendConfig).
	// Default DefaultRobustTrendConfig() with its ramp test off (RampBlock 0): the fast ramp
	// of SaturatingTrend plays that part.
	Slow RobustTrendConfig
	// Block is the length of the blocks whose means the shape tests compare. Default 5m.
	Block time.Duration
	// FastBlocks is how many of the latest full blocks the fast ramp test fits
	// (4 … 16). Default 8.
	FastBlocks int
	// FastHorizon: the fast ramp is trusted for crossings within this time (≥ 0). Default 30m.
	FastHorizon time.Duration
	// Ramp: the fast ramp needs the line's residual sum of squares below Ramp × the level
	// shift's (0 … 1]. Default 0.5.
	Ramp float64
	// RampZ: the fast ramp's slope must be RampZ standard errors from zero, the error from the
	// long-run scale of block-to-block changes (> 0). Default 4.
	RampZ float64
	// SlopeZ scales the long-run spread of the slow slope in its confidence; 0 turns the cap
	// off (≥ 0). Default 0 (experimental: see the type's documentation).
	SlopeZ float64
}

// DefaultSaturatingTrendConfig returns the defaults listed on SaturatingTrendConfig's fields.
func DefaultSaturatingTrendConfig() SaturatingTrendConfig {
	slow := DefaultRobustTrendConfig()
	slow.RampBlock = 0 // the fast ramp below does that job
	return SaturatingTrendConfig{Slow: slow, Block: 5 * time.Minute,
		FastBlocks: 8, FastHorizon: 30 * time.Minute, Ramp: 0.5, RampZ: 4, SlopeZ: 0}
}

// Validate reports the first invalid field of c.
func (c SaturatingTrendConfig) Validate() error {
	if err := c.Slow.Validate(); err != nil {
		return err
	}
	switch {
	case c.Block <= 0:
		return fieldError("saturating_trend", "block", c.Block, "must be positive")
	case c.FastBlocks < 4 || c.FastBlocks > maxBlocks:
		return fieldError("saturating_trend", "fast_blocks", c.FastBlocks, "must be between 4 and 16")
	case c.FastHorizon < 0:
		return fieldError("saturating_trend", "fast_horizon", c.FastHorizon, "must be zero or positive")
	case !(c.Ramp > 0 && c.Ramp <= 1):
		return fieldError("saturating_trend", "ramp", c.Ramp, "must be in (0, 1]")
	case !(c.RampZ > 0) || math.IsInf(c.RampZ, 0):
		return fieldError("saturating_trend", "ramp_z", c.RampZ, "must be positive")
	case !(c.SlopeZ >= 0) || math.IsInf(c.SlopeZ, 0):
		return fieldError("saturating_trend", "slope_z", c.SlopeZ, "must be zero (off) or positive")
	}
	return nil
}

// SaturatingTrend is a forecaster that tells a series heading for a level from one that rose
// and is levelling off below it (a GPU heating up under a new job, a cache warming up), and
// sees a sustained steep ramp sooner than a one-hour trend can; create it with
// NewSaturatingTrend.
//
// Model. A RobustTrend (Slow) forecasts by default. Alongside it the series is cut into blocks
// of length Block (5m, aligned on Unix time) and the means m_j of the last 16 closed blocks are
// kept in a ring (an empty block inside a gap shorter than the ring is filled by linear
// interpolation; a longer gap empties the ring). Two long-run scales are kept, each a
// time-discounted mean with clipping so that a failure moves them little:
//
//	σ_D = 1.2533·E|m_j − m_(j−1)|   block-to-block change, clipped at 4σ_D, discount ≈ 1 day
//	σ_β = 1.2533·E|β − β̄|           the slow slope sampled once per block around its long-run
//	                                mean β̄, both clipped at 2σ_β, discount ≈ 3 days
//
// Fast ramp (the saturating-versus-linear choice). On the last FastBlocks means (8, 40 min) a
// line m ≈ a + b·j and the best single level shift (two means, split at the change point that
// minimises the residual sum of squares) are fitted. A first-order rise with a short time
// constant (a job heating a GPU: 2 min) has saturated within a block or two and is explained by
// the shift; a sustained ramp (a failing fan: 1–4 h) by the line. If SSR_line ≤ Ramp·SSR_shift,
// b points to the level and |b| > RampZ·SE_b, SE_b = (σ_D/√2)/√Σ(j−j̄)², the ramp's own
// forecast is used when it comes within FastHorizon:
//
//	ETA = (L' − (a + b·j_now))/b · Block,  Confidence = Φ(|b|/SE_b)
//
// L' = L ∓ Margin·σ as in RobustTrend, j_now the current time in block units.
//
// ETAWithin (what a Watch uses) caps that Confidence at the probability that the ramp's line,
// with the variance of a fitted mean, is within Margin·σ of L at now + horizon.
//
// Slow forecast. Otherwise RobustTrend's ETA (ETAWithin: RobustTrend's ETAWithin); with SlopeZ > 0 its Confidence is capped at
// Φ(dir·β/(SlopeZ·σ_β)): the slope must also stand out from how much this series' one-hour
// slope usually wanders (a job step read as a trend for an hour, a daily cycle). The cap is
// off by default: on `vigil bench forecast` it removes the thermal false alarms but costs
// slow memory leaks and fan failures their predictions on other seeds.
//
// Warm-up: nothing is forecast before FastBlocks blocks are closed (40 min with the defaults)
// and the slow trend is ready; the scales start as plain means. Memory: O(1), about 1.6 KiB
// (the RobustTrend with its ramp ring, unused here, the 16-mean ring, the scales). Observe is O(1) and allocation-free; ETA
// costs O(FastBlocks). NaN/±Inf values and samples older than the newest are ignored.
//
// Defaults (DefaultSaturatingTrendConfig, chosen with `vigil bench forecast`): Slow
// DefaultRobustTrendConfig() without its ramp test, Block 5m, FastBlocks 8, FastHorizon 30m, Ramp 0.5,
// RampZ 4, SlopeZ 0.
type SaturatingTrend struct {
	cfg  SaturatingTrendConfig
	slow RobustTrend
	blk  int64 // Block in ns

	cur   int64     // index of the current (open) block: t / Block
	sum   float64   // of the current block's values
	cnt   int       // samples in the current block
	last  int64     // index of the newest closed block
	ring  blockRing // the newest closed blocks' means, in means
	means [maxBlocks]float64
	lastT int64
	seen  bool
	absD  float64 // discounted E|D|, D the change between successive block means
	nd    int64
	meanB float64 // discounted mean of β, the slow slope at the end of each block
	absB  float64 // discounted E|β − β̄|
	nbeta int64
}

// NewSaturatingTrend returns a forecaster with the given configuration. It panics if
// cfg.Validate fails: validate configurations read from files first.
func NewSaturatingTrend(cfg SaturatingTrendConfig) *SaturatingTrend {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &SaturatingTrend{cfg: cfg, slow: *NewRobustTrend(cfg.Slow), blk: int64(cfg.Block)}
}

// Observe absorbs the sample x taken at t (Unix ns).
func (st *SaturatingTrend) Observe(t int64, x float64) {
	if !finite(x*x) || st.seen && t < st.lastT {
		return
	}
	st.slow.Observe(t, x)
	st.lastT = t
	b := t / st.blk
	if !st.seen {
		st.seen, st.cur = true, b
	}
	if b > st.cur {
		st.closeBlock(b)
	}
	st.sum += x
	st.cnt++
}

// closeBlock ends the current block; b is the index of the block that opens.
func (st *SaturatingTrend) closeBlock(b int64) {
	m := st.sum / float64(st.cnt)
	gap := st.cur - st.last - 1 // empty blocks before the closing one
	prev := st.means[st.ring.back(0, maxBlocks)]
	switch {
	case st.ring.n == 0 || gap >= maxBlocks:
		st.ring.clear()
	case gap > 0:
		for i := int64(1); i <= gap; i++ {
			st.means[st.ring.push(maxBlocks)] = prev + (m-prev)*float64(i)/float64(gap+1)
		}
	}
	if st.ring.n > 0 && gap == 0 {
		st.noteDiff(m - prev)
	}
	if st.slow.Ready() {
		st.noteSlope(st.slow.Slope())
	}
	st.means[st.ring.push(maxBlocks)] = m
	st.last, st.cur, st.sum, st.cnt = st.cur, b, 0, 0
}

// noteDiff moves E|D| towards |d|, clipped at 4 σ_D once 12 changes were seen, discounted over
// about a day of blocks; while E|D| is 0 (only flat blocks so far) the first change sets it, or
// after a long flat stretch the discounted, clipped mean would take days to learn the spread.
func (st *SaturatingTrend) noteDiff(d float64) {
	st.nd++
	d = math.Abs(d)
	a := 1 / float64(st.nd)
	if st.absD == 0 { // nothing but flat blocks so far: the first change sets the scale
		st.absD = d
		return
	}
	if st.nd > 12 {
		d = math.Min(d, 4*1.2533*st.absD)
		a = math.Max(a, float64(st.blk)/float64(24*time.Hour))
	}
	st.absD += a * (d - st.absD)
}

// noteSlope moves the slope's long-run mean β̄ and spread E|β − β̄| towards this block's β,
// clipped at 2σ_β once 12 slopes were seen, discounted over about 3 days of blocks; while
// E|β − β̄| is 0 after that (every slope the same) the first other slope sets it.
func (st *SaturatingTrend) noteSlope(b float64) {
	st.nbeta++
	a := 1 / float64(st.nbeta)
	if st.nbeta > 12 {
		a = math.Max(a, float64(st.blk)/float64(72*time.Hour))
	}
	dev := math.Abs(b - st.meanB)
	if st.nbeta > 12 && st.absB == 0 { // every slope so far the same: the first other one sets it
		st.meanB += a * (b - st.meanB)
		st.absB = dev
		return
	}
	if st.nbeta > 12 {
		dev = math.Min(dev, 2*1.2533*st.absB)
		b = st.meanB + math.Max(-dev, math.Min(dev, b-st.meanB))
	}
	st.meanB += a * (b - st.meanB)
	st.absB += a * (dev - st.absB)
}

// recent copies the latest n closed block means, oldest first, into buf.
func (st *SaturatingTrend) recent(buf *[maxBlocks]float64, n int) []float64 {
	for i := 0; i < n; i++ {
		buf[n-1-i] = st.means[st.ring.back(i, maxBlocks)]
	}
	return buf[:n]
}

// shapeFit compares a line with a level shift on the block means m (oldest first).
type shapeFit struct {
	a, b     float64 // line m_j ≈ a + b·j
	seB      float64 // standard error of b from the residuals
	cxx      float64 // Σ(j − j̄)²
	ssrLin   float64
	ssrShift float64
	shift    float64 // right mean − left mean of the best level shift
}

func fitShape(m []float64) shapeFit {
	n := float64(len(m))
	var sx, sxx, sy, syy, sxy float64
	for j, v := range m {
		x := float64(j)
		sx, sxx, sy, syy, sxy = sx+x, sxx+x*x, sy+v, syy+v*v, sxy+x*v
	}
	cxx := sxx - sx*sx/n
	cxy := sxy - sx*sy/n
	cyy := syy - sy*sy/n
	var f shapeFit
	f.b = cxy / cxx
	f.a = (sy - f.b*sx) / n
	f.ssrLin = math.Max(0, cyy-cxy*cxy/cxx)
	f.seB = math.Sqrt(f.ssrLin / (n - 2) / cxx)
	f.cxx = cxx
	f.ssrShift = math.Inf(1)
	var ls, lss float64
	for k := 1; k < len(m); k++ {
		ls, lss = ls+m[k-1], lss+m[k-1]*m[k-1]
		kl, kr := float64(k), n-float64(k)
		rs, rss := sy-ls, syy-lss
		ssr := lss - ls*ls/kl + rss - rs*rs/kr
		if ssr < f.ssrShift {
			f.ssrShift, f.shift = ssr, rs/kr-ls/kl
		}
	}
	return f
}

// ETA returns when the series reaches level, seen from now (Unix ns).
func (st *SaturatingTrend) ETA(now int64, level float64) Forecast {
	return st.forecast(now, level, -1)
}

// ETAWithin is ETA with Confidence the probability that the series reaches level within
// horizon of now: for the fast ramp, that the block-mean line is within Margin·σ of level at
// now+horizon; otherwise RobustTrend.ETAWithin's.
func (st *SaturatingTrend) ETAWithin(now int64, level float64, horizon time.Duration) Forecast {
	return st.forecast(now, level, max(horizon, 0))
}

// forecast is ETA (horizon < 0) or ETAWithin.
func (st *SaturatingTrend) forecast(now int64, level float64, horizon time.Duration) Forecast {
	if !finite(level) || st.ring.n < st.cfg.FastBlocks {
		return Forecast{}
	}
	var fs Forecast
	if horizon < 0 {
		fs = st.slow.ETA(now, level)
	} else {
		fs = st.slow.ETAWithin(now, level, horizon)
	}
	var buf [maxBlocks]float64
	dir := math.Copysign(1, level-st.means[st.ring.back(0, maxBlocks)])
	target := level - dir*st.slow.margin()
	// Fast ramp: the latest FastBlocks means lie on a line heading for the level.
	fm := st.recent(&buf, st.cfg.FastBlocks)
	ff := fitShape(fm)
	// σ of a block mean from the long-run changes: Var D = 2 Var m.
	seB := 1.2533 * st.absD / math.Sqrt2 / math.Sqrt(ff.cxx)
	if st.nd >= 12 && ff.ssrLin <= st.cfg.Ramp*ff.ssrShift && dir*ff.b > st.cfg.RampZ*seB {
		bs := float64(st.blk) / 1e9
		jNow := float64(len(fm)-1) + (float64(now)/float64(st.blk) - float64(st.last) - 0.5)
		xNow := ff.a + ff.b*jNow
		eta := (target - xNow) / ff.b * bs
		if eta <= st.cfg.FastHorizon.Seconds() {
			conf := normCDF(dir * ff.b / seB)
			if horizon >= 0 {
				// The line's value at now+horizon, with the variance of a fitted mean.
				jH := jNow + horizon.Seconds()/bs
				jm := float64(len(fm)-1) / 2
				n := float64(len(fm))
				sd := seB * math.Sqrt(ff.cxx/n+(jH-jm)*(jH-jm))
				conf = math.Min(conf, normCDF(dir*(ff.a+ff.b*jH-target)/sd))
			}
			return Forecast{ETA: time.Duration(math.Max(0, eta) * 1e9), Confidence: conf, OK: true}
		}
	}
	// The slope must also stand out from how much this series' slope usually wanders.
	if fs.OK && st.cfg.SlopeZ > 0 && st.nbeta > 12 && st.absB > 0 {
		fs.Confidence = math.Min(fs.Confidence, normCDF(dir*st.slow.Slope()/(st.cfg.SlopeZ*1.2533*st.absB)))
	}
	return fs
}

// Predict returns the slow trend's value at now+horizon with its 95% prediction interval.
func (st *SaturatingTrend) Predict(now int64, horizon time.Duration) (value, lo, hi float64, ok bool) {
	return st.slow.Predict(now, horizon)
}

// Ready reports whether the warm-up is over.
func (st *SaturatingTrend) Ready() bool { return st.slow.Ready() && st.ring.n >= st.cfg.FastBlocks }

// Slope returns the slow trend's slope in units per second.
func (st *SaturatingTrend) Slope() float64 { return st.slow.Slope() }

// Level returns the slow trend's fitted value at now (Unix ns).
func (st *SaturatingTrend) Level(now int64) float64 { return st.slow.Level(now) }

// Reset forgets all samples; the configuration is kept.
func (st *SaturatingTrend) Reset() { *st = *NewSaturatingTrend(st.cfg) }

func init() {
	RegisterForecaster("saturating_trend", func() Forecaster { return NewSaturatingTrend(DefaultSaturatingTrendConfig()) })
}

var (
	_ Forecaster        = (*SaturatingTrend)(nil)
	_ HorizonForecaster = (*SaturatingTrend)(nil)
)
