package rules

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// evalOnce evaluates a one-rule file once at t0 over src and answers the
// transitions and intents.
func evalOnce(t *testing.T, file string, src *fakeSource) ([]Transition, []Intent, *Engine) {
	t.Helper()
	e := NewEngine(mustParse(t, file))
	var trans []Transition
	var intents []Intent
	e.Eval(t0, src, func(tr Transition) { trans = append(trans, tr) }, func(in Intent) { intents = append(intents, in) })
	return trans, intents, e
}

func TestFunctionsAndValues(t *testing.T) {
	src := newFake("h1")
	src.values["h1|disk.used_percent{path=/data}"] = 91.5
	src.anomalies["h1|cpu.usage_user{cpu=cpu-total}"] = 0.995
	src.etas["h1|disk.used_percent{path=/data}|100"] = fakeETA{40 * time.Minute, 0.9}
	src.etas["h1|mem.used_percent|95"] = fakeETA{Never, 0.95}
	src.etas["h1|disk.inodes_used_percent|95.5"] = fakeETA{10 * time.Minute, 0.3}
	src.forecasts["h1|mem.used_percent|1h0m0s"] = 97
	src.lastSeen["h1"] = t0.Add(-30 * time.Second)
	expr := `value("disk.used_percent{ path=/data }") > 90` +
		` && anomaly("cpu.usage_user{cpu=cpu-total}") > 0.99` +
		` && eta("disk.used_percent{path=/data}", 100) < duration("1h")` +
		` && eta("mem.used_percent", 95) == duration("2562047h47m16.854775807s")` +
		` && eta("disk.inodes_used_percent", 95.5) > duration("1000h")` +
		` && eta_confidence("disk.inodes_used_percent", 95.5) < 0.5` +
		` && forecast("mem.used_percent", duration("1h")) > 95` +
		` && since_seen() == duration("30s")` +
		` && host == "h1"`
	file := oneRule(expr, "severity: critical", "labels: {team: storage, host: spoofed}",
		"action: {kind: exec, program: tar}")
	trans, intents, _ := evalOnce(t, file, src)
	if len(trans) != 1 || trans[0].To != Firing {
		t.Fatalf("transitions %+v (calls %v)", trans, src.calls)
	}
	want := map[string]float64{
		"value:disk.used_percent{path=/data}":          91.5,
		"anomaly:cpu.usage_user{cpu=cpu-total}":        0.995,
		"eta:disk.used_percent{path=/data}:100":        2400,
		"eta:mem.used_percent:95":                      -1,
		"eta:disk.inodes_used_percent:95.5":            -1, // confidence 0.3 < 0.8
		"eta_confidence:disk.inodes_used_percent:95.5": 0.3,
		"forecast:mem.used_percent:1h":                 97,
		"since_seen":                                   30,
	}
	if !reflect.DeepEqual(trans[0].Values, want) {
		t.Errorf("values %v\nwant   %v", trans[0].Values, want)
	}
	if len(intents) != 1 {
		t.Fatalf("intents %+v", intents)
	}
	in := intents[0]
	if !in.PredictedFailure.Equal(t0.Add(40*time.Minute)) || !reflect.DeepEqual(in.Values, want) || in.At != t0 || in.Subject != "h1" {
		t.Errorf("intent %+v", in)
	}
	wantLabels := map[string]string{"team": "storage", "host": "h1", "severity": "critical", "group": "g", "rule": "r"}
	if !reflect.DeepEqual(in.Labels, wantLabels) {
		t.Errorf("labels %v, want %v", in.Labels, wantLabels)
	}
	wantCalls := "ETA(h1,disk.used_percent{path=/data},100,12:00:00) ETA(h1,mem.used_percent,95,12:00:00) " +
		"ETA(h1,disk.inodes_used_percent,95.5,12:00:00) ETA(h1,disk.inodes_used_percent,95.5,12:00:00) " +
		"Forecast(h1,mem.used_percent,1h0m0s,12:00:00)"
	if got := strings.Join(src.calls, " "); got != wantCalls {
		t.Errorf("calls %s\nwant  %s", got, wantCalls)
	}
}

// min_confidence is a group option; integer expressions work as levels.
func TestETAConfidenceAndLevels(t *testing.T) {
	for _, c := range []struct {
		minConf string
		conf    float64
		want    State
	}{{"", 0.85, Firing}, {"", 0.75, Inactive}, {"min_confidence: 0.5", 0.75, Firing}, {"min_confidence: 0.9", 0.85, Inactive}} {
		src := newFake("h1")
		src.values["h1|lim.v"] = 100
		src.etas["h1|disk.used_percent|100"] = fakeETA{20 * time.Minute, c.conf}
		file := strings.Replace(oneRule(`eta("disk.used_percent", int(value("lim.v"))) < duration("30m")`),
			"interval: 10s", "interval: 10s\n    "+c.minConf, 1)
		_, _, e := evalOnce(t, file, src)
		if got := e.States()[0].State; got != c.want {
			t.Errorf("%q conf %v: %s, want %s", c.minConf, c.conf, got, c.want)
		}
	}
}

func TestNoDataNamesTheCall(t *testing.T) {
	src := newFake("h1")
	src.values["h1|a.b"] = 1
	trans, _, e := evalOnce(t, oneRule(`value("a.b") > 0 && anomaly("c.d{x=1}") > 0.5`), src)
	if len(trans) != 1 || trans[0].To != NoData || trans[0].Err.Error() != "no data: anomaly:c.d{x=1}" {
		t.Fatalf("transitions %+v", trans)
	}
	st := e.States()[0]
	if st.Err != "no data: anomaly:c.d{x=1}" || !reflect.DeepEqual(st.Values, map[string]float64{"value:a.b": 1}) {
		t.Errorf("status %+v", st)
	}
	s := e.Stats()
	if s.NoData != 1 || s.Errors != 0 || s.Evaluations != 1 || s.Rules[0].NoData != 1 {
		t.Errorf("stats %+v", s)
	}
}

// Rules without an action alert but never produce intents.
func TestNoActionNoIntent(t *testing.T) {
	src := newFake("h1")
	src.values["h1|a.b"] = 1
	trans, intents, _ := evalOnce(t, oneRule(`value("a.b") > 0`), src)
	if len(trans) != 1 || trans[0].To != Firing || len(intents) != 0 {
		t.Errorf("transitions %+v intents %+v", trans, intents)
	}
}

func TestReplace(t *testing.T) {
	file := `groups:
  - name: g
    interval: 10s
    rules:
      - name: keep
        expr: value("a.b") > 0
        action: {kind: exec, program: "true"}
      - name: change
        expr: value("a.b") > 0
        action: {kind: exec, program: "true"}
      - name: drop
        expr: value("a.b") > 0
`
	e := NewEngine(mustParse(t, file))
	src := newFake("h1")
	src.values["h1|a.b"] = 1
	count := func(now time.Time) (n int, rules []string) {
		e.Eval(now, src, nil, func(in Intent) { rules = append(rules, in.Rule.Name) })
		return len(rules), rules
	}
	if n, _ := count(t0); n != 2 {
		t.Fatalf("%d intents at first firing, want 2", n)
	}
	// Reloading the same file (new Rule values) keeps every state.
	e.Replace(mustParse(t, "# reloaded\n"+file))
	if n, r := count(t0.Add(10 * time.Second)); n != 0 {
		t.Fatalf("reload re-fired %v", r)
	}
	changed := strings.Replace(file, "      - name: change\n        expr: value(\"a.b\") > 0", "      - name: change\n        expr: value(\"a.b\") > 0.5", 1)
	changed = strings.Replace(changed, "      - name: drop\n        expr: value(\"a.b\") > 0\n", "", 1)
	set := mustParse(t, changed)
	e.Replace(set)
	var states []string
	for _, s := range e.States() {
		states = append(states, s.Rule.Name+"="+s.State.String())
		if s.Rule != set.Rules()[0] {
			t.Errorf("state of %s refers to an old rule", s.Rule.Name)
		}
	}
	if got := strings.Join(states, " "); got != "keep=firing" {
		t.Errorf("states after replace: %s", got)
	}
	// The group keeps its schedule: not due 5 s after its last run.
	if n, _ := count(t0.Add(15 * time.Second)); n != 0 || e.Stats().Rules[0].Evaluations != 2 {
		t.Errorf("group ran off schedule: %+v", e.Stats())
	}
	if n, r := count(t0.Add(20 * time.Second)); n != 1 || r[0] != "change" {
		t.Errorf("changed rule: intents %v, want one for change", r)
	}
	if st := e.Stats(); len(st.Rules) != 2 || st.Rules[0].Evaluations != 3 || st.Rules[1].Evaluations != 1 {
		t.Errorf("stats %+v", st)
	}
}
