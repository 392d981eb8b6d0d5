package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
	"github.com/vigil-sre/vigil/rules"
)

// dispatcher turns rule intents into actions. It owns de-duplication (an
// intent key runs at most once), cooldowns per rule and subject, dry runs,
// a concurrency limit and timeouts, and records every phase as an event.
type dispatcher struct {
	cfg ActionsConfig
	pub *publisher
	log *slog.Logger
	now func() time.Time

	in  chan rules.Intent
	sem chan struct{}
	wg  sync.WaitGroup

	// Owned by Run's goroutine.
	seen    map[string]time.Time // intent key -> when accepted
	lastRun map[string]time.Time // rule/subject -> when last started
	pending map[string]*pendingApproval
	decide  chan decision

	records *actionLog

	ledger   *ledger     // nil without JetStream or with actions.ledger: off (ledger.go)
	wait     ledgerWait  // Run's goroutine: automatic intents waiting for the ledger (ledger_wait.go)
	terms    chan uint64 // new terms of this controller: resolve what older ones left (ledger_abandon.go)
	inflight inflightKeys
	startAt  time.Time // when this dispatcher was made (lease off: older entries are a previous process's)
	lease    *lease    // nil: always leads (tests)
	handover chan handoverIntent
	adopts   chan adoption             // entries awaiting approval an earlier term left (approval.go)
	requeue  chan *pendingApproval     // approved actions whose start could not be recorded (approval.go)
	readopt  []adoption                // Run's goroutine: adoptions to retry (the ledger failed)
	rules    atomic.Pointer[rules.Set] // the controller's rules: those an adopted intent runs
	limits   rateLimits                // Run's goroutine
	relaunch map[string]bool           // Run's goroutine: approved keys held again (hold): their rate-limit slot was taken
	turn     int                       // Run's goroutine: which approval phase goes first (approvalPass)
	stopping <-chan struct{}           // closed when Run's ctx ends: no more retries

	submitted, started, succeeded, failed, skipped, overflow atomic.Uint64
	ledgerErrors, deferredTotal, abandoned                   atomic.Uint64
	deferredNow                                              atomic.Int64
}

func newDispatcher(cfg ActionsConfig, pub *publisher, log *slog.Logger, now func() time.Time) *dispatcher {
	cfg.rt = newActionRuntime(cfg, pub, log)
	return &dispatcher{
		cfg: cfg, pub: pub, log: log, now: now,
		in:       make(chan rules.Intent, 1024),
		handover: make(chan handoverIntent, 1024),
		adopts:   make(chan adoption),
		requeue:  make(chan *pendingApproval),
		sem:      make(chan struct{}, cfg.Concurrency),
		seen:     map[string]time.Time{},
		lastRun:  map[string]time.Time{},
		pending:  map[string]*pendingApproval{},
		relaunch: map[string]bool{},
		decide:   make(chan decision),
		records:  newActionLog(1000),
		terms:    make(chan uint64, 1),
		inflight: inflightKeys{m: map[string]int{}},
		startAt:  time.Now(),
	}
}

// Submit queues an intent without blocking; false when the queue is full
// (counted, and recorded as a rejected action).
func (d *dispatcher) Submit(in rules.Intent) bool {
	select {
	case d.in <- in:
		d.submitted.Add(1)
		return true
	default:
		d.overflow.Add(1)
		ev := d.event(in, "skipped")
		ev.Outcome, ev.Error = OutcomeRejected, "dispatcher queue full"
		d.pub.Publish(ev)
		return false
	}
}

// Run dispatches until ctx ends, then waits for running actions (each is
// bounded by its own timeout).
func (d *dispatcher) Run(ctx context.Context) error {
	d.stopping = ctx.Done()
	if d.pub.js != nil && d.cfg.Ledger != "off" {
		l, err := openLedger(ctx, d.pub.js, d.cfg.Safety, d.lease.fenceName(), d.log)
		if err != nil {
			return err
		}
		d.ledger = l
		if d.lease == nil || d.lease.off { // one term for ever: resolve what a previous process left
			d.resolveTerm(ctx, 0)
		}
	}
	defer d.wg.Wait()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			d.dropDeferred()
			return nil
		case epoch := <-d.terms:
			d.resolveTerm(ctx, epoch)
		case in := <-d.in:
			d.dispatch(ctx, in)
		case h := <-d.handover:
			d.takeOver(ctx, h)
		case a := <-d.adopts:
			d.adopt(ctx, a)
		case p := <-d.requeue:
			d.hold(p)
		case dec := <-d.decide:
			var r decided
			r.acted, r.err = d.decideApproval(ctx, dec)
			dec.done <- r
		case <-tick.C:
			d.approvalPass(ctx)
			d.retryDeferred(ctx, d.now())
		}
	}
}

func (d *dispatcher) dispatch(ctx context.Context, in rules.Intent) {
	now := d.now()
	if !d.lease.leads(in.Epoch) {
		d.skip(in, OutcomeNotLeader, fmt.Sprintf("this controller no longer leads at epoch %d", in.Epoch))
		return
	}
	if _, dup := d.seen[in.Key]; dup {
		d.skip(in, OutcomeDup, "intent key already handled")
		return
	}
	d.seen[in.Key] = now
	d.expire(now)
	if d.claimed(ctx, in, now) {
		d.afterClaim(ctx, in, now)
	}
}

// afterClaim applies cooldowns, dry runs and manual mode to a claimed
// intent, and launches the rest.
func (d *dispatcher) afterClaim(ctx context.Context, in rules.Intent, now time.Time) {
	r := in.Rule
	rk := r.Group + "/" + r.Name + "/" + in.Subject
	if last, ok := d.lastRun[rk]; ok && now.Sub(last) < r.Cooldown {
		d.skip(in, OutcomeCooldown, "cooldown until "+last.Add(r.Cooldown).UTC().Format(time.RFC3339))
		return
	}
	if r.Mode == "dry_run" || d.cfg.DryRun {
		d.lastRun[rk] = now
		d.skip(in, OutcomeDryRun, "")
		return
	}
	if r.Mode == "manual" {
		recorded := false
		if d.ledger != nil && !d.wait.down {
			if err := d.ledger.requestApproval(in, now); err != nil {
				d.log.Warn("action ledger: approval request not recorded; it is held in this controller's memory only", "key", in.Key, "err", err)
			} else {
				recorded = true
			}
		}
		d.await(in, now, recorded)
		return
	}
	d.launch(ctx, in, now, nil)
}

// launch builds the intent's action and runs it in its own goroutine;
// ap is the approval of a manual-mode action (nil: automatic).
func (d *dispatcher) launch(ctx context.Context, in rules.Intent, now time.Time, ap *approved) {
	if !d.lease.leads(in.Epoch) {
		d.skip(in, OutcomeNotLeader, fmt.Sprintf("this controller no longer leads at epoch %d", in.Epoch))
		return
	}
	// An approved action held again because its start could not be
	// recorded took its rate-limit slot at its first launch.
	if d.relaunch[in.Key] {
		delete(d.relaunch, in.Key)
	} else if why := d.limits.allow(d.cfg.Safety, in.Rule.Group+"/"+in.Rule.Name, now); why != "" {
		d.skip(in, OutcomeRateLimited, why)
		return
	}
	act, err := newAction(in.Rule.Action, d.cfg)
	if err != nil {
		d.skip(in, OutcomeRejected, err.Error())
		return
	}
	r := in.Rule
	d.lastRun[r.Group+"/"+r.Name+"/"+in.Subject] = now
	d.inflight.add(in.Key)
	d.wg.Add(1)
	go d.execute(context.WithoutCancel(ctx), act, in, ap)
}

// expire forgets intent keys older than a day: a key embeds the firing's
// start time, so an old key cannot come back.
func (d *dispatcher) expire(now time.Time) {
	if len(d.seen) < 4096 {
		return
	}
	for k, t := range d.seen {
		if now.Sub(t) > 24*time.Hour {
			delete(d.seen, k)
		}
	}
}

func (d *dispatcher) skip(in rules.Intent, outcome, why string) {
	d.skipped.Add(1)
	ev := d.event(in, "skipped")
	ev.Outcome, ev.Error = outcome, why
	d.pub.Publish(ev)
	d.records.update(in, "skipped", outcome, why, ev.Time)
	if d.ledger != nil && outcome != OutcomeDup && outcome != OutcomeNotLeader && outcome != OutcomeLedgerUnavailable && !d.wait.down {
		d.ledger.set(in, "skipped", 0, outcome+": "+why, ev.Time)
	}
	d.log.Info("action skipped", "rule", in.Rule.Name, "host", in.Subject, "outcome", outcome, "reason", why)
}

func (d *dispatcher) execute(ctx context.Context, act Action, in rules.Intent, ap *approved) {
	defer d.wg.Done()
	defer d.inflight.remove(in.Key)
	d.sem <- struct{}{}
	defer func() { <-d.sem }()
	if !d.lease.leads(in.Epoch) { // deposed while the action waited for a slot
		d.skip(in, OutcomeNotLeader, fmt.Sprintf("this controller no longer leads at epoch %d", in.Epoch))
		return
	}
	approvedBy := ""
	if ap != nil {
		approvedBy = ap.by
	}
	start := d.now()
	if ap != nil && ap.recorded && !ap.at.IsZero() && start.Sub(ap.at) >= d.cfg.approvalTimeout() {
		// It waited for a slot past its approval's validity (carryOut's rule).
		d.skip(in, OutcomeExpired, fmt.Sprintf("approved by %s at %s, but not started within actions.approval_timeout (%s) of the approval (it waited for a free slot): not run",
			orController(ap.by), ap.at.UTC().Format(time.RFC3339), d.cfg.approvalTimeout()))
		return
	}
	if d.ledger != nil && !d.startRecorded(in, ap, start) {
		return
	}
	d.started.Add(1)
	ev := d.event(in, "started")
	ev.Time = start
	if approvedBy != "" {
		ev.Labels = withLabel(ev.Labels, "approved_by", approvedBy)
	}
	d.pub.Publish(ev)
	d.records.update(in, "running", "", "", start)
	d.log.Info("action started", "rule", in.Rule.Name, "action", in.Rule.Action.Name, "host", in.Subject, "key", in.Key)

	o, attempts, err := d.attempt(ctx, act, in)
	end := d.now()
	if d.ledger != nil {
		state, errText := "succeeded", ""
		if err != nil {
			state, errText = "failed", err.Error()
		}
		d.ledger.set(in, state, attempts, errText, end)
	}
	ev = d.event(in, "finished")
	ev.Time = end
	ev.Outcome, ev.ExitCode, ev.Output = o.Status, o.ExitCode, o.Output
	for k, v := range o.Values { // measurements of the action: rpo_seconds, rto_seconds
		if ev.Values == nil {
			ev.Values = map[string]float64{}
		}
		ev.Values[k] = v
	}
	ev.DurationSeconds = end.Sub(start).Seconds()
	if !in.PredictedFailure.IsZero() {
		ev.LeadSeconds = in.PredictedFailure.Sub(end).Seconds()
	}
	if err != nil {
		ev.Error = err.Error()
		d.failed.Add(1)
		d.log.Warn("action failed", "rule", in.Rule.Name, "host", in.Subject, "outcome", o.Status, "err", err)
	} else {
		d.succeeded.Add(1)
		d.log.Info("action finished", "rule", in.Rule.Name, "host", in.Subject, "outcome", o.Status, "duration", end.Sub(start))
	}
	if approvedBy != "" {
		ev.Labels = withLabel(ev.Labels, "approved_by", approvedBy)
	}
	d.pub.Publish(ev)
	d.records.update(in, "finished", o.Status, ev.Error, end)
}

// startRecorded writes in's entry "running", the fence of its start, and
// reports whether the action may start. A newer term that took the action
// over (an approval carried over) wrote the entry at its epoch: the write
// is refused and the action not run. When the write fails otherwise (the
// ledger unreachable, up to its 5s timeout), the lease is checked again:
// a controller that stopped leading meanwhile does not run it. One still
// leading runs an automatic action (its claim is recorded, so neither a
// restart nor a later term runs it again: a later term abandons it), but
// not one carrying out a recorded approval: that entry still reads
// approved, awaiting approval, and a later term would carry it out a
// second time. Such an action is held again, as awaiting approval, and
// started once its start can be recorded (approval.go).
func (d *dispatcher) startRecorded(in rules.Intent, ap *approved, start time.Time) bool {
	err := d.ledger.setErr(in, "running", 1, "", start)
	switch {
	case err == nil:
		return true
	case errors.Is(err, ErrNotLeader):
		d.skip(in, OutcomeNotLeader, "a newer term holds the action: "+err.Error())
		return false
	case !d.lease.leads(in.Epoch):
		d.skip(in, OutcomeNotLeader, fmt.Sprintf("this controller stopped leading at epoch %d while recording the start (%v)", in.Epoch, err))
		return false
	case ap != nil && ap.recorded:
		d.log.Warn("action ledger: start of an approved action not recorded; not started, held until it can be", "key", in.Key, "epoch", in.Epoch, "err", err)
		select {
		case d.requeue <- &pendingApproval{in: in, since: ap.requested, recorded: true}:
		case <-d.stopping:
		}
		return false
	}
	d.log.Warn("action ledger: start not recorded; the action runs (its claim is recorded)", "key", in.Key, "epoch", in.Epoch, "err", err)
	return true
}

func (d *dispatcher) event(in rules.Intent, phase string) *wire.Event {
	r := in.Rule
	ev := &wire.Event{
		Kind: wire.KindAction, Time: d.now(), Host: in.Subject,
		Rule: r.Name, Group: r.Group, Severity: r.Severity, State: phase,
		Key: in.Key, Values: finiteValues(in.Values), Labels: in.Labels,
	}
	if r.Action != nil {
		ev.Action, ev.ActionKind = r.Action.Name, r.Action.Kind
	}
	if !in.PredictedFailure.IsZero() {
		ev.PredictedAt = in.PredictedFailure
	}
	return ev
}

// handoverIntent is an intent a new leader held while it followed; since
// is when its rule's episode began (its ActiveSince).
type handoverIntent struct {
	in    rules.Intent
	since time.Time
}

// Handover queues an intent held while following, without blocking.
func (d *dispatcher) Handover(in rules.Intent, since time.Time) {
	select {
	case d.handover <- handoverIntent{in, since}:
		d.submitted.Add(1)
	default:
		d.overflow.Add(1)
		d.log.Warn("handover queue full: intent dropped", "key", in.Key)
	}
}

// takeOver dispatches a held intent unless the ledger shows that a
// previous leader dispatched the same episode of its rule and subject.
func (d *dispatcher) takeOver(ctx context.Context, h handoverIntent) {
	if d.ledger != nil {
		prev, err := d.ledger.lastOf(ctx, h.in)
		if err != nil {
			d.log.Warn("action ledger unavailable at takeover", "key", h.in.Key, "err", err)
		}
		if prev != nil && !prev.At.Before(h.since.Add(-handoverSkew)) {
			d.skip(h.in, OutcomeDup, fmt.Sprintf("episode dispatched by the leader at epoch %d as %s (%s)", prev.Epoch, prev.Key, prev.State))
			return
		}
	}
	d.dispatch(ctx, h.in)
}

func finiteValues(m map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			out[k] = v
		}
	}
	return out
}
