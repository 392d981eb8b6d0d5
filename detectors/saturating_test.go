package detectors

import (
	"math"
	"testing"
	"time"
)

// feedThermal feeds a GPU-like series: 65 °C with AR(1) wander (σ 1.5, 2 min), from `from` to
// `to` seconds at 10 s; extra(s) is added (a job's heating, a failing fan).
func feedThermal(f Forecaster, seed uint64, from, to float64, extra func(s float64) float64, check func(s float64)) {
	r := newRand(seed)
	ar := 0.0
	phi := math.Exp(-10.0 / 120)
	for s := from; s < to; s += 10 {
		ar = phi*ar + 1.5*math.Sqrt(1-phi*phi)*r.NormFloat64()
		f.Observe(at(s), 65+ar+0.5*r.NormFloat64()+extra(s))
		if check != nil {
			check(s)
		}
	}
}

// A failing fan (38 °C more, time constant 1 h, crossing 90 °C after 64 min) on a card that
// runs 12 °C jobs: the sustained ramp is forecast at least 15 min ahead, no later than the slow
// robust trend alone sees it.
func TestSaturatingTrendFanFailure(t *testing.T) {
	job := func(s float64) float64 {
		p := math.Mod(s, 5*3600)
		if p < 3*3600 {
			return 0
		}
		return 12 * (1 - math.Exp(-(p-3*3600)/120))
	}
	onset := 86400.0 + 1800 // no job running
	fan := func(s float64) float64 { return 38 * (1 - math.Exp(-(s-onset)/3600)) }
	cross := onset + 3600*math.Log(38.0/13)
	lead := func(f Forecaster) float64 {
		var w Watch
		since := -1.0
		feedThermal(f, 1, 0, onset, job, nil)
		feedThermal(f, 2, onset, cross, fan, func(s float64) {
			switch w.Update(at(s), f.ETA(at(s), 90), 2*time.Hour, 0.9) {
			case WatchStarted:
				since = s
			case WatchCleared:
				since = -1
			}
		})
		if since < 0 {
			return 0
		}
		return (cross - since) / 60
	}
	sat, rob := lead(NewSaturatingTrend(DefaultSaturatingTrendConfig())), lead(NewRobustTrend(DefaultRobustTrendConfig()))
	t.Logf("lead: saturating_trend %.0f min, robust_trend %.0f min", sat, rob)
	if sat < 15 || sat < rob {
		t.Errorf("lead %.0f min (robust trend %.0f min), want ≥ 15 and no less than the robust trend's", sat, rob)
	}
}

// A linear fill is forecast as the slow trend forecasts it.
func TestSaturatingTrendLinearFill(t *testing.T) {
	st := NewSaturatingTrend(DefaultSaturatingTrendConfig())
	feedLine(st, 1, 0, 7200, 10, 40, 0.002, 0.05) // 7.2 %/h
	now := 7190.0
	fc := st.ETA(at(now), 100)
	want := time.Duration((100 - (40 + 0.002*now)) / 0.002 * 1e9)
	if !fc.OK || relErr(fc.ETA, want) > 0.03 || fc.Confidence < 0.99 {
		t.Errorf("ETA %+v, want ≈ %v", fc, want)
	}
	if fc := st.ETA(at(now), 0); fc.OK {
		t.Errorf("moving away from 0: %+v", fc)
	}
}

func TestSaturatingTrendWarmupBadSamplesReset(t *testing.T) {
	st := NewSaturatingTrend(DefaultSaturatingTrendConfig())
	feedLine(st, 1, 0, 1800, 10, 0, 0.01, 0) // 30 min < 8 blocks
	if st.ETA(at(1800), 100) != (Forecast{}) || st.Ready() {
		t.Errorf("forecast during warm-up")
	}
	with, without := NewSaturatingTrend(DefaultSaturatingTrendConfig()), NewSaturatingTrend(DefaultSaturatingTrendConfig())
	r := newRand(4)
	bad := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1e300}
	for i := 0; i < 5000; i++ {
		s := float64(i) * 10
		x := 5 + 0.001*s + r.NormFloat64()
		if i%5 == 0 {
			with.Observe(at(s), bad[i/5%len(bad)])
		}
		if i%9 == 0 && i > 0 {
			with.Observe(at(s-15), x)
		}
		with.Observe(at(s), x)
		without.Observe(at(s), x)
	}
	if *with != *without {
		t.Errorf("bad samples changed the state")
	}
	if !with.Ready() || !with.ETA(at(50000), 1000).OK {
		t.Errorf("not forecasting after 14 h: %+v", with.ETA(at(50000), 1000))
	}
	with.Reset()
	if *with != *NewSaturatingTrend(DefaultSaturatingTrendConfig()) {
		t.Errorf("Reset left state")
	}
}

// An agent outage shorter than the ring is bridged; a long one restarts the warm-up.
func TestSaturatingTrendGaps(t *testing.T) {
	st := NewSaturatingTrend(DefaultSaturatingTrendConfig())
	feedLine(st, 1, 0, 3600, 10, 50, 0.005, 0.1)
	feedLine(st, 1, 3600+1200, 7200, 10, 50, 0.005, 0.1)
	if st.ring.n < 16 {
		t.Errorf("ring has %d blocks after a 20 min gap", st.ring.n)
	}
	for j := 1; j < st.ring.n; j++ { // bridged linearly: every change about 0.005·300
		d := st.means[st.ring.back(j-1, maxBlocks)] - st.means[st.ring.back(j, maxBlocks)]
		if math.Abs(d-1.5) > 0.3 {
			t.Errorf("block change %d = %v, want ≈ 1.5", j, d)
		}
	}
	feedLine(st, 1, 7200+6*3600, 7200+6*3600+600, 10, 50, 0.005, 0.1)
	if st.ring.n > 2 || st.ETA(at(7200+6*3600+600), 100).OK {
		t.Errorf("after a 6 h gap: %d blocks, forecast %+v", st.ring.n, st.ETA(at(7200+6*3600+600), 100))
	}
}

func TestSaturatingTrendValidate(t *testing.T) {
	for _, mod := range []func(*SaturatingTrendConfig){
		func(c *SaturatingTrendConfig) { c.Block = 0 },
		func(c *SaturatingTrendConfig) { c.FastBlocks = 3 },
		func(c *SaturatingTrendConfig) { c.FastBlocks = 17 },
		func(c *SaturatingTrendConfig) { c.FastHorizon = -1 },
		func(c *SaturatingTrendConfig) { c.Ramp = 0 },
		func(c *SaturatingTrendConfig) { c.RampZ = math.Inf(1) },
		func(c *SaturatingTrendConfig) { c.SlopeZ = math.NaN() },
		func(c *SaturatingTrendConfig) { c.Slow.Huber = 0 },
	} {
		c := DefaultSaturatingTrendConfig()
		mod(&c)
		if c.Validate() == nil {
			t.Errorf("%+v: valid", c)
		}
	}
	if err := DefaultSaturatingTrendConfig().Validate(); err != nil {
		t.Error(err)
	}
	if f, err := NewForecaster("saturating_trend"); err != nil || f == nil {
		t.Errorf("not registered: %v", err)
	}
}

func TestSaturatingTrendAllocs(t *testing.T) {
	st := NewSaturatingTrend(DefaultSaturatingTrendConfig())
	s := 0.0
	if n := testing.AllocsPerRun(5000, func() {
		s += 10
		st.Observe(at(s), s)
		st.ETA(at(s), 1e6)
		st.Predict(at(s), time.Hour)
	}); n != 0 {
		t.Errorf("%v allocations per call", n)
	}
}

func BenchmarkSaturatingTrendObserve(b *testing.B) {
	xs := noise(1, 1024, 100, 5)
	st := NewSaturatingTrend(DefaultSaturatingTrendConfig())
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		st.Observe(t2026+int64(i)*int64(10*time.Second), xs[i&1023]+float64(i)*1e-3)
	}
}

func BenchmarkSaturatingTrendETA(b *testing.B) {
	st := NewSaturatingTrend(DefaultSaturatingTrendConfig())
	feedLine(st, 1, 0, 7200, 10, 0, 0.01, 1)
	b.ReportAllocs()
	var sink time.Duration
	for i := 0; b.Loop(); i++ {
		sink += st.ETA(at(7200+float64(i&63)), 100).ETA
	}
	_ = sink
}

// A flat stretch (every block mean equal) must not freeze the block-change and slope scales at
// 0: once the series moves again they learn its noise, and noise is not a confident ramp.
func TestSaturatingTrendScalesRecoverAfterFlat(t *testing.T) {
	st := NewSaturatingTrend(DefaultSaturatingTrendConfig())
	feedLine(st, 1, 0, 4*3600, 10, 50, 0, 0)       // 48 identical blocks
	feedLine(st, 2, 4*3600, 10*3600, 10, 50, 0, 2) // then noise, no trend
	// Noise of sd 2 in blocks of 30 samples: block means differ by about 2·√(2/30) ≈ 0.5, so
	// E|D| ≈ 0.4 within hours, not days.
	if st.absD < 0.2 || st.absB <= 0 {
		t.Fatalf("scales 6 h after the flat stretch: E|D| = %v, E|β−β̄| = %v, want E|D| ≈ 0.4", st.absD, st.absB)
	}
	for s := 9 * 3600.0; s < 10*3600; s += 300 {
		if f := st.ETAWithin(at(s), 60, 30*time.Minute); f.OK && f.Confidence >= 0.9 {
			t.Fatalf("at %v s: noise around 50 forecast to reach 60 within 30 min: %+v", s, f)
		}
	}
}
