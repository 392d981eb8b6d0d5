package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/vigil-sre/vigil/rules"
)

// Outcomes of manual-mode actions.
const (
	OutcomeDenied  = "denied"
	OutcomeExpired = "expired"
)

// ErrNoSuchApproval is returned for a key that is not awaiting approval.
var ErrNoSuchApproval = errors.New("no action with this key is awaiting approval")

// pendingApproval is an intent of a rule in manual mode, held until an
// operator approves or denies it, or actions.approval_timeout passes.
type pendingApproval struct {
	in    rules.Intent
	since time.Time // when approval was requested, also by an earlier term
	// recorded: the request is in the intent's ledger entry, so decisions
	// are recorded there before they are acted on (ledger_approval.go);
	// otherwise (no ledger, or unreachable at the request) it is held in
	// this process's memory only.
	recorded bool
	warned   bool // a failure to record its expiry was logged
}

// approved is the approval an action runs with: by whom; recorded: it is
// in the action's ledger entry (requested then), so the action starts
// only once its start is recorded (dispatch.go, startRecorded).
type approved struct {
	by        string
	recorded  bool
	requested time.Time
	at        time.Time // when the approval was recorded (zero: not recorded)
}

type decision struct {
	key, by, reason string
	approve         bool
	done            chan decided
}

type decided struct {
	acted bool
	err   error
}

// await holds a manual-mode intent for an operator.
func (d *dispatcher) await(in rules.Intent, now time.Time, recorded bool) {
	d.pending[in.Key] = &pendingApproval{in: in, since: now, recorded: recorded}
	d.records.update(in, "awaiting_approval", "", "", now) // listed once its event is out
	d.pub.Publish(d.event(in, "awaiting_approval"))
	d.log.Info("action awaits approval", "rule", in.Rule.Name, "host", in.Subject, "key", in.Key)
}

// decideApproval records an operator's decision and carries it out when
// this controller holds the intent at the epoch the ledger entry has and
// still leads at it; otherwise the decision stays recorded for the
// leader. acted reports which.
func (d *dispatcher) decideApproval(ctx context.Context, dec decision) (acted bool, err error) {
	verdict := DecisionDenied
	if dec.approve {
		verdict = DecisionApproved
	}
	p, held := d.pending[dec.key]
	if held && !p.recorded {
		if t := d.cfg.approvalTimeout(); d.now().Sub(p.since) >= t {
			delete(d.pending, dec.key)
			d.carryOut(ctx, p.in, &LedgerApproval{Decision: DecisionExpired}, false)
			return false, fmt.Errorf("%w: %q: its approval was requested at %s, more than actions.approval_timeout (%s) ago",
				ErrNoSuchApproval, dec.key, p.since.UTC().Format(time.RFC3339), t)
		}
		delete(d.pending, dec.key)
		d.carryOut(ctx, p.in, &LedgerApproval{Decision: verdict, By: dec.by, Reason: dec.reason}, false)
		return true, nil
	}
	if d.ledger == nil {
		if note := d.leaderNote(); note != "" {
			return false, fmt.Errorf("%w: %q (%s)", ErrNoSuchApproval, dec.key, note)
		}
		return false, fmt.Errorf("%w: %q", ErrNoSuchApproval, dec.key)
	}
	rec := LedgerApproval{Decision: verdict, By: dec.by, Reason: dec.reason, At: d.now(), On: d.lease.holderName()}
	e, err := d.ledger.decide(ctx, dec.key, rec, d.cfg.approvalTimeout())
	switch {
	case errors.Is(err, ErrAlreadyDecided):
		if held {
			d.actOnEntry(ctx, dec.key, p, e)
		}
		return false, err
	case errors.Is(err, ErrNoSuchApproval):
		return false, err
	case err != nil:
		return false, fmt.Errorf("decision not recorded, nothing done (try again): action ledger: %w", err)
	}
	d.log.Info("decision recorded in the action ledger", "key", dec.key, "decision", verdict, "by", dec.by)
	return held && d.actOnEntry(ctx, dec.key, p, e), nil
}

// actOnEntry carries out the decision recorded in e, the ledger entry of
// the intent p holds, if p's term still owns the entry; when another term
// does, or the entry is settled, p is let go. It reports whether the
// decision was carried out here.
func (d *dispatcher) actOnEntry(ctx context.Context, key string, p *pendingApproval, e *LedgerEntry) bool {
	leads := d.lease.leads(p.in.Epoch)
	switch {
	case leads && e != nil && e.State == "running" && e.Epoch == p.in.Epoch && d.relaunch[key] && !d.inflight.has(key) &&
		e.Approval != nil && e.Approval.Decision == DecisionApproved:
		// Held again because its start write reported a failure, yet the
		// write landed (a timeout after the server applied it): "running"
		// at this term's epoch is this controller's own claim, and the
		// action has not started. Start it now (the write is repeated).
		delete(d.pending, key)
		d.carryOut(ctx, p.in, e.Approval, true)
		return true
	case !leads || e == nil || e.State != "awaiting_approval" || e.Epoch != p.in.Epoch:
		delete(d.pending, key)
		why := fmt.Sprintf("this controller no longer leads at epoch %d", p.in.Epoch)
		switch {
		case !leads:
		case e == nil:
			why = "its ledger entry is gone"
		default:
			why = fmt.Sprintf("its ledger entry is %s at epoch %d", e.State, e.Epoch)
		}
		d.records.update(p.in, "handed_over", "", "no longer held here: "+why, d.now())
		d.log.Info("action awaiting approval let go: another term holds it", "key", key, "epoch", p.in.Epoch, "reason", why)
		return false
	case e.Approval == nil || e.Approval.Decision == "":
		return false
	}
	delete(d.pending, key)
	d.carryOut(ctx, p.in, e.Approval, true)
	return true
}

// carryOut runs an approved intent, or records it as denied or expired;
// recorded: the decision is in the intent's ledger entry. A recorded
// approval not carried out within actions.approval_timeout of its
// decision (its start could not be recorded that long, or it waited for a
// leader change) is not run any more: it is settled as expired.
func (d *dispatcher) carryOut(ctx context.Context, in rules.Intent, a *LedgerApproval, recorded bool) {
	switch a.Decision {
	case DecisionApproved:
		now, timeout := d.now(), d.cfg.approvalTimeout()
		if recorded && !a.At.IsZero() && now.Sub(a.At) >= timeout {
			d.skip(in, OutcomeExpired, fmt.Sprintf("approved by %s at %s, but not carried out within actions.approval_timeout (%s) of the approval: not run",
				orController(a.By), a.At.UTC().Format(time.RFC3339), timeout))
			return
		}
		d.launch(ctx, in, now, &approved{by: a.By, recorded: recorded, requested: a.Requested, at: a.At})
	case DecisionExpired:
		d.skip(in, OutcomeExpired, "no decision within "+d.cfg.approvalTimeout().String())
	default:
		why := "denied by " + a.By
		if a.Reason != "" {
			why += ": " + a.Reason
		}
		d.skip(in, OutcomeDenied, why)
	}
}

// approvalPassTime bounds the ledger work of one tick's pass over the
// approvals (approvalPass): what is left waits for the next tick, so an
// unreachable ledger (5s per read or write) does not stall the dispatcher.
const approvalPassTime = time.Second

// approvalPass is the approvals' work of a tick, within approvalPassTime:
// adoptions to retry, decisions recorded elsewhere, expiries. Run's
// goroutine.
func (d *dispatcher) approvalPass(ctx context.Context) {
	d.expireHeld(ctx, d.now()) // needs no ledger read: never starved by one that hangs
	ctx, cancel := context.WithTimeout(ctx, approvalPassTime)
	defer cancel()
	phases := [...]func(context.Context){
		d.retryAdoptions,
		d.pollDecisions,
		func(ctx context.Context) { d.expireApprovals(ctx, d.now()) },
	}
	d.turn = (d.turn + 1) % len(phases) // each goes first in turn: a hanging read cannot starve the others
	for i := range phases {
		if ctx.Err() != nil {
			return
		}
		phases[(d.turn+i)%len(phases)](ctx)
	}
}

// expireHeld expires the requests held in memory only (not recorded in
// the ledger) that nobody decided on in time.
func (d *dispatcher) expireHeld(ctx context.Context, now time.Time) {
	for k, p := range d.pending {
		if !p.recorded && now.Sub(p.since) >= d.cfg.approvalTimeout() {
			delete(d.pending, k)
			d.carryOut(ctx, p.in, &LedgerApproval{Decision: DecisionExpired}, false)
		}
	}
}

// pollDecisions carries out the decisions recorded in the ledger through
// another controller for the intents held here, and lets go of those
// another term took over. Run's goroutine, every second; it stops when ctx
// ends (the requests not read are read at the next tick: map order varies).
// An entry that cannot be read is skipped.
func (d *dispatcher) pollDecisions(ctx context.Context) {
	if d.ledger == nil {
		return
	}
	for k, p := range d.pending {
		if ctx.Err() != nil {
			return
		}
		if !p.recorded {
			continue
		}
		if !d.lease.leads(p.in.Epoch) {
			d.actOnEntry(ctx, k, p, nil)
			continue
		}
		e, err := d.ledger.get(ctx, k)
		if err != nil {
			d.log.Debug("action ledger: decision not read", "key", k, "err", err)
			continue
		}
		d.actOnEntry(ctx, k, p, e)
	}
}

// expireApprovals drops intents nobody decided on in time. A recorded
// request expires by recording that (a decision recorded first wins); one
// whose expiry cannot be recorded waits for the ledger. It stops when ctx
// ends; the rest expire at a later tick.
func (d *dispatcher) expireApprovals(ctx context.Context, now time.Time) {
	for k, p := range d.pending {
		if ctx.Err() != nil {
			return
		}
		if !p.recorded || now.Sub(p.since) < d.cfg.approvalTimeout() {
			continue // in memory only: expireHeld
		}
		e, err := d.ledger.decide(ctx, k, LedgerApproval{Decision: DecisionExpired, At: now, On: d.lease.holderName()}, 0)
		switch {
		case err == nil || errors.Is(err, ErrAlreadyDecided):
			d.actOnEntry(ctx, k, p, e)
		case errors.Is(err, ErrNoSuchApproval):
			d.actOnEntry(ctx, k, p, nil)
		case !p.warned:
			p.warned = true
			d.log.Warn("action ledger: expiry of an approval request not recorded; retrying", "key", k, "err", err)
		}
	}
}

// Decide approves or denies an action awaiting approval; acted reports
// whether this controller carried the decision out, rather than recorded
// it in the ledger for the leader. It is safe to call from any goroutine
// (the API does).
func (d *dispatcher) Decide(ctx context.Context, key, by, reason string, approve bool) (acted bool, err error) {
	dec := decision{key: key, by: by, reason: reason, approve: approve, done: make(chan decided, 1)}
	select {
	case d.decide <- dec:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	select {
	case r := <-dec.done:
		return r.acted, r.err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// leaderNote says, when this controller does not lead, who does.
func (d *dispatcher) leaderNote() string {
	st := d.lease.status()
	switch {
	case st.Leader:
		return ""
	case st.Holder != "":
		return fmt.Sprintf("this controller does not lead; the leader is %s (epoch %d)", st.Holder, st.Epoch)
	}
	return "this controller does not lead, and no leader is known right now"
}

// adoption: the keys of entries an earlier term left awaiting approval,
// for the term epoch to take over (Run's goroutine).
type adoption struct {
	epoch uint64
	keys  []string
}

// approvalIntent rebuilds the intent of an entry awaiting approval from
// the request it records and this controller's rule of that name, or says
// why it cannot be run here.
func (d *dispatcher) approvalIntent(e *LedgerEntry) (rules.Intent, error) {
	a := e.Approval
	if a == nil {
		return rules.Intent{}, errors.New("its entry holds no approval request (written by an older version)")
	}
	var r *rules.Rule
	for _, x := range d.rules.Load().Rules() {
		if x.Group == e.Group && x.Name == e.Rule {
			r = x
		}
	}
	switch {
	case r == nil:
		return rules.Intent{}, fmt.Errorf("rule %s/%s is not configured on this controller", e.Group, e.Rule)
	case r.Action == nil || r.Action.Name != e.Action || r.Action.Kind != e.Kind:
		return rules.Intent{}, fmt.Errorf("rule %s/%s no longer has the action %s (%s) here", e.Group, e.Rule, e.Action, e.Kind)
	}
	return rules.Intent{
		Key: e.Key, Rule: r, Subject: e.Subject, Scope: a.Scope, Mode: r.Mode, At: a.FiredAt, Values: a.Values,
		PredictedFailure: a.PredictedFailure, Labels: a.Labels, Annotations: a.Annotations,
	}, nil
}

// adopt takes over, for the term epoch, the actions an earlier term left
// awaiting approval: a recorded decision is carried out, otherwise the
// intent waits here, its timeout counted from the original request. An
// entry that no longer awaits approval (its old leader started it after
// all) is abandoned like any other such entry.
func (d *dispatcher) adopt(ctx context.Context, a adoption) {
	for i, key := range a.keys {
		if !d.lease.leads(a.epoch) {
			return
		}
		if ctx.Err() != nil { // the tick's pass is over (or Run's end): the rest later
			d.readopt = append(d.readopt, adoption{epoch: a.epoch, keys: a.keys[i:]})
			return
		}
		now := d.now()
		var in rules.Intent
		var cause error
		e, err := d.ledger.adopt(ctx, key, a.epoch, now, func(e *LedgerEntry) bool {
			in, cause = d.approvalIntent(e)
			return d.stale(e, a.epoch) && cause == nil
		})
		if err != nil && !errors.Is(err, errNotAdoptable) {
			d.log.Warn("action ledger: action awaiting approval not taken over yet, retrying", "key", key, "err", err)
			d.readopt = append(d.readopt, adoption{epoch: a.epoch, keys: []string{key}})
			continue
		}
		if err != nil {
			if _, err := d.abandonKey(ctx, key, a.epoch); err != nil {
				d.log.Warn("action ledger: entry awaiting approval neither taken over nor abandoned", "key", key, "err", err)
			}
			continue
		}
		in.Epoch = a.epoch
		d.seen[key] = now
		delete(d.pending, key)
		if ap := e.Approval; ap.Decision != "" {
			d.log.Info("decision recorded before the leader change carried out", "key", key, "decision", ap.Decision, "by", ap.By)
			d.carryOut(ctx, in, ap, true)
			continue
		}
		d.pending[key] = &pendingApproval{in: in, since: e.Approval.Requested, recorded: true}
		d.records.update(in, "awaiting_approval", "", "", now)
		d.log.Info("action awaiting approval taken over from an earlier term", "rule", in.Rule.Name, "host", in.Subject, "key", key,
			"requested", e.Approval.Requested, "epoch", a.epoch)
	}
}

// hold holds again an approved intent whose start could not be recorded
// (dispatch.go, startRecorded): its entry still awaits approval at its
// epoch, approved, so pollDecisions launches it again once the ledger
// answers (unless its approval is older than the approval timeout by then,
// see carryOut).
func (d *dispatcher) hold(p *pendingApproval) {
	d.pending[p.in.Key] = p
	d.relaunch[p.in.Key] = true
	d.records.update(p.in, "awaiting_approval", "", "approved; its start could not be recorded in the action ledger: started once it can be", d.now())
}

func withLabel(m map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for kk, vv := range m {
		out[kk] = vv
	}
	out[k] = v
	return out
}

// ActionRecord is the latest state of one action, for `vigil actions`.
type ActionRecord struct {
	Key     string    `json:"key"`
	Group   string    `json:"group"`
	Rule    string    `json:"rule"`
	Host    string    `json:"host"`
	Action  string    `json:"action"`
	Kind    string    `json:"kind"`
	Mode    string    `json:"mode"`
	State   string    `json:"state"`
	Outcome string    `json:"outcome,omitempty"`
	Error   string    `json:"error,omitempty"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// actionLog keeps the latest state of the most recent actions (bounded).
type actionLog struct {
	mu    sync.Mutex
	max   int
	m     map[string]*ActionRecord
	order []string
}

func newActionLog(max int) *actionLog { return &actionLog{max: max, m: map[string]*ActionRecord{}} }

func (l *actionLog) update(in rules.Intent, state, outcome, errText string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.m[in.Key]
	if r == nil {
		r = &ActionRecord{Key: in.Key, Group: in.Rule.Group, Rule: in.Rule.Name, Host: in.Subject, Mode: in.Rule.Mode, Created: at}
		if in.Rule.Action != nil {
			r.Action, r.Kind = in.Rule.Action.Name, in.Rule.Action.Kind
		}
		l.m[in.Key] = r
		l.order = append(l.order, in.Key)
		if len(l.order) > l.max {
			delete(l.m, l.order[0])
			l.order = l.order[1:]
		}
	}
	r.State, r.Outcome, r.Error, r.Updated = state, outcome, errText, at
}

// list returns the records, newest first.
func (l *actionLog) list() []ActionRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]ActionRecord, 0, len(l.order))
	for _, k := range l.order {
		out = append(out, *l.m[k])
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out
}

// retryAdoptions retries the adoptions the ledger failed.
func (d *dispatcher) retryAdoptions(ctx context.Context) {
	if len(d.readopt) == 0 {
		return
	}
	retry := d.readopt
	d.readopt = nil
	for _, a := range retry {
		d.adopt(ctx, a)
	}
}
