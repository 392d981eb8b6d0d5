package detectors

import (
	"math"
	"testing"
	"time"
)

func TestRobustTrendLinearFill(t *testing.T) {
	for _, sd := range []float64{0, 0.2} {
		rt := NewRobustTrend(DefaultRobustTrendConfig())
		feedLine(rt, 1, 0, 7200, 10, 40, 0.005, sd) // 18 %/h
		now := 7190.0
		fc := rt.ETA(at(now), 100)
		want := time.Duration((100 - (40 + 0.005*now)) / 0.005 * 1e9)
		// The margin makes the ETA earlier by about σ/slope (≈ 50 s at sd 0.2).
		if !fc.OK || relErr(fc.ETA, want) > 0.02 || fc.Confidence < 0.999 {
			t.Errorf("sd %v: ETA %+v, want ≈ %v", sd, fc, want)
		}
		if math.Abs(rt.Slope()-0.005) > 1e-4 {
			t.Errorf("sd %v: slope %v, want 0.005", sd, rt.Slope())
		}
	}
}

// Spikes and steps (deletions) must not bend the slope; a plain Trend is bent by both.
func TestRobustTrendSpikesAndSteps(t *testing.T) {
	cases := []struct {
		name string
		mod  func(s float64, x float64) float64
	}{
		{"spikes", func(s, x float64) float64 {
			if int(s)%600 == 300 {
				return x + 30
			}
			return x
		}},
		{"deletions", func(s, x float64) float64 { return x - 8*math.Floor(s/1800) }},
		{"step up", func(s, x float64) float64 {
			if s >= 3000 {
				return x + 15
			}
			return x
		}},
	}
	for _, c := range cases {
		rt, tr := NewRobustTrend(DefaultRobustTrendConfig()), NewTrend(TrendConfig{Window: time.Hour, MinSamples: 5, MinSpan: 10 * time.Minute})
		r := newRand(7)
		for s := 0.0; s < 3600*3; s += 10 {
			x := c.mod(s, 20+0.002*s+0.1*r.NormFloat64())
			rt.Observe(at(s), x)
			tr.Observe(at(s), x)
		}
		if got := rt.Slope(); math.Abs(got-0.002) > 0.0002 {
			t.Errorf("%s: robust slope %v, want 0.002 ±10%%", c.name, got)
		}
		if got := tr.Slope(); math.Abs(got-0.002) < 0.0002 && c.name != "spikes" {
			t.Errorf("%s: plain trend slope %v is right too: the case tests nothing", c.name, got)
		}
	}
}

// A noisy, wandering but flat series must not give a confident forecast, and the forecast
// must not flap: the watch hysteresis on top starts at most a handful of predictions in a day.
func TestRobustTrendNoFlapOnWander(t *testing.T) {
	rt := NewRobustTrend(DefaultRobustTrendConfig())
	r := newRand(3)
	wander := 0.0
	var w Watch
	starts := 0
	for s := 0.0; s < 86400; s += 10 {
		wander = 0.98*wander + 0.5*r.NormFloat64()
		x := 60 + wander + 0.3*r.NormFloat64()
		rt.Observe(at(s), x)
		if w.Update(at(s), rt.ETA(at(s), 95), 2*time.Hour, 0.9) == WatchStarted {
			starts++
		}
	}
	if starts > 0 {
		t.Errorf("%d predictions on a flat wandering series", starts)
	}
}

func TestRobustTrendIgnoresBadSamples(t *testing.T) {
	with, without := NewRobustTrend(DefaultRobustTrendConfig()), NewRobustTrend(DefaultRobustTrendConfig())
	r := newRand(4)
	bad := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1e300}
	for i := 0; i < 2000; i++ {
		s := float64(i) * 3
		x := 5 + 0.01*s + r.NormFloat64()
		if i%5 == 0 {
			with.Observe(at(s), bad[i/5%len(bad)])
		}
		if i%9 == 0 && i > 0 {
			with.Observe(at(s-4), x)
		}
		with.Observe(at(s), x)
		without.Observe(at(s), x)
	}
	if *with != *without {
		t.Errorf("state differs:\n%+v\n%+v", *with, *without)
	}
	if !with.Ready() {
		t.Errorf("not ready")
	}
}

func TestRobustTrendWarmupAndReset(t *testing.T) {
	rt := NewRobustTrend(DefaultRobustTrendConfig())
	feedLine(rt, 1, 0, 300, 10, 0, 1, 0) // 5 min < MinSpan 10m
	if rt.ETA(at(300), 1e6) != (Forecast{}) {
		t.Errorf("forecast during warm-up")
	}
	if _, _, _, ok := rt.Predict(at(300), time.Minute); ok {
		t.Errorf("prediction during warm-up")
	}
	feedLine(rt, 1, 300, 900, 10, 0, 1, 0)
	if v, lo, hi, ok := rt.Predict(at(890), 10*time.Second); !ok || math.Abs(v-900) > 1e-6 || lo > v || hi < v {
		t.Errorf("Predict = %v [%v, %v] %v, want 900", v, lo, hi, ok)
	}
	rt.Reset()
	if *rt != *NewRobustTrend(DefaultRobustTrendConfig()) {
		t.Errorf("Reset left state")
	}
}

func TestRobustTrendValidate(t *testing.T) {
	for _, mod := range []func(*RobustTrendConfig){
		func(c *RobustTrendConfig) { c.Window = 0 },
		func(c *RobustTrendConfig) { c.Huber = 0 },
		func(c *RobustTrendConfig) { c.Jump = math.NaN() },
		func(c *RobustTrendConfig) { c.Margin = -1 },
	} {
		c := DefaultRobustTrendConfig()
		mod(&c)
		if c.Validate() == nil {
			t.Errorf("%+v: valid", c)
		}
	}
	if err := DefaultRobustTrendConfig().Validate(); err != nil {
		t.Error(err)
	}
}

func TestRobustTrendAllocs(t *testing.T) {
	rt := NewRobustTrend(DefaultRobustTrendConfig())
	s := 0.0
	if n := testing.AllocsPerRun(1000, func() {
		s += 10
		rt.Observe(at(s), s)
		rt.ETA(at(s), 1e6)
		rt.Predict(at(s), time.Hour)
	}); n != 0 {
		t.Errorf("%v allocations per call", n)
	}
}

func BenchmarkRobustTrendObserve(b *testing.B) {
	xs := noise(1, 1024, 100, 5)
	rt := NewRobustTrend(DefaultRobustTrendConfig())
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		rt.Observe(t2026+int64(i)*int64(10*time.Second), xs[i&1023]+float64(i)*1e-3)
	}
}

func BenchmarkRobustTrendETA(b *testing.B) {
	rt := NewRobustTrend(DefaultRobustTrendConfig())
	feedLine(rt, 1, 0, 7200, 10, 0, 0.01, 1)
	b.ReportAllocs()
	var sink time.Duration
	for i := 0; b.Loop(); i++ {
		sink += rt.ETA(at(7200+float64(i&63)), 100).ETA
	}
	_ = sink
}

// A series flat for an hour that then ramps (noise-free, as exact gauges
// are) must be followed: a run of same-side outliers is a new trend, and
// once the newest sample is past the level the ETA is 0.
func TestRobustTrendFollowsRampAfterFlat(t *testing.T) {
	rt := NewRobustTrend(DefaultRobustTrendConfig())
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	at := func(m int) int64 { return t0 + int64(m)*int64(time.Minute) }
	var eta92 Forecast
	for m := 0; m <= 100; m++ {
		v := 120.0
		if m > 60 {
			v = 120 + 5*float64(m-60) // reaches 300 at m = 96
		}
		rt.Observe(at(m), v)
		if m == 92 {
			eta92 = rt.ETA(at(m), 300)
		}
	}
	if !eta92.OK || eta92.ETA > time.Hour {
		t.Errorf("at 280 and +5/min, ETA to 300 = %+v, want under an hour", eta92)
	}
	if f := rt.ETA(at(100), 300); !f.OK || f.ETA != 0 {
		t.Errorf("at 320, over the level 300: ETA %+v, want 0", f)
	}
	if s := rt.Slope() * 60; s < 1.5 {
		t.Errorf("slope %.2f/min, want the ramp followed (≥ 1.5/min of the true 5)", s)
	}
}
