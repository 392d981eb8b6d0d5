package detectors

import (
	"fmt"
	"math"
)

// Defaults of a LogHistogram for latencies in milliseconds.
const (
	DefaultLatencyMin    = 0.01 // ms
	DefaultLatencyMax    = 1e6  // ms
	DefaultLatencyRelErr = 0.01
)

// LogHistogram is a bounded, mergeable quantile sketch for positive values such as latencies:
// counts over logarithmic buckets with a guaranteed relative error.
//
// With γ = (1+ε)/(1−ε), bucket i ≥ 1 covers (min·γ^(i−1), min·γ^i]; bucket 0 holds values ≤ min
// (and zero or negative ones), the last bucket values above max. A quantile is answered by the
// bucket holding the observation of rank ⌈q·n⌉ (nearest rank, q in [0,1]), reported as
// min·2γ^i/(γ+1), which is within a factor 1±ε of every value in (min·γ^(i−1), min·γ^i]: for
// values in [min, max] the answer is the exact nearest-rank quantile up to a relative error ε.
// Values below min are reported as min, above max as max.
//
// Parameters: min > 0, max > min, ε in (0, 0.5). Defaults for latencies in milliseconds:
// DefaultLatencyMin = 0.01, DefaultLatencyMax = 1e6, DefaultLatencyRelErr = 0.01.
// Memory: 4 bytes per bucket, ⌈ln(max/min)/ln γ⌉ + 2 buckets (923 buckets, 3.7 KB with the
// defaults). Add is O(1) (one logarithm) and allocation-free; Merge and Quantile are O(buckets).
// Counts saturate at 2^32−1 per bucket. Not safe for concurrent use.
type LogHistogram struct {
	min, max   float64
	lnGamma    float64
	gamma      float64
	counts     []uint32
	n          uint64
	sum        float64
	lastBucket int
	invLnGamma float64
}

// NewLogHistogram returns an empty sketch; see LogHistogram for the parameters.
func NewLogHistogram(min, max, relErr float64) (*LogHistogram, error) {
	if !(min > 0) || !(max > min) || !finite(max) || !(relErr > 0 && relErr < 0.5) {
		return nil, fmt.Errorf("detectors: log histogram min %v, max %v, relative error %v: want 0 < min < max and 0 < error < 0.5", min, max, relErr)
	}
	g := (1 + relErr) / (1 - relErr)
	lg := math.Log(g)
	nb := int(math.Ceil(math.Log(max/min)/lg)) + 2
	if nb > 1<<20 {
		return nil, fmt.Errorf("detectors: log histogram would need %d buckets (at most %d)", nb, 1<<20)
	}
	return &LogHistogram{min: min, max: max, lnGamma: lg, gamma: g, counts: make([]uint32, nb),
		lastBucket: nb - 1, invLnGamma: 1 / lg}, nil
}

// Add counts x (NaN is skipped and reported false).
func (h *LogHistogram) Add(x float64) bool {
	if math.IsNaN(x) {
		return false
	}
	i := 0
	switch {
	case x <= h.min:
	case x > h.max:
		i = h.lastBucket
	default:
		i = int(math.Ceil(math.Log(x/h.min) * h.invLnGamma))
		i = min(max(i, 1), h.lastBucket-1)
	}
	if h.counts[i] < math.MaxUint32 {
		h.counts[i]++
	}
	h.n++
	if finite(x) {
		h.sum += x
	}
	return true
}

// Count is the number of values added.
func (h *LogHistogram) Count() uint64 { return h.n }

// Mean is the mean of the finite values added (NaN when empty).
func (h *LogHistogram) Mean() float64 {
	if h.n == 0 {
		return math.NaN()
	}
	return h.sum / float64(h.n)
}

// Merge adds o's counts; o must have the same parameters.
func (h *LogHistogram) Merge(o *LogHistogram) {
	for i, c := range o.counts {
		s := uint64(h.counts[i]) + uint64(c)
		h.counts[i] = uint32(min(s, math.MaxUint32))
	}
	h.n += o.n
	h.sum += o.sum
}

// Reset empties the sketch, keeping its memory.
func (h *LogHistogram) Reset() {
	clear(h.counts)
	h.n, h.sum = 0, 0
}

// Quantile returns the nearest-rank q-quantile (NaN when empty or q outside [0,1]).
func (h *LogHistogram) Quantile(q float64) float64 {
	if h.n == 0 || !(q >= 0 && q <= 1) {
		return math.NaN()
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += uint64(c)
		if seen >= rank {
			return h.value(i)
		}
	}
	return h.max
}

func (h *LogHistogram) value(i int) float64 {
	switch i {
	case 0:
		return h.min
	case h.lastBucket:
		return h.max
	}
	return min(h.min*math.Exp(float64(i)*h.lnGamma)*2/(h.gamma+1), h.max)
}
