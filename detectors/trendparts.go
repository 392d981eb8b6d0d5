package detectors

import "math"

// This file holds the small state types the trend forecasters share: a robust scale, a
// lag-1 autocorrelation and a ring of block means.

// absScale is a robust scale of a series of values v: σ = √(π/2)·E|v| (1.2533; exact for normal
// v), E a discounted mean of |v| clipped at 4σ, so that an outlier moves it little but a lasting
// change of spread is followed. Its owner chooses each value's weight (add's a): plain means
// while few values are in, then a discount. The zero value is a scale that has seen nothing.
type absScale float64

// sigma returns σ = √(π/2)·E|v|.
func (s absScale) sigma() float64 { return 1.2533 * float64(s) }

// clip returns |v| capped at 4σ (not capped while E|v| is 0).
func (s absScale) clip(v float64) float64 {
	v = math.Abs(v)
	if lim := 4 * 1.2533 * float64(s); s > 0 && v > lim {
		return lim
	}
	return v
}

// add moves E|v| towards v's clipped |v| with weight a in (0, 1] and returns the clipped |v|.
func (s *absScale) add(v, a float64) float64 {
	c := s.clip(v)
	*s += absScale(a * (c - float64(*s)))
	return c
}

// lag1 is the discounted lag-1 autocorrelation of a series v: E[v·v_prev] / E[v²], E
// discounted means whose weights the owner chooses (add's a). The zero value has seen nothing.
type lag1 struct {
	rr, r2 float64 // E[v·v_prev], E[v²]
	prev   float64 // the newest v
}

// add moves the means towards the value v with weight a in (0, 1].
func (l *lag1) add(v, a float64) {
	l.rr += a * (v*l.prev - l.rr)
	l.r2 += a * (v*v - l.r2)
	l.prev = v
}

// rho returns the autocorrelation, negative values as 0 (0 before any value).
func (l *lag1) rho() float64 {
	if l.r2 > 0 {
		return math.Max(0, l.rr/l.r2)
	}
	return 0
}

// blockRing is the bookkeeping of a ring of block means: the slot the next mean goes to and how
// many are held, the oldest overwritten first. The slots are its owner's (an array of size
// elements holding whatever a mean needs: its value, its time), passed as size to every call,
// so the ring costs two ints and its owner stays a comparable value.
type blockRing struct {
	head int // the slot the next mean goes to
	n    int // means held, at most size
}

// push counts a new mean and returns its slot, in [0, size).
func (r *blockRing) push(size int) int {
	j := r.head
	r.head = (r.head + 1) % size
	if r.n < size {
		r.n++
	}
	return j
}

// back returns the slot of the i-th newest mean (i = 0: the newest), 0 ≤ i < size.
func (r *blockRing) back(i, size int) int { return (r.head - 1 - i + 2*size) % size }

// clear empties the ring.
func (r *blockRing) clear() { r.n = 0 }
