package detectors

import (
	"math"
	"testing"
)

func TestContextConfigValidate(t *testing.T) {
	bad := map[string]func(*ContextConfig){
		"bins low":    func(c *ContextConfig) { c.Bins = 1 },
		"bins nan":    func(c *ContextConfig) { c.Bins = math.NaN() },
		"orders 0":    func(c *ContextConfig) { c.Orders = 0 },
		"orders 9":    func(c *ContextConfig) { c.Orders = ctxMaxOrder + 1 },
		"warmup low":  func(c *ContextConfig) { c.Warmup = 15 },
		"warmup high": func(c *ContextConfig) { c.Warmup = ctxMaxWarmup + 1 },
		"memory":      func(c *ContextConfig) { c.Memory = 63 },
		"smooth 0":    func(c *ContextConfig) { c.Smooth = 0 },
		"smooth >1":   func(c *ContextConfig) { c.Smooth = 1.5 },
	}
	if err := DefaultContextConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range bad {
		c := DefaultContextConfig()
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("%s: invalid config accepted", name)
		}
	}
	ec := DefaultEnsembleConfig()
	ec.Context.Orders = 0
	if ec.Validate() == nil {
		t.Error("ensemble with an invalid context member accepted")
	}
}

// ctxPattern is a repeating 24-sample pattern (a ramp up, a plateau, a drop) with N(0, noise)
// noise; from on on it is broken by brk (nil: not broken).
func ctxPattern(seed uint64, n, on int, noise float64, brk func(i int, x float64) float64) []float64 {
	r := newRand(seed)
	xs := make([]float64, n)
	for i := range xs {
		p := i % 24
		x := 10.0
		switch {
		case p < 8:
			x = 10 + 10*float64(p)
		case p < 16:
			x = 90
		}
		if brk != nil && i >= on {
			x = brk(i, x)
		}
		xs[i] = x + noise*r.NormFloat64()
	}
	return xs
}

// TestContextSequenceBreaks: after a repeating pattern is learned, breaks that keep every
// value inside its usual range (a flat stretch mid-range, the cycle run backwards, a slow ramp
// down instead of the plateau) raise the smoothed novelty within 24 samples well above anything in the 500
// samples before; without a break nothing does.
func TestContextSequenceBreaks(t *testing.T) {
	const n, on = 2000, 1500
	cases := []struct {
		name  string
		brk   func(i int, x float64) float64
		novel bool
	}{
		{"unbroken", nil, false},
		{"flat middle", func(int, float64) float64 { return 50 }, true},
		{"reversed", func(i int, _ float64) float64 {
			p := 23 - i%24
			switch {
			case p < 8:
				return 10 + 10*float64(p)
			case p < 16:
				return 90
			}
			return 10
		}, true},
		{"ramp down instead of plateau", func(i int, x float64) float64 {
			if p := i % 24; p >= 8 && p < 16 {
				return 90 - 10*float64(p-7)
			}
			return x
		}, true},
	}
	for _, noise := range []float64{0, 1} {
		for _, c := range cases {
			d := NewContext(DefaultContextConfig())
			xs := ctxPattern(7, n, on, noise, c.brk)
			var before, after float64
			for i, x := range xs {
				s := d.Observe(0, x)
				if i >= on-500 && i < on {
					before = math.Max(before, s.Raw)
				}
				if i >= on && i < on+24 {
					after = math.Max(after, s.Raw)
				}
			}
			if got := after > before+0.2; got != c.novel {
				t.Errorf("noise %v, %s: max novelty %.3f in the 24 samples after, %.3f in the 500 before (want novel=%v)",
					noise, c.name, after, before, c.novel)
			}
		}
	}
}

// TestContextFlatLine: a constant series is completely familiar after the warm-up (Raw 0,
// Likelihood 0); a one-sample blip is novel, and the return to the line too.
func TestContextFlatLine(t *testing.T) {
	d := NewContext(DefaultContextConfig())
	for i := range 1000 {
		x := 42.0
		if i == 800 {
			x = 43
		}
		s := d.Observe(0, x)
		switch {
		case i < 800 && s != (Score{}):
			t.Fatalf("flat line: sample %d scored %+v", i, s)
		case i == 800 && !(s.Raw >= 0.3 && s.Likelihood > 0.25):
			t.Errorf("blip scored %+v, want Raw ≥ 0.3", s)
		}
	}
}

// TestContextNonFinite: NaN and ±Inf score Score{} and leave the state exactly as it was.
func TestContextNonFinite(t *testing.T) {
	xs := ctxPattern(3, 1200, 900, 1, func(int, float64) float64 { return 50 })
	clean := NewContext(DefaultContextConfig())
	d := NewContext(DefaultContextConfig())
	for i, x := range xs {
		if i%13 == 0 {
			for _, b := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
				if s := d.Observe(0, b); s != (Score{}) {
					t.Fatalf("sample %d: %v scored %+v", i, b, s)
				}
			}
		}
		if a, b := clean.Observe(0, x), d.Observe(0, x); a != b {
			t.Fatalf("sample %d: %+v after non-finite input, %+v without", i, b, a)
		}
	}
	if *clean != *d {
		t.Error("state differs after non-finite inputs")
	}
}

// TestContextAging: a pattern that stops occurring is forgotten: after the series has sat on a
// different level for several Memory periods, the old pattern is novel again.
func TestContextAging(t *testing.T) {
	cfg := DefaultContextConfig()
	cfg.Memory = 256
	novelty := func(cfg ContextConfig) float64 {
		d := NewContext(cfg)
		xs := ctxPattern(5, 4000, 1000, 0, func(i int, x float64) float64 {
			if i < 3000 {
				return 200 + float64(i%2)
			}
			return x
		})
		best := 0.0
		for i, x := range xs {
			if s := d.Observe(0, x); i >= 3000 && i < 3024 {
				best = math.Max(best, s.Raw)
			}
		}
		return best
	}
	short, long := novelty(cfg), novelty(DefaultContextConfig())
	cfg.Memory = 1 << 20
	never := novelty(cfg)
	if !(short > 0.3 && short > never+0.2) {
		t.Errorf("returning pattern: novelty %.3f with Memory 256, %.3f with Memory 2^20 (want the first > 0.3 and well above)", short, never)
	}
	t.Logf("novelty of the returning pattern: Memory 256 %.3f, default %.3f, 2^20 %.3f", short, long, never)
}

// TestEnsembleCatchesFlatMiddle: on a daily cycle with noise whose middle goes flat for
// half a day (every value inside the usual range), vigil (through its context member) reports within half a day and its
// likelihood beats everything of the day before; plain noise gives no likelihood ≥ 0.9999.
func TestEnsembleCatchesFlatMiddle(t *testing.T) {
	n, on := 6*synDay, 5*synDay
	xs := synBase(21, n)
	for i := on; i < on+synDay/2; i++ {
		xs[i] = 100 + newRand(uint64(i)).NormFloat64()
	}
	e := NewEnsemble(DefaultEnsembleConfig())
	var before, after float64
	for i, x := range xs {
		s := e.Observe(t2026+int64(i)*int64(synStep), x)
		if i >= on-synDay && i < on {
			before = math.Max(before, s.Likelihood)
		}
		if i >= on && i < on+synDay/2 {
			after = math.Max(after, s.Likelihood)
		}
	}
	if !(after > before) {
		t.Errorf("flat middle: likelihood %.6f after, %.6f the day before", after, before)
	}
}

func BenchmarkContext(b *testing.B) { benchDetector(b, "context") }
