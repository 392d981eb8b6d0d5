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
// intent for that episode, unless the rule is flapping on the subject (see
// FlapPolicy) or the episode was started by missing data (no_data: alert).
//
// With a clear condition, a firing rule evaluates clear instead of expr:
// clear true counts as false (the episode ends, after keep_firing_for),
// clear false as true. The no_data policy maps a no-data outcome first:
// nodata (default) as drawn above, keep_state leaves the state untouched,
// alert counts it as true, ok as false. Within keep_firing_for of the last true
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
	flapping    bool
	firings     []time.Time // starts of the recent firing episodes, at most Flap.Firings
}

// firingsWithin counts the episodes started within window before now.
func (st *subjectState) firingsWithin(window time.Duration, now time.Time) int {
	n := 0
	for _, t := range st.firings {
		if now.Sub(t) < window {
			n++
		}
	}
	return n
}

// recordFiring notes a new episode and decides whether the rule flaps.
func (st *subjectState) recordFiring(p FlapPolicy, now time.Time) {
	if p.Firings <= 0 {
		return
	}
	if len(st.firings) >= p.Firings {
		copy(st.firings, st.firings[1:])
		st.firings = st.firings[:p.Firings-1]
	}
	st.firings = append(st.firings, now)
	st.flapping = st.firingsWithin(p.Window, now) >= p.Firings
}

// stepResult says what one evaluation did to the state.
type stepResult struct {
	from        State
	changed     bool
	resolved    bool      // a firing episode ended
	fired       bool      // Firing was entered: a new episode
	byNoData    bool      // ... on an outcome that was no data (no_data: alert)
	activeSince time.Time // of the episode the transition starts, continues or ends
}

// advance applies one outcome of rule r at now.
func (st *subjectState) advance(r *Rule, o outcome, now time.Time) stepResult {
	res := stepResult{from: st.state}
	if o == outNoData {
		switch r.NoData {
		case NoDataKeep:
			return res
		case NoDataAlert:
			o, res.byNoData = outTrue, true
		case NoDataOK:
			o = outFalse
		}
	}
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
		st.recordFiring(r.Flap, now)
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
