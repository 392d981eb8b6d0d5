package agent

import (
	"fmt"
	"testing"
)

func seqs(q *backlog) []uint64 {
	var out []uint64
	for i := 0; i < q.n; i++ {
		out = append(out, q.buf[(q.head+i)%len(q.buf)].seq)
	}
	return out
}

func TestBacklogFIFOAndDrop(t *testing.T) {
	q := newBacklog(3)
	dropped := 0
	for s := uint64(1); s <= 5; s++ {
		dropped += q.push(batch{seq: s, data: []byte(fmt.Sprint(s))})
	}
	if dropped != 2 || fmt.Sprint(seqs(q)) != "[3 4 5]" {
		t.Fatalf("after 5 pushes into 3: dropped %d, backlog %v", dropped, seqs(q))
	}
	if n, bytes := q.depth(); n != 3 || bytes != 3 {
		t.Fatalf("depth %d %d", n, bytes)
	}
	b, ok := q.begin()
	if !ok || b.seq != 3 || string(b.data) != "3" || b.attempts != 1 {
		t.Fatalf("begin = %+v %v", b, ok)
	}
	q.end(3, false) // not acked: stays
	b, _ = q.begin()
	if b.seq != 3 || b.attempts != 2 {
		t.Fatalf("retry begin = %+v", b)
	}
	q.end(3, true)
	if fmt.Sprint(seqs(q)) != "[4 5]" {
		t.Fatalf("after ack: %v", seqs(q))
	}
}

func TestBacklogKeepsInflight(t *testing.T) {
	q := newBacklog(3)
	for s := uint64(1); s <= 3; s++ {
		q.push(batch{seq: s})
	}
	b, _ := q.begin() // seq 1 is being published
	if q.push(batch{seq: 4}) != 1 {
		t.Fatal("no drop")
	}
	if fmt.Sprint(seqs(q)) != "[1 3 4]" {
		t.Fatalf("in-flight batch dropped: %v", seqs(q))
	}
	q.end(b.seq, true)
	if fmt.Sprint(seqs(q)) != "[3 4]" {
		t.Fatalf("after ack: %v", seqs(q))
	}
	// Not in flight any more: the oldest goes.
	q.push(batch{seq: 5})
	q.push(batch{seq: 6})
	if fmt.Sprint(seqs(q)) != "[4 5 6]" {
		t.Fatalf("%v", seqs(q))
	}
}

func TestBacklogSizeOneInflight(t *testing.T) {
	q := newBacklog(1)
	q.push(batch{seq: 1, data: make([]byte, 10)})
	q.begin()
	q.push(batch{seq: 2})
	q.end(1, true) // seq 1 already gone: seq 2 must stay
	if fmt.Sprint(seqs(q)) != "[2]" {
		t.Fatalf("%v", seqs(q))
	}
	if len(q.spare) != 0 {
		t.Fatal("the buffer of the in-flight batch was recycled")
	}
}

func TestBacklogReusesBuffers(t *testing.T) {
	q := newBacklog(4)
	buf := q.buffer(100)
	buf = append(buf, "x"...)
	q.push(batch{seq: 1, data: buf})
	q.begin()
	q.end(1, true)
	again := q.buffer(50)
	if cap(again) < 100 || &again[:1][0] != &buf[0] {
		t.Fatal("buffer not reused")
	}
}

func BenchmarkBacklogCycle(b *testing.B) {
	q := newBacklog(1000)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		d := append(q.buffer(4096), make([]byte, 4000)...)
		q.push(batch{seq: uint64(i + 1), data: d})
		bt, _ := q.begin()
		q.end(bt.seq, true)
	}
}
