package rules

import (
	"strings"
	"testing"
	"time"
)

// New data is evaluated when it arrives, on the subjects that have it
// only, and the group's rounds keep their schedule.
func TestEvalChangedFollowsData(t *testing.T) {
	e := NewEngine(mustParse(t, `groups:
  - name: g
    interval: 1h
    rules: [{name: r, expr: 'value("m.v") > 10', action: {kind: exec, program: /bin/true}}]
`))
	src := newFake("h1", "h2")
	src.values["h1|m.v"], src.values["h2|m.v"] = 1, 1
	e.Eval(t0, src, nil, nil) // the first round: both inactive
	src.values["h1|m.v"], src.values["h2|m.v"] = 20, 20
	var trans []Transition
	var intents []Intent
	onT := func(tr Transition) { trans = append(trans, tr) }
	onI := func(in Intent) { intents = append(intents, in) }
	at := t0.Add(1500 * time.Millisecond)
	// h1's m.v took a sample; h2 only a series h1's rule does not read.
	e.EvalChanged(at, src, newFakeChanges("h1|m.v", "h2|m.other"), onT, onI)
	if len(trans) != 1 || trans[0].Subject != "h1" || trans[0].To != Firing || !trans[0].At.Equal(at) {
		t.Fatalf("transitions %+v", trans)
	}
	if len(intents) != 1 || intents[0].Key != "g/r/h1/"+itoa(at.UnixNano()) ||
		intents[0].GroupKey != "g/r/"+itoa(at.UnixNano()) || intents[0].GroupSize != 1 {
		t.Fatalf("intents %+v", intents)
	}
	// The next round is still an hour after the first: h2 waits for it.
	e.Eval(t0.Add(2*time.Second), src, onT, onI)
	e.Eval(t0.Add(50*time.Minute), src, onT, onI)
	if len(trans) != 1 {
		t.Fatalf("rounds before the hour evaluated: %+v", trans[1:])
	}
	e.Eval(t0.Add(time.Hour), src, onT, onI)
	if len(trans) != 2 || trans[1].Subject != "h2" || trans[1].To != Firing || len(intents) != 2 {
		t.Fatalf("the hourly round: transitions %+v", trans)
	}
	if st := e.Stats(); st.Evaluations != 5 || st.Triggered != 1 || st.Rules[0].Triggered != 1 {
		t.Errorf("stats %+v", st)
	}
}

// A batch that brings some of a rule's series and not the others makes no
// NoData (nor Error): missing data is the rounds' to judge.
func TestEvalChangedLeavesNoDataToRounds(t *testing.T) {
	e := NewEngine(mustParse(t, oneRule(`value("m.v") > 10 && value("m.w") > 10`)))
	src := newFake("h1")
	src.values["h1|m.v"] = 20
	var trans []string
	onT := func(tr Transition) { trans = append(trans, tr.From.String()+">"+tr.To.String()) }
	e.EvalChanged(t0, src, newFakeChanges("h1|m.v"), onT, nil)
	if len(trans) != 0 || len(e.States()) != 0 || e.Stats().Evaluations != 0 {
		t.Fatalf("no data evaluated as new data: transitions %v, states %+v", trans, e.States())
	}
	src.values["h1|m.w"] = 20
	e.EvalChanged(t0.Add(time.Second), src, newFakeChanges("h1|m.w"), onT, nil)
	delete(src.values, "h1|m.w")
	e.EvalChanged(t0.Add(2*time.Second), src, newFakeChanges("h1|m.v"), onT, nil)
	e.Eval(t0.Add(3*time.Second), src, onT, nil)
	if got := strings.Join(trans, " "); got != "inactive>firing firing>nodata" {
		t.Errorf("transitions %s", got)
	}
}

// Which rules new data evaluates: those reading the changed series of the
// subject, through expr or clear, drift included; not the rules calling
// fleet functions nor those reading no series.
func TestEvalChangedReads(t *testing.T) {
	e := NewEngine(mustParse(t, `groups:
  - name: g
    rules:
      - {name: plain, expr: 'value("m.v") > 10'}
      - {name: window, expr: 'avg_over("m.v", duration("5m")) > 10 || anomaly("m.v") > 2'}
      - {name: clear_only, expr: 'value("m.x") > 10', clear: 'value("m.v") < 5'}
      - {name: drift, expr: 'drift("m1", "*", "psi") > 0.2'}
      - {name: other, expr: 'value("m.w") > 10'}
      - {name: fleet, expr: 'value("m.v") > 10 && hosts("") > 0'}
      - {name: seen, expr: 'since_seen() > duration("1m")'}
      - {name: hour, expr: 'hour() >= 0'}
`))
	src := newFake("h1")
	src.values["h1|m.v"], src.values["h1|m.w"], src.values["h1|m.x"] = 20, 20, 20
	src.samples["h1|m.v"] = []Sample{{T: t0.UnixNano(), V: 20}}
	src.anomalies["h1|m.v"] = 0
	drift, _ := ParseSelector("model_drift.psi{model=m1}")
	src.values["h1|"+drift.String()] = 0.5
	src.lastSeen["h1"] = t0
	e.EvalChanged(t0, src, newFakeChanges("h1|m.v", "h1|model_drift.psi"), nil, nil)
	var got []string
	for _, r := range e.Stats().Rules {
		if r.Evaluations > 0 {
			got = append(got, r.Rule)
		}
	}
	if g := strings.Join(got, " "); g != "plain window clear_only drift" {
		t.Errorf("evaluated %s, want plain window clear_only drift", g)
	}
}

// Flap detection counts the episodes new data starts as those of rounds.
func TestEvalChangedFlapping(t *testing.T) {
	e := NewEngine(mustParse(t, oneRule(`value("m.v") > 10`,
		"flapping: {firings: 3, window: 2m}", "action: {kind: exec, program: /bin/true}")))
	src := newFake("h1")
	n := 0
	for i, v := range []float64{20, 1, 20, 1, 20, 1, 20, 1} {
		src.values["h1|m.v"] = v
		e.EvalChanged(t0.Add(time.Duration(i)*time.Second), src, newFakeChanges("h1|m.v"), nil, func(Intent) { n++ })
	}
	if st := e.Stats().Rules[0]; n != 2 || st.Suppressed != 2 || !e.States()[0].Flapping {
		t.Errorf("%d intents, stats %+v", n, st)
	}
}

// Other scopes: the changed subjects of the scope are evaluated.
func TestEvalChangedScopes(t *testing.T) {
	e := NewEngine(mustParse(t, `groups:
  - name: s
    scope: service
    rules: [{name: r, expr: 'value("probe_http.up") < 1'}]
`))
	src := newFake("h1")
	src.scopes[ScopeService] = []string{"api", "web"}
	src.values["api|probe_http.up"], src.values["web|probe_http.up"] = 0, 0
	e.EvalChanged(t0, src, newFakeChanges("service:api|probe_http.up", "h1|probe_http.up"), nil, nil)
	var got []string
	for _, s := range e.States() {
		got = append(got, s.Subject+"="+s.State.String())
	}
	if g := strings.Join(got, " "); g != "api=firing" {
		t.Errorf("states %s", g)
	}
}
