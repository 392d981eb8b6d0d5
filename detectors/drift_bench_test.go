package detectors

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

func benchBins(b *testing.B, k int) (*Bins, []float64) {
	r := rand.New(rand.NewPCG(5, 6))
	xs := make([]float64, 4096)
	for i := range xs {
		xs[i] = r.NormFloat64()
	}
	bins, err := QuantileBins(append([]float64(nil), xs...), k)
	if err != nil {
		b.Fatal(err)
	}
	return bins, xs
}

func BenchmarkHistogramAdd(b *testing.B) {
	for _, k := range []int{10, 64} {
		b.Run(strconv.Itoa(k)+"bins", func(b *testing.B) {
			bins, xs := benchBins(b, k)
			h := NewHistogram(bins)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h.Add(xs[i&4095])
			}
		})
	}
}

func BenchmarkCategoriesIndex(b *testing.B) {
	c, _ := NewCategories(32)
	names := make([]string, 40)
	for i := range names {
		names[i] = "category_" + strconv.Itoa(i)
		c.Index(names[i])
	}
	counts := make([]float64, c.Cap())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		counts[c.Index(names[i%40])]++
	}
}

func BenchmarkLogHistogramAdd(b *testing.B) {
	h, _ := NewLogHistogram(DefaultLatencyMin, DefaultLatencyMax, DefaultLatencyRelErr)
	r := rand.New(rand.NewPCG(7, 8))
	xs := make([]float64, 4096)
	for i := range xs {
		xs[i] = 20 * (1 + r.ExpFloat64())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.Add(xs[i&4095])
	}
}

func BenchmarkLogHistogramQuantile(b *testing.B) {
	h, _ := NewLogHistogram(DefaultLatencyMin, DefaultLatencyMax, DefaultLatencyRelErr)
	for i := 0; i < 10000; i++ {
		h.Add(float64(i%500) + 1)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.Quantile(0.99)
	}
}

// BenchmarkNumericDrift: all four statistics of one feature (10 bins), as the agent computes
// them once per feature and tick.
func BenchmarkNumericDrift(b *testing.B) {
	bins, xs := benchBins(b, 10)
	ref, cur := NewHistogram(bins), NewHistogram(bins)
	for i, x := range xs {
		ref.Add(x)
		cur.Add(x + float64(i%3)*0.1)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var sink Drift
	for i := 0; i < b.N; i++ {
		sink = NumericDrift(ref, cur)
	}
	_ = sink
}

func BenchmarkCategoricalDrift(b *testing.B) {
	ref, cur := make([]float64, 33), make([]float64, 33)
	for i := range ref {
		ref[i], cur[i] = float64(i+1), float64(33-i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var sink Drift
	for i := 0; i < b.N; i++ {
		sink = CategoricalDrift(ref, cur)
	}
	_ = sink
}
