package detectors

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// DefaultDriftBins is the number of quantile bins QuantileBins aims for by default, and
// MaxDriftBins the most it accepts.
const (
	DefaultDriftBins = 10
	MaxDriftBins     = 256
)

// Bins are fixed bin edges for one numeric feature, derived once from the reference and shared
// (read-only) by every Histogram of that feature. Edges e_0 < e_1 < … < e_{m−1} make m+1 bins:
//
//	bin 0 = (−∞, e_0),  bin i = [e_{i−1}, e_i),  bin m = [e_{m−1}, +∞)
//
// The outer bins are open, so no value is ever out of range. Memory: 8 bytes per edge.
type Bins struct {
	edges []float64
}

// NewBins makes bins from strictly increasing, finite edges (at most MaxDriftBins−1).
func NewBins(edges []float64) (*Bins, error) {
	if len(edges) >= MaxDriftBins {
		return nil, fmt.Errorf("detectors: %d bin edges: at most %d", len(edges), MaxDriftBins-1)
	}
	for i, e := range edges {
		if !finite(e) {
			return nil, fmt.Errorf("detectors: bin edge %d is %v, not finite", i, e)
		}
		if i > 0 && !(e > edges[i-1]) {
			return nil, fmt.Errorf("detectors: bin edges must increase strictly (edge %d = %v after %v)", i, e, edges[i-1])
		}
	}
	return &Bins{edges: slices.Clone(edges)}, nil
}

// QuantileBins derives bins from a reference sample: about k bins holding equal shares of it
// (k in [2, MaxDriftBins−2]; 0 means DefaultDriftBins), plus two bins for values outside its
// range. The edges are the sample's minimum, its quantiles at levels j/k, j = 1…k−1 (the value
// of rank ⌊j·n/k⌋ of the sorted sample), and the next float above its maximum, with duplicates
// removed: bin 0 holds values below the reference, the last bin values above it (reference
// mass 0, so a window moving out of the reference range shows at once in every statistic),
// and a sample with ties or few distinct values gives fewer inner bins. NaN and ±Inf are
// skipped. sample is overwritten (filtered and sorted in place). A sample without a finite
// value is an error.
func QuantileBins(sample []float64, k int) (*Bins, error) {
	if k == 0 {
		k = DefaultDriftBins
	}
	if k < 2 || k > MaxDriftBins-2 {
		return nil, fmt.Errorf("detectors: %d bins: want 2 to %d", k, MaxDriftBins-2)
	}
	s := sample[:0]
	for _, x := range sample {
		if finite(x) {
			s = append(s, x)
		}
	}
	if len(s) == 0 {
		return nil, errors.New("detectors: no finite value to derive bins from")
	}
	slices.Sort(s)
	n := len(s)
	edges := make([]float64, 1, k+1)
	edges[0] = s[0]
	for j := 1; j < k; j++ {
		if e := s[j*n/k]; e > edges[len(edges)-1] {
			edges = append(edges, e)
		}
	}
	edges = append(edges, math.Nextafter(s[n-1], math.Inf(1)))
	return &Bins{edges: edges}, nil
}

// Len is the number of bins (edges + 1).
func (b *Bins) Len() int { return len(b.edges) + 1 }

// Edges returns a copy of the edges.
func (b *Bins) Edges() []float64 { return slices.Clone(b.edges) }

// Index returns the bin of x: the number of edges ≤ x, by binary search (O(log k), at most 8
// comparisons). NaN goes to bin 0; callers skip non-finite values first.
func (b *Bins) Index(x float64) int {
	lo, hi := 0, len(b.edges)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if b.edges[m] <= x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// Histogram counts the observations of one numeric feature over fixed Bins and keeps, per bin,
// the sum of the values (for Wasserstein1's bin means). Add is O(log k) and allocation-free.
// Memory: 16 bytes per bin. Counts are float64, exact up to 2^53 observations. Not safe for
// concurrent use.
type Histogram struct {
	Bins   *Bins
	Counts []float64 // per bin
	Sums   []float64 // sum of the values per bin
	N      float64   // Σ Counts
}

// NewHistogram returns an empty histogram over b.
func NewHistogram(b *Bins) *Histogram {
	return &Histogram{Bins: b, Counts: make([]float64, b.Len()), Sums: make([]float64, b.Len())}
}

// Add counts x and reports whether it did: NaN and ±Inf are skipped.
func (h *Histogram) Add(x float64) bool {
	if !finite(x) {
		return false
	}
	i := h.Bins.Index(x)
	h.Counts[i]++
	h.Sums[i] += x
	h.N++
	return true
}

// Merge adds the counts of o, which must be over the same Bins.
func (h *Histogram) Merge(o *Histogram) {
	for i := range h.Counts {
		h.Counts[i] += o.Counts[i]
		h.Sums[i] += o.Sums[i]
	}
	h.N += o.N
}

// Reset empties the histogram, keeping its bins and memory.
func (h *Histogram) Reset() {
	clear(h.Counts)
	clear(h.Sums)
	h.N = 0
}
