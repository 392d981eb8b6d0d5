package rules

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/expr-lang/expr/vm"
)

// ErrNoData is wrapped by the Err of transitions into NoData: a function
// found no data (the message names the call, like value:mem.used_percent).
var ErrNoData = errors.New("no data")

// ErrSubjectGone is the Err of the transition that drops the state of a
// subject the Source no longer lists.
var ErrSubjectGone = errors.New("subject no longer listed by the source")

// Transition is a change of the alert state of one rule on one subject.
type Transition struct {
	Rule        *Rule
	Subject     string
	From, To    State
	Resolved    bool      // a firing episode ended (To is Inactive, NoData or Error)
	At          time.Time // the evaluation time
	ActiveSince time.Time // when the condition first held in the episode this starts, continues or ends; zero otherwise
	Values      map[string]float64
	Err         error // To Error: the evaluation error; to NoData: wraps ErrNoData
}

// Intent asks the dispatcher to run a rule's action: exactly one per firing
// episode of a rule with an action. The dispatcher owns cooldowns, dry runs
// (Rule.Mode) and de-duplication by Key.
type Intent struct {
	Key              string // group/rule/subject/<unix ns when Firing was entered>
	Rule             *Rule
	Subject          string
	At               time.Time
	Values           map[string]float64
	PredictedFailure time.Time         // At + the earliest finite eta of the evaluation; zero if none
	Labels           map[string]string // the rule's labels, then severity, group, rule and host (the subject)
}

// RuleStatus is the current state of one rule on one subject.
type RuleStatus struct {
	Rule             *Rule
	Subject          string
	State            State
	Since            time.Time // when State was entered
	ActiveSince      time.Time // Pending, Firing: when the condition first held
	LastEval         time.Time
	PredictedFailure time.Time // of the last evaluation; zero if no finite eta
	Values           map[string]float64
	Err              string // Error: the evaluation error; NoData: which call found no data
}

// Stats are the engine's counters since it was made. An evaluation is one
// rule on one subject.
type Stats struct {
	Evaluations, Errors, NoData uint64
	EvalTime                    time.Duration
	Rules                       []RuleStats // the current rules, in set order
}

// RuleStats are the counters of one rule, kept while the rule is unchanged.
type RuleStats struct {
	Group, Rule                 string
	Evaluations, Errors, NoData uint64
	EvalTime                    time.Duration
}

// Engine evaluates a Set over the subjects of a Source and runs the alert
// state machines. It is not safe for concurrent use: one goroutine calls it.
type Engine struct {
	ctx    *evalCtx
	env    exprEnv
	vm     vm.VM
	groups []*groupRun
	rules  map[string]*ruleRun // by group/rule
	total  Stats
	epoch  uint64
	clock  func() time.Time // measures evaluation cost for Stats, nothing else
}

type groupRun struct {
	group *Group
	last  time.Time // of the last evaluation
	next  time.Time // due at or after; zero: at once
	rules []*ruleRun
}

type ruleRun struct {
	rule     *Rule
	program  *vm.Program // bound to the engine's evalCtx
	err      error       // a compile error (the loader checked the rule, so never expected)
	subjects map[string]*subjectState
	stats    RuleStats
}

// NewEngine makes an engine for the rules of s.
func NewEngine(s *Set) *Engine {
	e := &Engine{ctx: newEvalCtx(), rules: map[string]*ruleRun{}, clock: time.Now}
	e.Replace(s)
	return e
}

// Replace switches to the rules of s (a reload). A rule with the same
// group, name and definition keeps its state and counters; the state of
// removed or changed rules is dropped. Groups keep their schedule.
func (e *Engine) Replace(s *Set) {
	oldGroups := map[string]*groupRun{}
	for _, g := range e.groups {
		oldGroups[g.group.Name] = g
	}
	e.ctx.sels = map[string]*selEntry{}
	rules := map[string]*ruleRun{}
	e.groups = nil
	for _, g := range s.Groups() {
		gr := &groupRun{group: g}
		if og := oldGroups[g.Name]; og != nil && !og.last.IsZero() {
			gr.last, gr.next = og.last, og.last.Add(g.Interval)
		}
		for _, r := range g.Rules {
			rr := e.rules[r.key()]
			if rr != nil && rr.err == nil && rr.rule.fingerprint == r.fingerprint {
				rr.rule = r
				for _, sel := range r.Selectors {
					e.ctx.addSelector(sel)
				}
			} else {
				rr = &ruleRun{rule: r, subjects: map[string]*subjectState{},
					stats: RuleStats{Group: r.Group, Rule: r.Name}}
				var problems []exprProblem
				rr.program, _, problems = compileExpr(e.ctx, r.Expr)
				if len(problems) > 0 {
					rr.err = errors.New(problems[0].msg)
				}
			}
			rules[r.key()] = rr
			gr.rules = append(gr.rules, rr)
		}
		e.groups = append(e.groups, gr)
	}
	e.rules = rules
}

// callbacks receive the results of an evaluation; either may be nil.
type callbacks struct {
	transition func(Transition)
	intent     func(Intent)
}

// Eval evaluates every group that is due at now (its interval has passed
// since its last evaluation) over src.Subjects(), calling onTransition for
// every state change and onIntent for every new firing of a rule with an
// action. Either callback may be nil.
func (e *Engine) Eval(now time.Time, src Source, onTransition func(Transition), onIntent func(Intent)) {
	cb := callbacks{onTransition, onIntent}
	var subjects []string
	fetched := false
	for _, g := range e.groups {
		if !g.due(now) {
			continue
		}
		if !fetched {
			subjects, fetched = src.Subjects(), true
		}
		e.epoch++
		start := e.clock()
		for _, rr := range g.rules {
			for _, subject := range subjects {
				e.evalOne(rr, subject, now, src, cb)
			}
			if len(rr.subjects) > len(subjects) {
				e.sweep(rr, now, cb)
			}
			end := e.clock()
			d := end.Sub(start)
			rr.stats.EvalTime += d
			e.total.EvalTime += d
			start = end
		}
	}
}

// due reports whether the group is due at now and, if so, schedules the
// next evaluation on the group's grid of intervals.
func (g *groupRun) due(now time.Time) bool {
	if !g.next.IsZero() && now.Before(g.next) {
		return false
	}
	g.last = now
	g.next = g.next.Add(g.group.Interval)
	if !g.next.After(now) {
		g.next = now.Add(g.group.Interval)
	}
	return true
}

func (e *Engine) evalOne(rr *ruleRun, subject string, now time.Time, src Source, cb callbacks) {
	st := rr.subjects[subject]
	if st == nil {
		st = &subjectState{since: now}
		rr.subjects[subject] = st
	}
	st.epoch = e.epoch
	o, err := e.run(rr, subject, now, src)
	rr.stats.Evaluations++
	e.total.Evaluations++
	switch o {
	case outError:
		rr.stats.Errors++
		e.total.Errors++
	case outNoData:
		rr.stats.NoData++
		e.total.NoData++
	}
	c := e.ctx
	st.lastEval, st.err, st.missing = now, err, c.missing
	st.values, c.captures = c.captures, st.values[:0] // swap: no copy
	st.predicted = time.Time{}
	if c.minETA != Never {
		st.predicted = now.Add(c.minETA)
	}
	res := st.advance(rr.rule, o, now)
	if res.changed && cb.transition != nil {
		cb.transition(Transition{Rule: rr.rule, Subject: subject, From: res.from, To: st.state,
			Resolved: res.resolved, At: now, ActiveSince: res.activeSince,
			Values: valuesMap(st.values), Err: st.reason()})
	}
	if res.fired && rr.rule.Action != nil && cb.intent != nil {
		cb.intent(newIntent(rr.rule, subject, st, now))
	}
}

// run evaluates the rule's condition for one subject.
func (e *Engine) run(rr *ruleRun, subject string, now time.Time, src Source) (outcome, error) {
	c := e.ctx
	c.reset(src, subject, now, rr.rule.group.MinConfidence)
	if rr.err != nil {
		return outError, rr.err
	}
	e.env.Host = subject
	out, err := e.vm.Run(rr.program, &e.env)
	switch {
	case c.noData: // a runtime error after a call without data is a consequence of it
		return outNoData, nil
	case err != nil:
		return outError, err
	}
	b, ok := out.(bool)
	switch {
	case !ok:
		return outError, fmt.Errorf("the expression answered %T, not bool", out)
	case b:
		return outTrue, nil
	}
	return outFalse, nil
}

// sweep drops the state of subjects the source no longer lists; a state
// other than Inactive ends with a transition to Inactive.
func (e *Engine) sweep(rr *ruleRun, now time.Time, cb callbacks) {
	var gone []string
	for subject, st := range rr.subjects {
		if st.epoch != e.epoch {
			gone = append(gone, subject)
		}
	}
	sort.Strings(gone)
	for _, subject := range gone {
		st := rr.subjects[subject]
		delete(rr.subjects, subject)
		if st.state != Inactive && cb.transition != nil {
			cb.transition(Transition{Rule: rr.rule, Subject: subject, From: st.state, To: Inactive,
				Resolved: st.state == Firing, At: now, ActiveSince: st.activeSince, Err: ErrSubjectGone})
		}
	}
}

// reason is the error of the current state, if any.
func (st *subjectState) reason() error {
	switch st.state {
	case Error:
		return st.err
	case NoData:
		return fmt.Errorf("%w: %s", ErrNoData, st.missing)
	}
	return nil
}

func newIntent(r *Rule, subject string, st *subjectState, now time.Time) Intent {
	labels := make(map[string]string, len(r.Labels)+4)
	for k, v := range r.Labels {
		labels[k] = v
	}
	labels["severity"], labels["group"], labels["rule"], labels[r.group.Scope] = r.Severity, r.Group, r.Name, subject
	return Intent{
		Key:  r.Group + "/" + r.Name + "/" + subject + "/" + strconv.FormatInt(st.firingSince.UnixNano(), 10),
		Rule: r, Subject: subject, At: now, Values: valuesMap(st.values),
		PredictedFailure: st.predicted, Labels: labels,
	}
}

func valuesMap(cs []capture) map[string]float64 {
	m := make(map[string]float64, len(cs))
	for _, c := range cs {
		m[c.key] = c.v
	}
	return m
}

// Stats answers the engine's counters.
func (e *Engine) Stats() Stats {
	s := e.total
	s.Rules = nil
	for _, g := range e.groups {
		for _, rr := range g.rules {
			s.Rules = append(s.Rules, rr.stats)
		}
	}
	return s
}

// States answers the current state of every rule on every subject it has
// evaluated, in set order, subjects sorted.
func (e *Engine) States() []RuleStatus {
	var out []RuleStatus
	for _, g := range e.groups {
		for _, rr := range g.rules {
			subjects := make([]string, 0, len(rr.subjects))
			for s := range rr.subjects {
				subjects = append(subjects, s)
			}
			sort.Strings(subjects)
			for _, s := range subjects {
				st := rr.subjects[s]
				rs := RuleStatus{Rule: rr.rule, Subject: s, State: st.state, Since: st.since,
					ActiveSince: st.activeSince, LastEval: st.lastEval, PredictedFailure: st.predicted,
					Values: valuesMap(st.values)}
				if err := st.reason(); err != nil {
					rs.Err = err.Error()
				}
				out = append(out, rs)
			}
		}
	}
	return out
}
