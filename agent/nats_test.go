package agent

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/internal/config"
	"github.com/vigil-sre/vigil/internal/natsembed"
	"github.com/vigil-sre/vigil/internal/wire"
)

// createStream creates the telemetry stream as the controller would.
func createStream(t *testing.T, url string) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:       wire.TelemetryStream,
		Subjects:   []string{wire.TelemetryWildcard},
		Storage:    jetstream.FileStorage,
		Duplicates: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
}

// readStream returns every message of the telemetry stream in order.
func readStream(t *testing.T, url string) []*jetstream.RawStreamMsg {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, wire.TelemetryStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}

// natsConfig: fast intervals and reconnects for tests.
func natsConfig(host, url string) Config {
	c := testConfig(host, 50*time.Millisecond)
	j := 10 * time.Millisecond
	c.Jitter = &j
	c.NATS.URL = config.Expand(url)
	c.NATS.ReconnectWait = 50 * time.Millisecond
	c.Publish.Timeout = 500 * time.Millisecond
	c.Publish.ShutdownGrace = 2 * time.Second
	return c
}

// start runs the agent; stop cancels it and returns Run's error.
func start(t *testing.T, a *Agent) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-errc:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// checkStream verifies that the stream holds exactly seqs 1..n of run, in
// order, with the wire headers, and returns each batch's decoded lines.
func checkStream(t *testing.T, msgs []*jetstream.RawStreamMsg, host, run string, n uint64) [][]decoded {
	t.Helper()
	if uint64(len(msgs)) != n {
		t.Fatalf("stream holds %d messages, agent made %d batches", len(msgs), n)
	}
	var out [][]decoded
	for i, m := range msgs {
		seq := uint64(i + 1)
		if m.Subject != wire.TelemetrySubject(host) {
			t.Errorf("subject %q", m.Subject)
		}
		if got := m.Header.Get(wire.HeaderRun); got != run {
			t.Errorf("message %d: %s = %q, want %q", i, wire.HeaderRun, got, run)
		}
		if got := m.Header.Get(wire.HeaderSeq); got != strconv.FormatUint(seq, 10) {
			t.Fatalf("message %d: %s = %q, want %d (duplicate or gap)", i, wire.HeaderSeq, got, seq)
		}
		if got := m.Header.Get(wire.HeaderMsgID); got != wire.MsgID(host, run, seq) {
			t.Errorf("message %d: %s = %q", i, wire.HeaderMsgID, got)
		}
		lines := decodeBatch(t, m.Data)
		if len(lines) == 0 {
			t.Fatalf("message %d is empty", i)
		}
		for _, l := range lines {
			if l.tags["host"] != host {
				t.Fatalf("message %d: line without host=%s: %+v", i, host, l)
			}
			if l.ns != lines[0].ns {
				t.Fatalf("message %d: lines with different timestamps", i)
			}
		}
		out = append(out, lines)
	}
	return out
}

func TestAgentPublishes(t *testing.T) {
	srv := natsembed.StartT(t)
	createStream(t, srv.URL())
	cfg := natsConfig("web-1.test", srv.URL())
	on := true
	cfg.Collectors["mem"] = CollectorConfig{Enabled: &on} // one real collector too
	a, _ := newTestAgent(t, cfg)
	a.AddCollector(&counter{name: "c"})
	stop := start(t, a)
	waitFor(t, "5 acked batches", func() bool { return a.Stats().Acked >= 5 })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	st := a.Stats()
	if st.Backlog != 0 || st.Acked != st.Seq || st.Dropped != 0 || st.Resent != 0 {
		t.Fatalf("stats after clean run: %+v", st)
	}
	batches := checkStream(t, readStream(t, srv.URL()), cfg.Host, st.Run, st.Seq)
	prev := int64(0)
	for i, lines := range batches {
		ms := map[string]float64{}
		for _, l := range lines {
			if l.m == "fake" {
				ms["fake"] = l.vals["n"]
			} else {
				ms[l.m] = 1
			}
		}
		if ms["fake"] != float64(i+1) || ms["mem"] != 1 || ms["swap"] != 1 || ms["vigil_agent"] != 1 {
			t.Errorf("batch %d has %v", i, ms)
		}
		if lines[0].ns <= prev {
			t.Errorf("batch %d: time %d not after %d", i, lines[0].ns, prev)
		}
		prev = lines[0].ns
	}
	if st.Collectors["mem"].Runs == 0 || st.Collectors["c"].Errors != 0 {
		t.Errorf("collector stats %+v", st.Collectors)
	}
}

func TestAgentOutageResendsInOrder(t *testing.T) {
	srv := natsembed.StartT(t)
	createStream(t, srv.URL())
	cfg := natsConfig("h-outage", srv.URL())
	a, _ := newTestAgent(t, cfg)
	a.AddCollector(&counter{name: "c"})
	stop := start(t, a)
	waitFor(t, "3 acked batches", func() bool { return a.Stats().Acked >= 3 })

	srv.Stop()
	down := a.Stats().Seq
	waitFor(t, "6 ticks during the outage", func() bool { return a.Stats().Seq >= down+6 })
	if st := a.Stats(); st.Backlog < 5 || st.Connected {
		t.Fatalf("during outage: %+v", st)
	}
	restart := time.Now()
	lastDown := a.Stats().Seq
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the backlog to drain", func() bool {
		st := a.Stats()
		return st.Backlog == 0 && st.Acked >= lastDown+2
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	st := a.Stats()
	if st.Dropped != 0 || st.Backlog != 0 {
		t.Fatalf("stats %+v", st)
	}
	batches := checkStream(t, readStream(t, srv.URL()), cfg.Host, st.Run, st.Seq)
	for i, lines := range batches {
		seq := uint64(i + 1)
		if seq > down+1 && seq <= lastDown && lines[0].ns >= restart.UnixNano() {
			t.Errorf("batch %d made during the outage carries a time after it", seq)
		}
	}
	t.Logf("seq %d acked %d resent %d duplicates %d publish errors %d", st.Seq, st.Acked, st.Resent, st.Duplicates, st.PublishErrors)
}

func TestAgentStartsWhileNATSIsDown(t *testing.T) {
	srv := natsembed.StartT(t)
	createStream(t, srv.URL())
	srv.Stop()
	cfg := natsConfig("h-late", srv.URL())
	a, _ := newTestAgent(t, cfg)
	a.AddCollector(&counter{name: "c"})
	stop := start(t, a)
	waitFor(t, "3 batches", func() bool { return a.Stats().Seq >= 3 })
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery", func() bool { st := a.Stats(); return st.Acked >= 5 && st.Backlog == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	st := a.Stats()
	checkStream(t, readStream(t, srv.URL()), cfg.Host, st.Run, st.Seq)
}

func TestAgentWaitsForMissingStream(t *testing.T) {
	srv := natsembed.StartT(t)
	cfg := natsConfig("h-nostream", srv.URL())
	a, _ := newTestAgent(t, cfg)
	a.AddCollector(&counter{name: "c"})
	stop := start(t, a)
	waitFor(t, "failed publishes", func() bool { st := a.Stats(); return st.PublishErrors >= 1 && st.Seq >= 3 })
	if a.Stats().Acked != 0 {
		t.Fatal("acked without a stream")
	}
	createStream(t, srv.URL())
	waitFor(t, "delivery", func() bool { st := a.Stats(); return st.Acked >= 5 && st.Backlog == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	st := a.Stats()
	checkStream(t, readStream(t, srv.URL()), cfg.Host, st.Run, st.Seq)
}

func TestAgentShutdownGraceBounded(t *testing.T) {
	srv := natsembed.StartT(t)
	cfg := natsConfig("h-grace", srv.URL())
	cfg.Publish.ShutdownGrace = 200 * time.Millisecond
	a, logs := newTestAgent(t, cfg)
	a.AddCollector(&counter{name: "c"})
	srv.Stop()
	stop := start(t, a)
	waitFor(t, "2 batches", func() bool { return a.Stats().Seq >= 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.Backlog == 0 || st.Acked != 0 {
		t.Fatalf("stats %+v", st)
	}
	if !strings.Contains(logs.String(), `msg="agent stopped"`) {
		t.Fatalf("no stop log:\n%s", logs.String())
	}
	if err := a.Run(context.Background()); err == nil {
		t.Fatal("second Run accepted")
	}
}

// A batch re-sent after its acknowledgement was lost carries the same
// Nats-Msg-Id, so JetStream keeps one copy and acknowledges a duplicate.
func TestResendIsDeduplicated(t *testing.T) {
	srv := natsembed.StartT(t)
	createStream(t, srv.URL())
	cfg := natsConfig("h-dup", srv.URL())
	if err := cfg.WithDefaults(); err != nil {
		t.Fatal(err)
	}
	p := newPublisher(cfg.Host, "abcdef012345", cfg, slog.New(slog.DiscardHandler))
	if err := p.connect(cfg.NATS); err != nil {
		t.Fatal(err)
	}
	defer p.close()
	waitFor(t, "connection", p.nc.IsConnected)
	data := []byte("m,host=h-dup v=1 1000000000\n")
	for i := 0; i < 2; i++ { // the same batch twice, as after a lost ack
		p.q.push(batch{seq: 1, data: data})
		if err := p.sendOldest(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if p.acked.Load() != 2 || p.duplicates.Load() != 1 || p.resent.Load() != 0 {
		t.Fatalf("acked %d duplicates %d", p.acked.Load(), p.duplicates.Load())
	}
	checkStream(t, readStream(t, srv.URL()), cfg.Host, "abcdef012345", 1)
}
