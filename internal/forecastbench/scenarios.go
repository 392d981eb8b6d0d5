// Package forecastbench measures how early Vigil's forecasters see failures coming: seeded
// failure scenarios (and stable twins of the same shapes) are generated in simulated time and
// replayed through a forecaster and the controller's prediction hysteresis (detectors.Watch),
// and every prediction is scored — lead time, predicted versus actual crossing time, false
// alarms per host-week. `vigil bench forecast` prints the result.
package forecastbench

import (
	"math"
	"math/rand/v2"
	"time"
)

// Start is the simulated time of every host's first sample: 2026-03-02T00:00:00Z.
var Start = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// Trace is one simulated host's series.
type Trace struct {
	T     []int64   // sample times, Unix ns, increasing
	X     []float64 // values
	Onset int64     // when the failure process started, Unix ns; 0 for a stable host
	End   int64     // the simulated time covered: T[0] .. End
}

// Scenario is one shape of series, failing or not.
type Scenario struct {
	Name    string
	Series  string  // the metric the controller would watch
	Level   float64 // the level a failure crosses
	Failure bool    // a failure process starts at a random time; false: a stable twin
	gen     func(g *gen)
}

// Generate returns the trace of one host: seed determines it completely. dur is the simulated
// time of a stable host; a failing host's failure starts in the first 70% of dur and the trace
// runs until the series crosses the level (or 3·dur, whichever comes first).
func (s Scenario) Generate(seed uint64, dur time.Duration, interval time.Duration) Trace {
	g := &gen{
		r:        rand.New(rand.NewPCG(seed, hash(s.Name))),
		t0:       Start.UnixNano(),
		interval: interval.Seconds(),
		dur:      dur.Seconds(),
		level:    s.Level,
		failure:  s.Failure,
	}
	g.onset = math.Inf(1)
	if s.Failure {
		g.onset = g.dur * (0.15 + 0.55*g.r.Float64())
	}
	s.gen(g)
	tr := Trace{T: g.ts, X: g.xs, End: g.t0 + int64(g.now*1e9)}
	if s.Failure {
		tr.Onset = g.t0 + int64(g.onset*1e9)
	}
	return tr
}

// hash is FNV-1a, so each scenario has its own random stream for the same seed.
func hash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

// gen is the sampling loop shared by the scenarios: every ~interval (±10% jitter, and now and
// then an agent outage of up to 5 minutes), the scenario's value function is sampled.
type gen struct {
	r             *rand.Rand
	t0            int64
	interval, dur float64
	level         float64
	failure       bool
	onset         float64 // seconds since t0; +Inf for a stable host
	now           float64
	ts            []int64
	xs            []float64
}

// run samples value(t) (t in seconds since t0, dt since the previous sample) until the
// stable duration is over or, for a failing host, the level has been reached.
func (g *gen) run(value func(t, dt float64) float64) {
	limit := g.dur
	if g.failure {
		limit = 3 * g.dur
	}
	prev := 0.0
	for t := 0.0; t < limit; {
		x := value(t, t-prev)
		prev = t
		g.ts = append(g.ts, g.t0+int64(t*1e9))
		g.xs = append(g.xs, x)
		g.now = t
		if g.failure && t >= g.onset && x >= g.level {
			return
		}
		t += g.interval * (0.9 + 0.2*g.r.Float64())
		if g.r.Float64() < 0.0005 { // an agent restart or a network blip
			t += 300 * g.r.Float64()
		}
	}
}

// uniform returns a value in [lo, hi).
func (g *gen) uniform(lo, hi float64) float64 { return lo + (hi-lo)*g.r.Float64() }

// ar is a time-continuous AR(1) (Ornstein–Uhlenbeck) noise with standard deviation sd and
// correlation time tau seconds.
type ar struct {
	sd, tau, x float64
}

func (a *ar) next(r *rand.Rand, dt float64) float64 {
	phi := math.Exp(-dt / a.tau)
	a.x = phi*a.x + a.sd*math.Sqrt(1-phi*phi)*r.NormFloat64()
	return a.x
}

func clamp(x, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, x)) }

// daily is a 24-hour cycle with amplitude amp and peak at phase·24h.
func daily(t, amp, phase float64) float64 {
	return amp * math.Cos(2*math.Pi*(t/86400-phase))
}
