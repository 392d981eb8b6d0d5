package detectors

import (
	"math"
	"testing"
	"time"
)

func TestHoltLinear(t *testing.T) {
	cases := []struct {
		name             string
		step, rate, sd   float64
		level, elapsed   float64
		etaTol, slopeTol float64
	}{
		{"exact, every 10s", 10, 0.005, 0, 100, 7200, 1e-3, 1e-4},
		{"noisy, every 10s", 10, 0.005, 0.3, 100, 7200, 0.05, 0.05},
		{"falling every 60s", 60, -0.002, 0, 0, 10800, 1e-3, 1e-4},
	}
	for _, c := range cases {
		h := NewHolt(DefaultHoltConfig())
		feedLine(h, 2, 0, c.elapsed, c.step, 50, c.rate, c.sd)
		now := c.elapsed - c.step
		want := time.Duration((c.level - (50 + c.rate*now)) / c.rate * 1e9)
		fc := h.ETA(at(now), c.level)
		if !fc.OK || relErr(fc.ETA, want) > c.etaTol || fc.Confidence < 0.99 {
			t.Errorf("%s: ETA %+v, want %v", c.name, fc, want)
		}
		if math.Abs(h.Slope()-c.rate) > c.slopeTol*math.Abs(c.rate) {
			t.Errorf("%s: slope %v, want %v", c.name, h.Slope(), c.rate)
		}
		if fc := h.ETA(at(now), 50-10*math.Copysign(1, c.rate)); fc.OK {
			t.Errorf("%s: ETA to a level behind the series: %+v", c.name, fc)
		}
	}
}

// The prediction interval holds about 95% of future observations on a noisy line.
func TestHoltPredictionInterval(t *testing.T) {
	h := NewHolt(DefaultHoltConfig())
	r := newRand(9)
	var checks, inside int
	for s := 0.0; s < 86400; s += 10 {
		x := 30 + 0.001*s + r.NormFloat64()
		if s > 7200 && int(s)%600 == 0 {
			_, lo, hi, ok := h.Predict(at(s-10), 10*time.Second)
			checks++
			if ok && lo <= x && x <= hi {
				inside++
			}
		}
		h.Observe(at(s), x)
	}
	if c := float64(inside) / float64(checks); c < 0.88 || c > 0.995 {
		t.Errorf("coverage %v over %d checks, want ≈ 0.95", c, checks)
	}
}

func TestHoltWarmupGapReset(t *testing.T) {
	h := NewHolt(DefaultHoltConfig())
	feedLine(h, 1, 0, 60, 10, 0, 1, 0) // 6 samples over 50 s
	if h.Ready() || h.ETA(at(60), 1e6) != (Forecast{}) {
		t.Errorf("ready after 6 samples")
	}
	feedLine(h, 1, 60, 300, 10, 0, 1, 0)
	if !h.Ready() {
		t.Fatalf("not ready after 30 samples over 5 min")
	}
	h.Observe(at(300+6*3600), 5) // a 6 h gap > 5·τ_T restarts
	if h.Ready() || h.Level(at(300+6*3600)) != 5 {
		t.Errorf("gap did not restart: ready %v level %v", h.Ready(), h.Level(at(300+6*3600)))
	}
	h.Reset()
	if *h != *NewHolt(DefaultHoltConfig()) {
		t.Errorf("Reset left state")
	}
}

func TestHoltIgnoresBadSamples(t *testing.T) {
	with, without := NewHolt(DefaultHoltConfig()), NewHolt(DefaultHoltConfig())
	r := newRand(5)
	bad := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1e300}
	for i := 0; i < 1000; i++ {
		s := float64(i) * 5
		x := 1 + 0.01*s + r.NormFloat64()
		if i%4 == 0 {
			with.Observe(at(s), bad[i/4%len(bad)])
		}
		if i%7 == 0 && i > 0 {
			with.Observe(at(s-6), x)
		}
		with.Observe(at(s), x)
		without.Observe(at(s), x)
	}
	if *with != *without {
		t.Errorf("state differs:\n%+v\n%+v", *with, *without)
	}
}

func TestHoltValidate(t *testing.T) {
	for _, mod := range []func(*HoltConfig){
		func(c *HoltConfig) { c.LevelWindow = 0 },
		func(c *HoltConfig) { c.TrendWindow = -1 },
		func(c *HoltConfig) { c.MinSamples = 2 },
		func(c *HoltConfig) { c.MinSpan = 2 * time.Hour },
	} {
		c := DefaultHoltConfig()
		mod(&c)
		if c.Validate() == nil {
			t.Errorf("%+v: valid", c)
		}
	}
}

func TestHoltAllocs(t *testing.T) {
	h := NewHolt(DefaultHoltConfig())
	s := 0.0
	if n := testing.AllocsPerRun(1000, func() {
		s += 10
		h.Observe(at(s), s)
		h.ETA(at(s), 1e6)
		h.Predict(at(s), time.Hour)
	}); n != 0 {
		t.Errorf("%v allocations per call", n)
	}
}

func BenchmarkHoltObserve(b *testing.B) {
	xs := noise(1, 1024, 100, 5)
	h := NewHolt(DefaultHoltConfig())
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Observe(t2026+int64(i+1)*int64(10*time.Second), xs[i&1023]+float64(i)*1e-3)
	}
}
