package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/vigil-sre/vigil/rules"
)

// Entries a previous term left unsettled. A leader that crashed, or was
// deposed, while an action was pending, awaiting approval, running or
// retrying leaves its ledger entry in that state; nobody else would ever
// look at it again. When this controller starts a new term (and, with the
// lease off, when it starts), it scans the ledger for unsettled entries of
// older terms and marks each abandoned, with the reason, in a
// compare-and-swap write (so exactly once, also with a racing writer), and
// publishes an action event (state abandoned, outcome unknown) and counts
// it (vigil_actions_abandoned_total). It never runs them again: the action
// may have run partly, completely or not at all, and a human decides. The
// entry keeps the epoch of the term that left it, so that if that
// controller is alive and its action ends after all, its outcome is still
// recorded over "abandoned". Actions of this very process (running when it
// lost and regained the lease) are left alone, and so are the entries of
// other leases (shards sharing the bucket). Entries awaiting approval
// are not abandoned but taken over, their recorded decision carried out
// (ledger_approval.go), unless this controller cannot run them (the rule
// or its action is not configured here, or the entry predates recorded
// approvals).

// Ledger state and event outcome of such an entry.
const (
	StateAbandoned = "abandoned"
	OutcomeUnknown = "unknown"
)

// unsettled: states an entry only leaves through the term that wrote it.
var unsettled = map[string]bool{"pending": true, "awaiting_approval": true, "running": true, "retrying": true}

// inflightKeys are the intent keys this process launched and whose action
// has not returned yet, with how many attempts of each (an approved action
// an earlier term launched may still wait for a slot while the new term's
// attempt runs).
type inflightKeys struct {
	mu sync.Mutex
	m  map[string]int
}

func (k *inflightKeys) add(key string) {
	k.mu.Lock()
	k.m[key]++
	k.mu.Unlock()
}

func (k *inflightKeys) remove(key string) {
	k.mu.Lock()
	if k.m[key]--; k.m[key] <= 0 {
		delete(k.m, key)
	}
	k.mu.Unlock()
}

func (k *inflightKeys) has(key string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.m[key]
	return ok
}

// NewTerm tells the dispatcher that this controller leads at a new epoch;
// it does not block (a newer term replaces one not yet taken up). Called
// by the owner goroutine only.
func (d *dispatcher) NewTerm(epoch uint64) {
	for {
		select {
		case d.terms <- epoch:
			return
		default:
		}
		select {
		case <-d.terms:
		default:
		}
	}
}

// resolveTerm scans the ledger in the background for what older terms left
// unsettled, retrying with backoff while the ledger cannot be read and
// this term lasts.
func (d *dispatcher) resolveTerm(ctx context.Context, epoch uint64) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		wait := ledgerProbeMin
		for {
			if epoch != 0 && !d.lease.leads(epoch) {
				return
			}
			n, err := d.abandonStale(ctx, epoch)
			if err == nil {
				if n > 0 {
					d.log.Warn("actions left unsettled by an earlier term marked abandoned; not re-run", "epoch", epoch, "abandoned", n)
				}
				return
			}
			d.log.Warn("action ledger: scan for abandoned actions failed, retrying", "epoch", epoch, "retry_in", wait, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, ledgerProbeMax)
		}
	}()
}

// stale reports whether e was left unsettled by a term before epoch; at
// epoch 0 (no lease) by a process before this one. Entries of another
// lease (a shard sharing the ledger bucket: its epochs do not compare with
// ours) are never stale here. Nor are those of actions this process
// launched that have not returned, except one still awaiting approval: an
// approved action whose start was not recorded did not start (the start
// is the "running" write, which the new term's takeover fences off), so
// the new term takes it over and carries the approval out, once.
func (d *dispatcher) stale(e *LedgerEntry, epoch uint64) bool {
	if !unsettled[e.State] || e.Lease != "" && e.Lease != d.lease.fenceName() {
		return false
	}
	if e.State != "awaiting_approval" && d.inflight.has(e.Key) {
		return false
	}
	if epoch == 0 {
		return e.Epoch == 0 && e.Updated.Before(d.startAt)
	}
	return e.Epoch < epoch
}

// abandonStale marks the stale entries abandoned and returns how many.
// Those awaiting approval that this controller can run are not: they go
// to Run's goroutine to be taken over (approval.go).
func (d *dispatcher) abandonStale(ctx context.Context, epoch uint64) (int, error) {
	entries, err := d.ledger.entries(ctx, func(e *LedgerEntry) bool { return d.stale(e, epoch) })
	if err != nil {
		return 0, err
	}
	n := 0
	var adopt []string
	for _, e := range entries {
		if d.adoptable(e) {
			adopt = append(adopt, e.Key)
			continue
		}
		ok, err := d.abandonKey(ctx, e.Key, epoch)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	if len(adopt) > 0 {
		select {
		case d.adopts <- adoption{epoch: epoch, keys: adopt}:
		case <-ctx.Done():
			return n, ctx.Err()
		}
	}
	return n, nil
}

// adoptable reports whether e awaits approval with a request this
// controller can run.
func (d *dispatcher) adoptable(e *LedgerEntry) bool {
	if e.State != "awaiting_approval" {
		return false
	}
	_, err := d.approvalIntent(e)
	return err == nil
}

// abandonKey marks intentKey's entry abandoned by the term epoch if it is
// stale (and not one awaiting approval this controller can take over),
// counts it and publishes the event; it reports whether it did.
func (d *dispatcher) abandonKey(ctx context.Context, intentKey string, epoch uint64) (bool, error) {
	e, err := d.ledger.abandon(ctx, intentKey, epoch, d.now(), func(e *LedgerEntry) string {
		if !d.stale(e, epoch) {
			return ""
		}
		if e.State == "awaiting_approval" {
			_, cause := d.approvalIntent(e)
			if cause == nil {
				return "" // taken over instead
			}
			return abandonReason(e.State, e.Epoch) + " (" + cause.Error() + ")"
		}
		return abandonReason(e.State, e.Epoch)
	})
	if err != nil || e == nil {
		return false, err
	}
	d.abandoned.Add(1)
	d.publishAbandoned(e, epoch)
	return true, nil
}

// entries returns the ledger entries for which keep holds.
func (l *ledger) entries(ctx context.Context, keep func(*LedgerEntry) bool) ([]*LedgerEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	w, err := l.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("action ledger: scan: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var out []*LedgerEntry
	for {
		select {
		case kve, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("action ledger: scan: watcher closed")
			}
			if kve == nil { // all current values seen
				return out, nil
			}
			if !strings.HasPrefix(kve.Key(), "k_") { // r_: the per-rule records
				continue
			}
			var e LedgerEntry
			if json.Unmarshal(kve.Value(), &e) == nil && keep(&e) {
				out = append(out, &e)
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("action ledger: scan: %w", ctx.Err())
		}
	}
}

// abandon marks intentKey's entry abandoned by the term epoch, with the
// reason why returns for it ("": the entry no longer qualifies), in a
// compare-and-swap write; it returns the entry written, nil when the entry
// no longer qualifies.
func (l *ledger) abandon(ctx context.Context, intentKey string, epoch uint64, now time.Time, why func(*LedgerEntry) string) (*LedgerEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for try := 0; ; try++ {
		e, rev, err := l.getRev(ctx, intentKey)
		if err != nil || e == nil {
			return nil, err
		}
		reason := why(e)
		if reason == "" {
			return nil, nil
		}
		e.Error = reason
		e.State, e.Updated, e.AbandonedBy = StateAbandoned, now, epoch
		e.History = append(e.History, LedgerStep{State: StateAbandoned, At: now})
		b, _ := json.Marshal(e)
		_, err = l.kv.Update(ctx, ledgerKey(intentKey), b, rev)
		if err == nil {
			return e, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) || try >= 3 {
			return nil, fmt.Errorf("action ledger: abandon %s: %w", intentKey, err)
		}
	}
}

func abandonReason(state string, epoch uint64) string {
	term := fmt.Sprintf("the leader at epoch %d", epoch)
	if epoch == 0 {
		term = "a previous controller process"
	}
	switch state {
	case "running", "retrying":
		return "left " + state + " by " + term + ", which stopped before recording an outcome: the action may have run partly, completely or not at all; not re-run automatically, check and re-run by hand if needed"
	case "awaiting_approval":
		return "awaited approval on " + term + ", which stopped, and cannot be taken over here: not run"
	}
	return "claimed by " + term + ", which stopped before recording a start: it most likely did not run; not re-run automatically"
}

// publishAbandoned records an abandoned entry as an action event and in
// the list of recent actions.
func (d *dispatcher) publishAbandoned(e *LedgerEntry, epoch uint64) {
	r := &rules.Rule{Name: e.Rule, Group: e.Group, Severity: e.Severity}
	if e.Action != "" {
		r.Action = &rules.Action{Name: e.Action, Kind: e.Kind}
	}
	in := rules.Intent{Key: e.Key, Rule: r, Subject: e.Subject, Epoch: e.Epoch}
	ev := d.event(in, StateAbandoned)
	ev.Time = e.Updated
	ev.Outcome, ev.Error = OutcomeUnknown, e.Error
	ev.Values = map[string]float64{"epoch": float64(e.Epoch), "abandoned_by": float64(epoch)}
	d.pub.Publish(ev)
	d.records.update(in, StateAbandoned, OutcomeUnknown, e.Error, e.Updated)
	d.log.Warn("action abandoned by an earlier term", "key", e.Key, "rule", e.Rule, "host", e.Subject, "epoch", e.Epoch, "reason", e.Error)
}
