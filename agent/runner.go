package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

// CollectorStats describes one collector's runs since the agent started.
type CollectorStats struct {
	Runs     uint64 // ticks it was due
	Errors   uint64 // runs that returned an error, panicked, timed out or were skipped
	Timeouts uint64 // runs that did not finish within the timeout
	Panics   uint64
	Skipped  uint64 // ticks skipped because the previous run was still going
	// LastError is the last error's text ("" after a clean run).
	LastError string
	// Points emitted by the last finished run.
	Points int
	// LastDuration and MaxDuration of finished runs.
	LastDuration, MaxDuration time.Duration
}

// runner runs one collector per tick in its own goroutine, with a timeout
// and panic recovery, into its own batch, so that one collector that fails,
// hangs or panics never stops the others. All fields except those the
// collecting goroutine uses (batch, now, tags) are owned by the tick loop;
// the goroutine hands them back by sending on done.
type runner struct {
	c       Collector
	name    string
	timeout time.Duration
	host    string
	log     *slog.Logger

	// Used by the collecting goroutine while busy.
	batch wire.Batch
	now   time.Time
	tags  []wire.Tag
	emit  Emit

	done    chan runResult // capacity 1
	busy    bool           // a Collect is running
	current bool           // the running Collect was started this tick
	fresh   bool           // batch holds this tick's points
	started time.Time
	cancel  context.CancelFunc
	lastErr string // for logging changes only

	st CollectorStats // guarded by Agent.mu
}

type runResult struct {
	err      error
	panicked bool
	dur      time.Duration
}

var errTimeout = errors.New("timed out")

// newRunner runs collector c. Every point gets the global tags (a
// collector's own tag of the same name wins) and then the host tag.
func newRunner(c Collector, timeout time.Duration, host string, global []wire.Tag, log *slog.Logger) *runner {
	r := &runner{c: c, name: c.Name(), timeout: timeout, host: host, log: log, done: make(chan runResult, 1)}
	r.emit = func(m string, tags []wire.Tag, fields []wire.Field) {
		r.tags = append(append(append(r.tags[:0], global...), tags...), wire.Tag{Key: "host", Value: r.host})
		r.batch.Point(m, r.tags, fields, r.now)
	}
	return r
}

// start launches this tick's Collect. A run still going from an earlier
// tick makes this tick's run a skipped error.
func (r *runner) start(ctx context.Context, now time.Time, rec func(func())) {
	r.fresh, r.current = false, false
	if r.busy {
		select {
		case res := <-r.done: // finished late; its points are stale
			r.busy = false
			rec(func() { r.st.LastDuration = res.dur; r.st.MaxDuration = max(r.st.MaxDuration, res.dur) })
		default:
			rec(func() { r.st.Runs++; r.st.Skipped++ })
			r.record(fmt.Errorf("previous run still going after %s: skipped", r.timeout), rec)
			return
		}
	}
	r.batch.Reset()
	r.now = now
	r.busy, r.current = true, true
	r.started = time.Now()
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	r.cancel = cancel
	go r.collect(cctx)
}

// collect runs in its own goroutine.
func (r *runner) collect(ctx context.Context) {
	start := time.Now()
	var res runResult
	defer func() {
		if p := recover(); p != nil {
			res = runResult{err: fmt.Errorf("panic: %v", p), panicked: true}
		}
		res.dur = time.Since(start)
		r.done <- res
	}()
	res.err = r.c.Collect(ctx, r.now, r.emit)
}

// wait waits for this tick's run until its timeout, using timer.
func (r *runner) wait(timer *time.Timer, rec func(func())) {
	if !r.current {
		return
	}
	r.current = false
	var res runResult
	select {
	case res = <-r.done: // finished already (runs wait in turn)
	default:
		timer.Reset(time.Until(r.started.Add(r.timeout)))
		select {
		case res = <-r.done:
			timer.Stop()
		case <-timer.C:
			r.cancel() // the run goes on until it notices; start skips until then
			rec(func() { r.st.Runs++; r.st.Timeouts++ })
			r.record(fmt.Errorf("%w after %s", errTimeout, r.timeout), rec)
			return
		}
	}
	r.finish(res, rec)
}

// finish records a run that ended in time.
func (r *runner) finish(res runResult, rec func(func())) {
	r.busy = false
	r.cancel()
	if res.panicked {
		r.batch.Reset() // a half-written collection is not trusted
	}
	// Keep what a collector that returned an error did emit (e.g. the
	// other mounts when one statfs failed).
	r.fresh = true
	rec(func() {
		r.st.Runs++
		r.st.LastDuration = res.dur
		r.st.MaxDuration = max(r.st.MaxDuration, res.dur)
		r.st.Points = r.batch.Len()
		if res.panicked {
			r.st.Panics++
		}
	})
	r.record(res.err, rec)
}

// record counts an error and logs the first one and every change, then a
// recovery once.
func (r *runner) record(err error, rec func(func())) {
	if err == nil {
		if r.lastErr != "" {
			r.log.Info("collector recovered", "collector", r.name)
			r.lastErr = ""
		}
		rec(func() { r.st.LastError = "" })
		return
	}
	msg := err.Error()
	var n uint64
	rec(func() { r.st.Errors++; r.st.LastError = msg; n = r.st.Errors })
	if msg != r.lastErr {
		r.log.Warn("collector failed", "collector", r.name, "err", err, "errors", n)
		r.lastErr = msg
	}
}

// settle waits up to d for a run still going (at shutdown).
func (r *runner) settle(d time.Duration) bool {
	if !r.busy {
		return true
	}
	select {
	case <-r.done:
		r.busy = false
		return true
	case <-time.After(d):
		return false
	}
}
