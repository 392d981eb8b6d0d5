package detectors

// PeakHold keeps a series' highest anomaly likelihood over a trailing span of its own time, so
// that a reader who looks less often than samples arrive still sees an anomaly reported on a
// single sample. The ensemble ("vigil") marks the onset of an anomaly on one sample and reports
// 0 while it lasts; a rule group evaluated every 30 s over 10 s samples would otherwise miss it.
//
// Observe(t, l) restarts the held peak at (t, l) when l ≥ the held peak or when the held peak is
// older than Span; Value returns the held peak. It is the maximum over the last Span up to one
// simplification: once the peak expires the next sample starts a new one, so a smaller sample
// that arrived after the old peak but more than one sample ago is forgotten (an exact sliding
// maximum would need a deque). Time is the samples' own (unix ns): the hold ages only as the
// series does. Span ≤ 0 holds nothing: Value is the latest likelihood. Memory: 3 words; no
// allocation.
type PeakHold struct {
	Span int64 // nanoseconds
	peak float64
	at   int64
	seen bool
}

// Observe records likelihood l of the sample at t.
func (h *PeakHold) Observe(t int64, l float64) {
	if !(l >= 0) { // NaN or negative: a likelihood is in [0,1]
		l = 0
	}
	if !h.seen || h.Span <= 0 || l >= h.peak || t-h.at > h.Span {
		h.peak, h.at, h.seen = l, t, true
	}
}

// Value returns the held likelihood (0 before the first sample).
func (h *PeakHold) Value() float64 { return h.peak }
