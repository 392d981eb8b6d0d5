package detectors

import "math"

// potInit is the number of surprises a tail calibrator absorbs before it judges.
const potInit = 30

const (
	seasonBins = 24 // hours of the day (UTC) of the seasonal dispersion
	seasonClip = 6  // |z| enters the dispersions clipped at this
)

// seasonScale divides the statistics of the two value members (Holt–Winters and MAD) by how
// much more each disperses at this hour of the day than overall, so that routinely turbulent
// hours (daily bursts of tweets or traffic, the edges of a daily square wave) stop surprising
// while quiet hours are judged as before. Both members see every sample, so they share the
// hours visited and the count, and their dispersions at an hour sit side by side (one cache
// line per sample for both).
type seasonScale struct {
	seen uint32                 // hours visited
	n    int64                  // samples absorbed
	all  [2]float64             // per member, EW mean of min(|z|, seasonClip), weight max(Memory, 1/n)
	hour [seasonBins][2]float64 // per hour and member, EW mean of min(|z|, seasonClip), weight Season
}

// scale returns z[j]/max(1, D_h/D) for each member j for a sample in hour h (D_h and D before z
// is absorbed) and absorbs z.
func (s *seasonScale) scale(h int, z [2]float64, cfg *EnsembleConfig) [2]float64 {
	if cfg.Season == 0 {
		return z
	}
	if s.seen&(1<<h) == 0 {
		s.seen |= 1 << h
		s.hour[h] = s.all
	}
	s.n++
	w := cfg.Memory
	if float64(s.n)*w < 1 {
		w = 1 / float64(s.n)
	}
	d := &s.hour[h]
	for j := range z {
		a := min(math.Abs(z[j]), seasonClip)
		if d[j] > s.all[j] && s.all[j] > 0 {
			z[j] *= s.all[j] / d[j]
		}
		s.all[j] += w * (a - s.all[j])
		d[j] += cfg.Season * (a - d[j])
	}
	return z
}

// tailCalib turns one member's surprises into upper-tail probabilities (peaks over threshold).
type tailCalib struct {
	mean, dev float64 // EW mean and mean absolute deviation of the surprise
	q         float64 // streaming Level-quantile of the surprise
	excess    float64 // EW mean of the excesses u − q
	base      float64 // −ln(1 − Level), the λ at the quantile (set during the first potInit)
	n         int64
}

// logTailProb absorbs the surprise u ≥ 0 and returns λ = −ln P(U ≥ u) under the exponential
// tail model: λ = −ln(1−π) + (u − q)/e for u > q, else 0.
func (c *tailCalib) logTailProb(u float64, cfg *EnsembleConfig) float64 {
	c.n++
	a := cfg.Memory
	if float64(c.n)*a < 1 { // the first 1/Memory surprises: the plain running mean
		a = max(a, 1/float64(c.n))
	}
	d := u - c.mean
	c.mean += a * d
	c.dev += a * (math.Abs(d) - c.dev)
	if c.n <= potInit { // start from the maximum: the quantile then settles from above
		c.q = max(c.q, u)
		c.excess = max(c.excess, c.dev)
		c.base = -math.Log1p(-cfg.Level)
		return 0
	}
	sc := max(c.dev, 1e-3)
	if u <= c.q || u < 1e-6 { // below the quantile, or a rounding error on a flat line
		c.q = max(0, c.q-cfg.Rate*sc*(1-cfg.Level))
		return 0
	}
	lam := c.base + (u-c.q)/max(c.excess, 0.1*sc)
	c.excess += 5 * cfg.Rate * ((u - c.q) - c.excess)
	c.q += cfg.Rate * sc * cfg.Level
	return lam
}

const (
	histBins  = 64    // bins of the long-memory histogram, per sign
	histWidth = 0.125 // bin width in nats of surprise: the bins cover u < 8 (|z| < 2980)
	histRefit = 32    // the tail model is refitted every histRefit samples
)

// histCalib is the long-memory calibrator: a slowly forgetting histogram of one member's
// surprises, one per sign of its statistic, with an exponential tail fitted to the top of each.
//
// Layout: a sample reads the first cache line (n … top) and one bin of ws; lp and excess only
// in the tail. The struct's size is a multiple of 64 bytes and Ensemble keeps its calibrators
// first, so each starts a cache line and no bin straddles two (TestEnsembleLayout): the
// controller keeps thousands of series, mostly cold in the cache.
type histCalib struct {
	n    int64
	inc  float64    // weight of the next sample (grows by 1/(1−History))
	grow float64    // 1/(1−History)
	tot  float64    // total weight
	q    [2]float64 // tail start per sign
	top  [2]uint8   // per sign, no bin above top has ever had weight (fit starts there)
	_    [14]byte
	// ws[sign][bin] holds the bin's weight and weighted sum of u side by side.
	ws     [2][histBins][2]float64
	lp     [2]float64 // −ln P(tail) per sign
	excess [2]float64 // mean excess over q per sign
	_      [32]byte
}

// logTailProb judges the surprise u ≥ 0 of a statistic of sign sd (0: ≥ 0, 1: < 0) against the
// history, λ = lp + (u − q)/e for u > q, else 0, and then absorbs it.
func (c *histCalib) logTailProb(u float64, sd int, cfg *EnsembleConfig) float64 {
	var lam float64
	if c.n >= potInit && u > c.q[sd] && u >= 1e-6 {
		lam = c.lp[sd] + (u-c.q[sd])/c.excess[sd]
	}
	if c.inc == 0 {
		c.inc, c.grow = 1, 1/(1-cfg.History)
	}
	b := min(int(u*(1/histWidth)), histBins-1)
	c.top[sd] = max(c.top[sd], uint8(b))
	c.ws[sd][b][0] += c.inc
	c.ws[sd][b][1] += c.inc * u
	c.tot += c.inc
	c.inc *= c.grow
	if c.inc > 1e100 { // rescale; the probabilities are ratios and do not change
		for j := range c.ws {
			for i := range c.ws[j] {
				c.ws[j][i][0] *= 1e-100
				c.ws[j][i][1] *= 1e-100
			}
		}
		c.tot *= 1e-100
		c.inc *= 1e-100
	}
	c.n++
	if c.n%histRefit == 0 || c.n == potInit {
		c.refit(cfg)
	}
	return lam
}

// refit finds, per sign, the highest bin edge q with at least Tail·tot of weight at or above it,
// the tail's probability and its mean excess. A sign with less weight than that in all (a
// statistic that has hardly ever been negative, say) is judged by the two signs pooled.
func (c *histCalib) refit(cfg *EnsembleConfig) {
	lim := cfg.Tail * c.tot
	for sd := range c.ws {
		if !c.fit(sd, lim, cfg) {
			c.fit(-1-sd, lim, cfg)
		}
	}
}

// fit fits the tail of sign sd (or, for sd < 0, of both signs pooled, stored at −1−sd) and
// reports whether the tail weight reached lim.
func (c *histCalib) fit(sd int, lim float64, cfg *EnsembleConfig) bool {
	m, su := 0.0, 0.0
	// The bins above top are empty: starting at top adds the same terms in the same order (m
	// and su stay 0 over empty bins and never reach lim = Tail·tot > 0: tot includes the
	// latest weight, which never falls below about 1).
	var b int
	if sd >= 0 {
		b = int(c.top[sd])
	} else {
		b = int(max(c.top[0], c.top[1]))
	}
	for ; b >= 0; b-- {
		if sd >= 0 {
			m += c.ws[sd][b][0]
			su += c.ws[sd][b][1]
		} else {
			m += c.ws[0][b][0] + c.ws[1][b][0]
			su += c.ws[0][b][1] + c.ws[1][b][1]
		}
		if m >= lim {
			break
		}
	}
	if m < lim || m <= 0 {
		return false
	}
	k := max(sd, -1-sd)
	c.q[k] = float64(b) * histWidth
	c.lp[k] = -math.Log(m / c.tot)
	c.excess[k] = max(su/m-c.q[k], cfg.MinExcess)
	return true
}

// log1pFast returns ln(1 + a) for finite a ≥ 0 with an absolute error below 1e-9 (the rounding
// of 1 + a aside), a few times faster than math.Log1p: 1 + a = m·2^k with m in [√½, √2),
// ln m = 2·atanh(s), s = (m − 1)/(m + 1), |s| ≤ 0.172, by its series up to s⁹.
func log1pFast(a float64) float64 {
	y := 1 + a
	b := math.Float64bits(y)
	k := float64(int64(b>>52) - 1023)
	m := math.Float64frombits(b&(1<<52-1) | 1023<<52) // in [1, 2)
	if m > math.Sqrt2 {
		m *= 0.5
		k++
	}
	s := (m - 1) / (m + 1)
	s2 := s * s
	return k*math.Ln2 + 2*s*(1+s2*(1.0/3+s2*(1.0/5+s2*(1.0/7+s2*(1.0/9)))))
}
