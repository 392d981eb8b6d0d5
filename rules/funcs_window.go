package rules

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Window functions: reductions of the samples of the last window of the
// selected series (the maximum over several series). The window must be a
// constant (duration("10m")) of at most MaxWindow; the Source keeps the
// history of exactly the selectors that rules read this way (WindowNeed).
//
//	avg_over(sel, window) float64        mean of the samples in the window
//	min_over(sel, window) float64        smallest sample
//	max_over(sel, window) float64        largest sample
//	sum_over(sel, window) float64        sum of the samples
//	count_over(sel, window) float64      number of samples
//	stddev_over(sel, window) float64     population standard deviation
//	quantile_over(sel, q, window) float64  q-quantile, q in [0,1] (linear interpolation)
//	rate(sel, window) float64            per-second increase of a counter: increase / time between
//	                                     the first and last sample of the window (≥ 2 samples)
//	increase(sel, window) float64        increase of a counter over the window; a decrease is a
//	                                     counter reset: the sample after it counts from zero
//	delta(sel, window) float64           last minus first sample (gauges; ≥ 2 samples)
//
// The window holds the samples at times in [now − window, now]. A window
// without samples (or with fewer than 2 for rate, increase and delta) is no
// data. Capture keys: <fn>:<selector>:<window>, quantile_over:<selector>:<q>:<window>.

// MaxWindow is the longest window a window function may read.
const MaxWindow = 7 * 24 * time.Hour

var windowFuncs = []struct {
	name string
	fn   WindowFunc
}{
	{"avg_over", WindowAvg}, {"min_over", WindowMin}, {"max_over", WindowMax},
	{"sum_over", WindowSum}, {"count_over", WindowCount}, {"stddev_over", WindowStddev},
	{"rate", WindowRate}, {"increase", WindowIncrease}, {"delta", WindowDelta},
}

func windowFuncSpecs() []*funcSpec {
	var out []*funcSpec
	for _, w := range windowFuncs {
		fn, name := w.fn, w.name
		out = append(out, &funcSpec{name: name, selector: true, winArg: 1,
			types: []any{new(func(string, time.Duration) float64)},
			call: func(c *evalCtx, args []any) (any, error) {
				return callWindow(c, name, args[0], WindowQuery{Func: fn}, args[1], noArg)
			}})
	}
	out = append(out, &funcSpec{name: "quantile_over", selector: true, winArg: 2,
		types: []any{new(func(string, float64, time.Duration) float64)},
		call: func(c *evalCtx, args []any) (any, error) {
			q, err := toFloat(args[1])
			if err != nil {
				return nil, err
			}
			return callWindow(c, "quantile_over", args[0], WindowQuery{Func: WindowQuantile, Q: q}, args[2], q)
		}})
	return out
}

func callWindow(c *evalCtx, name string, selArg any, q WindowQuery, winArg any, arg2 float64) (any, error) {
	e, err := c.entry(selArg)
	if err != nil {
		return nil, err
	}
	if q.Window, err = toDuration(winArg); err != nil {
		return nil, err
	}
	v, ok := c.src.Window(c.subject, e.sel, q, c.now)
	return c.number(e.key2(name, arg2, float64(q.Window), true), v, ok), nil
}

var quantileBufs = sync.Pool{New: func() any { b := make([]float64, 0, 256); return &b }}

// Reduce applies the query to samples sorted by time, using those in
// [now − Window, now]. ok is false when the window holds too few samples.
func (q WindowQuery) Reduce(samples []Sample, now time.Time) (float64, bool) {
	hi := now.UnixNano()
	lo := hi - int64(q.Window)
	i := len(samples)
	for i > 0 && samples[i-1].T > hi {
		i--
	}
	j := i
	for j > 0 && samples[j-1].T >= lo {
		j--
	}
	w := samples[j:i]
	if len(w) == 0 {
		return 0, false
	}
	switch q.Func {
	case WindowAvg, WindowSum, WindowCount, WindowStddev:
		return moments(q.Func, w), true
	case WindowMin, WindowMax:
		m := w[0].V
		for _, s := range w[1:] {
			if (q.Func == WindowMin) == (s.V < m) {
				m = s.V
			}
		}
		return m, true
	case WindowQuantile:
		return quantile(w, q.Q), true
	}
	if len(w) < 2 {
		return 0, false
	}
	switch q.Func {
	case WindowDelta:
		return w[len(w)-1].V - w[0].V, true
	case WindowIncrease:
		return counterIncrease(w), true
	case WindowRate:
		dt := float64(w[len(w)-1].T-w[0].T) / 1e9
		if dt <= 0 {
			return 0, false
		}
		return counterIncrease(w) / dt, true
	}
	return 0, false
}

func moments(f WindowFunc, w []Sample) float64 {
	var sum float64
	for _, s := range w {
		sum += s.V
	}
	n := float64(len(w))
	switch f {
	case WindowSum:
		return sum
	case WindowCount:
		return n
	case WindowAvg:
		return sum / n
	}
	mean, ss := sum/n, 0.0
	for _, s := range w {
		ss += (s.V - mean) * (s.V - mean)
	}
	return math.Sqrt(ss / n)
}

// counterIncrease sums the increments of a counter; a decrease is a reset
// after which the counter restarted from zero, so the new value is the
// increment.
func counterIncrease(w []Sample) float64 {
	inc := 0.0
	for k := 1; k < len(w); k++ {
		if d := w[k].V - w[k-1].V; d >= 0 {
			inc += d
		} else {
			inc += w[k].V
		}
	}
	return inc
}

func quantile(w []Sample, q float64) float64 {
	if math.IsNaN(q) {
		return math.NaN()
	}
	q = min(max(q, 0), 1)
	bp := quantileBufs.Get().(*[]float64)
	b := (*bp)[:0]
	for _, s := range w {
		b = append(b, s.V)
	}
	slices.Sort(b)
	pos := q * float64(len(b)-1)
	k := int(pos)
	v := b[k]
	if k+1 < len(b) {
		v += (pos - float64(k)) * (b[k+1] - b[k])
	}
	*bp = b
	quantileBufs.Put(bp)
	return v
}
