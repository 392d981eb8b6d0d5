package release

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// Outcomes of a rollback.
const (
	OutcomeSuccess       = "success"        // switched, restarted, verified healthy
	OutcomeUnverified    = "unverified"     // switched and restarted; no health check configured
	OutcomeRestartFailed = "restart_failed" // switched; the restart hook failed
	OutcomeVerifyFailed  = "verify_failed"  // switched and restarted; the health check failed
	OutcomeDryRun        = "dry_run"        // nothing changed
)

// On verification (or restart) failure.
const (
	// OnFailureStay leaves `current` on the rolled-back-to version for the
	// operator (the version rolled back from was unhealthy already).
	OnFailureStay = "stay"
	// OnFailureRevert switches `current` back to the version rolled back
	// from and runs the restart hook again.
	OnFailureRevert = "revert"
)

// Hooks says what a rollback rolls back to and how it restarts and checks
// the service.
type Hooks struct {
	// To is the version to roll back to; empty: the last-known-good.
	To string
	// DryRun checks everything (target, refusals) and changes nothing.
	DryRun bool
	// Restart restarts the service after the switch; nil: none.
	Restart func(ctx context.Context) error
	// Check verifies the service after the restart (with its own
	// retries); nil: no verification, the outcome is "unverified".
	Check func(ctx context.Context) error
	// OnFailure is OnFailureStay (default) or OnFailureRevert.
	OnFailure string
	// Progress, when set, hears each step (0..1 and a message).
	Progress func(frac float64, msg string)
}

// Result describes a rollback.
type Result struct {
	Release string
	From    string
	To      string
	Outcome string
	// Reverted: after the failure, current was switched back to From.
	Reverted bool
	// LKGRevoked: the target was the last-known-good and failed its
	// verification, so it is no longer the last-known-good.
	LKGRevoked bool
	// Durations of the steps and of the whole rollback.
	Switch, Restart, Verify, Total time.Duration
}

// Rollback switches `current` to the last-known-good version (or
// hooks.To), runs the restart hook, verifies health and records the
// outcome in the state file: a rollback record, and a health observation
// of the target when it was verified. now is the start time; the records
// are stamped now plus the time elapsed since.
//
// It refuses, changing nothing, when there is no current version, when
// the target is unknown, when the target is already current (ErrAlreadyCurrent),
// when no LKG exists and no version is named (ErrNoLKG), and when another
// rollback of the same release holds its lock (ErrBusy).
//
// When the restart or the verification fails the error wraps
// ErrRestartFailed or ErrVerifyFailed; current stays on the target
// (OnFailureStay) or is switched back and restarted again
// (OnFailureRevert). Either way a target that was the LKG and failed its
// verification stops being the LKG, so an automatic rule cannot keep
// rolling back to it; an operator can still name it with To.
func (r *Registry) Rollback(ctx context.Context, now time.Time, h Hooks) (Result, error) {
	res := Result{Release: r.name, Outcome: OutcomeDryRun}
	start := time.Now()
	progress := h.Progress
	if progress == nil {
		progress = func(float64, string) {}
	}
	if !h.DryRun {
		unlock, err := lockFile(filepath.Join(r.dir, ".rollback.lock"), false)
		if err != nil {
			return res, fmt.Errorf("release %s: %w", r.name, err)
		}
		defer unlock()
	}
	from, to, err := r.plan(h.To)
	res.From, res.To = from, to
	if err != nil || h.DryRun {
		return res, err
	}
	if err := r.withState(func(s *State) error {
		if err := r.swap(to); err != nil {
			return err
		}
		s.activate(to, now.Add(time.Since(start)))
		return nil
	}); err != nil {
		return res, err
	}
	res.Switch = time.Since(start)
	progress(0.3, fmt.Sprintf("current switched from %s to %s", from, to))
	failErr := r.restartAndVerify(ctx, h, &res, progress)
	if failErr != nil && h.OnFailure == OnFailureRevert {
		if rerr := r.revert(ctx, h, from, now.Add(time.Since(start))); rerr != nil {
			failErr = fmt.Errorf("%w; reverting to %s also failed: %v", failErr, from, rerr)
		} else {
			res.Reverted = true
			progress(0.95, fmt.Sprintf("reverted current to %s", from))
		}
	}
	res.Total = time.Since(start)
	if err := r.recordRollback(h, &res, now, failErr); err != nil {
		return res, errors.Join(failErr, err)
	}
	if failErr != nil {
		return res, fmt.Errorf("release %s: rollback %s -> %s: %w", r.name, from, to, failErr)
	}
	progress(1, fmt.Sprintf("rolled back to %s: %s", to, res.Outcome))
	return res, nil
}

// plan finds the current version and the target, or the reason to refuse.
func (r *Registry) plan(to string) (from, target string, err error) {
	from, err = r.Current()
	if err != nil {
		return "", to, err
	}
	target = to
	if target == "" {
		if target, err = r.LastKnownGood(); err != nil {
			return from, "", fmt.Errorf("%w; name a version to roll back to", err)
		}
	}
	if err := r.checkVersion(target); err != nil {
		return from, target, err
	}
	if target == from {
		why := ""
		if to == "" {
			why = " (it is the last-known-good; name another version to roll back to)"
		}
		return from, target, fmt.Errorf("release %s: %w: %s%s", r.name, ErrAlreadyCurrent, target, why)
	}
	return from, target, nil
}

// restartAndVerify runs the restart hook and the health check, filling in
// res; the error wraps ErrRestartFailed or ErrVerifyFailed.
func (r *Registry) restartAndVerify(ctx context.Context, h Hooks, res *Result, progress func(float64, string)) error {
	t := time.Now()
	if h.Restart != nil {
		progress(0.4, "running the restart hook")
		err := h.Restart(ctx)
		res.Restart = time.Since(t)
		if err != nil {
			res.Outcome = OutcomeRestartFailed
			return fmt.Errorf("%w: %v", ErrRestartFailed, err)
		}
	}
	if h.Check == nil {
		res.Outcome = OutcomeUnverified
		return nil
	}
	progress(0.6, "verifying health")
	t = time.Now()
	err := h.Check(ctx)
	res.Verify = time.Since(t)
	if err != nil {
		res.Outcome = OutcomeVerifyFailed
		return fmt.Errorf("%w: %v", ErrVerifyFailed, err)
	}
	res.Outcome = OutcomeSuccess
	return nil
}

// revert switches current back to from and restarts again.
func (r *Registry) revert(ctx context.Context, h Hooks, from string, at time.Time) error {
	if err := r.withState(func(s *State) error {
		if err := r.swap(from); err != nil {
			return err
		}
		s.activate(from, at)
		return nil
	}); err != nil {
		return err
	}
	if h.Restart != nil {
		return h.Restart(ctx)
	}
	return nil
}

// recordRollback writes the rollback record and, when the target was
// verified, its health observation.
func (r *Registry) recordRollback(h Hooks, res *Result, now time.Time, failErr error) error {
	at := now.Add(res.Total)
	return r.withState(func(s *State) error {
		rec := RollbackRecord{Time: now, From: res.From, To: res.To, Outcome: res.Outcome, DurationSeconds: res.Total.Seconds()}
		if failErr != nil {
			rec.Error = failErr.Error()
		}
		s.addRollback(rec)
		switch res.Outcome {
		case OutcomeSuccess:
			s.record(res.To, true, at, r.healthyFor())
		case OutcomeVerifyFailed:
			s.record(res.To, false, at, r.healthyFor())
			if s.LastKnownGood == res.To {
				s.LastKnownGood, s.LKGSince = "", time.Time{}
				res.LKGRevoked = true
			}
		}
		return nil
	})
}
