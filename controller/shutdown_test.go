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

// TestShutdownPublishesQueuedEvents: events queued when the controller is
// told to stop all reach the events stream; none is dropped.
func TestShutdownPublishesQueuedEvents(t *testing.T) {
	ns := natsembed.StartT(t)
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	// The lease is off: its own events (acquired, released) would race
	// with the count below.
	cfg, err := ParseConfig("t.yaml", fmt.Appendf(nil, "nats: {url: %q}\napi: {listen: \"off\"}\nlease: {bucket: \"off\"}\n", ns.URL()))
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(cfg, nc, nil, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	wait, cancelWait := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancelWait()
	if _, err := c.Status(wait); err != nil { // Run is in its loop
		t.Fatal(err)
	}

	const n = 5000
	t0 := time.Now()
	for i := range n {
		if !c.pub.Publish(&wire.Event{Kind: wire.KindAnomaly, Time: t0.Add(time.Duration(i)), Host: "h1", Series: "cpu.usage", Score: 1}) {
			t.Fatalf("event %d not queued", i)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
	if d := c.pub.dropped.Load(); d != 0 {
		t.Errorf("%d events dropped at shutdown", d)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(wait, wire.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(wait)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != n {
		t.Errorf("events stream holds %d events, want %d", info.State.Msgs, n)
	}
}
