package detectors

import (
	"math"
	"math/rand/v2"
	"testing"
)

func phi(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// binProbs returns the probability of every bin of b under N(mu, sigma²).
func binProbs(b *Bins, mu, sigma float64) []float64 {
	e := b.Edges()
	p := make([]float64, len(e)+1)
	prev := 0.0
	for i, x := range e {
		c := phi((x - mu) / sigma)
		p[i] = c - prev
		prev = c
	}
	p[len(e)] = 1 - prev
	return p
}

// Large samples of known distributions: the statistics of the sampled histograms match the
// ones computed from the exact bin probabilities (Φ at the edges), written out here from the
// definitions, and the exact continuous values where they are known (KS, W1 of a shift).
func TestDriftStatisticsNormalShifts(t *testing.T) {
	const n = 50000
	r := rand.New(rand.NewPCG(11, 12))
	ref := make([]float64, n)
	for i := range ref {
		ref[i] = r.NormFloat64()
	}
	bins, err := QuantileBins(append([]float64(nil), ref...), 10)
	if err != nil {
		t.Fatal(err)
	}
	href := NewHistogram(bins)
	for _, x := range ref {
		href.Add(x)
	}
	for _, tc := range []struct {
		name      string
		mu, sigma float64
		w1        float64 // exact W1 between N(0,1) and N(mu, sigma²) when known, else -1
	}{
		{"same", 0, 1, 0},
		{"mean+0.5", 0.5, 1, 0.5},
		{"mean-1", -1, 1, 1},
		{"sd×2", 0, 2, math.Sqrt(2 / math.Pi)}, // |σ2−σ1|·E|Z| = √(2/π)
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := NewHistogram(bins)
			for i := 0; i < n; i++ {
				cur.Add(tc.mu + tc.sigma*r.NormFloat64())
			}
			d := NumericDrift(href, cur)
			p, q := binProbs(bins, 0, 1), binProbs(bins, tc.mu, tc.sigma)
			var psi, jsd, ks, f, g float64
			for i := range p {
				psi += (q[i] - p[i]) * math.Log(q[i]/p[i])
				m := (p[i] + q[i]) / 2
				jsd += 0.5*p[i]*math.Log2(p[i]/m) + 0.5*q[i]*math.Log2(q[i]/m)
				f, g = f+p[i], g+q[i]
				ks = math.Max(ks, math.Abs(f-g))
			}
			t.Logf("sampled %+v; from Φ: PSI %.4f JS %.4f KS %.4f; W1 %.4f", d, psi, math.Sqrt(jsd), ks, tc.w1)
			// Sampling noise of two samples of 50000 in 10 bins: PSI ~ 4e-4, KS ~ 0.006.
			near(t, "PSI", d.PSI, psi, 0.01+0.05*psi)
			near(t, "JS", d.JS, math.Sqrt(jsd), 0.02)
			near(t, "KS (binned)", d.KS, ks, 0.01)
			if tc.sigma == 1 {
				exactKS := 2*phi(math.Abs(tc.mu)/2) - 1
				if d.KS > exactKS+0.01 || d.KS < exactKS-0.1-0.01 {
					t.Errorf("KS %v not within [exact − 1/k, exact] = [%v, %v]", d.KS, exactKS-0.1, exactKS)
				}
			}
			if tc.w1 >= 0 {
				// Bin means absorb most of a shift; the error bound is the in-bin spread.
				near(t, "Wasserstein", d.Wasserstein, tc.w1, 0.05+0.1*tc.w1)
			}
		})
	}
}

// Window-sized samples: from the reference distribution the statistics stay under the
// thresholds documented in drift.go; shifted ones cross them.
func TestDriftThresholdsWindowSized(t *testing.T) {
	const nRef, nCur = 2000, 1000
	ksCrit := 1.95 * math.Sqrt(float64(nRef+nCur)/float64(nRef*nCur)) // α = 0.001
	for seed := uint64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 99))
		ref := make([]float64, nRef)
		for i := range ref {
			ref[i] = r.NormFloat64()
		}
		bins, _ := QuantileBins(append([]float64(nil), ref...), 10)
		href := NewHistogram(bins)
		for _, x := range ref {
			href.Add(x)
		}
		draw := func(mu, sigma float64) Drift {
			h := NewHistogram(bins)
			for i := 0; i < nCur; i++ {
				h.Add(mu + sigma*r.NormFloat64())
			}
			return NumericDrift(href, h)
		}
		if d := draw(0, 1); d.PSI >= 0.1 || d.KS >= ksCrit || d.JS >= 0.1 {
			t.Errorf("seed %d, no drift: %+v crosses PSI 0.1 / KS %.3f / JS 0.1", seed, d, ksCrit)
		}
		if d := draw(0.5, 1); d.PSI < 0.1 || d.KS < ksCrit || d.JS < 0.1 || d.Wasserstein < 0.35 {
			t.Errorf("seed %d, mean +0.5σ: %+v stays under a threshold", seed, d)
		}
		if d := draw(0, 2); d.PSI < 0.1 || d.KS < ksCrit || d.JS < 0.1 {
			t.Errorf("seed %d, σ×2: %+v stays under a threshold", seed, d)
		}
	}
}
