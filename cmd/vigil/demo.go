package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/vigil-sre/vigil/agent"
	"github.com/vigil-sre/vigil/controller"
	"github.com/vigil-sre/vigil/internal/natsembed"
	"github.com/vigil-sre/vigil/internal/wire"
	"github.com/vigil-sre/vigil/rules"
)

const demoUsage = `Usage: vigil demo [flags]

Runs Vigil on embedded defaults: an in-process NATS server with JetStream,
a controller, an agent collecting this machine's signals, and a simulated
host "sim-gpu-1" whose data disk fills at a steady rate. A shipped rule
predicts that the disk will be full and backs its data up before it is.
Events print as they happen; at the end a summary tells what was predicted,
when the disk really filled, the lead time, and what the actions did.

Flags:
`

type demoOptions struct {
	duration    time.Duration
	jsonOut     bool
	verbose     bool
	fillTime    time.Duration
	influxURL   string
	influxToken string
	influxBkt   string
	dir         string
}

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vigil demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, demoUsage); fs.PrintDefaults() }
	var o demoOptions
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long and print the summary (default: run until interrupted)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the summary as one JSON object on stdout (events go to stderr)")
	fs.BoolVar(&o.verbose, "verbose", false, "log the components' info messages to stderr")
	fs.DurationVar(&o.fillTime, "fill-time", 40*time.Second, "time the simulated disk takes from 40 % to full")
	fs.StringVar(&o.influxURL, "influx-url", os.Getenv("VIGIL_INFLUX_URL"), "also write history to this InfluxDB (env VIGIL_INFLUX_URL)")
	fs.StringVar(&o.influxToken, "influx-token", envOr("VIGIL_INFLUX_TOKEN", "user:password"), "InfluxDB token (env VIGIL_INFLUX_TOKEN)")
	fs.StringVar(&o.influxBkt, "influx-bucket", envOr("VIGIL_INFLUX_BUCKET", "vigil/autogen"), "InfluxDB bucket (env VIGIL_INFLUX_BUCKET)")
	fs.StringVar(&o.dir, "dir", "", "working directory for the simulated disk and backups (default: a temporary one, removed at exit)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vigil demo: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	sum, err := runDemo(ctx, o, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "vigil demo:", err)
		return 1
	}
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			return 1
		}
	} else {
		sum.print(stdout)
	}
	return 0
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// demoRules is the shipped demo rule. Paths are the demo's own; nothing
// in it comes from telemetry.
const demoRules = `groups:
  - name: demo
    scope: host
    interval: 1s
    rules:
      - name: data_disk_full_predicted
        expr: eta("disk.used_percent{path=/data}", 100) < duration("%s")
        for: 3s
        severity: critical
        labels: {service: model-serving}
        annotations:
          summary: the data disk will be full soon; back it up before it is
        cooldown: 10m
        action:
          name: backup_data
          kind: exec
          program: %q
          args: ["demo-backup", %q, %q]
          timeout: 60s
`

func runDemo(ctx context.Context, o demoOptions, stdout, stderr io.Writer) (*demoSummary, error) {
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	dir := o.dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "vigil-demo-*")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	dataDir, backupDir := filepath.Join(dir, "data"), filepath.Join(dir, "backups")
	for _, d := range []string{dataDir, backupDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locating own binary for the backup action: %w", err)
	}

	srv, err := natsembed.Start(natsembed.Options{StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		return nil, err
	}
	defer srv.Shutdown()

	// Rules and controller.
	horizon := o.fillTime
	ruleText := fmt.Sprintf(demoRules, horizon, self, dataDir, backupDir)
	set, err := rules.Parse("demo-rules.yaml", []byte(ruleText))
	if err != nil {
		return nil, fmt.Errorf("demo rules: %w", err)
	}
	cfg, err := controller.ParseConfig("demo-controller.yaml", []byte(demoControllerConfig(srv.URL(), o, horizon)))
	if err != nil {
		return nil, fmt.Errorf("demo controller config: %w", err)
	}
	nc, err := controller.Connect(cfg.NATS, "vigil demo controller", log)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	ctl, err := controller.New(cfg, nc, set, log.With("component", "controller"))
	if err != nil {
		return nil, err
	}

	// Event printer and summary.
	evOut := stdout
	if o.jsonOut {
		evOut = stderr
	}
	col := newCollector(evOut)
	sub, err := nc.Subscribe(wire.EventsWildcard, func(m *nats.Msg) { col.add(m.Data) })
	if err != nil {
		return nil, err
	}
	sub.SetPendingLimits(-1, -1)

	disk := &simDisk{dir: dataDir, capacity: 32 << 20, start: 0.4, fillTime: o.fillTime, tick: 250 * time.Millisecond}
	if err := disk.prepare(); err != nil {
		return nil, fmt.Errorf("simulated disk: %w", err)
	}
	agents, err := demoAgents(srv.URL(), disk, log)
	if err != nil {
		return nil, err
	}

	fmt.Fprintf(evOut, "vigil demo: NATS %s, hosts %s and sim-gpu-1 (data disk fills from 40%% to 100%% in %s)\n", srv.URL(), agents[0].host, o.fillTime)
	if o.influxURL != "" {
		fmt.Fprintf(evOut, "vigil demo: writing history to InfluxDB %s bucket %s\n", o.influxURL, o.influxBkt)
	}
	start := time.Now()
	var wg sync.WaitGroup
	ctlCtx, stopCtl := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCtl()
	ctlErr := make(chan error, 1)
	go func() { ctlErr <- ctl.Run(ctlCtx) }()
	agentCtx, stopAgents := context.WithCancel(ctx)
	defer stopAgents()
	for _, a := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.agent.Run(agentCtx); err != nil {
				log.Error("agent stopped", "host", a.host, "err", err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := disk.fill(agentCtx); err != nil {
			log.Error("simulated disk writer", "err", err)
		}
	}()

	<-ctx.Done()
	stopAgents()
	wg.Wait()
	stopCtl()
	err = <-ctlErr
	_ = nc.Flush()
	_ = sub.Drain()
	time.Sleep(100 * time.Millisecond)
	return col.summary(start, time.Now(), disk.FullAt()), err
}

type demoAgent struct {
	host  string
	agent *agent.Agent
}

func demoControllerConfig(url string, o demoOptions, horizon time.Duration) string {
	hist := ""
	if o.influxURL != "" {
		hist = fmt.Sprintf("history:\n  url: %q\n  token: %q\n  bucket: %q\n", o.influxURL, o.influxToken, o.influxBkt)
	}
	return fmt.Sprintf(`name: demo-controller
nats:
  url: %q
consumer: vigil-demo
detectors:
  trend:
    window: 30s
    min_samples: 5
    min_span: 4s
forecasts:
  - series: disk.used_percent{path=/data}
    level: 100
    horizon: %s
    min_confidence: 0.9
    interval: 5s
api:
  listen: "off"
%s`, url, horizon, hist)
}
