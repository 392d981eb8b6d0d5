package detectors

import "math"

// potInit is the number of surprises a tail calibrator absorbs before it judges.
const potInit = 30

const (
	seasonBins = 24 // hours of the day (UTC) of the seasonal dispersion
	seasonClip = 6  // |z| enters the dispersions clipped at this
)

// seasonScale divides a member's statistic by how much more it disperses at this hour of the
// day than overall, so that routinely turbulent hours (daily bursts of tweets or traffic, the
// edges of a daily square wave) stop surprising while quiet hours are judged as before.
type seasonScale struct {
	hour [seasonBins]float64 // EW mean of min(|z|, seasonClip) per hour, weight Season
	seen uint32              // hours visited
	all  float64             // EW mean of min(|z|, seasonClip), weight max(Memory, 1/n)
	n    int64
}

// scale returns z/max(1, D_h/D) for a sample in hour h (D_h and D before z is absorbed) and
// absorbs z.
func (s *seasonScale) scale(h int, z float64, cfg *EnsembleConfig) float64 {
	if cfg.Season == 0 {
		return z
	}
	if s.seen&(1<<h) == 0 {
		s.seen |= 1 << h
		s.hour[h] = s.all
	}
	a := min(math.Abs(z), seasonClip)
	if s.hour[h] > s.all && s.all > 0 {
		z *= s.all / s.hour[h]
	}
	s.n++
	w := cfg.Memory
	if float64(s.n)*w < 1 {
		w = 1 / float64(s.n)
	}
	s.all += w * (a - s.all)
	s.hour[h] += cfg.Season * (a - s.hour[h])
	return z
}

// tailCalib turns one member's surprises into upper-tail probabilities (peaks over threshold).
type tailCalib struct {
	mean, dev float64 // EW mean and mean absolute deviation of the surprise
	q         float64 // streaming Level-quantile of the surprise
	excess    float64 // EW mean of the excesses u − q
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
		return 0
	}
	sc := max(c.dev, 1e-3)
	if u <= c.q || u < 1e-6 { // below the quantile, or a rounding error on a flat line
		c.q = max(0, c.q-cfg.Rate*sc*(1-cfg.Level))
		return 0
	}
	lam := -math.Log1p(-cfg.Level) + (u-c.q)/max(c.excess, 0.1*sc)
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
type histCalib struct {
	// ws[sign][bin] holds the bin's weight and weighted sum of u side by side (one cache line
	// per update: the controller keeps thousands of series, mostly cold in the cache).
	ws     [2][histBins][2]float64
	inc    float64 // weight of the next sample (grows by 1/(1−History))
	grow   float64 // 1/(1−History)
	tot    float64 // total weight
	n      int64
	q, lp  [2]float64 // tail start and −ln P(tail) per sign
	excess [2]float64 // mean excess over q per sign
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
	b := histBins - 1
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
