package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

// Agent collects the host's signals every interval and publishes them as
// one line-protocol batch per tick. Build it with New, add collectors with
// AddCollector, then call Run once.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	host   string
	run    string
	jitter time.Duration
	self   bool
	pub    *publisher

	mu          sync.Mutex // guards runners (the slice) and every runner's st, ticks, seq
	runners     []*runner
	ticks       uint64
	seq         uint64
	running     bool
	connected   bool
	metricsAddr string
	models      *Models     // model-drift collector (agent/model.go); nil unless cfg.Models is set
	actions     HostActions // offered to the executor (agent/executor.go)
	exec        *executor   // nil unless cfg.Executor is set

	tickRunners []*runner  // tick loop's copy of runners
	selfBatch   wire.Batch // tick loop only
	selfFields  []wire.Field
	selfTags    []wire.Tag
	global      []wire.Tag // cfg.Tags, sorted
	waitTimer   *time.Timer
}

// Stats is a snapshot of the agent's counters.
type Stats struct {
	// Run is this start's random id; Seq the last batch number given
	// (batches are numbered 1, 2, 3, ... within a run).
	Run string
	Seq uint64
	// Ticks taken.
	Ticks uint64
	// Published counts publish attempts, Acked batches JetStream
	// acknowledged (Duplicates of them it already had), Resent attempts
	// after the first of a batch, PublishErrors failed attempts.
	Published, Acked, Duplicates, Resent, PublishErrors uint64
	// Dropped batches, lost for good: oldest of a full backlog (without a
	// spool) or of a full spool, damaged in the spool, or too large.
	Dropped uint64
	// Backlog batches (and their bytes) in memory not yet acknowledged.
	Backlog, BacklogBytes int
	// Spool: batches on disk not yet acknowledged, and the spool's
	// counters (zero without a spool).
	Spool SpoolStats
	// Connected to NATS now.
	Connected bool
	// Collectors by name.
	Collectors map[string]CollectorStats
}

// New builds an agent: cfg is defaulted and validated (without file
// positions; use LoadConfig for a file) and every enabled registered
// collector is built.
func New(cfg Config, log *slog.Logger) (*Agent, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.WithDefaults(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(nil); err != nil {
		return nil, err
	}
	run, err := newRunID()
	if err != nil {
		return nil, err
	}
	log = log.With("host", cfg.Host, "run", run)
	a := &Agent{
		cfg:       cfg,
		log:       log,
		host:      cfg.Host,
		run:       run,
		jitter:    *cfg.Jitter,
		self:      *cfg.SelfMetrics,
		pub:       newPublisher(cfg.Host, run, cfg, log),
		waitTimer: time.NewTimer(time.Hour),
		global:    sortedTags(cfg.Tags),
	}
	a.waitTimer.Stop()
	for _, name := range Registered() {
		if !cfg.collectorEnabled(name) {
			continue
		}
		c, err := NewCollector(name, cfg.collectorOptions(name, log))
		if err != nil {
			return nil, err
		}
		a.addRunner(c, cfg.collectorTimeout(name))
	}
	if err := a.addModels(); err != nil {
		return nil, err
	}
	if err := a.addReleases(); err != nil {
		return nil, err
	}
	if err := a.addBackup(); err != nil {
		return nil, err
	}
	if err := a.addExecutor(); err != nil {
		return nil, err
	}
	return a, nil
}

// newRunID returns 12 random hex characters.
func newRunID() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("run id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// AddCollector adds a collector (e.g. a simulated host's) with the
// default timeout (interval/2, at most 5s). It may be called before or
// during Run; the collector runs from the next tick on.
func (a *Agent) AddCollector(c Collector) {
	a.addRunner(c, min(a.cfg.Interval/2, 5*time.Second))
}

// sortedTags turns configured tags into wire tags sorted by name.
func sortedTags(m map[string]string) []wire.Tag {
	tags := make([]wire.Tag, 0, len(m))
	for k, v := range m {
		tags = append(tags, wire.Tag{Key: k, Value: v})
	}
	slices.SortFunc(tags, func(x, y wire.Tag) int { return strings.Compare(x.Key, y.Key) })
	return tags
}

func (a *Agent) addRunner(c Collector, timeout time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.runners = append(a.runners, newRunner(c, timeout, a.host, a.global, a.log))
}

// Run connects to NATS, ticks until ctx ends, then keeps sending the backlog
// for at most publish.shutdown_grace and closes the connection. It returns
// nil after a clean shutdown and an error when it cannot start; it must be
// called once.
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	if a.running {
		a.mu.Unlock()
		return errors.New("agent: Run called twice")
	}
	a.running = true
	a.mu.Unlock()

	sp, err := a.openSpool()
	if err != nil {
		return err
	}
	started := false
	defer func() {
		if !started && sp != nil {
			_ = sp.close()
		}
	}()
	stopMetrics, err := a.serveMetrics()
	if err != nil {
		return err
	}
	defer stopMetrics()
	stopModels, err := a.startModels(ctx)
	if err != nil {
		return err
	}
	defer stopModels()
	if err := a.pub.connect(a.cfg.NATS); err != nil {
		return err
	}
	started = true
	a.mu.Lock()
	a.connected = true // a.pub.nc is set from here on
	a.pub.sp = sp
	n := len(a.runners)
	a.mu.Unlock()
	a.log.Info("agent started", "subject", a.pub.subject, "interval", a.cfg.Interval.String(), "collectors", n,
		"spool", a.cfg.SpoolDir(), "metrics", a.cfg.MetricsAddr())
	sendCtx, stopSending := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSending()
	draining := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		a.pub.run(sendCtx, draining)
	}()

	stopTraffic, err := a.startTraffic(ctx, a.pub.nc)
	if err != nil {
		stopSending()
		<-sent
		a.pub.close()
		_, _ = a.pub.shutdown()
		return err
	}
	defer stopTraffic()
	stopExec := a.startExecutor(ctx)
	a.loop(ctx)
	stopExec()

	close(draining)
	grace := time.NewTimer(a.cfg.Publish.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-sent:
	case <-grace.C:
		stopSending()
		<-sent
	}
	for _, r := range a.tickRunners {
		if !r.settle(100 * time.Millisecond) {
			a.log.Warn("collector still running at shutdown", "collector", r.name)
		}
		if cl, ok := r.c.(interface{ Close() error }); ok {
			cl.Close() // background probes and tools; tailed files
		}
	}
	a.pub.close()
	kept, err := a.pub.shutdown()
	if err != nil {
		a.log.Error("spool: closing failed", "err", err)
	}
	st := a.Stats()
	a.log.Info("agent stopped", "seq", st.Seq, "acked", st.Acked, "unsent", st.Backlog+kept, "spooled", kept, "dropped", st.Dropped)
	return nil
}

// openSpool opens the disk spool, if there is one.
func (a *Agent) openSpool() (*spool, error) {
	dir := a.cfg.SpoolDir()
	if dir == "" {
		return nil, nil
	}
	return openSpool(dir, int64(a.cfg.Spool.MaxBytes), a.run, a.host, a.log)
}

// loop ticks until ctx ends. Tick k fires at start + k·interval plus a
// random offset in [0, jitter); ticks missed while one ran long are skipped.
func (a *Agent) loop(ctx context.Context) {
	start := time.Now()
	timer := time.NewTimer(a.randJitter())
	defer timer.Stop()
	collectCtx := context.WithoutCancel(ctx) // a tick in progress completes
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		a.tick(collectCtx, time.Now())
		k := time.Since(start)/a.cfg.Interval + 1
		next := start.Add(k*a.cfg.Interval + a.randJitter())
		timer.Reset(time.Until(next))
	}
}

func (a *Agent) randJitter() time.Duration {
	if a.jitter <= 0 {
		return 0
	}
	return time.Duration(mrand.Int64N(int64(a.jitter)))
}

// rec runs f with the stats lock held.
func (a *Agent) rec(f func()) {
	a.mu.Lock()
	f()
	a.mu.Unlock()
}

// tick runs every collector in parallel, each within its timeout, and
// queues their points as one batch numbered with the next seq.
func (a *Agent) tick(ctx context.Context, now time.Time) {
	a.mu.Lock()
	a.tickRunners = append(a.tickRunners[:0], a.runners...)
	a.ticks++
	a.mu.Unlock()
	for _, r := range a.tickRunners {
		r.start(ctx, now, a.rec)
	}
	size := 0
	for _, r := range a.tickRunners {
		r.wait(a.waitTimer, a.rec)
		if r.fresh {
			size += len(r.batch.Bytes())
		}
	}
	if a.self {
		a.selfPoint(now, time.Since(now))
		size += len(a.selfBatch.Bytes())
	}
	if size == 0 {
		return // nothing to send: no seq is used up
	}
	data := a.pub.q.buffer(size)
	for _, r := range a.tickRunners {
		if r.fresh {
			data = append(data, r.batch.Bytes()...)
		}
	}
	if a.self {
		data = append(data, a.selfBatch.Bytes()...)
	}
	if len(data) > wire.MaxBatchBytes {
		a.pub.dropped.Add(1)
		a.log.Error("batch larger than the wire limit: dropped", "bytes", len(data), "limit", wire.MaxBatchBytes)
		return
	}
	a.mu.Lock()
	a.seq++
	seq := a.seq
	a.mu.Unlock()
	a.pub.enqueue(batch{seq: seq, data: data, created: now})
}

// selfPoint writes the agent's own health (self-monitoring) for this
// tick: the vigil_agent point — heartbeat_seq (the tick's number in this
// run; a missing number is a missed tick), backlog and backlog_bytes (in
// memory), spool_batches and spool_bytes (on disk), and the counters since
// the start dropped (batches lost for good), spool_corrupt, spool_errors,
// acked, resent, publish_errors, collect_errors (all collectors), plus
// collect_ms, the wall time this tick's collection took — and one
// vigil_agent_collector point per collector (tag collector): duration_ms
// of its last finished run, points it emitted, and the counters runs,
// errors, timeouts, panics and skipped.
func (a *Agent) selfPoint(now time.Time, took time.Duration) {
	n, bytes := a.pub.q.depth()
	var sp SpoolStats
	if a.pub.sp != nil { // set before the tick loop starts
		sp = a.pub.sp.Stats()
	}
	a.selfBatch.Reset()
	a.selfTags = append(append(a.selfTags[:0], wire.Tag{Key: "collector"}, wire.Tag{Key: "host", Value: a.host}), a.global...)
	var errs uint64
	a.mu.Lock()
	ticks := a.ticks
	for _, r := range a.tickRunners {
		st := &r.st
		errs += st.Errors
		a.selfTags[0].Value = r.name
		a.selfFields = append(a.selfFields[:0],
			wire.F("duration_ms", float64(st.LastDuration)/float64(time.Millisecond)),
			wire.I("points", int64(st.Points)),
			wire.I("runs", i64(st.Runs)),
			wire.I("errors", i64(st.Errors)),
			wire.I("timeouts", i64(st.Timeouts)),
			wire.I("panics", i64(st.Panics)),
			wire.I("skipped", i64(st.Skipped)),
		)
		a.selfBatch.Point("vigil_agent_collector", a.selfTags, a.selfFields, now)
	}
	a.mu.Unlock()
	a.selfFields = append(a.selfFields[:0],
		wire.I("heartbeat_seq", i64(ticks)),
		wire.I("backlog", int64(n)),
		wire.I("backlog_bytes", int64(bytes)),
		wire.I("spool_batches", int64(sp.Batches)),
		wire.I("spool_bytes", sp.Bytes),
		wire.I("dropped", i64(a.pub.dropped.Load()+sp.Dropped)),
		wire.I("spool_corrupt", i64(sp.Corrupt)),
		wire.I("spool_errors", i64(sp.Errors)),
		wire.I("acked", i64(a.pub.acked.Load())),
		wire.I("resent", i64(a.pub.resent.Load())),
		wire.I("publish_errors", i64(a.pub.errs.Load())),
		wire.I("collect_errors", i64(errs)),
		wire.F("collect_ms", float64(took)/float64(time.Millisecond)),
	)
	a.selfBatch.Point("vigil_agent", a.selfTags[1:], a.selfFields, now)
}

// Stats returns a snapshot of the counters. Safe to call at any time.
func (a *Agent) Stats() Stats {
	n, bytes := a.pub.q.depth()
	s := Stats{
		Run:           a.run,
		Published:     a.pub.published.Load(),
		Acked:         a.pub.acked.Load(),
		Duplicates:    a.pub.duplicates.Load(),
		Resent:        a.pub.resent.Load(),
		PublishErrors: a.pub.errs.Load(),
		Dropped:       a.pub.dropped.Load(),
		Backlog:       n,
		BacklogBytes:  bytes,
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pub.sp != nil {
		s.Spool = a.pub.sp.Stats()
		s.Dropped += s.Spool.Dropped
	}
	s.Seq, s.Ticks = a.seq, a.ticks
	s.Connected = a.connected && a.pub.nc.IsConnected()
	s.Collectors = make(map[string]CollectorStats, len(a.runners))
	for _, r := range a.runners {
		s.Collectors[r.name] = r.st
	}
	return s
}
