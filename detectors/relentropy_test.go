package detectors

import (
	"math"
	"testing"
)

func TestRelEntropyConfigValidate(t *testing.T) {
	bad := map[string]func(*RelEntropyConfig){
		"bins low":    func(c *RelEntropyConfig) { c.Bins = 3 },
		"bins high":   func(c *RelEntropyConfig) { c.Bins = relEntMaxBins + 1 },
		"width":       func(c *RelEntropyConfig) { c.Width = 0 },
		"width nan":   func(c *RelEntropyConfig) { c.Width = math.NaN() },
		"window low":  func(c *RelEntropyConfig) { c.Window = 7 },
		"window high": func(c *RelEntropyConfig) { c.Window = relEntMaxWindow + 1 },
		"memory":      func(c *RelEntropyConfig) { c.Memory = 1 },
		"rate":        func(c *RelEntropyConfig) { c.Rate = 0 },
	}
	if err := DefaultRelEntropyConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range bad {
		c := DefaultRelEntropyConfig()
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("%s: invalid config accepted", name)
		}
	}
}

// TestRelEntropyDivergence checks KL against a direct computation on a hand-fed state: with
// 4 bins, a reference of r = (6, 2, 0, 0) (no fading) and a recent window all in bin 1,
// q_1 = (2 + ½)/(8 + 4·½) = 0.25, so KL = ln(1/0.25) = ln 4.
func TestRelEntropyDivergence(t *testing.T) {
	r := NewRelEntropy(RelEntropyConfig{Bins: 4, Width: 3, Window: 8, Memory: 0.5, Rate: 0.01})
	r.g = 1
	r.ref = [relEntMaxBins]float64{6, 2}
	r.total = 8
	r.cnt[1] = 8
	if got := r.divergence(); math.Abs(got-math.Log(4)) > 1e-12 {
		t.Errorf("KL = %v, want ln 4 = %v", got, math.Log(4))
	}
	r.cnt[1], r.cnt[0] = 4, 4 // half in bin 0: q_0 = 6.5/10
	want := 0.5*math.Log(0.5/0.65) + 0.5*math.Log(0.5/0.25)
	if got := r.divergence(); math.Abs(got-want) > 1e-12 {
		t.Errorf("KL = %v, want %v", got, want)
	}
	r.rescale() // a no-op on r_b when g = 1, and must keep KL when g ≠ 1
	r.g, r.total = 4, 32
	r.ref[0], r.ref[1] = 24, 8
	if got := r.divergence(); math.Abs(got-want) > 1e-12 {
		t.Errorf("KL at scale 4 = %v, want %v", got, want)
	}
	r.rescale()
	if got := r.divergence(); r.g != 1 || math.Abs(got-want) > 1e-12 {
		t.Errorf("after rescale g = %v, KL = %v, want 1, %v", r.g, got, want)
	}
}

// TestRelEntropyChanges: on stationary noise the detector stays quiet; a variance collapse
// (flat line inside the usual range) and a switch to a bimodal distribution with the same
// median and a similar spread are both seen, though no single sample is extreme.
func TestRelEntropyChanges(t *testing.T) {
	const n, on = 3000, 2000
	noise := func(seed uint64) []float64 {
		r := newRand(seed)
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = 50 + r.NormFloat64()
		}
		return xs
	}
	flat := noise(1)
	for i := on; i < n; i++ {
		flat[i] = 50.3
	}
	bimodal := noise(2)
	r := newRand(22)
	for i := on; i < n; i++ {
		bimodal[i] = 50 + 1.2*float64(2*(i%2)-1) + 0.1*r.NormFloat64()
	}
	for _, c := range []struct {
		name string
		xs   []float64
	}{{"quiet", noise(3)}, {"flat", flat}, {"bimodal", bimodal}} {
		d := NewRelEntropy(DefaultRelEntropyConfig())
		var before, after float64
		for i, x := range c.xs {
			s := d.Observe(int64(i), x)
			if s.Raw < 0 || !finite(s.Raw) || s.Likelihood < 0 || s.Likelihood > 1 {
				t.Fatalf("%s: sample %d: bad score %+v", c.name, i, s)
			}
			if i >= 500 && i < on {
				before = math.Max(before, s.Raw)
			} else if i >= on && i < on+64 {
				after = math.Max(after, s.Raw)
			}
		}
		t.Logf("%s: max raw %.2f before, %.2f after", c.name, before, after)
		if c.name == "quiet" {
			if after > 2*before+1 {
				t.Errorf("quiet: raw %.2f after, %.2f before", after, before)
			}
			continue
		}
		if !(after > 2*before) {
			t.Errorf("%s: max raw %.2f after the change, %.2f before: not seen", c.name, after, before)
		}
	}
}

// TestRelEntropyWarmup: Score{} for the 30 + 2·Window first samples, then scores.
func TestRelEntropyWarmup(t *testing.T) {
	cfg := DefaultRelEntropyConfig()
	d := NewRelEntropy(cfg)
	xs := synBase(12, 200)
	warm := relEntSeed + 2*cfg.Window
	for i, x := range xs {
		s := d.Observe(int64(i), x)
		if i < warm && s != (Score{}) {
			t.Fatalf("sample %d scored %+v during warm-up", i, s)
		}
		if i >= warm && s.Raw == 0 {
			t.Fatalf("sample %d not scored after warm-up", i)
		}
	}
}

func BenchmarkRelEntropy(b *testing.B) { benchDetector(b, "relentropy") }
