package controller

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/detectors"
	"github.com/vigil-sre/vigil/internal/natsembed"
	"github.com/vigil-sre/vigil/internal/wire"
)

// BenchmarkIngestSamples measures the controller's in-process path for
// telemetry: line-protocol decoding, series lookup, the anomaly detector
// and the forecaster of every sample, forecast-watch checks (DESIGN budget:
// ≥ 1,000,000 samples/s on 2 cores). It handles the batches as the
// controller's owner does under load: groups of 10 batches (2000 samples)
// queued before their models are updated, shared out over GOMAXPROCS
// goroutines (ingest_par.go); the -serial variants update them on the
// owner alone.
func BenchmarkIngestSamples(b *testing.B) {
	for _, bc := range []struct {
		name     string
		parallel int
	}{{"ewma", runtime.GOMAXPROCS(0)}, {"vigil", runtime.GOMAXPROCS(0)}, {"ewma-serial", 1}, {"vigil-serial", 1}} {
		name := strings.TrimSuffix(bc.name, "-serial")
		b.Run(bc.name, func(b *testing.B) {
			cfg, err := ParseConfig("b.yaml", []byte("detectors: {anomaly: "+name+"}\n"))
			if err != nil {
				b.Fatal(err)
			}
			newFc, _ := cfg.Detectors.newForecaster()
			newDet := func() detectors.Detector { d, _ := detectors.NewDetector(name); return d }
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			c := &Controller{cfg: cfg, log: log, now: time.Now, store: newStore(newDet, newFc, cfg.Forecasts),
				pub: newPublisher(nil, log, 1<<16), badLog: map[string]time.Time{}, seqs: map[string]*seqState{}}
			c.visitFn = c.visit
			c.parallel = bc.parallel
			// 100 hosts, each batch 40 lines × 5 fields = 200 samples.
			const hosts, lines, fields, group = 100, 40, 5, 10
			t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			batch := func(h, tick int) []byte {
				var sb strings.Builder
				for l := 0; l < lines; l++ { // no timestamp: the arrival time (msgNow) is used
					fmt.Fprintf(&sb, "cpu,host=h%03d,cpu=cpu%d usage_user=%d.5,usage_system=%d.25,usage_idle=%d,usage_iowait=0.%d,usage_steal=0\n",
						h, l, 10+(tick+l)%7, 5+(tick*3+l)%4, 80-(tick+l)%9, (tick+l)%10)
				}
				return []byte(sb.String())
			}
			ticks := 50
			batches := make([][]byte, hosts*ticks)
			for tk := 0; tk < ticks; tk++ {
				for h := 0; h < hosts; h++ {
					batches[tk*hosts+h] = batch(h, tk)
				}
			}
			c.msgNow = t0
			// Steady state: create the series and run every batch once untimed (each series
			// meets its first decrease, when a counter guess turns into a gauge, here).
			for i, bt := range batches {
				c.msgNow = t0.Add(time.Duration(i/hosts) * 10 * time.Second)
				c.decodeBatch(bt)
			}
			for len(c.pub.ch) > 0 {
				<-c.pub.ch
			}
			t0 = t0.Add(time.Duration(ticks) * 10 * time.Second)
			drain := func() {
				for len(c.pub.ch) > 0 {
					<-c.pub.ch
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			samples := 0
			for i := 0; i < b.N; i++ {
				bt := batches[hosts+i%(len(batches)-hosts)]
				c.msgNow = t0.Add(time.Duration(1+i/hosts) * 10 * time.Second) // every host ticks every 10 s
				ok, _, _ := c.dec.Decode(bt, c.visitFn)
				samples += ok * fields
				if (i+1)%group == 0 || len(c.work) >= maxQueuedWork {
					c.flushWork()
				}
				if i%1000 == 0 {
					drain()
				}
			}
			c.flushWork()
			b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// BenchmarkIngestBacklog measures the controller end to end over NATS:
// JetStream pulls, hand-over to the owner, decoding, the models, acks. A
// backlog of telemetry waits in an embedded nats-server; each iteration
// runs a controller with a fresh durable consumer from its start until it
// has handled the whole backlog (the start, about the same for all, is
// inside the time). Batches of 200 samples (40 lines × 5 fields, 100
// hosts) as agents send them, and of 5 samples (1 line) where the cost
// per message shows most; the anomaly detector is ewma.
func BenchmarkIngestBacklog(b *testing.B) {
	for _, bc := range []struct {
		name           string
		batches, lines int
	}{{"200-samples", 5000, 40}, {"5-samples", 40000, 1}} {
		b.Run(bc.name, func(b *testing.B) {
			ns := natsembed.StartT(b)
			nc, err := nats.Connect(ns.URL())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(nc.Close)
			js, err := jetstream.New(nc)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := EnsureStreams(ctx, js, StreamsConfig{}); err != nil {
				b.Fatal(err)
			}
			for i := 0; i < bc.batches; i++ {
				var sb strings.Builder
				for l := 0; l < bc.lines; l++ {
					fmt.Fprintf(&sb, "cpu,host=h%03d,cpu=cpu%d usage_user=%d.5,usage_system=%d.25,usage_idle=%d,usage_iowait=0.%d,usage_steal=0\n",
						i%100, l, 10+(i+l)%7, 5+(i*3+l)%4, 80-(i+l)%9, (i+l)%10)
				}
				if _, err := js.PublishAsync(wire.TelemetrySubject(fmt.Sprintf("h%03d", i%100)), []byte(sb.String()), stallWait); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-ctx.Done():
				b.Fatal("publishing the backlog did not complete")
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				cfg, err := ParseConfig("b.yaml", fmt.Appendf(nil, "nats: {url: %q}\napi: {listen: \"off\"}\nlease: {bucket: \"off\"}\nconsumer: bench-%d\ndetectors: {anomaly: ewma}\n", ns.URL(), i))
				if err != nil {
					b.Fatal(err)
				}
				c, err := New(cfg, nc, nil, discardLog())
				if err != nil {
					b.Fatal(err)
				}
				runCtx, stop := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- c.Run(runCtx) }()
				deadline := time.Now().Add(2 * time.Minute)
				for c.stats.Messages.Load() < uint64(bc.batches) {
					if time.Now().After(deadline) {
						b.Fatalf("the controller handled %d of %d batches in 2 minutes", c.stats.Messages.Load(), bc.batches)
					}
					time.Sleep(time.Millisecond)
				}
				b.StopTimer()
				stop()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.N*bc.batches*bc.lines*5)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
