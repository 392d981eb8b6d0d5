package detectors

import (
	"math"
	"testing"
	"time"
)

// gpuHost is a GPU temperature sampled every 10 s: base + AR(1) noise (1.5 °C, 2 min) + white
// noise (0.5 °C), training jobs that heat it by heat °C with a 2-min first-order response for
// 90 min every 4 h (from 01:00), and from fanAt (seconds) a failing fan adding
// rise·(1 − e^(−t/tauF)). It returns the samples' times (seconds) and values.
func gpuHost(seed uint64, base, heat, fanAt, rise, tauF, hours float64) (ts, xs []float64) {
	r := newRand(seed)
	phi := math.Exp(-10.0 / 120)
	ar, load := 0.0, 0.0
	for s := 0.0; s < hours*3600; s += 10 {
		ar = phi*ar + 1.5*math.Sqrt(1-phi*phi)*r.NormFloat64()
		target := 0.0
		if ph := math.Mod(s-3600, 4*3600); s >= 3600 && ph < 90*60 {
			target = heat
		}
		load += (target - load) * (1 - math.Exp(-10.0/120))
		x := base + load + ar + 0.5*r.NormFloat64()
		if s >= fanAt {
			x += rise * (1 - math.Exp(-(s-fanAt)/tauF))
		}
		ts, xs = append(ts, s), append(xs, x)
	}
	return ts, xs
}

// A failing fan under job heat-ups: the climb is predicted at least 10 min before it crosses
// 90 °C (the 1 h line alone manages 8 min on the fast climb), and the ramp test adds no
// prediction before the fan fails.
func TestRobustTrendRampFanFailure(t *testing.T) {
	off := DefaultRobustTrendConfig()
	off.RampBlock = 0
	cases := []struct {
		name        string
		seed        uint64
		fanAt, rise float64
		tauF        float64
	}{
		{"fast, 1h", 3, 30*3600 + 1800, 40, 3600},
		{"slow, 2.5h", 4, 30*3600 + 1800, 45, 2.5 * 3600},
		{"during a job", 5, 29*3600 + 1200, 35, 1.5 * 3600},
	}
	for _, c := range cases {
		ts, xs := gpuHost(c.seed, 62, 10, c.fanAt, c.rise, c.tauF, 40)
		lead, early := watchLead(NewRobustTrend(DefaultRobustTrendConfig()), ts, xs, 90, c.fanAt)
		leadOff, earlyOff := watchLead(NewRobustTrend(off), ts, xs, 90, c.fanAt)
		t.Logf("%s: lead %v (without the ramp test %v), %d early predictions", c.name, lead, leadOff, early)
		if lead < 10*time.Minute {
			t.Errorf("%s: lead %v, want ≥ 10m", c.name, lead)
		}
		if early > earlyOff {
			t.Errorf("%s: %d predictions before the fan failed, %d without the ramp test", c.name, early, earlyOff)
		}
	}
}

// Job heat-ups that take the GPU to 2–5 °C under the level, again and again, are level
// shifts, not ramps: the ramp test never becomes sure of a crossing.
func TestRobustTrendRampJobNearLevelNotPredicted(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		ts, xs := gpuHost(seed, 74, 12, math.Inf(1), 0, 1, 72)
		rt := NewRobustTrend(DefaultRobustTrendConfig())
		worst, scored := 0.0, false
		for i, s := range ts {
			rt.Observe(at(s), xs[i])
			if f := rt.rampETA(at(s), 90, 2*time.Hour); f.OK {
				worst = math.Max(worst, f.Confidence)
			}
			scored = scored || rt.ramp.ok
		}
		if !scored {
			t.Fatalf("seed %d: the ramp test never warmed up", seed)
		}
		if worst >= 0.9 {
			t.Errorf("seed %d: the ramp test was %.3f sure of a crossing", seed, worst)
		}
	}
}

// NaN and ±Inf change nothing, in the ramp test either.
func TestRobustTrendRampIgnoresNonFinite(t *testing.T) {
	ts, xs := gpuHost(7, 62, 10, 10*3600, 40, 3600, 11)
	rt := NewRobustTrend(DefaultRobustTrendConfig())
	for i, s := range ts {
		rt.Observe(at(s), xs[i])
	}
	if !rt.ramp.ok {
		t.Fatal("the ramp test never warmed up")
	}
	before := *rt
	last := ts[len(ts)-1]
	for i, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		rt.Observe(at(last+10*float64(i+1)), v)
	}
	if *rt != before {
		t.Error("a non-finite sample changed the state")
	}
	now := at(last)
	if a, b := rt.ETAWithin(now, 90, 2*time.Hour), before.ETAWithin(now, 90, 2*time.Hour); a != b {
		t.Errorf("forecast %+v after non-finite samples, %+v before", a, b)
	}
}

func TestRobustTrendRampValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		mod  func(*RobustTrendConfig)
		ok   bool
	}{
		{"default", func(*RobustTrendConfig) {}, true},
		{"off", func(c *RobustTrendConfig) { c.RampBlock, c.RampBlocks, c.RampZ = 0, 0, 0 }, true},
		{"negative block", func(c *RobustTrendConfig) { c.RampBlock = -time.Minute }, false},
		{"too few blocks", func(c *RobustTrendConfig) { c.RampBlocks = 5 }, false},
		{"too many blocks", func(c *RobustTrendConfig) { c.RampBlocks = maxRampBlocks + 1 }, false},
		{"zero z", func(c *RobustTrendConfig) { c.RampZ = 0 }, false},
		{"NaN z", func(c *RobustTrendConfig) { c.RampZ = math.NaN() }, false},
	} {
		cfg := DefaultRobustTrendConfig()
		c.mod(&cfg)
		if err := cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("%s: Validate() = %v", c.name, err)
		}
	}
}

// The cost of Observe with the ramp test off, for comparison with BenchmarkRobustTrendObserve.
func BenchmarkRobustTrendObserveNoRamp(b *testing.B) {
	xs := noise(1, 1024, 100, 5)
	cfg := DefaultRobustTrendConfig()
	cfg.RampBlock = 0
	rt := NewRobustTrend(cfg)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		rt.Observe(t2026+int64(i)*int64(10*time.Second), xs[i&1023]+float64(i)*1e-3)
	}
}

// After an outage the ramp test's window starts afresh: the block open before the gap is
// dropped, not closed into the window and stretched across the gap into a confident slope.
// And a NaN level is never forecast.
func TestRobustTrendRampGapAndNaNLevel(t *testing.T) {
	rt := NewRobustTrend(DefaultRobustTrendConfig())
	step := int64(10 * time.Second)
	x := func(i int) float64 { return 50 + 0.5*math.Sin(float64(i)*1.7) }
	ts, i := t2026, 0
	for ; ts < t2026+int64(12*time.Hour); ts += step {
		rt.Observe(ts, x(i))
		i++
	}
	climb := ts
	for ; ts < climb+int64(40*time.Minute); ts += step {
		rt.Observe(ts, x(i)+float64(ts-climb)/1e9*0.004) // +9.6 over 40 min
		i++
	}
	if fc := rt.ETAWithin(ts, 75, 30*time.Minute); fc.OK && fc.Confidence > 0.5 {
		t.Fatalf("before the gap: %+v", fc)
	}
	ts += int64(40 * time.Minute) // an outage; the series comes back flat at 50
	for k := 0; k < 40; k++ {
		rt.Observe(ts, x(i))
		i++
		if fc := rt.ETAWithin(ts, 75, 30*time.Minute); fc.OK && fc.Confidence > 0.5 {
			t.Fatalf("sample %d after the gap: %+v (a stale window stretched over the gap)", k, fc)
		}
		ts += step
	}
	if fc := rt.ETAWithin(ts, math.NaN(), time.Hour); fc != (Forecast{}) {
		t.Errorf("NaN level: %+v", fc)
	}
}
