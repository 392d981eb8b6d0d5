package rules

import (
	"errors"
	"fmt"
	"slices"
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
	Flapping    bool      // the rule is flapping on this subject: its intents are suppressed
	At          time.Time // the evaluation time
	ActiveSince time.Time // when the condition first held in the episode this starts, continues or ends; zero otherwise
	Values      map[string]float64
	Labels      map[string]string // the subject's labels, the rule's (rendered), severity, group, rule, <scope>=subject
	Annotations map[string]string // rendered
	Err         error             // To Error: the evaluation error; to NoData: wraps ErrNoData
}

// Intent asks the dispatcher to run a rule's action: exactly one per firing
// episode of a rule with an action. The dispatcher owns cooldowns, dry runs
// (Rule.Mode) and de-duplication by Key.
type Intent struct {
	Key              string // group/rule/subject/<unix ns when Firing was entered>
	Rule             *Rule
	Subject          string
	Scope            string // of the rule's group: what Subject names
	Mode             string // the rule's mode: ModeAuto, ModeManual (wait for an operator's approval) or ModeDryRun
	At               time.Time
	Values           map[string]float64
	PredictedFailure time.Time         // At + the earliest finite eta of the evaluation; zero if none
	Labels           map[string]string // as Transition.Labels
	Annotations      map[string]string // rendered
	// GroupKey is shared by the intents of one rule made in one evaluation
	// round (group/rule/<unix ns of the round>); GroupSize is their number.
	// A dispatcher may batch them (one approval, one notification).
	GroupKey  string
	GroupSize int
	// Epoch is the fencing epoch (leader lease term) of the controller
	// dispatching the intent; set by the controller, not by the engine.
	Epoch uint64
}

// RuleStatus is the current state of one rule on one subject.
type RuleStatus struct {
	Rule             *Rule
	Subject          string
	State            State
	Since            time.Time // when State was entered
	ActiveSince      time.Time // Pending, Firing: when the condition first held
	Flapping         bool      // too many firing episodes lately: intents suppressed
	LastEval         time.Time
	PredictedFailure time.Time // of the last evaluation; zero if no finite eta
	Values           map[string]float64
	Err              string // Error: the evaluation error; NoData: which call found no data
}

// Stats are the engine's counters since it was made. An evaluation is one
// rule on one subject.
type Stats struct {
	Evaluations, Errors, NoData uint64
	Triggered                   uint64 // of Evaluations, those made by EvalChanged
	EvalTime                    time.Duration
	Rules                       []RuleStats // the current rules, in set order
}

// RuleStats are the counters of one rule, kept while the rule is unchanged.
type RuleStats struct {
	Group, Rule                 string
	Evaluations, Errors, NoData uint64
	Triggered                   uint64 // of Evaluations, those made by EvalChanged (new data)
	Transitions, Intents        uint64
	Suppressed                  uint64        // intents not made because the rule was flapping
	TemplateErrors              uint64        // renderings that failed (the raw text was used)
	EvalTime                    time.Duration // total
	LastRoundTime               time.Duration // of the last round (every subject)
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
	buf    []Intent         // intents of the rule being evaluated, delivered grouped
	gen    uint64           // incremented by Replace
	needs  []WindowNeed     // of the current set
}

// Generation changes whenever Replace installs a set; a Source compares it
// to know when to re-read WindowNeeds.
func (e *Engine) Generation() uint64 { return e.gen }

// WindowNeeds are the histories the current rules read (Set.WindowNeeds).
func (e *Engine) WindowNeeds() []WindowNeed { return e.needs }

type groupRun struct {
	group *Group
	last  time.Time // of the last evaluation
	next  time.Time // due at or after; zero: at once
	rules []*ruleRun
}

type ruleRun struct {
	rule     *Rule
	program  *vm.Program // bound to the engine's evalCtx
	clear    *vm.Program // nil: no clear condition
	err      error       // a compile error (the loader checked the rule, so never expected)
	subjects map[string]*subjectState
	stats    RuleStats
	// triggers are the selectors of the subject's own series that expr and
	// clear read: new data in one of them has EvalChanged evaluate the rule.
	// Empty for rules that read no series or call fleet functions (their
	// answer depends on other hosts): only the group's rounds evaluate them.
	triggers []*Selector
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
	e.gen++
	e.needs = s.WindowNeeds()
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
				rr = e.newRuleRun(r)
			}
			rules[r.key()] = rr
			gr.rules = append(gr.rules, rr)
		}
		e.groups = append(e.groups, gr)
	}
	e.rules = rules
}

func (e *Engine) newRuleRun(r *Rule) *ruleRun {
	rr := &ruleRun{rule: r, subjects: map[string]*subjectState{}, stats: RuleStats{Group: r.Group, Rule: r.Name}}
	var problems []exprProblem
	var reads, clearReads exprReads
	rr.program, reads, problems = compileExpr(e.ctx, r.Expr)
	if r.Clear != "" && len(problems) == 0 {
		rr.clear, clearReads, problems = compileExpr(e.ctx, r.Clear)
	}
	if len(problems) > 0 {
		rr.err = errors.New(problems[0].msg)
		return rr
	}
	if !reads.fleet && !clearReads.fleet {
		rr.triggers = reads.own
		for _, sel := range clearReads.own {
			if !slices.ContainsFunc(rr.triggers, func(x *Selector) bool { return x.Text == sel.Text }) {
				rr.triggers = append(rr.triggers, sel)
			}
		}
	}
	return rr
}

// callbacks receive the results of an evaluation; either may be nil.
type callbacks struct {
	transition func(Transition)
	intent     func(Intent)
}

// Eval evaluates every group that is due at now (its interval has passed
// since its last evaluation) over the subjects of its scope (src is the
// host scope; src.Scope gives the others), calling onTransition for every
// state change and onIntent for every new firing of a rule with an action
// (grouped: the intents of one rule in one round are delivered together,
// sharing a GroupKey). Either callback may be nil.
func (e *Engine) Eval(now time.Time, src Source, onTransition func(Transition), onIntent func(Intent)) {
	cb := callbacks{onTransition, onIntent}
	type scoped struct {
		src      Source
		subjects []string
	}
	scopes := map[string]*scoped{}
	for _, g := range e.groups {
		if !g.due(now) {
			continue
		}
		sc := scopes[g.group.Scope]
		if sc == nil {
			sc = &scoped{src: src}
			if g.group.Scope != ScopeHost {
				sc.src = src.Scope(g.group.Scope)
			}
			sc.subjects = sc.src.Subjects()
			scopes[g.group.Scope] = sc
		}
		e.epoch++
		e.ctx.round = e.epoch
		start := e.clock()
		for _, rr := range g.rules {
			e.buf = e.buf[:0]
			for _, subject := range sc.subjects {
				e.evalOne(rr, subject, now, sc.src, src, cb, false)
			}
			if len(rr.subjects) > len(sc.subjects) {
				e.sweep(rr, now, cb)
			}
			e.deliver(rr, now, cb)
			end := e.clock()
			d := end.Sub(start)
			rr.stats.EvalTime += d
			rr.stats.LastRoundTime = d
			e.total.EvalTime += d
			start = end
		}
	}
}

// Changes tells EvalChanged which subjects received data since the
// previous call; the controller implements it over its store.
type Changes interface {
	// Subjects are the subjects of scope (one of the Scope* constants) with
	// a series that received samples.
	Subjects(scope string) []string
	// Changed reports whether a series of subject (of scope) selected by sel
	// received samples.
	Changed(scope, subject string, sel *Selector) bool
}

// EvalChanged evaluates at now the rules whose data changed: each rule on
// each subject of ch on which a series the rule reads (expr or clear,
// through value, anomaly, eta, forecast, the window functions, age or
// drift) received samples, whether or not its group is due. A condition
// that becomes true is then seen when its data arrives, not at the group's
// next round. The rounds of Eval stay as they are: EvalChanged does not
// move a group's schedule nor drop subjects, and rules that call fleet
// functions or read no series (since_seen, gaps, hour) are evaluated by the
// rounds only. An evaluation here that finds no data or fails changes
// nothing (no state, no counters): no data and errors are left to the
// rounds, so a batch that carries some of a rule's series and not yet the
// others does not make it NoData. A true or false outcome drives the state
// machine as in a round, with now as the evaluation time (for, keep_firing_for,
// clear, flap detection and the intents' keys and group keys alike).
func (e *Engine) EvalChanged(now time.Time, src Source, ch Changes, onTransition func(Transition), onIntent func(Intent)) {
	cb := callbacks{onTransition, onIntent}
	type scoped struct {
		scope    string
		src      Source
		subjects []string
	}
	var scopes [4]scoped // one per scope, asked for once
	n := 0
	newRound := true
	for _, g := range e.groups {
		var sc *scoped
		for _, rr := range g.rules {
			if len(rr.triggers) == 0 || rr.err != nil {
				continue
			}
			for i := 0; sc == nil && i < n; i++ {
				if scopes[i].scope == g.group.Scope {
					sc = &scopes[i]
				}
			}
			if sc == nil && n < len(scopes) {
				sc = &scopes[n]
				n++
				*sc = scoped{scope: g.group.Scope, src: src, subjects: ch.Subjects(g.group.Scope)}
				if g.group.Scope != ScopeHost {
					sc.src = src.Scope(g.group.Scope)
				}
			}
			if sc == nil {
				continue
			}
			var start time.Time
			for _, subject := range sc.subjects {
				if !changedAny(ch, g.group.Scope, subject, rr.triggers) {
					continue
				}
				if start.IsZero() {
					if newRound { // fresh per-round caches
						e.epoch++
						e.ctx.round = e.epoch
						newRound = false
					}
					start = e.clock()
					e.buf = e.buf[:0]
				}
				e.evalOne(rr, subject, now, sc.src, src, cb, true)
			}
			if start.IsZero() {
				continue
			}
			e.deliver(rr, now, cb)
			d := e.clock().Sub(start)
			rr.stats.EvalTime += d
			e.total.EvalTime += d
		}
	}
}

func changedAny(ch Changes, scope, subject string, sels []*Selector) bool {
	for _, sel := range sels {
		if ch.Changed(scope, subject, sel) {
			return true
		}
	}
	return false
}

// deliver hands the buffered intents of one rule's round to the callback,
// with their group key and size.
func (e *Engine) deliver(rr *ruleRun, now time.Time, cb callbacks) {
	if len(e.buf) == 0 {
		return
	}
	key := rr.rule.key() + "/" + strconv.FormatInt(now.UnixNano(), 10)
	for i := range e.buf {
		e.buf[i].GroupKey, e.buf[i].GroupSize = key, len(e.buf)
		rr.stats.Intents++
		if cb.intent != nil {
			cb.intent(e.buf[i])
		}
		e.buf[i] = Intent{}
	}
	e.buf = e.buf[:0]
}

// due reports whether the group is due at now and, if so, schedules the
// next evaluation on the group's grid of intervals.
// due reports whether the group runs at now and moves its schedule on. A
// call up to a tenth of the interval early counts as on time: the caller's
// ticker and clock jitter by a little, and treating a tick a millisecond
// early as "not yet" would skip a whole round.
func (g *groupRun) due(now time.Time) bool {
	if !g.next.IsZero() && now.Before(g.next.Add(-g.group.Interval/10)) {
		return false
	}
	g.last = now
	g.next = g.next.Add(g.group.Interval)
	if !g.next.After(now) {
		g.next = now.Add(g.group.Interval)
	}
	return true
}

// evalOne evaluates one rule on one subject; changed: for EvalChanged,
// where no data and errors change nothing.
func (e *Engine) evalOne(rr *ruleRun, subject string, now time.Time, src, root Source, cb callbacks, changed bool) {
	st := rr.subjects[subject]
	fresh := st == nil
	if fresh {
		st = &subjectState{since: now}
	}
	o, err := e.run(rr, st, subject, now, src, root)
	if changed && (o == outNoData || o == outError) {
		return
	}
	if fresh {
		rr.subjects[subject] = st
	}
	if changed {
		rr.stats.Triggered++
		e.total.Triggered++
	} else {
		st.epoch = e.epoch
	}
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
	r := rr.rule
	res := st.advance(r, o, now)
	if st.flapping && !res.fired && r.Flap.Firings > 0 && st.firingsWithin(r.Flap.Window, now) < r.Flap.Firings {
		st.flapping = false
	}
	if !res.changed && !res.fired {
		return
	}
	rr.stats.Transitions++
	if cb.transition == nil && (!res.fired || r.Action == nil) {
		return
	}
	data, values := e.templateData(rr, subject, src, st, now)
	if cb.transition != nil {
		cb.transition(Transition{Rule: r, Subject: subject, From: res.from, To: st.state,
			Resolved: res.resolved, Flapping: st.flapping, At: now, ActiveSince: res.activeSince,
			Values: values, Labels: data.Labels, Annotations: e.annotations(rr, data), Err: st.reason()})
	}
	if !res.fired || r.Action == nil {
		return
	}
	if st.flapping || res.byNoData {
		rr.stats.Suppressed++
		return
	}
	e.buf = append(e.buf, Intent{
		Key:  r.Group + "/" + r.Name + "/" + subject + "/" + strconv.FormatInt(st.firingSince.UnixNano(), 10),
		Rule: r, Subject: subject, Scope: r.group.Scope, Mode: r.Mode, At: now, Values: values,
		PredictedFailure: st.predicted, Labels: data.Labels, Annotations: e.annotations(rr, data),
	})
}

// run evaluates the rule's condition for one subject: while firing, the
// clear condition if the rule has one (its truth ends the episode).
func (e *Engine) run(rr *ruleRun, st *subjectState, subject string, now time.Time, src, root Source) (outcome, error) {
	c := e.ctx
	c.reset(src, subject, now, rr.rule.group.MinConfidence)
	c.root = root
	if rr.err != nil {
		return outError, rr.err
	}
	e.setEnv(rr.rule.group.Scope, subject, src)
	program, inverted := rr.program, false
	if rr.clear != nil && st.state == Firing {
		program, inverted = rr.clear, true
	}
	out, err := e.vm.Run(program, &e.env)
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
	case b != inverted:
		return outTrue, nil
	}
	return outFalse, nil
}

func (e *Engine) setEnv(scope, subject string, src Source) {
	env := &e.env
	env.Subject = subject
	env.Labels = src.Labels(subject)
	env.Host, env.Service, env.Model, env.Role = "", env.Labels["service"], env.Labels["model"], env.Labels["role"]
	switch scope {
	case ScopeHost:
		env.Host = subject
	case ScopeService:
		env.Service = subject
	case ScopeModel:
		env.Model = subject
	case ScopeFleet:
		env.Role = subject
	}
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
					ActiveSince: st.activeSince, Flapping: st.flapping, LastEval: st.lastEval, PredictedFailure: st.predicted,
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
