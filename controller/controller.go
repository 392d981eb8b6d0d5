// Package controller is Vigil's controller: it consumes telemetry from
// JetStream, keeps per-series state with streaming detectors and
// forecasters, evaluates rules, dispatches actions and records every event
// in the events stream (and from there in InfluxDB).
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/detectors"
	"github.com/vigil-sre/vigil/internal/wire"
	"github.com/vigil-sre/vigil/rules"
)

// Controller is one controller process. Its mutable state (series, rule
// states) is owned by the goroutine running Run; NATS callbacks and the
// API never touch it directly.
type Controller struct {
	cfg *Config
	log *slog.Logger
	now func() time.Time

	nc *nats.Conn
	js jetstream.JetStream

	store   *store
	engine  *rules.Engine
	pub     *publisher
	disp    *dispatcher
	history *History
	fo      *failoverManager // services: health, failover, routes (failover.go)
	lease   *lease           // leader lease (lease.go)

	// held: while following, the latest intent of each rule and subject,
	// submitted on taking over if the rule still fires (leadership.go).
	held     map[string]rules.Intent
	ledEpoch uint64 // epoch of the term the owner last acted on (0: none)
	// lapseEvents: the events made while following in a lapse after this
	// controller's term of line lapseLine, published if its next term
	// continues that line (leadership.go).
	lapseEvents []*wire.Event
	lapseLine   uint64

	reload    chan chan error
	statusReq chan chan *Status
	ruleStats atomic.Pointer[rules.Stats] // per-rule counters for /metrics, refreshed each second
	statsAt   time.Time
	stats     Stats

	// per-message context for the decode callback (owner goroutine only)
	dec     wire.Decoder
	msgHost string
	msgNow  time.Time
	visitFn func(*wire.PointView)
	badLog  map[string]time.Time // subject -> last time a malformed line was logged
	seqs    map[string]*seqState // subject token -> sequence accounting
	// work: the queued model updates of the batches being handled, unacked
	// their messages; parallel: the goroutines that run them (ingest_par.go)
	work     []modelWork
	unacked  []jetstream.Msg
	parallel int
	// hostSeqs: per-host gaps and duplicates for /metrics (ingest.go)
	hostSeqs hostSeqCounts
}

// Stats are the controller's counters, exported on /metrics.
type Stats struct {
	Messages, Samples, Points    atomic.Uint64
	MalformedLines, Oversize     atomic.Uint64
	NonNumeric, SeriesLimit      atomic.Uint64
	Gaps, Duplicates             atomic.Uint64
	Anomalies, Predictions       atomic.Uint64
	RuleLoadErrors, RuleReloads  atomic.Uint64
	Evaluations, EvalNanoseconds atomic.Uint64
	TriggeredRounds              atomic.Uint64 // evaluateChanged calls that had new data
	FollowerEvents               atomic.Uint64 // events made while following (kept or dropped)
	HeldIntents                  atomic.Uint64 // intents held while following
	LapseKept                    atomic.Int64  // events kept while following in a lapse (now)
	LapseResumed, LapseDiscarded atomic.Uint64 // kept events published on leading again / discarded
	LapseOverflow                atomic.Uint64 // events not kept: the lapse's buffer was full
}

// New builds a controller over an established NATS connection. rules is
// the initial rule set (may be empty).
func New(cfg *Config, nc *nats.Conn, set *rules.Set, log *slog.Logger) (*Controller, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if _, err := detectors.NewDetector(cfg.Detectors.Anomaly); err != nil {
		return nil, fmt.Errorf("detectors.anomaly: %w", err)
	}
	newFc, err := cfg.Detectors.newForecaster()
	if err != nil {
		return nil, fmt.Errorf("detectors: %w", err)
	}
	newDet := func() detectors.Detector { d, _ := detectors.NewDetector(cfg.Detectors.Anomaly); return d }
	c := &Controller{
		cfg: cfg, log: log, now: time.Now, nc: nc, js: js,
		store:     newStore(newDet, newFc, cfg.Forecasts),
		engine:    rules.NewEngine(set),
		reload:    make(chan chan error),
		statusReq: make(chan chan *Status),
		badLog:    map[string]time.Time{},
		seqs:      map[string]*seqState{},
		held:      map[string]rules.Intent{},
	}
	c.store.anomalyHold = max(cfg.Detectors.AnomalyHold, 0)
	c.pub = newPublisher(js, log.With("component", "events"), 1<<16)
	c.lease = newLease(cfg.Lease, js, cfg.Name, c.pub, log.With("component", "lease"))
	c.fo = newFailoverManager(cfg, js, c.pub, log.With("component", "failover"))
	c.fo.lease = c.lease
	actCfg := cfg.Actions
	actCfg.failover = c.fo
	c.disp = newDispatcher(actCfg, c.pub, log.With("component", "dispatcher"), c.now)
	c.disp.lease = c.lease
	c.disp.rules.Store(set)
	if c.disp.cfg.rt != nil {
		c.disp.cfg.rt.lease = c.lease
	}
	c.fo.disp = c.disp
	if cfg.History.URL != "" {
		h, err := NewHistory(cfg.History, js, log.With("component", "history"))
		if err != nil {
			return nil, err
		}
		c.history = h
	}
	c.visitFn = c.visit
	c.parallel = runtime.GOMAXPROCS(0)
	return c, nil
}

// Reload replaces the rule set from the configured files. A set that does
// not load leaves the running rules untouched and returns the errors.
func (c *Controller) Reload(ctx context.Context) error {
	done := make(chan error, 1)
	select {
	case c.reload <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Status asks the owner goroutine for a snapshot of hosts and rules.
func (c *Controller) Status(ctx context.Context) (*Status, error) {
	out := make(chan *Status, 1)
	select {
	case c.statusReq <- out:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case st := <-out:
		return st, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Run runs the controller until ctx ends. Shutdown drains upstream first
// (telemetry), then actions and events, and flushes history last.
func (c *Controller) Run(ctx context.Context) error {
	setup, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := EnsureStreams(setup, c.js, c.cfg.Streams)
	cancel()
	if err != nil {
		return err
	}
	cons, err := c.js.CreateOrUpdateConsumer(ctx, wire.TelemetryStream, telemetryConsumer(c.cfg.Consumer))
	if err != nil {
		return fmt.Errorf("telemetry consumer %s: %w", c.cfg.Consumer, err)
	}

	var lower sync.WaitGroup // event producers: dispatcher and the owner
	var upper sync.WaitGroup // publisher and history, stopped last
	errs := make(chan error, 8)
	histCtx, stopHist := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHist()
	pubDone := make(chan struct{})
	upper.Add(1)
	go func() { defer upper.Done(); defer close(pubDone); errs <- c.pub.Run(histCtx) }()
	if c.history != nil {
		upper.Add(1)
		go func() { defer upper.Done(); errs <- c.history.Run(histCtx) }()
	}
	lower.Add(1)
	go func() { defer lower.Done(); errs <- c.lease.Run(ctx) }()
	lower.Add(1)
	go func() { defer lower.Done(); errs <- c.disp.Run(ctx) }()
	lower.Add(1)
	go func() { defer lower.Done(); errs <- c.fo.Run(ctx) }()

	msgs := make(chan jetstream.Msg, 4096)
	var late []jetstream.Msg // received by ingest after ctx's end
	ingested := make(chan struct{})
	go func() { defer close(ingested); late = c.ingest(ctx, cons, msgs) }()

	err = c.loop(ctx, msgs)

	<-ingested // its last pull has ended (within fetchWait)
	// Fetched, not processed: back to the stream for the next run (Nak),
	// oldest first — the queue, then what ingest received after it — as
	// the server redelivers in the order of the Naks, and a series' older
	// samples arriving after its newer ones would be dropped as out of order.
	for len(msgs) > 0 {
		_ = (<-msgs).Nak()
	}
	nakAll(late)
	if c.nc.IsConnected() {
		_ = c.nc.FlushTimeout(5 * time.Second) // the Naks reach the server even if the process exits next
	}
	lower.Wait()  // dispatcher (running actions finish), lease, failover: not before the Naks, which must not wait out the ack wait
	c.pub.Close() // then the events queue drains: Run returns once all are acknowledged
	select {
	case <-pubDone:
	case <-time.After(15 * time.Second):
		c.log.Warn("events not all published at shutdown", "queued", len(c.pub.ch))
	}
	stopHist() // history last: what it has not written stays in the stream
	upper.Wait()
	close(errs)
	for e := range errs {
		if e != nil && !errors.Is(e, context.Canceled) {
			err = errors.Join(err, e)
		}
	}
	return err
}

// telemetryConsumer is the configuration of the durable telemetry
// consumer named name.
func telemetryConsumer(name string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "vigil controller telemetry",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Minute,
		MaxAckPending: 50000,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// Telemetry pull requests. Bounded in bytes, not only in messages: 2000
// batches of 50 KB overran the client's and the server's 64 MB pending
// limits (slow consumer, disconnects, redeliveries). 32 MB holds several
// of the largest batches (wire.MaxBatchBytes); MaxAckPending bounds the
// count across requests; fetchBatch bounds a request's messages (twice
// the owner's queue, so a backlog of small batches takes few requests). A
// request lasts at most fetchWait, which bounds how long a stopping
// controller waits for its last one to end.
const (
	fetchBatch = 8192
	fetchBytes = 32 << 20
	fetchWait  = time.Second
	fetchRetry = time.Second // pause after a failed request
)

// ingest pulls telemetry and hands it to the owner goroutine, one pull
// request (Fetch) at a time: the messages of a request are handed over as
// they arrive, and the next request goes out once the last of them is
// queued for the owner, so the queue (out, 4096 batches) keeps the owner
// busy over the round trip. One request at a time also keeps the stream's
// order: the server serves open requests in turns, each on its own inbox.
//
// Why nothing delivered for this controller is still on its way when
// ingest returns (nats.go jetstream/pull.go, nats-server consumer.go): the
// server sends a request's messages to that request's inbox only while
// the request is open, and Fetch keeps the inbox subscribed, and Messages
// open, until the request has ended: its batch is full, or its bytes (the
// client and the server count a message's size alike, and a message that
// does not fit ends it with a 409 status instead), or the server says it
// expired (a 408 status, queued behind what it sent before). At ctx's end
// ingest issues no new request, reads the open one to its end and returns
// what it yielded after ctx's end (late), within fetchWait and with
// nothing in transit; the caller returns it to the stream (Nak) after the
// owner's queue, which is older — not before the request ended, or the
// server would redeliver it to that request. (The iterator this replaced, cons.Messages with
// Drain, returned messages while its pull was open, so the server sent
// them straight back to it, and unsubscribed while the server could still
// be sending: some restarts stranded thousands of batches for a minute.)
// Two cases escape this, both far from a clean stop:
// a connection lost mid-request loses what was on the wire, and Fetch
// gives up on its own after hearing nothing for fetchWait plus a second,
// which a request that reached the server over a second late could
// outlive; JetStream redelivers such messages after the ack wait.
func (c *Controller) ingest(ctx context.Context, cons jetstream.Consumer, out chan<- jetstream.Msg) (late []jetstream.Msg) {
	for ctx.Err() == nil {
		b, err := cons.Fetch(fetchBatch, jetstream.FetchMaxBytes(fetchBytes), jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			c.log.Warn("telemetry fetch", "err", err)
			sleepCtx(ctx, fetchRetry)
			continue
		}
		for msg := range b.Messages() {
			if ctx.Err() == nil {
				select {
				case out <- msg:
					continue
				case <-ctx.Done():
				}
			}
			late = append(late, msg)
		}
		if err := b.Error(); err != nil && ctx.Err() == nil {
			c.log.Warn("telemetry fetch", "err", err)
			sleepCtx(ctx, fetchRetry)
		}
	}
	return late
}

// nakAll returns msgs to the stream (Nak), in order.
func nakAll(msgs []jetstream.Msg) {
	for _, m := range msgs {
		_ = m.Nak()
	}
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// loop is the owner goroutine: telemetry, rule evaluation, forecasts.
func (c *Controller) loop(ctx context.Context, msgs <-chan jetstream.Msg) error {
	// Groups have their own intervals; the engine evaluates those that are
	// due, so a fine tick only bounds how late an evaluation can be. The
	// rules reading a series that took samples are also evaluated right
	// after the telemetry (evaluateChanged), without waiting for a round.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	fc := time.NewTicker(time.Second)
	defer fc.Stop()
	for {
		select {
		case <-ctx.Done():
			c.lapseAtShutdown()
			return nil
		case m := <-msgs:
			c.handle(m)
			c.handleQueued(ctx, msgs)
			c.finishBatches()
			c.evaluateChanged(c.now())
		case <-tick.C:
			c.evaluate(c.now())
		case <-fc.C:
			c.updateForecasts(c.now())
		case <-c.lease.changed:
			c.leadershipChanged(c.now())
		case done := <-c.reload:
			done <- c.reloadRules()
		case out := <-c.statusReq:
			out <- c.snapshot(c.now())
		}
	}
}

// coalesceFor bounds how long the owner keeps handling telemetry that is
// already queued before it evaluates the rules whose data changed: under
// load one evaluation covers several batches, and a sample waits at most
// this (and the batch being handled) for its rules.
const coalesceFor = 5 * time.Millisecond

// handleQueued handles the telemetry messages already queued, for up to
// coalesceFor.
func (c *Controller) handleQueued(ctx context.Context, msgs <-chan jetstream.Msg) {
	if len(msgs) == 0 {
		return
	}
	deadline := time.Now().Add(coalesceFor)
	for len(msgs) > 0 && ctx.Err() == nil && time.Now().Before(deadline) {
		c.handle(<-msgs)
	}
}

func (c *Controller) reloadRules() error {
	set, err := rules.LoadFiles(c.cfg.Rules...)
	if err != nil {
		c.stats.RuleLoadErrors.Add(1)
		return err
	}
	c.engine.Replace(set)
	c.disp.rules.Store(set)
	c.stats.RuleReloads.Add(1)
	return nil
}
