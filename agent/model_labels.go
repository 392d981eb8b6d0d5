package agent

import "time"

// pendingLabels remembers the predictions of observations that carried an id, until their
// label arrives, bounded in number and age: a map id → prediction and a FIFO ring of ids in
// insertion order (which is time order). At most capacity ids wait; one more evicts the oldest
// (counted in evicted). An id older than ttl is dropped (counted in expired) by the next put,
// take or expire. A taken id leaves a stale slot in the ring, skipped when it reaches the
// head; the ring has room for 2×capacity slots and is compacted when full (then at least
// capacity slots are stale, so compaction is O(1) amortised, like put, take and expire).
// Memory: about 150 bytes plus the id per waiting id, and 2×capacity ring slots.
type pendingLabels struct {
	capacity int
	ttl      time.Duration
	m        map[string]pendingEntry
	ring     []pendingSlot
	head     int
	size     int
	seq      uint64
	evicted  uint64
	expired  uint64
}

type pendingEntry struct {
	pred value
	at   time.Time
	seq  uint64
}

type pendingSlot struct {
	id  string
	seq uint64
}

func (p *pendingLabels) init(capacity int, ttl time.Duration) {
	p.capacity, p.ttl = capacity, ttl
	p.m = make(map[string]pendingEntry, min(capacity, 1024))
	p.ring = make([]pendingSlot, 2*capacity)
}

// live is the number of ids waiting for a label.
func (p *pendingLabels) live() int { return len(p.m) }

func (p *pendingLabels) pop() (pendingSlot, pendingEntry, bool) {
	s := p.ring[p.head]
	p.ring[p.head] = pendingSlot{}
	p.head = (p.head + 1) % len(p.ring)
	p.size--
	e, ok := p.m[s.id]
	return s, e, ok && e.seq == s.seq
}

func (p *pendingLabels) put(id string, pred value, now time.Time) {
	p.expire(now)
	delete(p.m, id) // a repeated id: the newest prediction counts; its old slot is stale
	for len(p.m) >= p.capacity && p.size > 0 {
		if s, _, live := p.pop(); live {
			delete(p.m, s.id)
			p.evicted++
		}
	}
	if p.size == len(p.ring) {
		p.compact()
	}
	p.seq++
	p.m[id] = pendingEntry{pred: pred, at: now, seq: p.seq}
	p.ring[(p.head+p.size)%len(p.ring)] = pendingSlot{id: id, seq: p.seq}
	p.size++
}

// compact drops the stale slots, keeping the order of the live ones.
func (p *pendingLabels) compact() {
	live := make([]pendingSlot, 0, len(p.ring))
	for i := 0; i < p.size; i++ {
		s := p.ring[(p.head+i)%len(p.ring)]
		if e, ok := p.m[s.id]; ok && e.seq == s.seq {
			live = append(live, s)
		}
	}
	clear(p.ring)
	copy(p.ring, live)
	p.head, p.size = 0, len(live)
}

// take returns and forgets the prediction of id; ok is false when id is unknown or expired
// (then expired is true).
func (p *pendingLabels) take(id string, now time.Time) (pred value, ok, expired bool) {
	e, ok := p.m[id]
	if !ok {
		return value{}, false, false
	}
	delete(p.m, id)
	if now.Sub(e.at) > p.ttl {
		p.expired++
		return value{}, false, true
	}
	return e.pred, true, false
}

// expire drops ids older than ttl, and stale slots at the head.
func (p *pendingLabels) expire(now time.Time) {
	for p.size > 0 {
		s := p.ring[p.head]
		e, ok := p.m[s.id]
		if ok && e.seq == s.seq && now.Sub(e.at) <= p.ttl {
			return
		}
		p.pop()
		if ok && e.seq == s.seq {
			delete(p.m, s.id)
			p.expired++
		}
	}
}
