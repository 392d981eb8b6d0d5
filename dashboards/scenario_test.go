package dashboards_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/vigil-sre/vigil/agent"
	"github.com/vigil-sre/vigil/controller"
	"github.com/vigil-sre/vigil/internal/influxtest"
	"github.com/vigil-sre/vigil/internal/natsembed"
	"github.com/vigil-sre/vigil/internal/wire"
	"github.com/vigil-sre/vigil/rules"
)

// Host names of the scenario; the dashboards' template variables are set
// to these when their queries are checked.
const (
	simHost    = "sim-1"
	simSeries  = "disk.used_percent"
	ctlLeader  = "ctl-1"
	ctlStandby = "ctl-2"
)

// simHostData is a simulated host's collector: a data disk filling at
// rate percent per second from 40 %, and a GPU temperature, steady with
// a little noise, that jumps once at spikeAt.
type simHostData struct {
	t0      time.Time
	rate    float64
	spikeAt time.Duration
	n       int
}

func (s *simHostData) Name() string { return "sim_host" }

func (s *simHostData) Collect(_ context.Context, now time.Time, emit agent.Emit) error {
	el := now.Sub(s.t0)
	emit("disk", []wire.Tag{{Key: "path", Value: "/data"}}, []wire.Field{wire.F("used_percent", math.Min(100, 40+s.rate*el.Seconds()))})
	s.n++
	temp := 60 + 0.3*math.Sin(float64(s.n))
	if el >= s.spikeAt && el < s.spikeAt+100*time.Millisecond {
		temp = 95
	}
	emit("gpu", []wire.Tag{{Key: "gpu", Value: "0"}}, []wire.Field{wire.F("temperature", temp)})
	return nil
}

// scenarioRules: a predicted full disk makes the agent back the data up
// (a signed host command: lead time and RPO), and the GPU temperature
// anomaly asks an operator to approve an action (manual mode).
const scenarioRules = `groups:
  - name: dash
    interval: 100ms
    rules:
      - name: data_disk_full_predicted
        expr: eta("disk.used_percent{path=/data}", 100) < duration("30s")
        for: 200ms
        severity: critical
        cooldown: 1h
        action: {name: backup_data, kind: host, params: {action: backup, policy: data}, timeout: 20s}
      - name: gpu_temperature_anomaly
        expr: anomaly("gpu.temperature{gpu=0}") > 0.99
        severity: warning
        mode: manual
        cooldown: 1h
        action: {name: drain_gpu, kind: exec, program: %q, timeout: 5s}
`

// runScenario lets Vigil itself write a short but complete history into
// influx: two controllers sharing the leader lease (the first leads, then
// hands over), an agent on a simulated host with real cpu, mem and system
// collectors and its own health, a disk predicted to fill and backed up
// before it does (forecast, rule firing, host action with lead time and
// RPO, forecast crossing with lead time), a GPU temperature anomaly whose
// rule waits for approval, and a service whose primary fails its health
// checks (failover with RTO). It returns when InfluxDB holds all of it.
func runScenario(t *testing.T, influx *influxtest.Server) {
	ns := natsembed.StartT(t)
	dir := t.TempDir()
	seedFile, pub := signingKey(t, dir)
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := os.WriteFile(filepath.Join(data, fmt.Sprintf("shard-%d.bin", i)), make([]byte, 4096+i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.Parse("dash.yaml", fmt.Appendf(nil, scenarioRules, truePath))
	if err != nil {
		t.Fatal(err)
	}

	var primaryUp atomic.Bool
	primaryUp.Store(true)
	primary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !primaryUp.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	defer primary.Close()
	standby := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer standby.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	ctlYAML := func(name string) []byte {
		return fmt.Appendf(nil, `
name: %s
nats: {url: %q}
lease: {ttl: 1s, renew: 100ms}
detectors:
  anomaly: ewma
  anomaly_threshold: 0.999
  trend: {window: 5s, min_samples: 5, min_span: 500ms}
forecasts:
  - {series: "disk.used_percent", level: 100, horizon: 1m, interval: 200ms}
actions:
  signing: {seed_file: %q}
services:
  - name: llm
    health: {path: /healthz, interval: 100ms, timeout: 50ms, failures: 3}
    members:
      - {name: a, host: %s, endpoint: %q, role: primary}
      - {name: b, host: sim-2, endpoint: %q, standby: hot}
history: {url: %q, token: %q, bucket: %q, flush_interval: 100ms}
api: {listen: "off"}
`, name, ns.URL(), seedFile, simHost, primary.URL, standby.URL, influx.URL(), influx.Token(), influx.Bucket())
	}
	startCtl := func(name string) (stop func()) {
		cfg, err := controller.ParseConfig(name+".yaml", ctlYAML(name))
		if err != nil {
			t.Fatal(err)
		}
		nc, err := controller.Connect(cfg.NATS, name, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		c, err := controller.New(cfg, nc, set, quietLog())
		if err != nil {
			nc.Close()
			t.Fatal(err)
		}
		cctx, ccancel := context.WithCancel(ctx)
		done := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done)
			defer nc.Close()
			if err := c.Run(cctx); err != nil {
				t.Errorf("controller %s: %v", name, err)
			}
		}()
		return func() { ccancel(); <-done }
	}

	stopLeader := startCtl(ctlLeader)
	waitPoints(t, influx, "the first leader", `"host" = 'ctl-1' AND "state" = 'acquired'`, "vigil_leader")
	stopStandby := startCtl(ctlStandby)
	defer stopStandby()

	ag := startAgent(t, ns.URL(), pub, data, filepath.Join(dir, "repo"))
	agentCtx, stopAgent := context.WithCancel(ctx)
	agentDone := make(chan struct{})
	go func() { defer close(agentDone); _ = ag.Run(agentCtx) }()
	defer func() { stopAgent(); <-agentDone }()

	// The primary fails its health checks once everything runs.
	time.AfterFunc(time.Second, func() { primaryUp.Store(false) })

	for _, w := range []struct{ what, measurement, where string }{
		{"an anomaly", "vigil_anomaly", `"series" = 'gpu.temperature'`},
		{"a prediction", "vigil_forecast", `"state" = 'predicted'`},
		{"a crossing", "vigil_forecast", `"state" = 'crossed'`},
		{"a rule firing", "vigil_rule", `"state" = 'firing'`},
		{"an action awaiting approval", "vigil_action", `"state" = 'awaiting_approval'`},
		{"a backup with its RPO and lead time", "vigil_action", `"action" = 'backup_data' AND "state" = 'finished' AND "v_rpo_seconds" > 0 AND "lead_seconds" > 0`},
		{"a failover with its RTO", "vigil_action", `"action" = 'failover' AND "v_rto_seconds" > 0`},
		{"agent health", "vigil_agent", `"host" = 'sim-1'`},
		{"cpu telemetry", "cpu", `"host" = 'sim-1'`},
	} {
		waitPoints(t, influx, w.what, w.where, w.measurement)
	}
	stopAgent()
	<-agentDone
	// Hand the lease over: the leader releases it, the other takes it.
	stopLeader()
	waitPoints(t, influx, "the second leader", `"host" = 'ctl-2' AND "state" = 'acquired'`, "vigil_leader")
}

// waitPoints polls InfluxDB until measurement has a point matching where,
// for up to 30 s.
func waitPoints(t *testing.T, influx *influxtest.Server, what, where, measurement string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for influx.Count(t, measurement, where) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("scenario: no %s in InfluxDB after 30s (%s WHERE %s)", what, measurement, where)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startAgent is the simulated host's agent: every 50 ms (the detectors'
// 30-sample warm-up in 1.5 s) real cpu, mem and system samples, the
// simulated disk and GPU, its own health, and an executor offering the
// backup of data into repo.
func startAgent(t *testing.T, url, pub, data, repo string) *agent.Agent {
	t.Helper()
	cfg, err := agent.ParseConfig("agent.yaml", fmt.Appendf(nil, `
host: %s
nats: {url: %q, reconnect_wait: 50ms}
interval: 50ms
jitter: 0s
publish: {shutdown_grace: 200ms}
spool: {dir: "off"}
executor: {trusted_keys: [%s]}
backup:
  repository: %q
  verify: false
  policies: [{name: data, paths: [%q]}]
`, simHost, url, pub, repo, data))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DisableCollectors()
	on := true
	for _, name := range []string{"cpu", "mem", "system"} {
		cc := cfg.Collectors[name]
		cc.Enabled = &on
		cfg.Collectors[name] = cc
	}
	ag, err := agent.New(cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	// 40 % at the start, +20 %/s: full after 3 s; the GPU spike after 2 s.
	ag.AddCollector(&simHostData{t0: time.Now(), rate: 20, spikeAt: 2 * time.Second})
	return ag
}

// signingKey writes the controller's signing seed and returns the file
// and the public key the agent trusts.
func signingKey(t *testing.T, dir string) (file, pub string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	pub, _ = kp.PublicKey()
	file = filepath.Join(dir, "controller.nk")
	if err := os.WriteFile(file, append(seed, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, pub
}

func quietLog() *slog.Logger {
	if testing.Verbose() && os.Getenv("VIGIL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
