package agent

import (
	"sync"
	"time"
)

// backlog is the bounded FIFO of batches not yet acknowledged by JetStream.
// The tick loop pushes; the publisher sends the oldest and removes it once
// acknowledged, so batches leave in seq order. When the backlog is full, a
// push drops the oldest batch — unless that one is being published at that
// moment, in which case the next oldest goes. Buffers of removed batches
// are kept for reuse. Safe for concurrent use.
type backlog struct {
	mu       sync.Mutex
	buf      []batch // ring of capacity max
	head, n  int
	inflight uint64 // seq being published, 0 when none
	bytes    int
	spare    [][]byte
}

// batch is one telemetry message waiting for its acknowledgement.
type batch struct {
	seq      uint64
	data     []byte
	created  time.Time
	attempts int
	// run and host are set on batches read back from the spool, which
	// may come from an earlier run (or host name); "" means this run's.
	run, host string
}

const maxSpare = 4

func newBacklog(max int) *backlog {
	return &backlog{buf: make([]batch, max)}
}

// buffer returns an empty byte slice with capacity of at least n, reusing
// the buffer of a removed batch when there is one.
func (q *backlog) buffer(n int) []byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := len(q.spare) - 1; i >= 0; i-- {
		if b := q.spare[i]; cap(b) >= n {
			q.spare[i] = q.spare[len(q.spare)-1]
			q.spare = q.spare[:len(q.spare)-1]
			return b[:0]
		}
	}
	return make([]byte, 0, n+n/4)
}

// push appends b and reports how many batches were dropped to make room
// (0 or 1).
func (q *backlog) push(b batch) (dropped int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	max := len(q.buf)
	if q.n == max {
		dropped = 1
		victim := q.head
		if q.inflight != 0 && q.buf[q.head].seq == q.inflight && q.n > 1 {
			// Keep the batch being published: move it one slot up over
			// the next oldest, which is dropped.
			victim = (q.head + 1) % max
			q.buf[q.head], q.buf[victim] = q.buf[victim], q.buf[q.head]
		}
		if q.buf[q.head].seq != q.inflight { // else the publisher still reads it
			q.release(q.buf[q.head].data)
		}
		q.bytes -= len(q.buf[q.head].data)
		q.buf[q.head] = batch{}
		q.head = (q.head + 1) % max
		q.n--
	}
	q.buf[(q.head+q.n)%max] = b
	q.n++
	q.bytes += len(b.data)
	return dropped
}

// begin returns the oldest batch and marks it as being published; ok is
// false when the backlog is empty. The attempt is counted.
func (q *backlog) begin() (b batch, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return batch{}, false
	}
	h := &q.buf[q.head]
	h.attempts++
	q.inflight = h.seq
	return *h, true
}

// end finishes the publication of seq begun by begin; when acked, the batch
// leaves the backlog (if it is still there).
func (q *backlog) end(seq uint64, acked bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.inflight = 0
	if !acked || q.n == 0 || q.buf[q.head].seq != seq {
		return
	}
	q.release(q.buf[q.head].data)
	q.bytes -= len(q.buf[q.head].data)
	q.buf[q.head] = batch{}
	q.head = (q.head + 1) % len(q.buf)
	q.n--
}

// release keeps a buffer for reuse; the caller holds mu.
func (q *backlog) release(b []byte) {
	if len(q.spare) < maxSpare && cap(b) > 0 {
		q.spare = append(q.spare, b[:0])
	}
}

// depth returns the number of batches and their bytes.
func (q *backlog) depth() (n, bytes int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n, q.bytes
}

// headSeq returns the oldest batch's seq; ok is false when empty.
func (q *backlog) headSeq() (seq uint64, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return 0, false
	}
	return q.buf[q.head].seq, true
}

// full reports whether the next push would drop a batch.
func (q *backlog) full() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n == len(q.buf)
}

// takeAll removes and returns every batch, oldest first, except the one
// being published, which stays.
func (q *backlog) takeAll() []batch {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 || q.n == 1 && q.buf[q.head].seq == q.inflight {
		return nil
	}
	out := make([]batch, 0, q.n)
	var keep batch
	kept := false
	for i := 0; i < q.n; i++ {
		j := (q.head + i) % len(q.buf)
		if q.inflight != 0 && q.buf[j].seq == q.inflight {
			keep, kept = q.buf[j], true
		} else {
			out = append(out, q.buf[j])
		}
		q.buf[j] = batch{}
	}
	q.n, q.bytes = 0, 0
	if kept {
		q.buf[q.head] = keep
		q.n, q.bytes = 1, len(keep.data)
	}
	return out
}

// recycle keeps the buffer of a batch that left the backlog for reuse.
func (q *backlog) recycle(b []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.release(b)
}
