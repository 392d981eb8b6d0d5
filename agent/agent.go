package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
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

	mu        sync.Mutex // guards runners (the slice) and every runner's st, ticks, seq
	runners   []*runner
	ticks     uint64
	seq       uint64
	running   bool
	connected bool

	tickRunners []*runner  // tick loop's copy of runners
	selfBatch   wire.Batch // tick loop only
	selfFields  []wire.Field
	selfTags    []wire.Tag
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
	// Dropped batches: oldest of a full backlog, or too large to publish.
	Dropped uint64
	// Backlog batches (and their bytes) not yet acknowledged.
	Backlog, BacklogBytes int
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
	}
	a.waitTimer.Stop()
	for _, name := range Registered() {
		if !cfg.collectorEnabled(name) {
			continue
		}
		c, err := NewCollector(name, cfg.Collectors[name].Options)
		if err != nil {
			return nil, err
		}
		a.addRunner(c, cfg.collectorTimeout(name))
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

func (a *Agent) addRunner(c Collector, timeout time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.runners = append(a.runners, newRunner(c, timeout, a.host, a.log))
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

	if err := a.pub.connect(a.cfg.NATS); err != nil {
		return err
	}
	a.mu.Lock()
	a.connected = true // a.pub.nc is set from here on
	n := len(a.runners)
	a.mu.Unlock()
	a.log.Info("agent started", "subject", a.pub.subject, "interval", a.cfg.Interval.String(), "collectors", n)
	sendCtx, stopSending := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSending()
	draining := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		a.pub.run(sendCtx, draining)
	}()

	a.loop(ctx)

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
	}
	a.pub.close()
	st := a.Stats()
	a.log.Info("agent stopped", "seq", st.Seq, "acked", st.Acked, "unsent", st.Backlog, "dropped", st.Dropped)
	return nil
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

// selfPoint writes the vigil_agent point: backlog (batches waiting),
// backlog_bytes, and the counters dropped, acked, resent, publish_errors,
// collect_errors (all collectors) since the start, plus collect_ms, the
// wall time this tick's collection took.
func (a *Agent) selfPoint(now time.Time, took time.Duration) {
	n, bytes := a.pub.q.depth()
	var errs uint64
	a.mu.Lock()
	for _, r := range a.tickRunners {
		errs += r.st.Errors
	}
	a.mu.Unlock()
	a.selfFields = append(a.selfFields[:0],
		wire.I("backlog", int64(n)),
		wire.I("backlog_bytes", int64(bytes)),
		wire.I("dropped", i64(a.pub.dropped.Load())),
		wire.I("acked", i64(a.pub.acked.Load())),
		wire.I("resent", i64(a.pub.resent.Load())),
		wire.I("publish_errors", i64(a.pub.errs.Load())),
		wire.I("collect_errors", i64(errs)),
		wire.F("collect_ms", float64(took)/float64(time.Millisecond)),
	)
	a.selfBatch.Reset()
	a.selfTags = append(a.selfTags[:0], wire.Tag{Key: "host", Value: a.host})
	a.selfBatch.Point("vigil_agent", a.selfTags, a.selfFields, now)
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
	s.Seq, s.Ticks = a.seq, a.ticks
	s.Connected = a.connected && a.pub.nc.IsConnected()
	s.Collectors = make(map[string]CollectorStats, len(a.runners))
	for _, r := range a.runners {
		s.Collectors[r.name] = r.st
	}
	return s
}
