package controller

import (
	"sort"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
	"github.com/vigil-sre/vigil/rules"
)

// evaluate runs the rule groups that are due at now, records transitions
// as events and hands intents to the dispatcher.
func (c *Controller) evaluate(now time.Time) {
	start := time.Now()
	c.store.syncWindows(c.engine)
	c.engine.Eval(now, c.store, c.onTransition, c.onIntent)
	c.stats.Evaluations.Add(1)
	c.stats.EvalNanoseconds.Add(uint64(time.Since(start)))
	if now.Sub(c.statsAt) >= time.Second { // a copy for /metrics, which runs elsewhere
		st := c.engine.Stats()
		c.ruleStats.Store(&st)
		c.statsAt = now
	}
}

// evaluateChanged evaluates, right after telemetry was handled, the rules
// that read a series which took samples since the last call
// (rules.Engine.EvalChanged); the rounds of evaluate remain the schedule.
func (c *Controller) evaluateChanged(now time.Time) {
	if len(c.store.changed) == 0 {
		return
	}
	start := time.Now()
	c.store.syncWindows(c.engine)
	c.engine.EvalChanged(now, c.store, storeChanges{c.store}, c.onTransition, c.onIntent)
	c.store.nextPass()
	c.stats.TriggeredRounds.Add(1)
	c.stats.EvalNanoseconds.Add(uint64(time.Since(start)))
}

func (c *Controller) onTransition(t rules.Transition) {
	r := t.Rule
	state := t.To.String()
	if t.Resolved {
		state = "resolved"
	}
	ev := &wire.Event{
		Kind: wire.KindRule, Time: t.At, Host: t.Subject,
		Rule: r.Name, Group: r.Group, Severity: r.Severity, State: state,
		Values: finiteValues(t.Values), Labels: r.Labels,
	}
	if !t.ActiveSince.IsZero() {
		ev.DurationSeconds = t.At.Sub(t.ActiveSince).Seconds()
	}
	if t.Err != nil {
		ev.Error = t.Err.Error()
	}
	if t.To != rules.Firing {
		delete(c.held, heldKey(r, t.Subject)) // the episode ended: nothing to take over
	}
	c.emit(ev)
}

// Status is the controller's state as the API shows it.
type Status struct {
	Name  string       `json:"name"`
	Time  time.Time    `json:"time"`
	Hosts []HostStatus `json:"hosts"`
	Rules []RuleStatus `json:"rules"`
	// Leader: this controller's part in the leader lease.
	Leader LeaderStatus `json:"leader"`
}

// HostStatus summarises one host.
type HostStatus struct {
	Host     string    `json:"host"`
	LastSeen time.Time `json:"last_seen"`
	Series   int       `json:"series"`
}

// RuleStatus is the state of one rule on one subject.
type RuleStatus struct {
	Group            string             `json:"group"`
	Rule             string             `json:"rule"`
	Severity         string             `json:"severity"`
	Subject          string             `json:"subject"`
	State            string             `json:"state"`
	Since            time.Time          `json:"since,omitzero"`
	ActiveSince      time.Time          `json:"active_since,omitzero"`
	LastEval         time.Time          `json:"last_eval,omitzero"`
	PredictedFailure time.Time          `json:"predicted_failure,omitzero"`
	Values           map[string]float64 `json:"values,omitempty"`
	Error            string             `json:"error,omitempty"`
}

func (c *Controller) snapshot(now time.Time) *Status {
	st := &Status{Name: c.cfg.Name, Time: now, Leader: c.lease.status()}
	for _, r := range c.engine.States() {
		st.Rules = append(st.Rules, RuleStatus{
			Group: r.Rule.Group, Rule: r.Rule.Name, Severity: r.Rule.Severity, Subject: r.Subject,
			State: r.State.String(), Since: r.Since, ActiveSince: r.ActiveSince, LastEval: r.LastEval,
			PredictedFailure: r.PredictedFailure, Values: finiteValues(r.Values), Error: r.Err,
		})
	}
	for _, name := range c.store.names {
		h := c.store.hosts[name]
		st.Hosts = append(st.Hosts, HostStatus{Host: name, LastSeen: h.lastSeen, Series: len(h.ordered)})
	}
	sort.Slice(st.Hosts, func(i, j int) bool { return st.Hosts[i].Host < st.Hosts[j].Host })
	return st
}
