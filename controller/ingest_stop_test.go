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
	const total = 40000
	cons, nc := telemetryBacklog(t, "ingest-stop", total)

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
	start := func() (chan jetstream.Msg, context.CancelFunc, chan []jetstream.Msg) {
		out := make(chan jetstream.Msg, 4096)
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan []jetstream.Msg, 1)
		go func() { done <- c.ingest(ctx, cons, out) }()
		return out, stop, done
	}
	var late []jetstream.Msg
	wait := func(what string, done chan []jetstream.Msg) time.Duration {
		t0 := time.Now()
		select {
		case late = <-done:
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
		nakAll(late)
		flushT(t, nc) // as Run does before it returns
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

// TestIngestRestartKeepsOrder stops the telemetry pull while the owner's
// queue is full and the pull still receiving, returns everything as Run
// does, and checks that the next pull gets the rest in the stream's
// order: the store drops a series' samples older than its newest, so
// older batches redelivered after newer ones would never be processed.
func TestIngestRestartKeepsOrder(t *testing.T) {
	const total = 20000
	cons, nc := telemetryBacklog(t, "ingest-order", total)
	c := &Controller{log: discardLog()}
	seq := func(m jetstream.Msg) uint64 {
		md, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		return md.Sequence.Stream
	}

	out := make(chan jetstream.Msg, 4096)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan []jetstream.Msg, 1)
	go func() { done <- c.ingest(ctx, cons, out) }()
	for range 10 {
		select {
		case m := <-out:
			_ = m.Ack()
		case <-time.After(15 * time.Second):
			t.Fatal("no telemetry handed over in 15s")
		}
	}
	// Let the queue fill, so that the pull is blocked on it when it stops.
	for deadline := time.Now().Add(15 * time.Second); len(out) < cap(out) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	var late []jetstream.Msg
	select {
	case late = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("ingest did not return within 15s of its end")
	}
	queued := len(out)
	for len(out) > 0 {
		_ = (<-out).Nak()
	}
	nakAll(late)
	flushT(t, nc) // as Run does: the server has the Naks, in order, before the next run pulls
	t.Logf("stopped with %d batches queued and %d received after the stop", queued, len(late))

	out = make(chan jetstream.Msg, 4096)
	ctx, stop = context.WithCancel(context.Background())
	defer stop()
	go func() { done <- c.ingest(ctx, cons, out) }()
	var last uint64 = 10
	for n := 10; n < total; n++ {
		select {
		case m := <-out:
			if s := seq(m); s <= last {
				t.Fatalf("stream sequence %d after %d (batch %d of the new run): the rest came back out of order", s, last, n-9)
			} else {
				last = s
			}
			_ = m.Ack()
		case <-time.After(40 * time.Second):
			t.Fatalf("after 40s only %d of %d batches", n, total)
		}
	}
}

// telemetryBacklog starts a NATS server with Vigil's streams, publishes n
// telemetry batches of one host and returns the durable telemetry consumer
// name on them, configured as the controller configures it, and the
// connection it uses.
func telemetryBacklog(t *testing.T, name string, n int) (jetstream.Consumer, *nats.Conn) {
	t.Helper()
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
	for i := 1; i <= n; i++ {
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
	cons, err := js.CreateOrUpdateConsumer(setup, wire.TelemetryStream, telemetryConsumer(name))
	if err != nil {
		t.Fatal(err)
	}
	return cons, nc
}

func flushT(t *testing.T, nc *nats.Conn) {
	t.Helper()
	if err := nc.FlushTimeout(10 * time.Second); err != nil {
		t.Fatal(err)
	}
}
