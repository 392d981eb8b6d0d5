package agent

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

// BenchmarkCollectors measures one Collect of each built-in collector on
// this machine (the agent's per-tick cost is their sum).
func BenchmarkCollectors(b *testing.B) {
	for _, name := range Registered() {
		b.Run(name, func(b *testing.B) {
			c, err := NewCollector(name, Options{})
			if err != nil {
				b.Fatal(err)
			}
			var batch wire.Batch
			now := time.Now()
			emit := func(m string, tags []wire.Tag, fields []wire.Field) { batch.Point(m, tags, fields, now) }
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				batch.Reset()
				if err := c.Collect(ctx, now, emit); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTick measures a whole tick with the default collectors: run
// them in parallel, assemble and queue the batch (then acknowledge it, so
// the backlog does not fill).
func BenchmarkTick(b *testing.B) {
	a, err := New(Config{Host: "bench"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		a.tick(ctx, time.Now())
		bt, _ := a.pub.q.begin()
		a.pub.q.end(bt.seq, true)
	}
	b.ReportMetric(float64(a.Stats().Seq), "batches")
}
