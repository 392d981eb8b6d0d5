package controller

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/internal/natsembed"
	"github.com/vigil-sre/vigil/internal/wire"
)

// stallWait lets a backlog published with PublishAsync wait for the
// server's acknowledgements when too many are outstanding: the default
// (200 ms) fails on a loaded machine.
var stallWait = jetstream.WithStallWait(30 * time.Second)

// TestIngestStopLeavesNothingInFlight starts the telemetry pull and stops
// it again, over and over, as soon as it hands over its first batch of a
// backlog (the server is then still delivering), and then checks that a
// new pull gets every batch not yet handled, at once and once: what a
// stopped pull had received and not handed over went back to the stream
// (Nak), and nothing was still on its way to it when ingest returned. A
// batch stranded in flight would come back only after the consumer's ack
// wait of one minute; 40 s is a bound on correctness, not on speed.
func TestIngestStopLeavesNothingInFlight(t *testing.T) {
	ns := natsembed.StartT(t)
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	setup, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := EnsureStreams(setup, js, StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	const total = 40000
	for i := 1; i <= total; i++ {
		line := fmt.Sprintf("disk,host=h1,path=/data used_percent=%d %d\n", 40+i%50, int64(1_700_000_000+i)*1e9)
		if _, err := js.PublishAsync(wire.TelemetrySubject("h1"), []byte(line), stallWait); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-setup.Done():
		t.Fatal("publishing the backlog did not complete")
	}
	cons, err := js.CreateOrUpdateConsumer(setup, wire.TelemetryStream, telemetryConsumer("ingest-stop"))
	if err != nil {
		t.Fatal(err)
	}

	c := &Controller{log: discardLog()}
	handled := map[uint64]bool{} // stream sequences handled (acknowledged)
	handle := func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		if handled[md.Sequence.Stream] {
			t.Errorf("batch %d handed over again after it was acknowledged", md.Sequence.Stream)
		}
		handled[md.Sequence.Stream] = true
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	start := func() (chan jetstream.Msg, context.CancelFunc, chan error) {
		out := make(chan jetstream.Msg, 4096)
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.ingest(ctx, cons, out) }()
		return out, stop, done
	}
	wait := func(what string, done chan error) time.Duration {
		t0 := time.Now()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("ingest: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("%s: ingest did not return within 15s of its end", what)
		}
		return time.Since(t0)
	}

	var stops []time.Duration
	for round := range 20 {
		out, stop, done := start()
		for range []int{1, 30, 300, 3000}[round%4] {
			select {
			case m := <-out:
				handle(m)
			case <-time.After(15 * time.Second):
				t.Fatalf("no telemetry handed over in 15s; %d of %d batches handled (the rest stranded in flight to a stopped pull?)", len(handled), total)
			}
		}
		stop()
		stops = append(stops, wait("stopped", done).Round(time.Millisecond))
		for len(out) > 0 {
			_ = (<-out).Nak() // handed over, not handled: as Run does
		}
	}
	t.Logf("20 pulls stopped; ingest returned after %v", stops)

	out, stop, done := start()
	t0 := time.Now()
	limit := time.After(40 * time.Second)
	for len(handled) < total {
		select {
		case m := <-out:
			handle(m)
		case <-limit:
			t.Fatalf("after 40s %d of the %d batches have been handled; the rest were stranded in flight to a stopped pull", len(handled), total)
		}
	}
	t.Logf("the last pull handed over the rest in %s", time.Since(t0).Round(time.Millisecond))
	stop()
	wait("the last pull", done)
	if len(out) > 0 {
		t.Errorf("%d batches handed over again after all were acknowledged", len(out))
	}
}
