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
	since time.Time
}

type decision struct {
	key, by, reason string
	approve         bool
	done            chan error
}

// await holds a manual-mode intent for an operator.
func (d *dispatcher) await(in rules.Intent, now time.Time) {
	d.pending[in.Key] = &pendingApproval{in: in, since: now}
	ev := d.event(in, "awaiting_approval")
	d.pub.Publish(ev)
	d.records.update(in, "awaiting_approval", "", "", now)
	d.log.Info("action awaits approval", "rule", in.Rule.Name, "host", in.Subject, "key", in.Key)
}

func (d *dispatcher) decideApproval(ctx context.Context, dec decision) error {
	p, ok := d.pending[dec.key]
	if !ok {
		return fmt.Errorf("%w: %q", ErrNoSuchApproval, dec.key)
	}
	delete(d.pending, dec.key)
	if !dec.approve {
		why := "denied by " + dec.by
		if dec.reason != "" {
			why += ": " + dec.reason
		}
		d.skip(p.in, OutcomeDenied, why)
		return nil
	}
	d.launch(ctx, p.in, d.now(), dec.by)
	return nil
}

// expireApprovals drops intents nobody decided on in time.
func (d *dispatcher) expireApprovals(now time.Time) {
	for k, p := range d.pending {
		if now.Sub(p.since) >= d.cfg.approvalTimeout() {
			delete(d.pending, k)
			d.skip(p.in, OutcomeExpired, "no decision within "+d.cfg.approvalTimeout().String())
		}
	}
}

// Decide approves or denies an action awaiting approval. It is safe to
// call from any goroutine (the API does).
func (d *dispatcher) Decide(ctx context.Context, key, by, reason string, approve bool) error {
	dec := decision{key: key, by: by, reason: reason, approve: approve, done: make(chan error, 1)}
	select {
	case d.decide <- dec:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-dec.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
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
