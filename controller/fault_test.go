package controller_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/agent"
	"github.com/vigil-sre/vigil/controller"
	"github.com/vigil-sre/vigil/internal/influxtest"
	"github.com/vigil-sre/vigil/internal/natsembed"
	"github.com/vigil-sre/vigil/internal/wire"
)

// The controller counts gaps and duplicates of Vigil-Seq per host and
// shows them on /metrics with a host label.
func TestHostGapAndDuplicateMetrics(t *testing.T) {
	env := startNATSEnv(t)
	rc := startCtl(t, ctlConfig(t, env.srv.URL(), ""), env.nc, nil)
	for _, seq := range []uint64{1, 2, 5, 4, 6} { // 3 and 4 missing; 4 comes late: a duplicate
		env.publish(t, "gappy", "r1", seq, fmt.Sprintf("m,host=gappy v=%d %d\n", seq, seq*1e9))
	}
	for seq := uint64(1); seq <= 3; seq++ {
		env.publish(t, "steady", "r1", seq, fmt.Sprintf("m,host=steady v=%d %d\n", seq, seq*1e9))
	}
	rc.waitMetric(t, "vigil_telemetry_messages_total", 8)
	m := rc.metrics(t)
	for name, want := range map[string]float64{
		`vigil_telemetry_host_gaps_total{host="gappy"}`:        2,
		`vigil_telemetry_host_duplicates_total{host="gappy"}`:  1,
		`vigil_telemetry_host_gaps_total{host="steady"}`:       0,
		`vigil_telemetry_host_duplicates_total{host="steady"}`: 0,
		"vigil_telemetry_gaps_total":                           2,
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	rec := rc.get(t, "/metrics")
	if _, problems := exposition(rec.Body.String()); len(problems) > 0 {
		t.Errorf("exposition: %v", problems)
	}
}

// tickCollector emits fault_tick n=<call number>: one point per tick.
type tickCollector struct{ n atomic.Int64 }

func (c *tickCollector) Name() string { return "fault_tick" }
func (c *tickCollector) Collect(_ context.Context, _ time.Time, emit agent.Emit) error {
	emit("fault_tick", nil, []wire.Field{wire.I("n", c.n.Add(1))})
	return nil
}

// TestFaultNATSDownOneMinute is the delivery acceptance test: NATS is
// stopped for 60 s while the agent publishes every second, then restarted.
// The controller (with history to a real InfluxDB) must receive every
// sample of that minute exactly once: the telemetry stream holds seq
// 1..N of the agent's run once each, the controller counted N messages, no
// gap and no duplicate, and InfluxDB holds exactly N fault_tick points of
// the host with n = 1..N. It takes about 80 s.
func TestFaultNATSDownOneMinute(t *testing.T) {
	if testing.Short() {
		t.Skip("80 s fault test")
	}
	ns := natsembed.StartT(t)
	influx := influxtest.StartWith(t, influxtest.Options{DisableFlux: true})
	log := testLogger(t)
	cfg, err := controller.ParseConfig("ctl.yaml", []byte(fmt.Sprintf(`
name: fault-ctl
nats: {url: %q}
history: {url: %q, token: %q, bucket: %q, flush_interval: 200ms}
api: {listen: "off"}
`, ns.URL(), influx.URL(), influx.Token(), influx.Bucket())))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := controller.Connect(cfg.NATS, "fault-test", log)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctl, err := controller.New(cfg, nc, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	rc := &runningCtl{c: ctl, h: ctl.Handler()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctlErr := make(chan error, 1)
	go func() { ctlErr <- ctl.Run(ctx) }()

	const host = "fault-1"
	acfg, err := agent.ParseConfig("agent.yaml", []byte(fmt.Sprintf(`
host: %s
interval: 1s
jitter: 0s
nats: {url: %q, reconnect_wait: 250ms}
publish: {timeout: 2s, shutdown_grace: 5s}
spool: {dir: %q, max_bytes: 16MiB}
`, host, ns.URL(), t.TempDir())))
	if err != nil {
		t.Fatal(err)
	}
	acfg.DisableCollectors()
	ag, err := agent.New(acfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ticks := &tickCollector{}
	ag.AddCollector(ticks)
	agentCtx, stopAgent := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := ag.Run(agentCtx); err != nil {
			t.Errorf("agent: %v", err)
		}
	}()
	defer func() { stopAgent(); wg.Wait() }()

	waitUntil(t, 30*time.Second, "3 batches acknowledged", func() bool { return ag.Stats().Acked >= 3 })
	ns.Stop()
	down := time.Now()
	time.Sleep(60 * time.Second)
	during := ag.Stats()
	// Taken before the restart: the agent reconnects as soon as the server
	// accepts clients, which under load can be before Restart returns (the
	// spool was then stored "before" a later timestamp: 0 counted, in CI).
	up := time.Now()
	if err := ns.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Logf("during the outage: seq %d, spool %+v, memory backlog %d, connected %v", during.Seq, during.Spool, during.Backlog, during.Connected)
	if during.Spool.Batches < 55 || during.Connected {
		t.Errorf("after 60 s without NATS the spool holds %d batches (want ≥ 55), connected %v", during.Spool.Batches, during.Connected)
	}
	waitUntil(t, 60*time.Second, "the spool to drain", func() bool {
		st := ag.Stats()
		return st.Spool.Batches == 0 && st.Backlog == 0 && st.Acked >= during.Seq+2
	})
	stopAgent()
	wg.Wait()
	st := ag.Stats()
	n := st.Seq
	if st.Dropped != 0 || st.Backlog != 0 || st.Spool.Batches != 0 || uint64(ticks.n.Load()) != n {
		t.Fatalf("agent after the run: %+v, collector calls %d", st, ticks.n.Load())
	}

	// The stream holds seq 1..n of the run, each once, in order.
	msgs := readTelemetry(t, ns.URL())
	if uint64(len(msgs)) != n {
		t.Fatalf("telemetry stream holds %d messages, the agent made %d batches", len(msgs), n)
	}
	inOutage := 0
	for i, m := range msgs {
		if m.Header.Get(wire.HeaderRun) != st.Run || m.Header.Get(wire.HeaderSeq) != strconv.Itoa(i+1) || m.Subject != wire.TelemetrySubject(host) {
			t.Fatalf("message %d: run %q seq %q subject %q", i, m.Header.Get(wire.HeaderRun), m.Header.Get(wire.HeaderSeq), m.Subject)
		}
		if ts := m.Time; ts.After(up) && batchTime(t, m.Data).Before(up) && batchTime(t, m.Data).After(down) {
			inOutage++ // made during the outage, stored after it
		}
	}
	if inOutage < 55 {
		t.Errorf("%d batches made during the outage were stored after it, want ≥ 55", inOutage)
	}

	// The controller consumed each once: no gap, no duplicate.
	waitUntil(t, 30*time.Second, "the controller to consume every batch", func() bool {
		return rc.metrics(t)["vigil_telemetry_messages_total"] >= float64(n)
	})
	m := rc.metrics(t)
	for name, want := range map[string]float64{
		"vigil_telemetry_messages_total":                        float64(n),
		"vigil_telemetry_gaps_total":                            0,
		"vigil_telemetry_duplicates_total":                      0,
		`vigil_telemetry_host_gaps_total{host="fault-1"}`:       0,
		`vigil_telemetry_host_duplicates_total{host="fault-1"}`: 0,
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("controller %s = %v (present %v), want %v", name, got, ok, want)
		}
	}

	// InfluxDB holds every tick of the host once: n points, n = 1..n.
	where := `"host" = 'fault-1'`
	waitUntil(t, 30*time.Second, "InfluxDB to hold every tick", func() bool { return influx.Count(t, "fault_tick", where) >= int(n) })
	if got := influx.Count(t, "fault_tick", where); got != int(n) {
		t.Errorf("InfluxDB holds %d fault_tick points, want %d", got, n)
	}
	if got := influx.Count(t, "vigil_agent", where); got != int(n) {
		t.Errorf("InfluxDB holds %d vigil_agent points, want %d", got, n)
	}
	rows := influx.Query(t, `SELECT "n" FROM "fault_tick" WHERE `+where)
	seen := map[int64]int{}
	for _, r := range rows {
		for i := range r.Values {
			v, ok := r.Int(i, "n")
			if !ok {
				t.Fatalf("row %d: n not an integer: %v", i, r.Values[i])
			}
			seen[v]++
		}
	}
	for k := int64(1); k <= int64(n); k++ {
		if seen[k] != 1 {
			t.Errorf("tick n=%d is in InfluxDB %d times", k, seen[k])
		}
	}
	t.Logf("%d batches, %d made during the 60 s outage; agent resent %d, duplicates acked %d, publish errors %d",
		n, inOutage, st.Resent, st.Duplicates, st.PublishErrors)

	cancel()
	if err := <-ctlErr; err != nil {
		t.Errorf("controller: %v", err)
	}
}

// waitUntil polls cond every 100 ms for up to d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
	}
}

// readTelemetry returns every message of the telemetry stream in order.
func readTelemetry(t *testing.T, url string) []*jetstream.RawStreamMsg {
	t.Helper()
	nc := connectNATS(t, url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("stream message %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}

// batchTime is the timestamp of a batch's first line.
func batchTime(t *testing.T, data []byte) time.Time {
	t.Helper()
	var d wire.Decoder
	var ns int64
	found := false
	d.Decode(data, func(p *wire.PointView) {
		if !found {
			ns, found = p.Time, true
		}
	})
	if !found {
		t.Fatalf("batch without lines: %q", data)
	}
	return time.Unix(0, ns)
}
