package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-sre/vigil/rules"
)

// Approvals in the ledger. An action of a rule in manual mode that awaits
// an operator has its request in its ledger entry (state
// awaiting_approval, with what it needs to run: the firing's time, values,
// labels), and an operator's decision is written into that entry, in a
// compare-and-swap write, before any controller acts on it. So a decision
// does not live in one process's memory:
//
//   - the leader holding the request carries out a decision given to it
//     once it is recorded, and one recorded through another controller's
//     API (a standby's) when it reads the entry, at most a second later;
//   - a new leader (or, with the lease off, a restarted controller) takes
//     over the requests an earlier term left awaiting approval: it writes
//     the entry at its own epoch (so the old leader's writes, including
//     the one that would start the action, are refused) and runs it when
//     an approval is recorded, drops it when a denial is, and otherwise
//     waits on, the approval timeout still counted from the request (also
//     a new term of the same controller, whose old term launched the
//     approved action but had not started it);
//   - an approval is carried out only within the approval timeout of its
//     decision; one older by the time a controller comes to run it is
//     settled as expired (approval.go, carryOut);
//   - the first decision recorded wins; a later one is refused
//     (ErrAlreadyDecided). The approval timeout is recorded the same way
//     (decision expired), so an approval racing it either wins or is
//     refused, never silently lost.

// Decisions recorded in LedgerApproval.Decision.
const (
	DecisionApproved = "approved"
	DecisionDenied   = OutcomeDenied
	DecisionExpired  = OutcomeExpired // nobody decided within actions.approval_timeout
)

// ErrAlreadyDecided is returned for a decision on an action another
// decision was recorded for first.
var ErrAlreadyDecided = errors.New("a decision on this action is recorded already")

// LedgerApproval is the approval request of a manual-mode action and,
// once given, the decision on it.
type LedgerApproval struct {
	// Requested: when the action started awaiting approval; the approval
	// timeout runs from here, also across leader changes.
	Requested time.Time `json:"requested"`
	// The intent, for the controller that runs the action (the rule's
	// definition comes from that controller's own rule files).
	FiredAt          time.Time          `json:"fired_at"`
	Values           map[string]float64 `json:"values,omitempty"`
	Labels           map[string]string  `json:"labels,omitempty"`
	Annotations      map[string]string  `json:"annotations,omitempty"`
	PredictedFailure time.Time          `json:"predicted_failure,omitzero"`
	Scope            string             `json:"scope,omitempty"`
	// Decision: "" while awaiting, else approved, denied or expired; By and
	// Reason as the operator gave them, At when it was recorded, On the
	// controller that recorded it.
	Decision string    `json:"decision,omitempty"`
	By       string    `json:"by,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at,omitzero"`
	On       string    `json:"on,omitempty"`
}

// requestApproval moves in's entry to awaiting_approval with the request.
func (l *ledger) requestApproval(in rules.Intent, now time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	const state = "awaiting_approval"
	_, err := l.change(ctx, in.Key, func(e *LedgerEntry) (*LedgerEntry, error) {
		e, err := l.advance(e, in, state, now)
		if err != nil {
			return nil, err
		}
		e.Error = ""
		e.Approval = &LedgerApproval{
			Requested: now, FiredAt: in.At, Values: finiteValues(in.Values), Labels: in.Labels,
			Annotations: in.Annotations, PredictedFailure: in.PredictedFailure, Scope: in.Scope,
		}
		return e, nil
	})
	return err
}

// decide records dec (Decision, By, Reason, At, On) in the entry of an
// action awaiting approval whose request is younger than timeout (0: any
// age). The entry's state, epoch and update time stay: the controller
// holding the request acts on it. The entry with an earlier decision
// (also one carried out since) is returned with ErrAlreadyDecided.
func (l *ledger) decide(ctx context.Context, intentKey string, dec LedgerApproval, timeout time.Duration) (*LedgerEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var earlier *LedgerEntry
	e, err := l.change(ctx, intentKey, func(e *LedgerEntry) (*LedgerEntry, error) {
		switch {
		case e == nil:
			return nil, fmt.Errorf("%w: %q", ErrNoSuchApproval, intentKey)
		case e.Approval != nil && e.Approval.Decision != "": // also once carried out
			earlier = e
			a := e.Approval
			return nil, fmt.Errorf("%w: %q was %s by %s at %s", ErrAlreadyDecided, intentKey, a.Decision, orController(a.By), a.At.UTC().Format(time.RFC3339))
		case e.State != "awaiting_approval":
			return nil, fmt.Errorf("%w: %q is %s", ErrNoSuchApproval, intentKey, e.State)
		case e.Approval == nil:
			return nil, fmt.Errorf("%w: %q awaits approval on a controller that does not record approvals in the ledger", ErrNoSuchApproval, intentKey)
		case timeout > 0 && dec.At.Sub(e.Approval.Requested) >= timeout:
			return nil, fmt.Errorf("%w: %q: its approval was requested at %s, more than actions.approval_timeout (%s) ago",
				ErrNoSuchApproval, intentKey, e.Approval.Requested.UTC().Format(time.RFC3339), timeout)
		}
		a := e.Approval
		a.Decision, a.By, a.Reason, a.At, a.On = dec.Decision, dec.By, dec.Reason, dec.At, dec.On
		return e, nil
	})
	if earlier != nil {
		return earlier, err
	}
	return e, err
}

func orController(by string) string {
	if by == "" {
		return "the controller"
	}
	return by
}

// errNotAdoptable: the entry no longer awaits approval for an earlier term.
var errNotAdoptable = errors.New("no longer awaiting approval for an earlier term")

// adopt writes intentKey's entry, still awaiting approval and stale for
// the term epoch, at that epoch: from now on writes of older terms are
// refused. It returns errNotAdoptable when the entry does not qualify.
func (l *ledger) adopt(ctx context.Context, intentKey string, epoch uint64, now time.Time, stale func(*LedgerEntry) bool) (*LedgerEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return l.change(ctx, intentKey, func(e *LedgerEntry) (*LedgerEntry, error) {
		if e == nil || e.State != "awaiting_approval" || e.Approval == nil || !stale(e) {
			return nil, errNotAdoptable
		}
		e.Epoch, e.Updated = epoch, now
		e.History = append(e.History, LedgerStep{State: e.State, At: now})
		l.stamp(e)
		return e, nil
	})
}
