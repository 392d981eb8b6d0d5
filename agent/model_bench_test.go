package agent

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

func benchLines(n int) [][]byte {
	r := rand.New(rand.NewPCG(1, 1))
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, `{"model":"fraud","version":"v3","id":"r-%d","features":{"amount":%.2f,"age":%d,"country":"c%d","score":%.4f},"prediction":"p%d","confidence":%.3f,"latency_ms":%.1f}`,
			i, 100*r.ExpFloat64(), 18+r.IntN(60), r.IntN(20), r.Float64(), r.IntN(2), r.Float64(), 5+20*r.Float64())
	}
	return out
}

// BenchmarkModelDecode: one NDJSON observation line (4 features) decoded.
func BenchmarkModelDecode(b *testing.B) {
	lines := benchLines(1024)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := decodeObservation(lines[i&1023]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkModelIngest: one line decoded and applied to a frozen model (the steady state of
// the endpoint and the log follower, without HTTP).
func BenchmarkModelIngest(b *testing.B) {
	cfg := modelsConfig(func(c *ModelsConfig) { c.Listen = "off"; c.Logs = []ModelLogConfig{{Path: "/nonexistent"}} })
	m, err := NewModels(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	lines := benchLines(4096)
	bt := &batcher{m: m}
	for i, l := range lines[:1500] { // freeze the reference
		bt.line(i+1, l)
	}
	bt.done()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bt.line(i+1, lines[i&4095])
	}
	bt.done()
}

// BenchmarkModelCollect: one tick for one model with 4 features and the prediction.
func BenchmarkModelCollect(b *testing.B) {
	cfg := modelsConfig(func(c *ModelsConfig) { c.Listen = "off"; c.Logs = []ModelLogConfig{{Path: "/nonexistent"}} })
	m, _ := NewModels(cfg, nil)
	bt := &batcher{m: m}
	for i, l := range benchLines(3000) {
		bt.line(i+1, l)
	}
	bt.done()
	var batch wire.Batch
	emit := func(name string, tags []wire.Tag, fields []wire.Field) {
		batch.Point(name, tags, fields, time.Unix(1, 0))
	}
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		batch.Reset()
		m.Collect(context.Background(), now.Add(time.Duration(i)*time.Second), emit)
	}
}
