package detectors

import "math"

// Drift statistics compare the distribution of one feature in a current window with its
// distribution in a reference, both summarised by histograms over the same bins: for a numeric
// feature a Histogram over Bins fixed from the reference (QuantileBins), for a categorical one
// a count slice indexed by a Categories dictionary shared by reference and window. The
// functions below are pure, O(k) in the number of bins k, and allocation-free; the per
// observation work (Histogram.Add, Categories.Index) is O(log k) resp. one map lookup and does
// not allocate once a category is known.
//
// Notation: r_i and c_i are the reference and current counts of bin i, R = Σ r_i, C = Σ c_i,
// p_i = r_i/R and q_i = c_i/C the proportions. Every statistic is NaN when R or C is 0.
//
// Rules of thumb for a window of n ≥ 500 against a reference of ≥ 1000 observations and 10
// bins (the thresholds the agent's acceptance test uses):
//
//	PSI < 0.1 no drift, 0.1–0.25 moderate, > 0.25 major (industry convention)
//	KS  > c(α)·√((R+C)/(R·C)), c(0.001) = 1.95: the two-sample KS critical value
//	JS  > 0.1 (distance, base 2, in [0,1]; sampling noise alone is about √((k−1)(1/R+1/C)/(8 ln 2)))
//	Wasserstein in the feature's unit (a pure location shift of d gives d).

// Drift is the set of drift statistics of one feature.
type Drift struct {
	PSI         float64 // population stability index, ≥ 0
	KS          float64 // Kolmogorov–Smirnov statistic in [0,1] (categorical: total variation)
	JS          float64 // Jensen–Shannon distance in [0,1] (base-2 logarithms)
	Wasserstein float64 // Wasserstein-1 distance in the feature's unit (categorical: total variation)
}

// DefaultPSISmoothing is the pseudo-count PSI adds to every bin in use.
const DefaultPSISmoothing = 0.5

// NumericDrift compares the current histogram cur with the reference ref (same Bins). PSI uses
// DefaultPSISmoothing. See PSI, KSBinned, JSDistance and Wasserstein1 for the maths and the
// approximation error of each.
func NumericDrift(ref, cur *Histogram) Drift {
	return Drift{
		PSI:         PSI(ref.Counts, cur.Counts, DefaultPSISmoothing),
		KS:          KSBinned(ref.Counts, cur.Counts),
		JS:          JSDistance(ref.Counts, cur.Counts),
		Wasserstein: Wasserstein1(ref.Counts, ref.Sums, cur.Counts, cur.Sums),
	}
}

// CategoricalDrift compares category counts (indexed by one Categories, the "other" bucket
// included). Categories have no order, so KS and Wasserstein are their natural
// generalisations: the supremum of |P(A) − Q(A)| over all sets of categories, and the
// Wasserstein-1 distance under the 0/1 metric — both equal to the total variation distance
// ½·Σ|p_i − q_i|.
func CategoricalDrift(ref, cur []float64) Drift {
	tv := TotalVariation(ref, cur)
	return Drift{
		PSI:         PSI(ref, cur, DefaultPSISmoothing),
		KS:          tv,
		JS:          JSDistance(ref, cur),
		Wasserstein: tv,
	}
}

// sums returns Σ a_i and Σ b_i over the common length.
func sums(a, b []float64) (sa, sb float64, n int) {
	n = min(len(a), len(b))
	for i := 0; i < n; i++ {
		sa += a[i]
		sb += b[i]
	}
	return sa, sb, n
}

// PSI is the population stability index of the current counts cur against the reference
// counts ref:
//
//	PSI = Σ_i (q_i − p_i) · ln(q_i / p_i)
//
// computed with smoothed proportions p_i = (r_i + s)/(R + s·K), q_i = (c_i + s)/(C + s·K) over
// the K bins used by either side (bins empty on both sides are skipped), so that a bin empty on
// one side — a new category — gives a large but finite term. s (≥ 0, default
// DefaultPSISmoothing = 0.5) is the pseudo-count; s = 0 gives +Inf for such a bin. PSI is the
// symmetrised Kullback–Leibler divergence KL(q‖p) + KL(p‖q). Under no drift its expectation is
// about (K−1)·(1/R + 1/C).
func PSI(ref, cur []float64, s float64) float64 {
	R, C, n := sums(ref, cur)
	if R <= 0 || C <= 0 {
		return math.NaN()
	}
	k := 0
	for i := 0; i < n; i++ {
		if ref[i]+cur[i] > 0 {
			k++
		}
	}
	dr, dc := R+s*float64(k), C+s*float64(k)
	psi := 0.0
	for i := 0; i < n; i++ {
		if ref[i]+cur[i] <= 0 {
			continue
		}
		p, q := (ref[i]+s)/dr, (cur[i]+s)/dc
		if p == q {
			continue
		}
		psi += (q - p) * math.Log(q/p)
	}
	return psi
}

// KSBinned is the Kolmogorov–Smirnov statistic of two histograms over the same ordered bins:
//
//	KS = max_j | Σ_{i≤j} p_i − Σ_{i≤j} q_i |
//
// the largest distance between the two empirical CDFs at the bin edges. It is a lower bound of
// the KS statistic of the underlying samples, short of it by at most the largest mass of one
// bin on either side, max_i max(p_i, q_i) (inside a bin both CDFs rise by p_i and q_i). With
// quantile bins from the reference every p_i ≈ 1/k.
func KSBinned(ref, cur []float64) float64 {
	R, C, n := sums(ref, cur)
	if R <= 0 || C <= 0 {
		return math.NaN()
	}
	var cr, cc, ks float64 // cumulative counts: exact for integer counts
	for i := 0; i < n; i++ {
		cr += ref[i]
		cc += cur[i]
		ks = max(ks, math.Abs(cr/R-cc/C))
	}
	return min(ks, 1)
}

// TotalVariation is ½·Σ_i |p_i − q_i|, in [0,1].
func TotalVariation(ref, cur []float64) float64 {
	R, C, n := sums(ref, cur)
	if R <= 0 || C <= 0 {
		return math.NaN()
	}
	tv := 0.0
	for i := 0; i < n; i++ {
		tv += math.Abs(ref[i]/R - cur[i]/C)
	}
	return min(tv/2, 1)
}

// JSDistance is the Jensen–Shannon distance, the square root of the Jensen–Shannon divergence
// with base-2 logarithms, in [0,1]:
//
//	m_i = (p_i + q_i)/2
//	JSD = ½·Σ p_i·log2(p_i/m_i) + ½·Σ q_i·log2(q_i/m_i)     (0·log 0 = 0)
//	JS  = √JSD
//
// It needs no smoothing (m_i > 0 wherever p_i or q_i is), is symmetric and a metric. For
// histograms it is the distance between the binned distributions: binning can only lower it.
func JSDistance(ref, cur []float64) float64 {
	R, C, n := sums(ref, cur)
	if R <= 0 || C <= 0 {
		return math.NaN()
	}
	d := 0.0
	for i := 0; i < n; i++ {
		p, q := ref[i]/R, cur[i]/C
		m := (p + q) / 2
		if p > 0 {
			d += p * math.Log2(p/m)
		}
		if q > 0 {
			d += q * math.Log2(q/m)
		}
	}
	return math.Sqrt(min(max(d/2, 0), 1))
}

// Wasserstein1 is the Wasserstein-1 (earth mover's) distance between two histograms over the
// same ordered bins, each bin's mass placed at the mean of the values that fell in it (sums_i /
// counts_i, which is why Histogram keeps per-bin sums):
//
//	W1 = ∫ |F(x) − G(x)| dx
//
// over the two step CDFs of these atoms, computed in one O(k) pass. The error against W1 of the
// two samples is at most Σ_i p_i·d_i(P) + Σ_i q_i·d_i(Q), where d_i is the mean absolute
// deviation of the values in bin i from their mean: below the bin's width for inner bins, and
// the spread of the tail for the two open outer bins. A pure location shift inside the inner
// bins is recovered almost exactly (the bin means shift with it).
func Wasserstein1(refCounts, refSums, curCounts, curSums []float64) float64 {
	R, C, n := sums(refCounts, curCounts)
	if R <= 0 || C <= 0 || len(refSums) < n || len(curSums) < n {
		return math.NaN()
	}
	var w, d, x0 float64 // d = F − G left of the current position x0
	first := true
	step := func(x, mass float64) {
		if !first && x > x0 {
			w += math.Abs(d) * (x - x0)
		}
		if first || x > x0 {
			x0 = x
		}
		first = false
		d += mass
	}
	for i := 0; i < n; i++ {
		r, c := refCounts[i], curCounts[i]
		switch {
		case r > 0 && c > 0:
			a, b := refSums[i]/r, curSums[i]/c
			if a <= b {
				step(a, r/R)
				step(b, -c/C)
			} else {
				step(b, -c/C)
				step(a, r/R)
			}
		case r > 0:
			step(refSums[i]/r, r/R)
		case c > 0:
			step(curSums[i]/c, -c/C)
		}
	}
	return w
}
