package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-sre/vigil/rules"
)

// The ledger fails closed for automatic actions. An intent key is claimed
// in the ledger before its action runs, so that it runs once also across
// restarts and takeovers; an automatic action whose claim cannot be
// written (the KV bucket unreachable) does not run unrecorded. It waits in
// the dispatcher (state deferred, in `vigil actions`, an action event and
// vigil_actions_ledger_deferred), the claim is retried with doubling
// backoff from 1s to 30s (one probe at a time: while the ledger is known
// to be down, new intents queue without a claim of their own), and the
// waiting ones proceed in order once a claim succeeds. An intent still
// waiting after actions.ledger_wait, or whose term ended meanwhile, is
// dropped (outcome ledger_unavailable, resp. not_leader). Dry runs run
// nothing and manual-mode actions wait for an operator anyway: they go on
// without a claim (the operator is the de-duplication).

// OutcomeLedgerUnavailable: an automatic action not run because the action
// ledger could not be reached within actions.ledger_wait.
const OutcomeLedgerUnavailable = "ledger_unavailable"

// maxDeferred bounds the intents waiting for the ledger; more are dropped.
const maxDeferred = 4096

// Backoff of the ledger probes while it is unreachable.
const (
	ledgerProbeMin = time.Second
	ledgerProbeMax = 30 * time.Second
)

// deferredIntent is an automatic intent waiting for the ledger.
type deferredIntent struct {
	in    rules.Intent
	since time.Time
}

// ledgerWait is the dispatcher's state of an unreachable ledger. Owned by
// Run's goroutine.
type ledgerWait struct {
	down    bool
	probeAt time.Time
	backoff time.Duration
	queue   []deferredIntent
}

// automated reports whether in's action would run without an operator.
func (d *dispatcher) automated(in rules.Intent) bool {
	return in.Rule.Mode != "dry_run" && in.Rule.Mode != "manual" && !d.cfg.DryRun
}

// claimed claims in in the ledger and reports whether it proceeds now. A
// duplicate is skipped; an automatic intent the ledger cannot record waits.
func (d *dispatcher) claimed(ctx context.Context, in rules.Intent, now time.Time) bool {
	if d.ledger == nil {
		return true
	}
	auto := d.automated(in)
	if d.wait.down {
		if auto {
			d.deferIntent(in, now, "the action ledger is unreachable")
			return false
		}
		return true // no claim needed; do not block on a ledger known to be down
	}
	state, fresh, err := d.ledger.claim(ctx, in, now)
	if err != nil {
		d.ledgerErrors.Add(1)
		if auto {
			d.ledgerDown(now)
			d.deferIntent(in, now, err.Error())
			return false
		}
		d.log.Warn("action ledger unavailable; dry-run or manual intent goes on unrecorded", "key", in.Key, "err", err)
		return true
	}
	if !fresh {
		d.skip(in, OutcomeDup, "intent key already "+state+" (action ledger)")
		return false
	}
	return true
}

// ledgerDown notes a failed claim: the next probe is after the backoff.
func (d *dispatcher) ledgerDown(now time.Time) {
	w := &d.wait
	if !w.down {
		w.down, w.backoff = true, ledgerProbeMin
	}
	w.probeAt = now.Add(w.backoff)
	w.backoff = min(2*w.backoff, ledgerProbeMax)
}

func (d *dispatcher) deferIntent(in rules.Intent, now time.Time, why string) {
	if len(d.wait.queue) >= maxDeferred {
		d.skip(in, OutcomeLedgerUnavailable, fmt.Sprintf("action ledger unreachable and %d intents already waiting for it", maxDeferred))
		return
	}
	d.wait.queue = append(d.wait.queue, deferredIntent{in: in, since: now})
	d.deferredNow.Store(int64(len(d.wait.queue)))
	d.deferredTotal.Add(1)
	msg := "waiting up to " + d.cfg.ledgerWait().String() + " for the action ledger: " + why
	ev := d.event(in, "deferred")
	ev.Error = msg
	d.pub.Publish(ev)
	d.records.update(in, "deferred", "", msg, now)
	d.log.Warn("action ledger unreachable: automatic action waits", "rule", in.Rule.Name, "host", in.Subject, "key", in.Key, "err", why)
}

// retryDeferred drops the waiting intents that can no longer run, and
// when a probe is due claims them in order until a claim fails.
func (d *dispatcher) retryDeferred(ctx context.Context, now time.Time) {
	w := &d.wait
	defer func() { d.deferredNow.Store(int64(len(w.queue))) }()
	keep := w.queue[:0]
	for _, p := range w.queue {
		switch {
		case !d.lease.leads(p.in.Epoch):
			d.skip(p.in, OutcomeNotLeader, fmt.Sprintf("this controller no longer leads at epoch %d (it waited for the action ledger)", p.in.Epoch))
		case now.Sub(p.since) >= d.cfg.ledgerWait():
			d.skip(p.in, OutcomeLedgerUnavailable, "action ledger unreachable for "+d.cfg.ledgerWait().String()+" (actions.ledger_wait): not run, as it could not be recorded")
		default:
			keep = append(keep, p)
		}
	}
	clear(w.queue[len(keep):])
	w.queue = keep
	if !w.down || now.Before(w.probeAt) {
		if len(w.queue) == 0 {
			w.down = false
		}
		return
	}
	for len(w.queue) > 0 {
		p := w.queue[0]
		state, fresh, err := d.ledger.claim(ctx, p.in, now)
		if err != nil {
			d.ledgerErrors.Add(1)
			d.ledgerDown(now)
			d.log.Warn("action ledger still unreachable", "waiting", len(w.queue), "next_probe_in", w.probeAt.Sub(now), "err", err)
			return
		}
		w.down = false
		w.queue[0] = deferredIntent{}
		w.queue = w.queue[1:]
		if !fresh {
			d.skip(p.in, OutcomeDup, "intent key already "+state+" (action ledger)")
			continue
		}
		d.log.Info("action ledger reachable again: waiting action goes on", "key", p.in.Key, "waited", now.Sub(p.since))
		d.afterClaim(ctx, p.in, now)
	}
	w.down = false
}

// dropDeferred records the intents still waiting when the dispatcher stops.
func (d *dispatcher) dropDeferred() {
	for _, p := range d.wait.queue {
		d.skip(p.in, OutcomeLedgerUnavailable, "controller stopping while the action waited for the action ledger")
	}
	d.wait.queue = nil
	d.deferredNow.Store(0)
}
