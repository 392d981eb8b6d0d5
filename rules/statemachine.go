package rules

import "time"

// The alert state machine of one rule on one subject, driven only by the
// evaluation times passed in:
//
//	Inactive ─true─▶ Pending ─true for ≥ for─▶ Firing      (for = 0: straight to Firing)
//	Pending ─false─▶ Inactive
//	Firing ─true─▶ Firing
//	Firing ─false, nodata or error, keep_firing_for after the last true─▶
//	        Inactive, NoData or Error, reported as resolved
//	any ─nodata─▶ NoData, any ─error─▶ Error (Firing only once keep_firing_for has passed)
//	NoData, Error ─true─▶ Pending (or Firing), ─false─▶ Inactive
//
// Entering Firing starts a firing episode; it produces the rule's one
// intent for that episode. Within keep_firing_for of the last true
// evaluation a firing rule stays firing whatever the outcome, so a short
// data gap neither resolves nor re-fires it.

// outcome is the result of one evaluation.
type outcome uint8

const (
	outFalse outcome = iota
	outTrue
	outNoData
	outError
)

// subjectState is the alert state of one rule on one subject.
type subjectState struct {
	state       State
	since       time.Time // when state was entered
	activeSince time.Time // Pending, Firing: when the condition first held
	firingSince time.Time // Firing: when it was entered
	lastTrue    time.Time
	lastEval    time.Time
	predicted   time.Time // now + the earliest finite eta of the last evaluation; zero if none
	values      []capture // of the last evaluation
	err         error     // Error: of the last evaluation
	missing     string    // NoData: the first call that found no data
	epoch       uint64    // of the group evaluation that last saw the subject
}

// stepResult says what one evaluation did to the state.
type stepResult struct {
	from        State
	changed     bool
	resolved    bool      // a firing episode ended
	fired       bool      // Firing was entered: a new episode
	activeSince time.Time // of the episode the transition starts, continues or ends
}

// advance applies one outcome of rule r at now.
func (st *subjectState) advance(r *Rule, o outcome, now time.Time) stepResult {
	res := stepResult{from: st.state}
	if o == outTrue {
		st.lastTrue = now
		switch st.state {
		case Firing:
			return res
		case Pending:
			if now.Sub(st.activeSince) < r.For {
				return res
			}
		default:
			st.activeSince = now
			if r.For > 0 {
				st.enter(Pending, now)
				res.changed, res.activeSince = true, now
				return res
			}
		}
		st.enter(Firing, now)
		st.firingSince = now
		res.changed, res.fired, res.activeSince = true, true, st.activeSince
		return res
	}
	to := Inactive
	switch o {
	case outNoData:
		to = NoData
	case outError:
		to = Error
	}
	if st.state == Firing && now.Sub(st.lastTrue) < r.KeepFiringFor {
		return res
	}
	if st.state == to {
		return res
	}
	res.changed = true
	res.resolved = st.state == Firing
	if st.state == Pending || st.state == Firing {
		res.activeSince = st.activeSince
	}
	st.activeSince, st.firingSince = time.Time{}, time.Time{}
	st.enter(to, now)
	return res
}

func (st *subjectState) enter(s State, now time.Time) {
	st.state, st.since = s, now
}
