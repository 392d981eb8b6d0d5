package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/controller"
	"github.com/vigil-sre/vigil/internal/natsembed"
	"github.com/vigil-sre/vigil/internal/wire"
	"github.com/vigil-sre/vigil/rules"
)

// e2eOptions are the parameters of `vigil bench e2e`.
type e2eOptions struct {
	Duration   time.Duration // how long the publishers publish
	Hosts      int           // simulated hosts (subjects vigil.telemetry.<host>)
	Publishers int           // publisher goroutines, one NATS connection each
	Lines      int           // lines per batch (distinct series per host and field)
	Fields     int           // numeric fields per line
	Rate       float64       // samples/s over all publishers; 0 = as fast as possible
	Drain      time.Duration // longest wait for the controller to process the backlog
	MaxLag     uint64        // samples published and not yet processed before publishers wait
	Detector   string        // the controller's anomaly detector; "" = ewma
	Log        *slog.Logger  // components' logs
}

// e2eResult is what `vigil bench e2e` measured.
type e2eResult struct {
	TargetRate          float64    `json:"target_rate"`
	Hosts               int        `json:"hosts"`
	Publishers          int        `json:"publishers"`
	SamplesPerMessage   int        `json:"samples_per_message"`
	PublishSeconds      float64    `json:"publish_seconds"`
	Messages            uint64     `json:"messages"`
	PublishErrors       uint64     `json:"publish_errors"`
	SamplesPublished    uint64     `json:"samples_published"`
	SamplesProcessed    uint64     `json:"samples_processed"`
	ProcessSeconds      float64    `json:"process_seconds"`
	PublishedPerSecond  float64    `json:"published_per_second"`
	ProcessedPerSecond  float64    `json:"processed_per_second"`
	Probes              int        `json:"probes"`
	IngestLatency       e2eLatency `json:"ingest_latency_ms"`
	RuleLatency         e2eLatency `json:"rule_latency_ms"`
	DispatchLatency     e2eLatency `json:"dispatch_latency_ms"`
	BacklogDrainSeconds float64    `json:"backlog_drain_seconds"`
	RuleRoundsPerSecond float64    `json:"rule_rounds_per_second"`
	// evaluations of the probe rule right after new data (the probe host's batches), per second
	TriggeredPerSecond float64 `json:"triggered_evaluations_per_second"`
}

// e2eLatency summarises latencies in milliseconds; Missed probes saw no event in time.
type e2eLatency struct {
	N      int     `json:"n"`
	Missed int     `json:"missed"`
	P50    float64 `json:"p50"`
	P90    float64 `json:"p90"`
	P99    float64 `json:"p99"`
	Max    float64 `json:"max"`
}

const e2eProbeHost = "e2e-probe"

// e2eRules: a rule that fires when the probe host's probe.v is high. dry_run: the dispatcher
// records the intent (an action event, state skipped, outcome dry_run) and runs nothing.
const e2eRules = `groups:
  - name: e2e
    interval: 100ms
    rules:
      - name: probe_high
        expr: value("probe.v") > 100
        no_data: ok
        mode: dry_run
        cooldown: 0s
        flapping: "off"
        action: {name: probe, kind: exec, program: "true"}
`

func cmdBenchE2E(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vigil bench e2e", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := e2eOptions{}
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to publish")
	fs.IntVar(&o.Hosts, "hosts", 20, "simulated hosts")
	fs.IntVar(&o.Publishers, "publishers", 4, "publisher goroutines (one NATS connection each)")
	fs.IntVar(&o.Lines, "lines", 500, "line-protocol lines per batch")
	fs.IntVar(&o.Fields, "fields", 5, "fields per line")
	fs.Float64Var(&o.Rate, "rate", 0, "samples/s over all publishers (0 = as fast as possible)")
	fs.DurationVar(&o.Drain, "drain", 2*time.Minute, "longest wait for the controller to catch up")
	fs.Uint64Var(&o.MaxLag, "max-lag", e2eMaxLag, "publishers wait while more samples than this are not processed yet")
	fs.StringVar(&o.Detector, "detector", "ewma", "the controller's anomaly detector (the prober times ingestion by an anomaly event per spike, which only ewma reports; others show its probes as missed)")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	verbose := fs.Bool("verbose", false, "show the components' logs")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || o.Hosts < 1 || o.Publishers < 1 || o.Lines < 1 || o.Fields < 1 || o.Rate < 0 || o.Duration <= 0 {
		fmt.Fprintln(stderr, "vigil bench e2e: --hosts, --publishers, --lines, --fields and --duration must be positive, --rate ≥ 0, no arguments")
		return 2
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	o.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	res, err := runE2E(context.Background(), o)
	if err != nil {
		fmt.Fprintf(stderr, "vigil bench e2e: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
		return 0
	}
	printE2E(stdout, res)
	return 0
}

func printE2E(w io.Writer, r *e2eResult) {
	rate := "as fast as possible"
	if r.TargetRate > 0 {
		rate = fmt.Sprintf("%.0f samples/s", r.TargetRate)
	}
	fmt.Fprintf(w, "controller end to end over NATS JetStream: %d hosts, %d publishers, %d samples/message, rate %s\n",
		r.Hosts, r.Publishers, r.SamplesPerMessage, rate)
	fmt.Fprintf(w, "published  %d samples in %d messages over %.2fs: %.0f samples/s (%d publish errors)\n",
		r.SamplesPublished, r.Messages, r.PublishSeconds, r.PublishedPerSecond, r.PublishErrors)
	fmt.Fprintf(w, "processed  %d samples in %.2fs from the first publish: %.0f samples/s (backlog drained %.2fs after publishing stopped)\n",
		r.SamplesProcessed, r.ProcessSeconds, r.ProcessedPerSecond, r.BacklogDrainSeconds)
	fmt.Fprintf(w, "probes     %d (rule group interval 100ms: %.1f evaluation rounds/s per subject; %.1f evaluations/s after new data)\n",
		r.Probes, r.RuleRoundsPerSecond, r.TriggeredPerSecond)
	for _, l := range []struct {
		name string
		l    e2eLatency
	}{{"ingest   (publish → sample observed)", r.IngestLatency}, {"rule     (publish → rule firing)", r.RuleLatency}, {"dispatch (publish → dispatcher has the intent)", r.DispatchLatency}} {
		fmt.Fprintf(w, "%-48s n=%d missed=%d p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms\n",
			l.name, l.l.N, l.l.Missed, l.l.P50, l.l.P90, l.l.P99, l.l.Max)
	}
}

// runE2E starts a NATS server, a controller and the publishers and the prober, publishes for
// o.Duration, waits until the controller processed every acknowledged sample and reports.
func runE2E(ctx context.Context, o e2eOptions) (*e2eResult, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv, err := natsembed.Start(natsembed.Options{})
	if err != nil {
		return nil, err
	}
	defer srv.Shutdown()
	set, err := rules.Parse("e2e-rules.yaml", []byte(e2eRules))
	if err != nil {
		return nil, fmt.Errorf("e2e rules: %w", err)
	}
	// ewma by default: the prober times ingestion by the anomaly event of every spike; the
	// ensemble reports only an anomaly's onset (and needs 150 samples of warm-up), so it would
	// hide all but one.
	det := o.Detector
	if det == "" {
		det = "ewma"
	}
	cfg, err := controller.ParseConfig("e2e-controller.yaml", []byte(fmt.Sprintf(
		"name: e2e\nnats:\n  url: %q\nconsumer: vigil-e2e\napi:\n  listen: \"off\"\ndetectors:\n  anomaly: %q\n", srv.URL(), det)))
	if err != nil {
		return nil, fmt.Errorf("e2e controller config: %w", err)
	}
	nc, err := controller.Connect(cfg.NATS, "vigil bench e2e controller", o.Log)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	ctl, err := controller.New(cfg, nc, set, o.Log.With("component", "controller"))
	if err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ctlErr := make(chan error, 1)
	go func() { ctlErr <- ctl.Run(runCtx) }()
	defer func() { stop(); <-ctlErr }()
	if err := e2eWaitStreams(ctx, nc); err != nil {
		return nil, err
	}
	return e2eMeasure(ctx, o, srv.URL(), metricReader(ctl))
}

// e2eWaitStreams waits until the controller created the telemetry stream.
func e2eWaitStreams(ctx context.Context, nc *nats.Conn) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := js.Stream(ctx, wire.TelemetryStream); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("telemetry stream not created: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metricReader returns a function reading one series of the controller's /metrics (Handler),
// named with its labels as exposed, e.g. vigil_telemetry_samples_total.
func metricReader(ctl *controller.Controller) func(series string) uint64 {
	h := ctl.Handler()
	return func(series string) uint64 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		body := rec.Body.String()
		i := strings.Index(body, "\n"+series+" ")
		if i < 0 {
			return 0
		}
		v := body[i+2+len(series):]
		if j := strings.IndexByte(v, '\n'); j >= 0 {
			v = v[:j]
		}
		f, _ := strconv.ParseFloat(v, 64)
		return uint64(f)
	}
}

const (
	e2eRuleEvals     = `vigil_rule_evaluations_total{group="e2e",rule="probe_high"}`
	e2eRuleTriggered = `vigil_rule_triggered_evaluations_total{group="e2e",rule="probe_high"}`
)

// e2eMeasure runs the publishers and the prober and waits for the controller.
func e2eMeasure(ctx context.Context, o e2eOptions, url string, metric func(string) uint64) (*e2eResult, error) {
	processed := func() uint64 { return metric("vigil_telemetry_samples_total") }
	pr, err := newE2EProber(url)
	if err != nil {
		return nil, err
	}
	defer pr.close()
	before := processed()
	if err := pr.warmUp(ctx); err != nil { // counted in pr.samples
		return nil, err
	}
	res := &e2eResult{TargetRate: o.Rate, Hosts: o.Hosts, Publishers: o.Publishers, SamplesPerMessage: o.Lines * o.Fields}
	if o.MaxLag == 0 {
		o.MaxLag = e2eMaxLag
	}
	cnt := &e2eCounters{maxLag: max(o.MaxLag, 20*uint64(res.SamplesPerMessage))}
	pubCtx, stopPub := context.WithTimeout(ctx, o.Duration)
	defer stopPub()
	start := time.Now()
	evals0, triggered0 := metric(e2eRuleEvals), metric(e2eRuleTriggered)
	var wg sync.WaitGroup
	errs := make(chan error, o.Publishers+1)
	for p := range o.Publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- e2ePublish(pubCtx, o, url, p, cnt)
		}()
	}
	go cnt.follow(pubCtx, processed, before)
	wg.Add(1)
	go func() { defer wg.Done(); errs <- pr.run(pubCtx) }()
	wg.Wait()
	pubEnd := time.Now()
	// Rounds of the 100 ms group per second, per subject (the load hosts and the probe host), and
	// the evaluations new data of the probe host made (per-rule counters: refreshed each second).
	triggered := metric(e2eRuleTriggered) - triggered0
	res.RuleRoundsPerSecond = float64(metric(e2eRuleEvals)-evals0-triggered) / float64(o.Hosts+1) / pubEnd.Sub(start).Seconds()
	res.TriggeredPerSecond = float64(triggered) / pubEnd.Sub(start).Seconds()
	close(errs)
	for e := range errs {
		if e != nil {
			return nil, e
		}
	}
	res.Messages, res.PublishErrors = cnt.acked.Load(), cnt.failed.Load()
	res.SamplesPublished = res.Messages * uint64(res.SamplesPerMessage)
	res.PublishSeconds = pubEnd.Sub(start).Seconds()
	res.PublishedPerSecond = float64(res.SamplesPublished) / res.PublishSeconds
	want := res.SamplesPublished + pr.samples.Load()
	done, err := e2eWaitProcessed(ctx, processed, before, want, o.Drain)
	if err != nil {
		return nil, err
	}
	time.Sleep(200 * time.Millisecond) // anything more than expected would show now
	res.SamplesProcessed = processed() - before - pr.samples.Load()
	res.ProcessSeconds = done.Sub(start).Seconds()
	res.ProcessedPerSecond = float64(res.SamplesProcessed) / res.ProcessSeconds
	res.BacklogDrainSeconds = max(0, done.Sub(pubEnd).Seconds())
	res.Probes = pr.probes
	res.IngestLatency = summarise(pr.ingest, pr.probes)
	res.RuleLatency = summarise(pr.rule, pr.probes)
	res.DispatchLatency = summarise(pr.dispatch, pr.probes)
	return res, nil
}

// e2eWaitProcessed polls the counter until want samples beyond before were processed.
func e2eWaitProcessed(ctx context.Context, processed func() uint64, before, want uint64, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	for {
		n := processed() - before
		if n >= want {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("controller processed %d of %d samples within %s", n, want, limit)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// e2ePublish is publisher p: it publishes batches for the hosts h ≡ p (mod Publishers), in
// turn, through JetStream with asynchronous acknowledgements, as agents do, paced to its share
// of o.Rate. Only acknowledged batches count.
func e2ePublish(ctx context.Context, o e2eOptions, url string, p int, cnt *e2eCounters) error {
	var hosts []string
	for h := p; h < o.Hosts; h += o.Publishers {
		hosts = append(hosts, fmt.Sprintf("e2e-h%03d", h))
	}
	if len(hosts) == 0 {
		return nil
	}
	nc, err := nats.Connect(url, nats.Name(fmt.Sprintf("vigil bench e2e publisher %d", p)))
	if err != nil {
		return fmt.Errorf("publisher %d: %w", p, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(64))
	if err != nil {
		return err
	}
	run := fmt.Sprintf("bench%d", p)
	var interval time.Duration
	if o.Rate > 0 {
		interval = time.Duration(float64(o.Lines*o.Fields) / (o.Rate / float64(o.Publishers)) * 1e9)
	}
	var futures []jetstream.PubAckFuture
	hostSeq := make([]uint64, len(hosts)) // Vigil-Seq runs per host, as one agent's would
	buf := make([]byte, 0, o.Lines*(32+o.Fields*12))
	start := time.Now()
	for n := uint64(1); ; n++ {
		if interval > 0 {
			next := start.Add(time.Duration(n-1) * interval)
			if d := time.Until(next); d > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(d):
				}
			}
		}
		if cnt.backlogged(ctx); ctx.Err() != nil {
			break
		}
		i := int(n) % len(hosts)
		host := hosts[i]
		hostSeq[i]++
		seq := hostSeq[i]
		buf = e2eBatch(buf[:0], host, o.Lines, o.Fields, seq, time.Now().UnixNano())
		msg := &nats.Msg{Subject: wire.TelemetrySubject(host), Data: append([]byte(nil), buf...), Header: nats.Header{}}
		msg.Header.Set(wire.HeaderRun, run)
		msg.Header.Set(wire.HeaderSeq, strconv.FormatUint(seq, 10))
		msg.Header.Set(wire.HeaderMsgID, wire.MsgID(host, run, seq))
		f, err := js.PublishMsgAsync(msg)
		if err != nil {
			cnt.failed.Add(1)
			continue
		}
		cnt.sent.Add(uint64(o.Lines * o.Fields))
		futures = append(futures, f)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
			cnt.acked.Add(1)
		case <-f.Err():
			cnt.failed.Add(1)
		default:
			cnt.failed.Add(1)
		}
	}
	return nil
}

// e2eMaxLag bounds the samples published and not yet processed: as fast as possible means as
// fast as the controller keeps up, without growing a backlog that the bounded telemetry stream
// (1 GiB, discard old) would cut. A few seconds of the budget's rate.
const e2eMaxLag = 2_000_000

// e2eCounters are shared by the publishers.
type e2eCounters struct {
	acked, failed   atomic.Uint64 // messages
	sent, processed atomic.Uint64 // samples (processed: load and probes)
	maxLag          uint64
}

// follow copies the controller's processed samples counter until ctx ends.
func (c *e2eCounters) follow(ctx context.Context, processed func() uint64, before uint64) {
	for ctx.Err() == nil {
		c.processed.Store(processed() - before)
		time.Sleep(2 * time.Millisecond)
	}
}

// backlogged waits while more than maxLag samples are published and not processed.
func (c *e2eCounters) backlogged(ctx context.Context) {
	for ctx.Err() == nil && c.sent.Load() > c.processed.Load()+c.maxLag {
		time.Sleep(time.Millisecond)
	}
}

// e2eBatch appends one batch of line protocol: lines series of host, each with fields values
// that wander over [0, 100) (gauges, no anomalies expected), all at ts.
func e2eBatch(b []byte, host string, lines, fields int, seq uint64, ts int64) []byte {
	for j := range lines {
		b = append(b, "bench,host="...)
		b = append(b, host...)
		b = append(b, ",id=s"...)
		b = strconv.AppendInt(b, int64(j), 10)
		for k := range fields {
			if k == 0 {
				b = append(b, ' ')
			} else {
				b = append(b, ',')
			}
			b = append(b, 'f')
			b = strconv.AppendInt(b, int64(k), 10)
			b = append(b, '=')
			x := (seq*2654435761 + uint64(j)*40503 + uint64(k)*97) % 1000
			b = strconv.AppendFloat(b, float64(x)/10, 'f', 1, 64)
		}
		b = append(b, ' ')
		b = strconv.AppendInt(b, ts, 10)
		b = append(b, '\n')
	}
	return b
}
