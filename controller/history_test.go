package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/internal/config"
	"github.com/vigil-sre/vigil/internal/influxtest"
	"github.com/vigil-sre/vigil/internal/natsembed"
	"github.com/vigil-sre/vigil/internal/wire"
)

// historyEnv is an embedded NATS with Vigil's streams and a real InfluxDB.
type historyEnv struct {
	js  jetstream.JetStream
	db  *influxtest.Server
	ctx context.Context
}

func newHistoryEnv(t *testing.T) *historyEnv {
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
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	if err := EnsureStreams(ctx, js, StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	db := influxtest.StartWith(t, influxtest.Options{DisableFlux: true})
	return &historyEnv{js: js, db: db, ctx: ctx}
}

// config for fast tests: short waits, short backoff.
func (e *historyEnv) config() HistoryConfig {
	return HistoryConfig{
		URL:           config.Expand(e.db.URL()),
		Token:         config.Expand(e.db.Token()),
		Org:           e.db.Org(),
		Bucket:        e.db.Bucket(),
		FlushInterval: 100 * time.Millisecond,
		RetryMax:      400 * time.Millisecond,
	}
}

// run starts a History and returns a stop function that ends it and checks
// that Run returned nil.
func (e *historyEnv) run(t *testing.T, cfg HistoryConfig) (*History, func()) {
	t.Helper()
	h, err := NewHistory(cfg, e.js, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var runErr error
	wg.Add(1)
	go func() { defer wg.Done(); runErr = h.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			if runErr != nil {
				t.Errorf("Run: %v", runErr)
			}
		})
	}
	t.Cleanup(stop)
	return h, stop
}

func (e *historyEnv) publishEvent(t *testing.T, ev *wire.Event) {
	t.Helper()
	data, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.Publish(e.ctx, ev.Subject(), data, jetstream.WithMsgID(ev.ID)); err != nil {
		t.Fatal(err)
	}
}

func (e *historyEnv) publishTelemetry(t *testing.T, host string, batch string) {
	t.Helper()
	if _, err := e.js.Publish(e.ctx, wire.TelemetrySubject(host), []byte(batch)); err != nil {
		t.Fatal(err)
	}
}

// waitCount waits until measurement holds want points, failing with the
// last count seen.
func (e *historyEnv) waitCount(t *testing.T, measurement, where string, want int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	got := -1
	for time.Now().Before(deadline) {
		if got = e.db.Count(t, measurement, where); got >= want {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got != want {
		t.Fatalf("%s where %q: %d points, want %d", measurement, where, got, want)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHistoryWritesEventsAndTelemetry(t *testing.T) {
	e := newHistoryEnv(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	e.publishEvent(t, &wire.Event{ID: "r1", Kind: wire.KindRule, Time: t0, Host: "web-1",
		Rule: "cpu_high", Group: "node", Severity: "critical", State: "firing", Values: map[string]float64{"cpu": 97.5}})
	e.publishEvent(t, &wire.Event{ID: "r2", Kind: wire.KindRule, Time: t0.Add(time.Minute), Host: "web-1",
		Rule: "cpu_high", Group: "node", Severity: "critical", State: "resolved"})
	e.publishEvent(t, &wire.Event{ID: "a1", Kind: wire.KindAction, Time: t0.Add(2 * time.Second), Host: "web-1",
		Action: "restart_model", ActionKind: "exec", Key: "k1", Outcome: "success", DurationSeconds: 1.25, LeadSeconds: 540})
	e.publishEvent(t, &wire.Event{ID: "f1", Kind: wire.KindForecast, Time: t0, Host: "db-1",
		Series: "disk.used_percent", State: "predicted", ETASeconds: 3600, Level: 100, Confidence: 0.9})
	e.publishEvent(t, &wire.Event{ID: "n1", Kind: wire.KindAnomaly, Time: t0, Host: "db-1",
		Series: "mem.used_percent", State: "anomalous", Score: 0.99995, Raw: 5.2, Value: 91})
	ts := t0.UnixNano()
	e.publishTelemetry(t, "web-1", fmt.Sprintf("cpu,host=web-1 usage_percent=12.5 %d\ncpu,host=web-1 usage_percent=14 %d\n", ts, ts+1e9))
	e.publishTelemetry(t, "web-2", fmt.Sprintf("cpu,host=web-2 usage_percent=50,cores=8i %d", ts))

	h, _ := e.run(t, e.config())

	e.waitCount(t, "vigil_rule", "", 2)
	e.waitCount(t, "vigil_action", "", 1)
	e.waitCount(t, "vigil_forecast", "", 1)
	e.waitCount(t, "vigil_anomaly", "", 1)
	e.waitCount(t, "cpu", "", 3)
	e.waitCount(t, "cpu", `host = 'web-1'`, 2)

	rows := e.db.Query(t, `SELECT firing, v_cpu, severity FROM vigil_rule WHERE rule = 'cpu_high' ORDER BY time`)
	if len(rows) != 1 || len(rows[0].Values) != 2 {
		t.Fatalf("rule rows: %+v", rows)
	}
	if f, _ := rows[0].Int(0, "firing"); f != 1 {
		t.Errorf("first rule point firing = %d, want 1", f)
	}
	if f, _ := rows[0].Int(1, "firing"); f != 0 {
		t.Errorf("second rule point firing = %d, want 0", f)
	}
	if v, _ := rows[0].Float(0, "v_cpu"); v != 97.5 {
		t.Errorf("v_cpu = %v", v)
	}
	if tm, _ := rows[0].Int(0, "time"); tm != ts {
		t.Errorf("rule time = %d, want the event's own %d", tm, ts)
	}
	rows = e.db.Query(t, `SELECT duration_seconds, lead_seconds, outcome, "key" FROM vigil_action`)
	if d, _ := rows[0].Float(0, "duration_seconds"); d != 1.25 || rows[0].String(0, "outcome") != "success" || rows[0].String(0, "key") != "k1" {
		t.Errorf("action row: %+v", rows[0])
	}
	rows = e.db.Query(t, `SELECT eta_seconds FROM vigil_forecast WHERE "series" = 'disk.used_percent'`)
	if v, _ := rows[0].Float(0, "eta_seconds"); v != 3600 {
		t.Errorf("eta_seconds = %v", v)
	}
	rows = e.db.Query(t, `SELECT usage_percent, cores FROM cpu WHERE host = 'web-2'`)
	if v, _ := rows[0].Float(0, "usage_percent"); v != 50 {
		t.Errorf("usage_percent = %v", v)
	}
	if c, _ := rows[0].Int(0, "cores"); c != 8 {
		t.Errorf("cores = %v", c)
	}

	waitFor(t, "stats", func() bool { st := h.Stats(); return st.Events.Messages == 5 && st.Telemetry.Messages == 2 })
	st := h.Stats()
	if !st.Enabled || st.Events.Points != 5 || st.Telemetry.Points != 3 || st.Events.Rejected != 0 || st.Lag() != 0 {
		t.Errorf("stats: %+v", st)
	}
}

func TestHistorySurvivesInfluxOutageAndResumes(t *testing.T) {
	e := newHistoryEnv(t)
	cfg := e.config()
	f := false
	cfg.Telemetry = &f
	cfg.BatchSize = 64 // several batches per outage
	h, stop := e.run(t, cfg)

	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	ev := func(i int) *wire.Event {
		return &wire.Event{ID: fmt.Sprintf("e%d", i), Kind: wire.KindAction, Time: base.Add(time.Duration(i) * time.Millisecond),
			Host: "web-1", Action: "backup", Outcome: "success", DurationSeconds: float64(i + 1)}
	}
	for i := range 10 {
		e.publishEvent(t, ev(i))
	}
	e.waitCount(t, "vigil_action", "", 10)

	e.db.Stop(t)
	const n = 300
	for i := 10; i < 10+n; i++ {
		e.publishEvent(t, ev(i))
	}
	waitFor(t, "a failed write", func() bool { return h.Stats().Events.Retries >= 2 })
	if got := h.Stats().Events; got.LastError == "" || got.Messages != 10 || got.InFlight == 0 {
		t.Fatalf("stats during outage: %+v", got)
	}
	e.db.Start(t)
	e.waitCount(t, "vigil_action", "", 10+n)
	waitFor(t, "all acknowledged", func() bool { return h.Stats().Events.Messages == 10+n })

	// The writer stops during an outage: what it held goes back to the
	// stream, and the next writer (same durable consumer) writes it and
	// what arrived meanwhile.
	r0 := h.Stats().Events.Retries
	e.db.Stop(t)
	for i := 10 + n; i < 10+2*n; i++ {
		e.publishEvent(t, ev(i))
	}
	waitFor(t, "failed writes", func() bool { st := h.Stats().Events; return st.InFlight > 0 && st.Retries >= r0+2 })
	stop()
	for i := 10 + 2*n; i < 20+2*n; i++ {
		e.publishEvent(t, ev(i))
	}
	e.db.Start(t)
	h2, _ := e.run(t, cfg)
	e.waitCount(t, "vigil_action", "", 20+2*n)
	waitFor(t, "resumed writer acks", func() bool { return h2.Stats().Events.Messages == 10+n })

	// Exactly once: one point per event, every value present.
	rows := e.db.Query(t, `SELECT count(duration_seconds), sum(duration_seconds) FROM vigil_action`)
	cnt, _ := rows[0].Int(0, "count")
	sum, _ := rows[0].Float(0, "sum")
	const total = 20 + 2*n
	if cnt != total || sum != float64(total*(total+1)/2) {
		t.Fatalf("count %d sum %v, want %d and %d", cnt, sum, total, total*(total+1)/2)
	}
	for _, st := range []HistoryStreamStats{h.Stats().Events, h2.Stats().Events} {
		if st.Rejected != 0 || st.InFlight != 0 {
			t.Errorf("stats after outage: %+v", st)
		}
	}
}

func TestHistoryDropsMalformedTelemetryLines(t *testing.T) {
	e := newHistoryEnv(t)
	ts := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	batch := strings.Join([]string{
		fmt.Sprintf("mem,host=web-1 used_percent=40 %d", ts),
		fmt.Sprintf("mem,host=web-1 used_percent=oops %d", ts+1), // malformed
		fmt.Sprintf("mem,host=web-1 used_percent=41,free=12u %d", ts+2),
		"mem,host=web-1 used_percent=42", // no timestamp: stored time
		fmt.Sprintf("mem,host=web-1,path=a\\ b used_percent=43 %d", ts+3),
	}, "\r\n")
	before := time.Now()
	e.publishTelemetry(t, "web-1", batch)
	e.publishTelemetry(t, "web-2", "only garbage here\n")
	e.publishTelemetry(t, "web-2", fmt.Sprintf("mem,host=web-2 used_percent=7 %d", ts))
	h, _ := e.run(t, e.config())

	e.waitCount(t, "mem", "", 5)
	rows := e.db.Query(t, `SELECT used_percent, free, path FROM mem WHERE host = 'web-1' ORDER BY time`)
	if len(rows) != 1 || len(rows[0].Values) != 4 {
		t.Fatalf("rows: %+v", rows)
	}
	r := rows[0]
	for i, want := range []float64{40, 41, 43, 42} {
		if v, _ := r.Float(i, "used_percent"); v != want {
			t.Errorf("row %d used_percent = %v, want %v", i, v, want)
		}
	}
	if v, ok := r.Int(1, "free"); !ok || v != 12 {
		t.Errorf("unsigned field free = %v (%v), want integer 12", v, ok)
	}
	if p := r.String(2, "path"); p != "a b" {
		t.Errorf("escaped tag path = %q", p)
	}
	if tm, _ := r.Int(3, "time"); tm < before.Add(-time.Second).UnixNano() || tm > time.Now().UnixNano() {
		t.Errorf("line without timestamp got %v, want the stream's store time", time.Unix(0, tm))
	}
	waitFor(t, "stats", func() bool { return h.Stats().Telemetry.Messages == 3 })
	if st := h.Stats().Telemetry; st.Malformed != 2 || st.Rejected != 0 || st.Points != 5 {
		t.Errorf("stats: %+v", st)
	}
}

func TestHistoryTerminatesOnlyRejectedMessages(t *testing.T) {
	e := newHistoryEnv(t)
	ts := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	e.db.Write(t, fmt.Sprintf("disk,host=seed used=1 %d", ts)) // used is a float
	for i := range 8 {
		line := fmt.Sprintf("disk,host=h%d used=%d.5 %d", i, i, ts)
		if i == 5 { // field type conflict: InfluxDB refuses it whatever we do
			line = fmt.Sprintf("disk,host=h%d used=%di %d", i, i, ts)
		}
		e.publishTelemetry(t, fmt.Sprintf("h%d", i), line)
	}
	// An event that is not JSON is terminated too, the others written.
	if _, err := e.js.Publish(e.ctx, wire.EventsPrefix+"rule.x", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	e.publishEvent(t, &wire.Event{ID: "ok", Kind: wire.KindRule, Time: time.Unix(0, ts), Rule: "r", State: "pending"})
	h, _ := e.run(t, e.config())

	waitFor(t, "all settled", func() bool {
		st := h.Stats()
		return st.Telemetry.Messages+st.Telemetry.Rejected == 8 && st.Events.Messages+st.Events.Rejected == 2
	})
	st := h.Stats()
	if st.Telemetry.Rejected != 1 || st.Telemetry.Messages != 7 || st.Events.Rejected != 1 || st.Events.Messages != 1 {
		t.Fatalf("stats: %+v", st)
	}
	e.waitCount(t, "disk", "", 8) // seed + 7 good
	if n := e.db.Count(t, "disk", `host = 'h5'`); n != 0 {
		t.Errorf("conflicting point written: %d", n)
	}
	e.waitCount(t, "vigil_rule", "", 1)
}
