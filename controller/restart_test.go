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

// TestRestartMidStreamLosesNothing stops a controller while it is still
// working through a backlog: what it had received but not processed goes
// back to the stream at once (Nak), and the next controller processes
// exactly the rest. Batches the server was still delivering to the stopped
// controller's pull when it stopped (it never received them, so it cannot
// return them) come back only after the consumer's acknowledgement wait of
// one minute; the test then waits for them too, and says so.
func TestRestartMidStreamLosesNothing(t *testing.T) {
	env := startNATSEnv(t)
	const total = 20000
	for i := 1; i <= total; i++ {
		msg := batchAt("h1", i)
		if _, err := env.js.PublishAsync(wire.TelemetrySubject("h1"), []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-env.js.PublishAsyncComplete():
	case <-time.After(20 * time.Second):
		t.Fatal("publishing the backlog did not complete")
	}
	cfg := ctlConfig(t, env.srv.URL(), "consumer: ctl-midstream\n")

	nc1 := connectNATS(t, env.srv.URL())
	c1 := startCtl(t, cfg, nc1, nil)
	eventually(t, "the first controller to start processing", func() bool {
		return c1.metric(t, "vigil_telemetry_messages_total") > 0
	})
	c1.stop(t)
	done1 := c1.metric(t, "vigil_telemetry_messages_total")
	nc1.Close()
	if done1 == total {
		t.Logf("the first controller processed the whole backlog before it stopped; nothing in flight to check")
	}

	nc2 := connectNATS(t, env.srv.URL())
	c2 := startCtl(t, cfg, nc2, nil)
	start := time.Now()
	for c2.metric(t, "vigil_telemetry_messages_total") < total-done1 && time.Since(start) < 90*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Logf("the rest took %s: batches in flight to the stopped controller came back after the acknowledgement wait", d.Round(time.Second))
	}
	env.waitAllAcked(t, "ctl-midstream", total)
	if got := c2.metric(t, "vigil_telemetry_messages_total"); got != total-done1 {
		t.Errorf("second controller processed %v, want %v (first processed %v of %d)", got, total-done1, done1, total)
	}
}
