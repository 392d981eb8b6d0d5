package detectors

import (
	"math"
	"strings"
	"testing"
	"time"
)

// at returns the Unix-ns time sec seconds after t2026.
func at(sec float64) int64 { return t2026 + int64(sec*1e9) }

// feedLine observes base + rate·s (+ sd·noise) every step seconds for s in [from, to).
func feedLine(f Forecaster, seed uint64, from, to, step, base, rate, sd float64) {
	r := newRand(seed)
	for s := from; s < to; s += step {
		f.Observe(at(s), base+rate*s+sd*r.NormFloat64())
	}
}

// relErr is |got − want| / |want| for durations.
func relErr(got, want time.Duration) float64 {
	return math.Abs(float64(got-want)) / math.Abs(float64(want))
}

func TestTrendLinearFill(t *testing.T) {
	cases := []struct {
		name              string
		step, base, rate  float64
		level, elapsedSec float64
	}{
		{"disk % every 10s", 10, 10, 0.01, 90, 900},
		{"rising every 1s", 1, 0, 1e-3, 5, 600},
		{"free space falling every 15s", 15, 500, -0.05, 20, 1800},
		{"sparse 60s samples", 60, 1000, 2, 1e5, 3600},
	}
	for _, c := range cases {
		tr := NewTrend(DefaultTrendConfig())
		feedLine(tr, 1, 0, c.elapsedSec, c.step, c.base, c.rate, 0)
		now := c.elapsedSec - c.step + 2.5 // a little after the last sample
		want := time.Duration((c.level - (c.base + c.rate*now)) / c.rate * 1e9)
		fc := tr.ETA(at(now), c.level)
		if !fc.OK || relErr(fc.ETA, want) > 0.01 {
			t.Errorf("%s: ETA %+v, want %v (±1%%)", c.name, fc, want)
		}
		if fc.Confidence < 0.999 {
			t.Errorf("%s: confidence %v on a noise-free line", c.name, fc.Confidence)
		}
		if got := tr.Slope(); math.Abs(got-c.rate) > 1e-6*math.Abs(c.rate) {
			t.Errorf("%s: slope %v, want %v", c.name, got, c.rate)
		}
		if got, want := tr.Level(at(now)), c.base+c.rate*now; math.Abs(got-want) > 1e-6*math.Max(1, math.Abs(want)) {
			t.Errorf("%s: level %v, want %v", c.name, got, want)
		}
	}
}

func TestTrendNoisyLinear(t *testing.T) {
	const rate, sd, level = 0.02, 1.0, 100.0
	for _, seed := range []uint64{1, 2, 3, 4, 5} {
		tr := NewTrend(DefaultTrendConfig())
		r := newRand(seed)
		var checks, inside int
		for s := 0.0; s < 2400; s++ {
			x := 20 + rate*s + sd*r.NormFloat64()
			if s >= 1200 && int(s)%60 == 0 { // after two windows: check the forecast
				want := time.Duration((level - (20 + rate*s)) / rate * 1e9)
				fc := tr.ETA(at(s), level)
				if !fc.OK || relErr(fc.ETA, want) > 0.03 || fc.Confidence < 0.999 {
					t.Errorf("seed %d t=%vs: ETA %+v, want %v (±3%%) with high confidence", seed, s, fc, want)
				}
				// The 95% prediction interval for the next observation should hold it.
				_, lo, hi, ok := tr.Predict(at(s-1), time.Second)
				checks++
				if ok && lo <= x && x <= hi {
					inside++
				}
			}
			tr.Observe(at(s), x)
		}
		if cover := float64(inside) / float64(checks); cover < 0.85 {
			t.Errorf("seed %d: prediction interval held %d of %d observations", seed, inside, checks)
		}
	}
}

func TestTrendDirection(t *testing.T) {
	cases := []struct {
		name        string
		rate, level float64 // series: 50 + rate·s for 20 min
		ok          bool
		eta         time.Duration // checked if ok
		conf        float64       // confidence at least (ok) or at most (!ok)
	}{
		{"falling away from a level above", -0.01, 90, false, 0, 1e-6},
		{"rising away from a level below", 0.01, 10, false, 0, 1e-6},
		{"rising towards a level above", 0.01, 90, true, time.Duration(28/0.01) * time.Second, 0.999},
		{"falling towards a level below", -0.01, 10, true, time.Duration(28/0.01) * time.Second, 0.999},
		{"just crossed upwards", 0.01, 61, true, 0, 0.999},
		{"just crossed downwards", -0.01, 39, true, 0, 0.999},
		{"crossed long ago, still rising", 0.01, 55, false, 0, 1e-6},
		{"flat", 0, 60, false, 0, 0},
	}
	for _, c := range cases {
		tr := NewTrend(DefaultTrendConfig())
		feedLine(tr, 1, 0, 1201, 1, 50, c.rate, 0) // ends at 62 (rising) or 38 (falling)
		fc := tr.ETA(at(1200), c.level)
		switch {
		case fc.OK != c.ok:
			t.Errorf("%s: %+v, want OK=%v", c.name, fc, c.ok)
		case c.ok && (fc.ETA < c.eta-time.Second || fc.ETA > c.eta+time.Second):
			t.Errorf("%s: ETA %v, want %v", c.name, fc.ETA, c.eta)
		case c.ok && fc.Confidence < c.conf, !c.ok && fc.Confidence > c.conf:
			t.Errorf("%s: confidence %v, bound %v", c.name, fc.Confidence, c.conf)
		}
	}
}

func TestTrendWarmup(t *testing.T) {
	cases := []struct {
		name       string
		n          int
		step       float64
		ready      bool
		minSamples int
	}{
		{"nothing", 0, 1, false, 5},
		{"one sample", 1, 1, false, 5},
		{"4 samples over 60s", 4, 20, false, 5},
		{"30 samples over 15s", 30, 0.5, false, 5},
		{"5 samples over 40s", 5, 10, true, 5},
		{"3 samples over 60s, min 3", 3, 30, true, 3},
		{"same timestamp", 50, 0, false, 5},
	}
	for _, c := range cases {
		cfg := DefaultTrendConfig()
		cfg.MinSamples = c.minSamples
		tr := NewTrend(cfg)
		feedLine(tr, 1, 0, float64(c.n)*c.step, c.step, 0, 1, 0)
		if c.step == 0 {
			for i := 0; i < c.n; i++ {
				tr.Observe(at(0), float64(i))
			}
		}
		now := at(float64(c.n) * c.step)
		fc := tr.ETA(now, 1e6)
		_, _, _, ok := tr.Predict(now, time.Minute)
		if tr.Ready() != c.ready || fc.OK != c.ready || ok != c.ready {
			t.Errorf("%s: Ready %v, ETA %+v, Predict ok %v; want ready=%v", c.name, tr.Ready(), fc, ok, c.ready)
		}
		if !c.ready && fc != (Forecast{}) {
			t.Errorf("%s: warm-up forecast %+v, want zero", c.name, fc)
		}
	}
}

func TestTrendIrregularSampling(t *testing.T) {
	const rate, level = -0.004, 10.0
	for _, seed := range []uint64{1, 2, 3} {
		r := newRand(seed + 100)
		tr := NewTrend(DefaultTrendConfig())
		s := 0.0
		for s < 3600 {
			tr.Observe(at(s), 60+rate*s+0.1*r.NormFloat64())
			switch u := r.Float64(); {
			case u < 0.1: // duplicate timestamp
			case u < 0.15: // burst
				s += 0.01
			default:
				s += 0.2 + 30*r.Float64()
			}
		}
		want := time.Duration((level - (60 + rate*s)) / rate * 1e9)
		fc := tr.ETA(at(s), level)
		if !fc.OK || relErr(fc.ETA, want) > 0.03 || fc.Confidence < 0.999 {
			t.Errorf("seed %d: ETA %+v, want %v ±3%%", seed, fc, want)
		}
		if got := tr.Slope(); math.Abs(got-rate) > 0.03*math.Abs(rate) {
			t.Errorf("seed %d: slope %v, want %v", seed, got, rate)
		}
	}
}

func TestTrendGap(t *testing.T) {
	const rate, level = 0.01, 100.0
	cases := []struct {
		name          string
		gap           float64 // seconds
		readyAfterOne bool    // forecasting from the first sample after the gap
	}{
		{"30 min gap keeps the discounted history", 1800, true},
		{"2 h gap restarts the fit", 7200, false},
	}
	for _, c := range cases {
		tr := NewTrend(DefaultTrendConfig())
		feedLine(tr, 1, 0, 1800, 1, 0, rate, 0.1)
		resume := 1800 + c.gap
		tr.Observe(at(resume), rate*resume) // the line went on during the gap
		want := time.Duration((level - rate*resume) / rate * 1e9)
		fc := tr.ETA(at(resume), level)
		if fc.OK != c.readyAfterOne || c.readyAfterOne && relErr(fc.ETA, want) > 0.03 {
			t.Errorf("%s: ETA %+v from the first sample after the gap, want OK=%v, %v",
				c.name, fc, c.readyAfterOne, want)
		}
		feedLine(tr, 2, resume+1, resume+20, 1, 0, rate, 0.1)
		if tr.Ready() != c.readyAfterOne {
			t.Errorf("%s: Ready = %v 20 s after the gap (MinSpan 30 s)", c.name, tr.Ready())
		}
		feedLine(tr, 3, resume+20, resume+300, 1, 0, rate, 0.1)
		now := resume + 299
		want = time.Duration((level - rate*now) / rate * 1e9)
		if fc := tr.ETA(at(now), level); !fc.OK || relErr(fc.ETA, want) > 0.03 {
			t.Errorf("%s: ETA %+v 5 min after the gap, want %v", c.name, fc, want)
		}
	}
}

// A jump during a long gap must not be read as a trend once the fit restarts.
func TestTrendGapWithJump(t *testing.T) {
	tr := NewTrend(DefaultTrendConfig())
	feedLine(tr, 1, 0, 1800, 1, 20, 0, 0.5)    // flat at 20
	feedLine(tr, 2, 9000, 9031, 1, 70, 0, 0.5) // 2 h later: flat at 70 for 30 s
	if !tr.Ready() {
		t.Fatalf("not ready 30 s after the gap")
	}
	if fc := tr.ETA(at(9030), 90); fc.OK && fc.ETA < 24*time.Hour && fc.Confidence > 0.99 {
		t.Errorf("confident forecast %+v from a jump across a 2 h gap", fc)
	}
	if lvl := tr.Level(at(9030)); math.Abs(lvl-70) > 1 {
		t.Errorf("level %v after the gap, want ≈ 70", lvl)
	}
}

// Realistic timestamps (2026, Unix ns), days of data and a large offset lose no precision.
func TestTrendPrecision(t *testing.T) {
	const base, rate = 1e12, 5000.0 // bytes, bytes per second
	cases := []struct {
		name    string
		sd      float64
		slopeTo float64 // relative slope tolerance
		etaTo   float64 // relative ETA tolerance
	}{
		{"exact", 0, 1e-8, 1e-6},
		{"noisy", 1e5, 0.01, 0.01},
	}
	for _, c := range cases {
		tr := NewTrend(DefaultTrendConfig())
		const days = 3
		feedLine(tr, 1, 0, days*86400, 10, base, rate, c.sd)
		now := float64(days*86400 - 10)
		level := base + rate*now + rate*3600 // one hour ahead
		fc := tr.ETA(at(now), level)
		if !fc.OK || relErr(fc.ETA, time.Hour) > c.etaTo {
			t.Errorf("%s: ETA %+v, want 1h (±%g)", c.name, fc, c.etaTo)
		}
		if got := tr.Slope(); math.Abs(got-rate) > c.slopeTo*rate {
			t.Errorf("%s: slope %v, want %v (±%g)", c.name, got, rate, c.slopeTo)
		}
	}
}

// NaN, ±Inf and out-of-order samples leave the state exactly as if they had never arrived.
func TestTrendIgnoresBadSamples(t *testing.T) {
	with, without := NewTrend(DefaultTrendConfig()), NewTrend(DefaultTrendConfig())
	r := newRand(4)
	bad := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1e300}
	for i := 0; i < 500; i++ {
		s := float64(i) * 3
		x := 5 + 0.1*s + r.NormFloat64()
		if i%5 == 0 {
			with.Observe(at(s), bad[i/5%len(bad)])
		}
		if i%9 == 0 && i > 0 {
			with.Observe(at(s-4), x) // older than the newest sample
		}
		with.Observe(at(s), x)
		without.Observe(at(s), x)
	}
	if *with != *without {
		t.Errorf("state differs:\n%+v\n%+v", *with, *without)
	}
	if !with.Ready() || !finite(with.Slope()) {
		t.Errorf("not ready after 500 samples: %+v", *with)
	}
}

func TestTrendReset(t *testing.T) {
	tr := NewTrend(DefaultTrendConfig())
	feedLine(tr, 1, 0, 100, 1, 0, 1, 1)
	tr.Reset()
	if *tr != *NewTrend(DefaultTrendConfig()) {
		t.Errorf("after Reset %+v, want a fresh forecaster", *tr)
	}
	if tr.Level(at(0)) != 0 || tr.Slope() != 0 || tr.ETA(at(0), 1) != (Forecast{}) {
		t.Errorf("fresh forecaster answers level %v slope %v", tr.Level(at(0)), tr.Slope())
	}
}

func TestTrendValidate(t *testing.T) {
	if err := DefaultTrendConfig().Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	cases := []struct {
		key string
		mod func(*TrendConfig)
	}{
		{"window", func(c *TrendConfig) { c.Window = 0 }},
		{"min_samples", func(c *TrendConfig) { c.MinSamples = 2 }},
		{"min_span", func(c *TrendConfig) { c.MinSpan = -time.Second }},
		{"min_span", func(c *TrendConfig) { c.MinSpan = 31 * time.Minute }},
	}
	for _, c := range cases {
		cfg := DefaultTrendConfig()
		c.mod(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%+v: Validate = %v, want an error naming %s", cfg, err, c.key)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%+v: NewTrend did not panic", cfg)
				}
			}()
			NewTrend(cfg)
		}()
	}
}

func TestExpNeg(t *testing.T) {
	for _, x := range []float64{0, 1e-12, 1e-6, 1e-3, 0.005, 1.0 / 64, 0.0157, 0.5, 3, 40} {
		want := math.Exp(-x)
		if got := expNeg(x); math.Abs(got-want) > 2e-16*want {
			t.Errorf("expNeg(%v) = %v, want %v", x, got, want)
		}
	}
}

func TestTrendAllocs(t *testing.T) {
	tr := NewTrend(DefaultTrendConfig())
	s := 0.0
	n := testing.AllocsPerRun(1000, func() {
		s++
		tr.Observe(at(s), s)
		tr.ETA(at(s), 1e6)
		tr.Predict(at(s), time.Hour)
	})
	if n != 0 {
		t.Errorf("Observe+ETA+Predict allocate %v times per call", n)
	}
}

func BenchmarkTrendObserve(b *testing.B) {
	// 1s: the usual case (interval ≪ Window); 30s: the decay needs math.Exp.
	for _, step := range []time.Duration{time.Second, 30 * time.Second} {
		b.Run("interval="+step.String(), func(b *testing.B) {
			xs := noise(1, 1024, 100, 5)
			tr := NewTrend(DefaultTrendConfig())
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				tr.Observe(t2026+int64(i)*int64(step), xs[i&1023]+float64(i)*1e-3)
			}
		})
	}
}

func BenchmarkTrendETA(b *testing.B) {
	tr := NewTrend(DefaultTrendConfig())
	feedLine(tr, 1, 0, 3600, 1, 0, 0.01, 1)
	b.ReportAllocs()
	var sink time.Duration
	for i := 0; b.Loop(); i++ {
		sink += tr.ETA(at(3600+float64(i&63)), 100).ETA
	}
	_ = sink
}
