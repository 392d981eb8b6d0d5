package controller_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/agent"
	"github.com/vigil-sre/vigil/controller"
	"github.com/vigil-sre/vigil/internal/influxtest"
	"github.com/vigil-sre/vigil/internal/natsembed"
	"github.com/vigil-sre/vigil/internal/wire"
	"github.com/vigil-sre/vigil/rules"
)

// TestMain lets the test binary double as the exec action's program: with
// VIGIL_TEST_ACTION_LOG set it appends one line (the intent key) to that
// file and exits, so the test can count how often the action ran. With
// VIGIL_TEST_PROG set it runs testProgram with its arguments (a mode and
// its parameters) and exits with its code.
func TestMain(m *testing.M) {
	if os.Getenv("VIGIL_TEST_PROG") != "" {
		os.Exit(testProgram(os.Args[1:]))
	}
	if path := os.Getenv("VIGIL_TEST_ACTION_LOG"); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		fmt.Fprintf(f, "%s %s %s\n", os.Getenv("VIGIL_KEY"), os.Getenv("VIGIL_HOST"), os.Getenv("VIGIL_RULE"))
		f.Close()
		fmt.Println("protected")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fillingDisk is a collector of a simulated host: a data disk filling at
// rate percent per second from start, and a GPU temperature that is steady
// with a little noise until spikeAfter, when it jumps once.
type fillingDisk struct {
	t0         time.Time
	start      float64
	rate       float64 // percent per second
	spikeAfter time.Duration
	n          int
}

func (f *fillingDisk) Name() string { return "test_disk" }

func (f *fillingDisk) Collect(_ context.Context, now time.Time, emit agent.Emit) error {
	el := now.Sub(f.t0).Seconds()
	used := math.Min(100, f.start+f.rate*el)
	emit("disk", []wire.Tag{{Key: "path", Value: "/data"}}, []wire.Field{wire.F("used_percent", used)})
	f.n++
	temp := 60 + 0.3*math.Sin(float64(f.n))
	if now.Sub(f.t0) > f.spikeAfter && now.Sub(f.t0) < f.spikeAfter+150*time.Millisecond {
		temp = 95
	}
	emit("gpu", []wire.Tag{{Key: "gpu", Value: "0"}}, []wire.Field{wire.F("temperature", temp)})
	return nil
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// TestPipelineAgentToActionAndInflux: agent → NATS → controller → the rule
// predicts the disk will fill → the exec action runs exactly once →
// InfluxDB holds telemetry, anomaly, forecast, rule and action points.
func TestPipelineAgentToActionAndInflux(t *testing.T) {
	ns := natsembed.StartT(t)
	influx := influxtest.Start(t)
	dir := t.TempDir()
	actionLog := filepath.Join(dir, "actions.log")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("VIGIL_TEST_ACTION_LOG", actionLog)
	log := testLogger(t)

	ruleFile := fmt.Sprintf(`groups:
  - name: e2e
    interval: 200ms
    rules:
      - name: data_disk_full_predicted
        expr: eta("disk.used_percent{path=/data}", 100) < duration("30s")
        for: 500ms
        severity: critical
        cooldown: 1h
        action:
          name: protect
          kind: exec
          program: %q
          timeout: 20s
`, self)
	set, err := rules.Parse("e2e.yaml", []byte(ruleFile))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := controller.ParseConfig("ctl.yaml", []byte(fmt.Sprintf(`
name: test-ctl
nats: {url: %q}
detectors:
  anomaly: ewma          # warm after 30 samples; the ensemble needs 150, more than this test sends before its spike
  anomaly_threshold: 0.999
  trend: {window: 5s, min_samples: 5, min_span: 1s}
forecasts:
  - {series: "disk.used_percent", level: 100, horizon: 1m, interval: 1s}
history: {url: %q, token: %q, bucket: %q, flush_interval: 200ms}
api: {listen: "off"}
`, ns.URL(), influx.URL(), influx.Token(), influx.Bucket())))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := controller.Connect(cfg.NATS, "test", log)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctl, err := controller.New(cfg, nc, set, log)
	if err != nil {
		t.Fatal(err)
	}

	acfg, err := agent.ParseConfig("agent.yaml", []byte(fmt.Sprintf("host: sim-1\nnats: {url: %q}\ninterval: 100ms\njitter: 0s\nself_metrics: false\n", ns.URL())))
	if err != nil {
		t.Fatal(err)
	}
	acfg.DisableCollectors()
	ag, err := agent.New(acfg, log)
	if err != nil {
		t.Fatal(err)
	}
	// 40 % at start, +8 %/s: full after 7.5 s.
	ag.AddCollector(&fillingDisk{t0: time.Now(), start: 40, rate: 8, spikeAfter: 4 * time.Second})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	ctlErr := make(chan error, 1)
	go func() { ctlErr <- ctl.Run(ctx) }()
	agentCtx, stopAgent := context.WithCancel(ctx)
	wg.Add(1)
	go func() { defer wg.Done(); _ = ag.Run(agentCtx) }()

	// Run past the crossing (7.5 s) so that the whole story happens.
	time.Sleep(10 * time.Second)
	stopAgent()
	wg.Wait()
	time.Sleep(1500 * time.Millisecond) // the history writer flushes every 200 ms
	cancel()
	if err := <-ctlErr; err != nil {
		t.Fatalf("controller: %v", err)
	}

	// The action ran exactly once, for sim-1.
	lines := readLines(t, actionLog)
	if len(lines) != 1 {
		t.Fatalf("action ran %d times, want exactly 1: %q", len(lines), lines)
	}
	if !strings.Contains(lines[0], " sim-1 data_disk_full_predicted") || !strings.HasPrefix(lines[0], "e2e/data_disk_full_predicted/sim-1/") {
		t.Fatalf("action log line %q", lines[0])
	}

	// InfluxDB holds every kind of point.
	if n := influx.Count(t, "disk", `"host" = 'sim-1'`); n < 50 {
		t.Errorf("telemetry points of disk in InfluxDB: %d, want ≥ 50 (10 s at 100 ms)", n)
	}
	if n := influx.Count(t, "vigil_anomaly", `"series" = 'gpu.temperature'`); n < 1 {
		t.Errorf("anomaly points for gpu.temperature: %d, want ≥ 1", n)
	}
	if n := influx.Count(t, "vigil_forecast", `"state" = 'predicted' AND "series" = 'disk.used_percent'`); n != 1 {
		t.Errorf("forecast 'predicted' points: %d, want 1", n)
	}
	if n := influx.Count(t, "vigil_forecast", `"state" = 'crossed'`); n != 1 {
		t.Errorf("forecast 'crossed' points: %d, want 1", n)
	}
	if n := influx.Count(t, "vigil_rule", `"state" = 'firing' AND "rule" = 'data_disk_full_predicted'`); n != 1 {
		t.Errorf("rule firing points: %d, want 1", n)
	}
	rows := influx.Query(t, `SELECT "duration_seconds", "lead_seconds", "key" FROM "vigil_action" WHERE "state" = 'finished' AND "outcome" = 'success'`)
	if len(rows) != 1 || len(rows[0].Values) != 1 {
		t.Fatalf("finished action points: %+v, want exactly one", rows)
	}
	lead, ok := rows[0].Float(0, "lead_seconds")
	if !ok || lead <= 0 {
		t.Errorf("action lead_seconds = %v (ok %v), want > 0: the action must end before the predicted failure", lead, ok)
	}
	if key := rows[0].String(0, "key"); !strings.HasPrefix(lines[0], key+" ") {
		t.Errorf("InfluxDB action key %q does not match the key the action saw: %q", key, lines[0])
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("action log: %v (the action never ran)", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if sc.Text() != "" {
			out = append(out, sc.Text())
		}
	}
	return out
}
