package detectors

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// t2026 is a realistic observation time: 2026-03-01T00:00:00Z in Unix nanoseconds.
var t2026 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano()

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

// noise returns n samples of mean + sd·N(0,1).
func noise(seed uint64, n int, mean, sd float64) []float64 {
	r := newRand(seed)
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = mean + sd*r.NormFloat64()
	}
	return xs
}

// scoreAll feeds xs, one second apart, and returns every score.
func scoreAll(d Detector, xs []float64) []Score {
	out := make([]Score, len(xs))
	for i, x := range xs {
		out[i] = d.Observe(t2026+int64(i)*int64(time.Second), x)
	}
	return out
}

func TestEWMAWarmup(t *testing.T) {
	for _, warm := range []int{2, 10, 30, 100} {
		cfg := DefaultEWMAConfig()
		cfg.Warmup = warm
		xs := noise(uint64(warm), warm+1, 10, 1)
		xs[warm] = 1000 // far outside: must be scored once the warm-up is over
		s := scoreAll(NewEWMA(cfg), xs)
		for i := 0; i < warm; i++ {
			if s[i] != (Score{}) {
				t.Fatalf("warmup=%d: sample %d scored %+v during warm-up", warm, i, s[i])
			}
		}
		if s[warm].Likelihood < 0.999 || s[warm].Raw <= 0 {
			t.Errorf("warmup=%d: first scored sample %+v, want a large positive z", warm, s[warm])
		}
	}
}

// During the first 1/Alpha samples the weights are 1/(n+1), so each score must equal the z-score
// of the sample against the plain mean and population deviation of all earlier samples.
func TestEWMAMatchesBatchStatistics(t *testing.T) {
	cfg := DefaultEWMAConfig() // Alpha 0.05: exact for the first 20 samples
	cfg.Warmup = 3
	r := newRand(21)
	xs := make([]float64, 20)
	for i := range xs {
		xs[i] = 5 + r.Float64()
	}
	s := scoreAll(NewEWMA(cfg), xs)
	for k := cfg.Warmup; k < len(xs); k++ {
		var mean, ss float64
		for _, x := range xs[:k] {
			mean += x
		}
		mean /= float64(k)
		for _, x := range xs[:k] {
			ss += (x - mean) * (x - mean)
		}
		z := (xs[k] - mean) / math.Sqrt(ss/float64(k))
		if math.Abs(s[k].Raw-z) > 1e-9*math.Max(1, math.Abs(z)) {
			t.Errorf("sample %d: Raw %v, want %v", k, s[k].Raw, z)
		}
		if want := math.Erf(math.Abs(z) / math.Sqrt2); math.Abs(s[k].Likelihood-want) > 1e-9 {
			t.Errorf("sample %d: likelihood %v, want %v", k, s[k].Likelihood, want)
		}
	}
}

func TestEWMASpike(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4} {
		xs := noise(seed, 2000, 100, 1)
		const at = 1000
		xs[at] += 8
		s := scoreAll(NewEWMA(DefaultEWMAConfig()), xs)
		if s[at].Likelihood <= 0.99 || s[at].Raw < 5 {
			t.Errorf("seed %d: spike scored %+v, want likelihood > 0.99", seed, s[at])
		}
		var high, count int
		var sum float64
		for i := 100; i < len(s); i++ {
			if i >= at && i < at+5 {
				continue
			}
			count++
			sum += s[i].Likelihood
			if s[i].Likelihood > 0.99 {
				high++
			}
		}
		// Under the null the likelihood is ~uniform: mean 0.5, ~1% above 0.99.
		if frac := float64(high) / float64(count); frac > 0.03 {
			t.Errorf("seed %d: %.1f%% of normal samples above 0.99, want ≤ 3%%", seed, 100*frac)
		}
		if mean := sum / float64(count); mean < 0.4 || mean > 0.6 {
			t.Errorf("seed %d: mean likelihood on noise %.3f, want ~0.5", seed, mean)
		}
	}
}

// A huge spike must not blind the detector to a second, smaller one shortly after, thanks to
// the winsorised update; without it (clip 0) the second spike is missed.
func TestEWMASpikeDoesNotBlind(t *testing.T) {
	cases := []struct {
		clip   float64
		caught bool
	}{{4, true}, {3, true}, {0, false}}
	for _, c := range cases {
		cfg := DefaultEWMAConfig()
		cfg.Clip = c.clip
		xs := noise(7, 400, 50, 1)
		xs[300] += 20
		xs[303] += 6
		s := scoreAll(NewEWMA(cfg), xs)
		if s[300].Likelihood < 0.999 {
			t.Errorf("clip %v: first spike %+v not caught", c.clip, s[300])
		}
		if got := s[303].Likelihood > 0.99; got != c.caught {
			t.Errorf("clip %v: second spike %+v, caught=%v want %v", c.clip, s[303], got, c.caught)
		}
	}
}

func TestEWMALevelShift(t *testing.T) {
	for _, seed := range []uint64{11, 12, 13} {
		xs := noise(seed, 800, 0, 1)
		const at = 300
		for i := at; i < len(xs); i++ {
			xs[i] += 10
		}
		e := NewEWMA(DefaultEWMAConfig())
		s := scoreAll(e, xs)
		for i := at; i < at+3; i++ {
			if s[i].Likelihood < 0.999 {
				t.Errorf("seed %d: sample %d after the shift scored %+v", seed, i-at, s[i])
			}
		}
		// Adapted: the new level is normal again well within 150 samples.
		var high int
		for i := at + 150; i < len(s); i++ {
			if s[i].Likelihood > 0.99 {
				high++
			}
		}
		if high > 12 {
			t.Errorf("seed %d: %d of 350 samples still flagged after adapting", seed, high)
		}
		if math.Abs(e.Mean()-10) > 1 || e.StdDev() > 2 {
			t.Errorf("seed %d: state μ=%v σ=%v, want ≈10 and ≈1", seed, e.Mean(), e.StdDev())
		}
	}
}

func TestEWMAFlatThenSmallChange(t *testing.T) {
	cases := []struct {
		name          string
		level, change float64
		maxLikelihood float64 // the change must score at most this
		minLikelihood float64 // and at least this
	}{
		{"tiny wiggle on 50", 50, 0.001, 0.1, 0},
		{"tiny wiggle on 1e9 bytes", 1e9, 1, 0.1, 0},
		{"1% step on 50", 50, 0.5, 1, 0.999},
		{"any step on zero", 0, 1e-3, 1, 0.999},
		{"exactly flat", 42, 0, 0, 0},
	}
	for _, c := range cases {
		e := NewEWMA(DefaultEWMAConfig())
		for i := 0; i < 100; i++ {
			if s := e.Observe(t2026, c.level); s.Likelihood != 0 || s.Raw != 0 {
				t.Fatalf("%s: flat sample %d scored %+v", c.name, i, s)
			}
		}
		s := e.Observe(t2026, c.level+c.change)
		if !finite(s.Raw) || math.Abs(s.Raw) > maxRaw {
			t.Fatalf("%s: Raw %v not finite/bounded", c.name, s.Raw)
		}
		if s.Likelihood > c.maxLikelihood || s.Likelihood < c.minLikelihood {
			t.Errorf("%s: scored %+v, want likelihood in [%v,%v]", c.name, s, c.minLikelihood, c.maxLikelihood)
		}
		// The state stays usable: noise afterwards is scored normally again.
		xs := noise(3, 300, c.level, 1)
		ss := scoreAll(e, xs)
		var high int
		for _, sc := range ss[100:] {
			if !finite(sc.Raw) || sc.Likelihood < 0 || sc.Likelihood > 1 {
				t.Fatalf("%s: bad score %+v", c.name, sc)
			}
			if sc.Likelihood > 0.99 {
				high++
			}
		}
		if high > 8 {
			t.Errorf("%s: %d of 200 noise samples flagged after the flat line", c.name, high)
		}
	}
}

// NaN and ±Inf return Score{} and leave the state exactly as if they had never arrived.
func TestEWMANonFinite(t *testing.T) {
	xs := noise(5, 200, 20, 3)
	with, without := NewEWMA(DefaultEWMAConfig()), NewEWMA(DefaultEWMAConfig())
	bad := []float64{math.NaN(), math.Inf(1), math.Inf(-1)}
	for i, x := range xs {
		if i%7 == 0 { // also during the warm-up
			if s := with.Observe(t2026, bad[i%3]); s != (Score{}) {
				t.Fatalf("non-finite value scored %+v", s)
			}
		}
		if a, b := with.Observe(t2026, x), without.Observe(t2026, x); a != b {
			t.Fatalf("sample %d: %+v with non-finite values interleaved, %+v without", i, a, b)
		}
	}
	if *with != *without {
		t.Errorf("state differs: %+v vs %+v", *with, *without)
	}
}

// Finite values so large that the update would overflow never poison the state, and Raw
// stays finite (InfluxDB rejects ±Inf).
func TestEWMAHugeValues(t *testing.T) {
	for _, clip := range []float64{0, 4} {
		cfg := DefaultEWMAConfig()
		cfg.Clip = clip
		e := NewEWMA(cfg)
		scoreAll(e, noise(9, 100, 1, 1))
		before := *e
		s := e.Observe(t2026, 1e300)
		if s.Raw != maxRaw || s.Likelihood != 1 {
			t.Errorf("clip %v: 1e300 scored %+v, want Raw %v, likelihood 1", clip, s, maxRaw)
		}
		s = e.Observe(t2026, -math.MaxFloat64)
		if s.Raw != -maxRaw || s.Likelihood != 1 {
			t.Errorf("clip %v: -MaxFloat64 scored %+v", clip, s)
		}
		if !finite(e.Mean()) || !finite(e.StdDev()) {
			t.Fatalf("clip %v: state poisoned: %+v", clip, *e)
		}
		if clip == 0 && *e != before {
			t.Errorf("unclipped overflowing update was absorbed: %+v, before %+v", *e, before)
		}
	}
}

func TestEWMAReset(t *testing.T) {
	cfg := DefaultEWMAConfig()
	cfg.Warmup = 5
	e := NewEWMA(cfg)
	scoreAll(e, noise(1, 50, 3, 1))
	e.Reset()
	if *e != *NewEWMA(cfg) {
		t.Errorf("after Reset %+v, want a fresh detector", *e)
	}
}

func TestEWMAValidate(t *testing.T) {
	if err := DefaultEWMAConfig().Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	cases := []struct {
		key string
		mod func(*EWMAConfig)
	}{
		{"alpha", func(c *EWMAConfig) { c.Alpha = 0 }},
		{"alpha", func(c *EWMAConfig) { c.Alpha = 1 }},
		{"alpha", func(c *EWMAConfig) { c.Alpha = math.NaN() }},
		{"warmup", func(c *EWMAConfig) { c.Warmup = 1 }},
		{"clip", func(c *EWMAConfig) { c.Clip = 1 }},
		{"clip", func(c *EWMAConfig) { c.Clip = -4 }},
		{"rel_floor", func(c *EWMAConfig) { c.RelFloor = -1 }},
		{"rel_floor", func(c *EWMAConfig) { c.RelFloor = math.Inf(1) }},
		{"abs_floor", func(c *EWMAConfig) { c.AbsFloor = 0 }},
	}
	for _, c := range cases {
		cfg := DefaultEWMAConfig()
		c.mod(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%+v: Validate = %v, want an error naming %s", cfg, err, c.key)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%+v: NewEWMA did not panic", cfg)
				}
			}()
			NewEWMA(cfg)
		}()
	}
	ok := DefaultEWMAConfig()
	ok.Clip, ok.RelFloor = 0, 0
	if err := ok.Validate(); err != nil {
		t.Errorf("clip 0 and rel_floor 0 must be allowed: %v", err)
	}
}

func TestAlphaForHalfLife(t *testing.T) {
	for _, h := range []float64{1, 13.5, 100} {
		a := AlphaForHalfLife(h)
		if got := math.Pow(1-a, h); math.Abs(got-0.5) > 1e-12 {
			t.Errorf("h=%v: (1−α)^h = %v, want 0.5", h, got)
		}
	}
}

func TestEWMAObserveAllocs(t *testing.T) {
	e := NewEWMA(DefaultEWMAConfig())
	x := 0.0
	if n := testing.AllocsPerRun(1000, func() { x++; e.Observe(t2026, x) }); n != 0 {
		t.Errorf("Observe allocates %v times per call", n)
	}
}

func BenchmarkEWMAObserve(b *testing.B) {
	xs := noise(1, 1024, 100, 5)
	e := NewEWMA(DefaultEWMAConfig())
	b.ReportAllocs()
	var sink float64
	for i := 0; b.Loop(); i++ {
		sink += e.Observe(t2026+int64(i), xs[i&1023]).Likelihood
	}
	_ = sink
}
