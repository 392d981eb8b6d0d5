package detectors

import (
	"math"
	"testing"
)

func TestPeakHold(t *testing.T) {
	const s = int64(1e9) // one second
	type step struct {
		t    int64
		l    float64
		want float64
	}
	for _, tc := range []struct {
		name  string
		span  int64
		steps []step
	}{
		{"onset held for the span, then released", 30 * s, []step{
			{0, 0.1, 0.1}, {10 * s, 0.9999, 0.9999}, {20 * s, 0, 0.9999}, {40 * s, 0, 0.9999},
			{41 * s, 0.2, 0.2}, {50 * s, 0.1, 0.2}}},
		{"a higher peak replaces the held one", 30 * s, []step{
			{0, 0.99, 0.99}, {10 * s, 0.5, 0.99}, {20 * s, 0.999, 0.999}, {45 * s, 0.3, 0.999}, {51 * s, 0.3, 0.3}}},
		{"no span: the latest", 0, []step{{0, 0.9, 0.9}, {10 * s, 0.1, 0.1}}},
		{"NaN and negative count as 0", 30 * s, []step{{0, math.NaN(), 0}, {1 * s, -1, 0}, {2 * s, 0.4, 0.4}}},
	} {
		h := PeakHold{Span: tc.span}
		if h.Value() != 0 {
			t.Fatalf("%s: zero value holds %v", tc.name, h.Value())
		}
		for i, st := range tc.steps {
			h.Observe(st.t, st.l)
			if got := h.Value(); got != st.want {
				t.Errorf("%s: step %d (t=%ds, l=%v): %v, want %v", tc.name, i, st.t/s, st.l, got, st.want)
			}
		}
	}
}
