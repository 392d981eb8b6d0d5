package detectors

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.IsNaN(got) || math.Abs(got-want) > tol {
		t.Errorf("%s = %.6g, want %.6g ± %g", what, got, want, tol)
	}
}

// Hand-made histograms, expected values written out from the definitions.
func TestDriftStatisticsSmallHistograms(t *testing.T) {
	log2 := math.Log2
	tests := []struct {
		name     string
		ref, cur []float64
		psi0     float64 // PSI without smoothing
		ks, tv   float64
		jsd      float64 // divergence; distance is its root
	}{
		{
			name: "identical", ref: []float64{10, 20, 30, 40}, cur: []float64{1, 2, 3, 4},
			psi0: 0, ks: 0, tv: 0, jsd: 0,
		},
		{
			name: "reversed", ref: []float64{10, 20, 30, 40}, cur: []float64{40, 30, 20, 10},
			// p = .1 .2 .3 .4, q = .4 .3 .2 .1
			psi0: 0.3*math.Log(4) + 0.1*math.Log(1.5) + (-0.1)*math.Log(2.0/3) + (-0.3)*math.Log(0.25),
			// F = .1 .3 .6 1, G = .4 .7 .9 1
			ks: 0.4, tv: (0.3 + 0.1 + 0.1 + 0.3) / 2,
			// m = .25 .25 .25 .25
			jsd: 0.5*(0.1*log2(0.4)+0.2*log2(0.8)+0.3*log2(1.2)+0.4*log2(1.6)) +
				0.5*(0.4*log2(1.6)+0.3*log2(1.2)+0.2*log2(0.8)+0.1*log2(0.4)),
		},
		{
			name: "disjoint", ref: []float64{5, 0}, cur: []float64{0, 7},
			psi0: math.Inf(1), ks: 1, tv: 1, jsd: 1,
		},
		{
			name: "half", ref: []float64{1, 1}, cur: []float64{2, 0},
			// p = .5 .5, q = 1 0, m = .75 .25
			psi0: math.Inf(1), ks: 0.5, tv: 0.5,
			jsd: 0.5*(0.5*log2(0.5/0.75)+0.5*log2(0.5/0.25)) + 0.5*(1*log2(1/0.75)),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := PSI(tc.ref, tc.cur, 0); math.IsInf(tc.psi0, 1) {
				if !math.IsInf(got, 1) {
					t.Errorf("PSI(s=0) = %v, want +Inf", got)
				}
			} else {
				near(t, "PSI(s=0)", got, tc.psi0, 1e-12)
			}
			near(t, "KSBinned", KSBinned(tc.ref, tc.cur), tc.ks, 1e-12)
			near(t, "TotalVariation", TotalVariation(tc.ref, tc.cur), tc.tv, 1e-12)
			near(t, "JSDistance", JSDistance(tc.ref, tc.cur), math.Sqrt(tc.jsd), 1e-12)
			c := CategoricalDrift(tc.ref, tc.cur)
			near(t, "categorical KS", c.KS, tc.tv, 1e-12)
			near(t, "categorical Wasserstein", c.Wasserstein, tc.tv, 1e-12)
		})
	}
}

func TestPSISmoothing(t *testing.T) {
	// A category absent from the reference: with s = 0.5 and K = 3 bins in use,
	// p = (80.5, 20.5, 0.5)/101.5, q = (50.5, 30.5, 20.5)/101.5.
	ref, cur := []float64{80, 20, 0, 0}, []float64{50, 30, 20, 0}
	want := 0.0
	for i := 0; i < 3; i++ {
		p, q := (ref[i]+0.5)/101.5, (cur[i]+0.5)/101.5
		want += (q - p) * math.Log(q/p)
	}
	near(t, "PSI", PSI(ref, cur, 0.5), want, 1e-12)
	if !(want > 0.25) {
		t.Errorf("a new category with 20%% of the window gives PSI %v, want > 0.25", want)
	}
	for _, f := range []func(a, b []float64) float64{
		func(a, b []float64) float64 { return PSI(a, b, 0.5) }, KSBinned, JSDistance, TotalVariation,
	} {
		if v := f([]float64{0, 0}, []float64{1, 2}); !math.IsNaN(v) {
			t.Errorf("empty reference gives %v, want NaN", v)
		}
	}
}

// exactW1 is the Wasserstein-1 distance of two empirical distributions, from the
// definition ∫|F−G| over the merged sorted sample.
func exactW1(a, b []float64) float64 {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	var w, x0 float64
	i, j := 0, 0
	first := true
	for i < len(a) || j < len(b) {
		var x float64
		if j >= len(b) || i < len(a) && a[i] <= b[j] {
			x = a[i]
		} else {
			x = b[j]
		}
		if !first {
			w += math.Abs(float64(i)/float64(len(a))-float64(j)/float64(len(b))) * (x - x0)
		}
		first, x0 = false, x
		for i < len(a) && a[i] == x {
			i++
		}
		for j < len(b) && b[j] == x {
			j++
		}
	}
	return w
}

func TestWasserstein1Atoms(t *testing.T) {
	// Atoms at 0 and 1 (½ each) against atoms at 0.5 and 1.5: every unit moves 0.5.
	near(t, "shifted atoms", Wasserstein1([]float64{1, 1}, []float64{0, 1}, []float64{1, 1}, []float64{0.5, 1.5}), 0.5, 1e-12)
	// Three ref values in bin 0 (sum 3, mean 1), one cur value 4 in bin 1: W1 = 3.
	near(t, "one bin each", Wasserstein1([]float64{3, 0}, []float64{3, 0}, []float64{0, 1}, []float64{0, 4}), 3, 1e-12)
	// With one value per bin the atoms are the samples: W1 is exact.
	r := rand.New(rand.NewPCG(1, 2))
	a, b := make([]float64, 200), make([]float64, 200)
	for i := range a {
		a[i] = r.NormFloat64()
		b[i] = 0.3 + 2*r.NormFloat64()
	}
	all := append(slices.Clone(a), b...)
	bins, err := QuantileBins(all, 254) // about one or two samples per bin
	if err != nil {
		t.Fatal(err)
	}
	ha, hb := NewHistogram(bins), NewHistogram(bins)
	for i := range a {
		ha.Add(a[i])
		hb.Add(b[i])
	}
	exact := exactW1(a, b)
	got := NumericDrift(ha, hb).Wasserstein
	// 400 values in 255 bins: at most ~2 per bin, so the error is a few bin widths' share.
	near(t, "W1 with fine bins", got, exact, 0.05*exact)
}

func TestQuantileBins(t *testing.T) {
	s := make([]float64, 100)
	for i := range s {
		s[i] = float64(99 - i)
	}
	b, err := QuantileBins(s, 4)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := b.Edges(), []float64{0, 25, 50, 75, math.Nextafter(99, 100)}; !slices.Equal(got, want) {
		t.Errorf("edges of 0..99 in 4 bins = %v, want %v", got, want)
	}
	for _, c := range []struct {
		x    float64
		want int
	}{{-1e9, 0}, {-0.1, 0}, {0, 1}, {24.9, 1}, {25, 2}, {49.99, 2}, {50, 3}, {75, 4}, {99, 4}, {99.01, 5}, {1e9, 5}} {
		if got := b.Index(c.x); got != c.want {
			t.Errorf("Index(%v) = %d, want %d", c.x, got, c.want)
		}
	}
	// Ties: values 0, 1, 2 in shares .5 .3 .2; the values of rank 10, 20, …, 90 are
	// 0 0 0 0 1 1 1 2 2 → edges 0 (the minimum), 1, 2, and just above the maximum 2.
	var tied []float64
	for i := 0; i < 100; i++ {
		tied = append(tied, float64(min(i/50, 1)+min(i/80, 1)))
	}
	b, _ = QuantileBins(tied, 10)
	if got, want := b.Edges(), []float64{0, 1, 2, math.Nextafter(2, 3)}; !slices.Equal(got, want) {
		t.Errorf("edges with ties = %v, want %v", got, want)
	}
	b, _ = QuantileBins([]float64{7, 7, 7, math.NaN()}, 10)
	if e := b.Edges(); len(e) != 2 || e[0] != 7 || !(e[1] > 7) || b.Index(7) != 1 || b.Index(7.0001) != 2 || b.Index(6.9) != 0 {
		t.Errorf("constant sample: edges %v", e)
	}
	if _, err := QuantileBins([]float64{math.NaN()}, 10); err == nil {
		t.Error("QuantileBins of no finite value: no error")
	}
	if _, err := QuantileBins([]float64{1}, 1); err == nil {
		t.Error("QuantileBins with 1 bin: no error")
	}
	if _, err := NewBins([]float64{1, 1}); err == nil {
		t.Error("NewBins with equal edges: no error")
	}
}

func TestCategories(t *testing.T) {
	c, err := NewCategories(2)
	if err != nil {
		t.Fatal(err)
	}
	if a, b, a2 := c.Index("a"), c.Index("b"), c.Index("a"); a != 1 || b != 2 || a2 != 1 {
		t.Errorf("indices a, b, a = %d %d %d, want 1 2 1", a, b, a2)
	}
	if x := c.Index("c"); x != OtherCategory || c.Overflow != 1 {
		t.Errorf("third category: index %d, overflow %d; want %d, 1", x, c.Overflow, OtherCategory)
	}
	if _, ok := c.Lookup("c"); ok || c.Len() != 3 || c.Cap() != 3 || c.Name(2) != "b" || c.Name(0) != "" {
		t.Errorf("Lookup/Len/Cap/Name wrong: len %d cap %d name(2) %q", c.Len(), c.Cap(), c.Name(2))
	}
	if _, err := NewCategories(-1); err == nil {
		t.Error("NewCategories(-1): no error")
	}
}

func TestLogHistogramQuantiles(t *testing.T) {
	h, err := NewLogHistogram(DefaultLatencyMin, DefaultLatencyMax, DefaultLatencyRelErr)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(h.counts); n < 900 || n > 950 {
		t.Errorf("default sketch has %d buckets, documented 923", n)
	}
	r := rand.New(rand.NewPCG(3, 4))
	xs := make([]float64, 20000)
	for i := range xs {
		xs[i] = math.Exp(3 + r.NormFloat64()) // log-normal latencies, median e³ ≈ 20 ms
		h.Add(xs[i])
	}
	slices.Sort(xs)
	for _, q := range []float64{0, 0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		rank := max(int(math.Ceil(q*float64(len(xs)))), 1)
		exact := xs[rank-1]
		got := h.Quantile(q)
		if math.Abs(got-exact) > DefaultLatencyRelErr*exact*1.0001 {
			t.Errorf("q%.3f = %v, exact %v: relative error %.4f > %v", q, got, exact, math.Abs(got-exact)/exact, DefaultLatencyRelErr)
		}
	}
	if h.Count() != 20000 {
		t.Errorf("Count = %d", h.Count())
	}
	o, _ := NewLogHistogram(DefaultLatencyMin, DefaultLatencyMax, DefaultLatencyRelErr)
	o.Add(0)    // below min
	o.Add(1e12) // above max
	h.Merge(o)
	if h.Count() != 20002 || h.Quantile(1) != DefaultLatencyMax || h.Quantile(0) != DefaultLatencyMin {
		t.Errorf("after merge: count %d, max %v, min %v", h.Count(), h.Quantile(1), h.Quantile(0))
	}
	h.Reset()
	if !math.IsNaN(h.Quantile(0.5)) || h.Count() != 0 {
		t.Error("Reset did not empty the sketch")
	}
	if _, err := NewLogHistogram(0, 1, 0.01); err == nil {
		t.Error("min 0: no error")
	}
}
