package controller

import (
	"math"
	"time"

	"github.com/vigil-sre/vigil/rules"
)

// Bounded sample history for the window functions of rules (avg_over,
// rate, quantile_over, ...).
//
// Only series that a loaded rule reads with a window function get a
// history: the engine lists those selectors with the longest window each is
// read over (rules.WindowNeed); syncWindows attaches a sampleRing to every
// matching series, existing or new, and detaches it when a reload drops the
// need. A ring keeps the samples of the last span, at most maxRingSamples
// of them: it starts small and doubles while its oldest sample is still
// within the span; when samples come faster than span/maxRingSamples, the
// latest sample replaces the last kept one as long as that one is closer
// than span/maxRingSamples to the one before it (so the latest sample is
// always kept, kept samples are at least span/maxRingSamples apart, and
// minima and maxima between them can be lost). Memory: at most maxRingSamples × 16 B = 4 KiB per windowed
// series; agents at 10 s with a 10 m window keep 61 samples (~1 KiB). With
// no window rules loaded, nothing is allocated.

// maxRingSamples bounds the samples kept per windowed series.
const maxRingSamples = 256

// sampleRing is the recent history of one series.
type sampleRing struct {
	span  time.Duration
	buf   []rules.Sample // circular: start is the oldest, n are used
	start int
	n     int
}

func newSampleRing(span time.Duration) *sampleRing {
	return &sampleRing{span: span, buf: make([]rules.Sample, 8)}
}

func (r *sampleRing) at(i int) *rules.Sample { return &r.buf[(r.start+i)%len(r.buf)] }

// add records a sample; older ones than the latest are ignored.
func (r *sampleRing) add(t int64, v float64) {
	if r.n > 0 {
		last := r.at(r.n - 1)
		if t < last.T {
			return
		}
		step := int64(r.span) / maxRingSamples
		if t == last.T || (r.n >= 2 && last.T-r.at(r.n-2).T < step) {
			*last = rules.Sample{T: t, V: v}
			return
		}
	}
	switch {
	case r.n < len(r.buf):
		r.n++
	case r.buf[r.start].T < t-int64(r.span) || len(r.buf) >= maxRingSamples:
		r.start = (r.start + 1) % len(r.buf) // overwrite the oldest
	default:
		r.grow()
		r.n++
	}
	*r.at(r.n - 1) = rules.Sample{T: t, V: v}
}

func (r *sampleRing) grow() {
	nb := make([]rules.Sample, min(2*len(r.buf), maxRingSamples))
	for i := 0; i < r.n; i++ {
		nb[i] = *r.at(i)
	}
	r.buf, r.start = nb, 0
}

// samples copies the history, oldest first, into dst.
func (r *sampleRing) samples(dst []rules.Sample) []rules.Sample {
	dst = dst[:0]
	first := r.buf[r.start:min(r.start+r.n, len(r.buf))]
	dst = append(dst, first...)
	if rest := r.n - len(first); rest > 0 {
		dst = append(dst, r.buf[:rest]...)
	}
	return dst
}

// syncWindows attaches or detaches rings after the engine's rules changed.
func (st *store) syncWindows(e *rules.Engine) {
	x := st.extension()
	if x.needsGen == e.Generation() {
		return
	}
	x.needsGen = e.Generation()
	x.needs = e.WindowNeeds()
	for _, h := range st.hosts {
		for _, s := range h.ordered {
			st.attachWindow(s)
		}
	}
}

// attachWindow gives s a ring if a rule reads it over a window (keeping
// the samples it has when the span does not change), or removes it.
func (st *store) attachWindow(s *series) {
	var span time.Duration
	for _, n := range st.extension().needs {
		if n.Selector.Match(s.measurement, s.field, s.tag) {
			span = max(span, n.Span)
		}
	}
	switch {
	case span == 0:
		s.win = nil
	case s.win == nil:
		s.win = newSampleRing(span)
	default:
		s.win.span = span
	}
}

// Window implements rules.Source for the host scope.
func (st *store) Window(subject string, sel *rules.Selector, q rules.WindowQuery, now time.Time) (float64, bool) {
	h := st.hosts[subject]
	if h == nil {
		return 0, false
	}
	return st.windowOver(h.match(sel), q, now)
}

// windowOver reduces every series that has a history and answers the
// maximum.
func (st *store) windowOver(ss []*series, q rules.WindowQuery, now time.Time) (float64, bool) {
	x := st.extension()
	best, ok := math.Inf(-1), false
	for _, s := range ss {
		if s.win == nil {
			continue
		}
		x.scratch = s.win.samples(x.scratch)
		if v, vok := q.Reduce(x.scratch, now); vok && (v > best || !ok) {
			best, ok = v, true
		}
	}
	return best, ok
}
