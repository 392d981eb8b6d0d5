package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/internal/wire"
)

// consumerInfo reads the durable consumer's state.
func (e *natsEnv) consumerInfo(t *testing.T, name string) *jetstream.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := e.js.Consumer(ctx, wire.TelemetryStream, name)
	if err != nil {
		t.Fatalf("consumer %s: %v", name, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// waitAllAcked waits until the consumer has delivered and acknowledged
// every message of the stream up to stream sequence last.
func (e *natsEnv) waitAllAcked(t *testing.T, name string, last uint64) *jetstream.ConsumerInfo {
	t.Helper()
	var info *jetstream.ConsumerInfo
	deadline := time.Now().Add(15 * time.Second)
	for {
		info = e.consumerInfo(t, name)
		if info.AckFloor.Stream >= last && info.NumAckPending == 0 && info.NumPending == 0 {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer %s: ack floor %d (want %d), ack pending %d, pending %d",
				name, info.AckFloor.Stream, last, info.NumAckPending, info.NumPending)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func batchAt(host string, i int) string {
	return fmt.Sprintf("disk,host=%s,path=/data used_percent=%d %d\n", host, 40+i%50, int64(1_700_000_000+i)*1e9)
}

// TestRestartResumesWithoutLoss: telemetry published while no controller
// runs is processed by the next one; a restarted controller with the same
// durable consumer processes exactly what it has not seen.
func TestRestartResumesWithoutLoss(t *testing.T) {
	env := startNATSEnv(t)
	const n, m = 20, 15
	for seq := uint64(1); seq <= n; seq++ {
		env.publish(t, "h1", "run-a", seq, batchAt("h1", int(seq)))
	}
	cfg := ctlConfig(t, env.srv.URL(), "consumer: ctl-restart\n")

	nc1 := connectNATS(t, env.srv.URL())
	c1 := startCtl(t, cfg, nc1, nil)
	c1.waitMetric(t, "vigil_telemetry_messages_total", n)
	if st := c1.status(t); st.hostSeries("h1") != 1 {
		t.Errorf("first controller: h1 series %d, want 1", st.hostSeries("h1"))
	}
	c1.stop(t)
	env.waitAllAcked(t, "ctl-restart", n)
	nc1.Close()

	for seq := uint64(n + 1); seq <= n+m; seq++ {
		env.publish(t, "h1", "run-a", seq, batchAt("h1", int(seq)))
	}
	// A re-sent batch (same Nats-Msg-Id) is kept once by JetStream.
	if ack := env.publish(t, "h1", "run-a", n+m, batchAt("h1", n+m)); !ack.Duplicate {
		t.Errorf("re-sent batch not recognised as duplicate: %+v", ack)
	}

	nc2 := connectNATS(t, env.srv.URL())
	c2 := startCtl(t, cfg, nc2, nil)
	c2.waitMetric(t, "vigil_telemetry_messages_total", m)
	info := env.waitAllAcked(t, "ctl-restart", n+m)
	if info.Delivered.Consumer != n+m || info.NumRedelivered != 0 {
		t.Errorf("consumer delivered %d (redelivered %d), want exactly %d", info.Delivered.Consumer, info.NumRedelivered, n+m)
	}
	mt := c2.metrics(t)
	if mt["vigil_telemetry_messages_total"] != m || mt["vigil_telemetry_gaps_total"] != 0 || mt["vigil_telemetry_duplicates_total"] != 0 {
		t.Errorf("second controller: messages %v (want %d), gaps %v, duplicates %v (want 0)",
			mt["vigil_telemetry_messages_total"], m, mt["vigil_telemetry_gaps_total"], mt["vigil_telemetry_duplicates_total"])
	}

	// Two batches lost in transit: a gap of 2 in Vigil-Seq.
	env.publish(t, "h1", "run-a", n+m+3, batchAt("h1", n+m+3))
	c2.waitMetric(t, "vigil_telemetry_messages_total", m+1)
	if g := c2.metric(t, "vigil_telemetry_gaps_total"); g != 2 {
		t.Errorf("vigil_telemetry_gaps_total = %v, want 2", g)
	}
	// A new run of the agent starts its own sequence: no gap.
	env.publish(t, "h1", "run-b", 1, batchAt("h1", 100))
	env.publish(t, "h1", "run-b", 2, batchAt("h1", 101))
	c2.waitMetric(t, "vigil_telemetry_messages_total", m+3)
	if g := c2.metric(t, "vigil_telemetry_gaps_total"); g != 2 {
		t.Errorf("after a new run: vigil_telemetry_gaps_total = %v, want still 2", g)
	}
}

// TestRestartMidStreamLosesNothing stops controllers, one after another,
// while each is still working through a backlog, and the last must then
// process exactly the rest, and soon: what a stopped controller had
// received but not processed goes back to the stream at once (Nak), and
// when its Run returns nothing more can be on its way to it (its last pull
// has ended; see Controller.ingest). A batch stranded in flight would come
// back only after the consumer's acknowledgement wait of one minute, so
// the rest must be done well within that: the bound is about correctness,
// not speed. (Before the pulls ended cleanly, up to one stop in six
// stranded thousands of batches, depending on load; hence several stops.)
func TestRestartMidStreamLosesNothing(t *testing.T) {
	env := startNATSEnv(t)
	const total = 30000
	for i := 1; i <= total; i++ {
		msg := batchAt("h1", i)
		if _, err := env.js.PublishAsync(wire.TelemetrySubject("h1"), []byte(msg), jetstream.WithStallWait(30*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-env.js.PublishAsyncComplete():
	case <-time.After(20 * time.Second):
		t.Fatal("publishing the backlog did not complete")
	}
	cfg := ctlConfig(t, env.srv.URL(), "consumer: ctl-midstream\n")

	done := 0.0 // processed by the stopped controllers
	for i := 1; i <= 3 && done < total; i++ {
		nc := connectNATS(t, env.srv.URL())
		c := startCtl(t, cfg, nc, nil)
		eventually(t, "the controller to start processing", func() bool {
			return c.metric(t, "vigil_telemetry_messages_total") > 0
		})
		stopAt := time.Now()
		c.stop(t)
		stopped := time.Since(stopAt)
		n := c.metric(t, "vigil_telemetry_messages_total")
		nc.Close()
		done += n
		t.Logf("controller %d: %v batches, stopped in %s", i, n, stopped.Round(time.Millisecond))
	}
	if done >= total {
		t.Skip("the stopped controllers processed the whole backlog; nothing in flight to check")
	}

	nc := connectNATS(t, env.srv.URL())
	last := startCtl(t, cfg, nc, nil)
	start := time.Now()
	const within = 40 * time.Second // a batch held back by the ack wait takes ≥ 60 s
	for {
		got := last.metric(t, "vigil_telemetry_messages_total")
		if got >= total-done {
			break
		}
		if time.Since(start) > within {
			t.Fatalf("after %s the last controller has processed %v of the %v batches the others left (some were stranded in flight to a stopped controller)",
				within, got, total-done)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("the rest (%v batches) took %s", total-done, time.Since(start).Round(time.Millisecond))
	env.waitAllAcked(t, "ctl-midstream", total)
	if got := last.metric(t, "vigil_telemetry_messages_total"); got != total-done {
		t.Errorf("last controller processed %v, want %v (the stopped ones processed %v of %d)", got, total-done, done, total)
	}
}
