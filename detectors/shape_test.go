package detectors

import (
	"math"
	"testing"
)

func TestShapeConfigValidate(t *testing.T) {
	bad := map[string]func(*ShapeConfig){
		"block":      func(c *ShapeConfig) { c.Block = 0 },
		"blocks low": func(c *ShapeConfig) { c.Blocks = 1 },
		"blocks":     func(c *ShapeConfig) { c.Blocks = shapeMaxBlocks + 1 },
		"prototypes": func(c *ShapeConfig) { c.Prototypes = shapeMaxProtos + 1 },
		"vigilance":  func(c *ShapeConfig) { c.Vigilance = 0 },
		"learn":      func(c *ShapeConfig) { c.Learn = 1.5 },
		"forget":     func(c *ShapeConfig) { c.Forget = 0.5 },
		"squash":     func(c *ShapeConfig) { c.Squash = math.Inf(1) },
		"rate":       func(c *ShapeConfig) { c.Rate = 1 },
		"tail":       func(c *ShapeConfig) { c.Tail = 0.5 },
		"spread":     func(c *ShapeConfig) { c.Spread = math.NaN() },
		"warmup":     func(c *ShapeConfig) { c.Warmup = c.Block*c.Blocks - 1 },
		"refractory": func(c *ShapeConfig) { c.Refractory = 0 },
		"rel_floor":  func(c *ShapeConfig) { c.RelFloor = -1 },
		"abs_floor":  func(c *ShapeConfig) { c.AbsFloor = 0 },
	}
	if err := DefaultShapeConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range bad {
		c := DefaultShapeConfig()
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("%s: invalid config accepted", name)
		}
	}
}

// shapeSquare is a noisy square wave (period 48 samples, levels 0 and 100, N(0,3) noise)
// whose pattern breaks at sample brk: from there on it stays at the middle level 50.
func shapeSquare(seed uint64, n, brk int) []float64 {
	r := newRand(seed)
	xs := make([]float64, n)
	for i := range xs {
		v := 0.0
		if i%48 >= 24 {
			v = 100
		}
		if brk >= 0 && i >= brk {
			v = 50
		}
		xs[i] = v + 3*r.NormFloat64()
	}
	return xs
}

// TestShapeNovelty: once a pattern is learnt its windows resonate (Raw ≤ 1, no new category
// in the last 500 samples before the break); a window at a level never seen founds a new
// category within one window after the break, and the standalone likelihood after the break
// beats everything in the 500 samples before it.
func TestShapeNovelty(t *testing.T) {
	cases := []struct {
		name  string
		xs    []float64
		brk   int
		novel bool
	}{
		{"flattened square wave", shapeSquare(1, 4000, 3500), 3500, true},
		{"unbroken square wave", shapeSquare(2, 4000, -1), 3500, false},
	}
	cfg := DefaultShapeConfig()
	win := cfg.Block * (cfg.Blocks + 1)
	for _, c := range cases {
		d := NewShape(cfg)
		s := make([]Score, len(c.xs))
		for i, x := range c.xs {
			s[i] = d.Observe(t2026+int64(i)*int64(synStep), x)
		}
		var rawBefore float64
		for _, sc := range s[c.brk-500 : c.brk] {
			rawBefore = math.Max(rawBefore, sc.Raw)
		}
		var rawAfter float64
		for _, sc := range s[c.brk : c.brk+win] {
			rawAfter = math.Max(rawAfter, sc.Raw)
		}
		before, _ := maxLik(s, c.brk-500, c.brk)
		after, _ := maxLik(s, c.brk, c.brk+win)
		t.Logf("%s: raw %.2f before, %.2f after; likelihood %.6f before, %.6f after",
			c.name, rawBefore, rawAfter, before, after)
		if rawBefore > 1 {
			t.Errorf("%s: learnt pattern still novel before the break: raw %.2f", c.name, rawBefore)
		}
		if got := rawAfter > 1 && after > before; got != c.novel {
			t.Errorf("%s: novelty after the break %v (raw %.2f, likelihood %.6f vs %.6f), want %v",
				c.name, got, rawAfter, after, before, c.novel)
		}
	}
}

// TestShapeFlatLine: a flat line is one category (Raw 0, Likelihood 0) until a blip, whose
// window is novel.
func TestShapeFlatLine(t *testing.T) {
	d := NewShape(DefaultShapeConfig())
	for i := range 2000 {
		s := d.Observe(t2026+int64(i)*int64(synStep), 42)
		if s.Raw != 0 || s.Likelihood != 0 {
			t.Fatalf("flat line sample %d scored %+v", i, s)
		}
	}
	var raw, lik float64
	for i := 2000; i < 2010; i++ {
		x := 42.0
		if i == 2000 {
			x = 43
		}
		s := d.Observe(t2026+int64(i)*int64(synStep), x)
		raw, lik = math.Max(raw, s.Raw), math.Max(lik, s.Likelihood)
	}
	if !(raw > 1 && lik > 0.9999) {
		t.Errorf("blip on a flat line: raw %.2f, likelihood %.6f; want a new category reported", raw, lik)
	}
}

// NaN/±Inf, huge values, warm-up, Reset, allocations and the golden scenarios: shape is one of
// synDetectors (synthetic_test.go).

func BenchmarkShape(b *testing.B) { benchDetector(b, "shape") }
