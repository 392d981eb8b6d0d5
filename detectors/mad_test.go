package detectors

import (
	"math"
	"testing"
)

func TestMADValidate(t *testing.T) {
	if err := DefaultMADConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(*MADConfig){
		"rate":          func(c *MADConfig) { c.Rate = 0 },
		"warmup":        func(c *MADConfig) { c.Warmup = 1 },
		"rel_floor":     func(c *MADConfig) { c.RelFloor = -1 },
		"abs_floor":     func(c *MADConfig) { c.AbsFloor = 0 },
		"res_floor":     func(c *MADConfig) { c.ResFloor = -0.5 },
		"res_floor_nan": func(c *MADConfig) { c.ResFloor = math.NaN() },
		"res_floor_inf": func(c *MADConfig) { c.ResFloor = math.Inf(1) },
	}
	for name, mut := range bad {
		c := DefaultMADConfig()
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("%s: invalid config accepted", name)
		}
	}
}

// sparseCounts is a count series that is 0 on most samples and 1 or 2 on about one in four,
// then, from sample shift on, 5 on most samples.
func sparseCounts(n, shift int) []float64 {
	r := newRand(5)
	xs := make([]float64, n)
	for i := range xs {
		if i >= shift {
			xs[i] = 5
		}
		if u := r.Float64(); u < 0.15 {
			xs[i]++
		} else if u < 0.25 {
			xs[i] += 2
		}
	}
	return xs
}

// TestMADResolutionFloor: on count data whose MAD is 0 the resolution floor keeps a one-unit
// step an ordinary deviation and lets the median follow a level shift; without it (ResFloor 0)
// the same step scores like a catastrophe and the median hardly moves (it moves by Rate·1e-6
// until the MAD has grown back from the floor, a factor 1 + Rate per sample).
func TestMADResolutionFloor(t *testing.T) {
	xs := sparseCounts(3000, 1500)
	for _, tc := range []struct {
		name        string
		res         float64
		maxZ        float64 // bound on max |z| over the first 1500 samples (all steps ≤ 2 units)
		wantMedian  bool    // median within 1 of the new level 5, 500 samples after the shift
		wantHugeMax bool    // max |z| before the shift at least 1e4
	}{
		{"floor 0.5", 0.5, 2 / (1.4826 * 0.5) * 1.01, true, false},
		{"floor 1", 1, 2 / 1.4826 * 1.01, true, false},
		{"no floor", 0, math.Inf(1), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultMADConfig()
			cfg.ResFloor = tc.res
			m := NewMAD(cfg)
			var maxZ, med float64
			for i, x := range xs {
				s := m.Observe(int64(i), x)
				if i < 1500 {
					maxZ = max(maxZ, math.Abs(s.Raw))
				}
				if i == 2000 {
					med = m.Median()
				}
			}
			if maxZ > tc.maxZ {
				t.Errorf("max |z| before the shift = %g, want ≤ %g", maxZ, tc.maxZ)
			}
			if tc.wantHugeMax != (maxZ >= 1e4) {
				t.Errorf("max |z| before the shift = %g, huge wanted: %v", maxZ, tc.wantHugeMax)
			}
			if got := math.Abs(med-5) <= 1; got != tc.wantMedian {
				t.Errorf("median %g 500 samples after the shift; near 5 wanted: %v", med, tc.wantMedian)
			}
		})
	}
}

// TestMADResolutionFloorFlatLine: the first change of a flat line is scored before it becomes
// the resolution, so it still scores in full (against RelFloor·|m| = 0.003); afterwards the MAD
// is floored at half that step.
func TestMADResolutionFloorFlatLine(t *testing.T) {
	m := NewMAD(DefaultMADConfig())
	for i := range 100 {
		m.Observe(int64(i), 3)
	}
	if z, want := m.Observe(100, 4).Raw, 1/(1.4826*0.003); math.Abs(z/want-1) > 1e-6 {
		t.Errorf("first change of a flat line: z = %g, want %g", z, want)
	}
	if d := m.Deviation(); math.Abs(d-0.5) > 1e-9 {
		t.Errorf("floored MAD after a unit step = %g, want 0.5", d)
	}
}

// TestMADResolutionFloorContinuous: on continuous data the resolution is tiny and the floor
// never binds: the scores equal those without it.
func TestMADResolutionFloorContinuous(t *testing.T) {
	on := NewMAD(DefaultMADConfig())
	cfg := DefaultMADConfig()
	cfg.ResFloor = 0
	off := NewMAD(cfg)
	r := newRand(9)
	for i := range 5000 {
		x := 10 + r.NormFloat64()
		if a, b := on.Observe(int64(i), x), off.Observe(int64(i), x); a != b {
			t.Fatalf("sample %d: %+v with the floor, %+v without", i, a, b)
		}
	}
}
