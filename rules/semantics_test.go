package rules

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A rule that fires and resolves 4 times within its flap window flaps:
// the 4th episode (and later ones) make no intent, and the state says so.
func TestFlapping(t *testing.T) {
	e := NewEngine(mustParse(t, oneRule(`value("m.v") > 10`,
		"flapping: {firings: 3, window: 2m}", "action: {kind: exec, program: /bin/true}")))
	src := newFake("h1")
	var intents []Intent
	var flapTrans int
	for i, v := range []float64{20, 1, 20, 1, 20, 1, 20, 1} {
		src.values["h1|m.v"] = v
		e.Eval(t0.Add(time.Duration(i)*10*time.Second), src, func(tr Transition) {
			if tr.Flapping {
				flapTrans++
			}
		}, func(in Intent) { intents = append(intents, in) })
	}
	if len(intents) != 2 || flapTrans != 4 { // firing #3, #4 and their resolutions
		t.Fatalf("%d intents, %d flapping transitions", len(intents), flapTrans)
	}
	if st := e.Stats().Rules[0]; st.Suppressed != 2 || st.Intents != 2 {
		t.Errorf("stats %+v", st)
	}
	// Quiet for the window: no longer flapping, the next firing acts.
	src.values["h1|m.v"] = 1
	e.Eval(t0.Add(4*time.Minute), src, nil, nil)
	if e.States()[0].Flapping {
		t.Error("still flapping after a quiet window")
	}
	src.values["h1|m.v"] = 20
	e.Eval(t0.Add(4*time.Minute+10*time.Second), src, nil, func(in Intent) { intents = append(intents, in) })
	if len(intents) != 3 {
		t.Errorf("%d intents after the quiet window", len(intents))
	}
}

// The no_data policies map a no-data outcome before the state machine.
func TestNoDataPolicies(t *testing.T) {
	for policy, want := range map[string]string{
		"nodata":     "firing nodata nodata",
		"keep_state": "firing firing firing",
		"ok":         "firing inactive inactive",
		"alert":      "firing firing firing",
	} {
		e := NewEngine(mustParse(t, oneRule(`value("m.v") > 10`, "no_data: "+policy,
			"action: {kind: exec, program: /bin/true}")))
		src := newFake("h1")
		src.values["h1|m.v"] = 20
		var states []string
		n := 0
		for i := range 3 {
			e.Eval(t0.Add(time.Duration(i)*10*time.Second), src, nil, func(Intent) { n++ })
			states = append(states, e.States()[0].State.String())
			delete(src.values, "h1|m.v")
		}
		if got := strings.Join(states, " "); got != want || n != 1 {
			t.Errorf("%s: %s (%d intents), want %s", policy, got, n, want)
		}
	}
	// no_data: alert fires on missing data but never acts on it.
	e := NewEngine(mustParse(t, oneRule(`value("m.v") > 10`, "no_data: alert", "action: {kind: exec, program: /bin/true}")))
	n := 0
	e.Eval(t0, newFake("h1"), nil, func(Intent) { n++ })
	if st := e.States()[0]; st.State != Firing || n != 0 || e.Stats().Rules[0].Suppressed != 1 {
		t.Errorf("alert on missing data: %s, %d intents", st.State, n)
	}
}

// One rule firing on many subjects in one round: one group of intents.
func TestIntentGroupsAndTemplates(t *testing.T) {
	set := mustParse(t, oneRule(`value("disk.used_percent") > 90`, "mode: manual",
		`labels: {where: "{{ .Labels.zone }}"}`,
		`annotations: {summary: "{{ .Labels.host }} {{ .Labels.where }} at {{ printf \"%.0f\" .Values.value }}% ({{ humanizeDuration 5400 }})"}`,
		"action: {kind: exec, program: /bin/true}"))
	src := newFake("a", "b", "c")
	src.values["a|disk.used_percent"], src.values["b|disk.used_percent"], src.values["c|disk.used_percent"] = 95, 50, 99
	src.labels["a"] = map[string]string{"zone": "eu-1", "role": "gpu"}
	var intents []Intent
	NewEngine(set).Eval(t0, src, nil, func(in Intent) { intents = append(intents, in) })
	if len(intents) != 2 || intents[0].GroupKey != intents[1].GroupKey || intents[0].GroupSize != 2 ||
		intents[0].GroupKey != "g/r/"+itoa(t0.UnixNano()) || intents[0].Mode != ModeManual {
		t.Fatalf("intents %+v", intents)
	}
	a := intents[0]
	if a.Subject != "a" || a.Labels["where"] != "eu-1" || a.Labels["role"] != "gpu" || a.Labels["host"] != "a" ||
		a.Annotations["summary"] != "a eu-1 at 95% (1h30m)" {
		t.Errorf("intent a: labels %v annotations %v", a.Labels, a.Annotations)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Service scope: subjects come from the source's scope view, the variable
// service is the subject.
func TestScopes(t *testing.T) {
	set := mustParse(t, `groups:
  - name: s
    scope: service
    rules: [{name: r, expr: 'service == subject && value("probe_http.up") < 1'}]
  - name: f
    scope: fleet
    rules: [{name: q, expr: 'share_hosts(role, "cpu.usage_user", ">", 90) >= 0.5 && count_hosts(role, "cpu.usage_user", ">", 90) == 1 && hosts(role) == 2'}]
`)
	src := newFake("h1", "h2", "h3")
	src.scopes[ScopeService] = []string{"api", "web"}
	src.scopes[ScopeFleet] = []string{"gpu"}
	src.values["api|probe_http.up"], src.values["web|probe_http.up"] = 0, 1
	src.labels["h1"], src.labels["h2"] = map[string]string{"role": "gpu"}, map[string]string{"role": "gpu"}
	src.values["h1|cpu.usage_user"], src.values["h2|cpu.usage_user"], src.values["h3|cpu.usage_user"] = 95, 10, 99
	e := NewEngine(set)
	e.Eval(t0, src, nil, nil)
	var got []string
	for _, s := range e.States() {
		got = append(got, s.Rule.Name+":"+s.Subject+"="+s.State.String())
	}
	if g := strings.Join(got, " "); g != "r:api=firing r:web=inactive q:gpu=firing" {
		t.Errorf("states %s", g)
	}
}

func TestWindowReduce(t *testing.T) {
	var s []Sample
	for i, v := range []float64{10, 12, 3, 5, 9} { // a counter reset after 12
		s = append(s, Sample{T: t0.Add(time.Duration(i) * time.Minute).UnixNano(), V: v})
	}
	now := t0.Add(4 * time.Minute)
	for _, c := range []struct {
		q    WindowQuery
		want float64
		ok   bool
	}{
		{WindowQuery{Func: WindowAvg, Window: time.Hour}, 7.8, true},
		{WindowQuery{Func: WindowMin, Window: 2 * time.Minute}, 3, true},
		{WindowQuery{Func: WindowMax, Window: time.Hour}, 12, true},
		{WindowQuery{Func: WindowCount, Window: 90 * time.Second}, 2, true},
		{WindowQuery{Func: WindowIncrease, Window: time.Hour}, 2 + 3 + 2 + 4, true},
		{WindowQuery{Func: WindowRate, Window: time.Hour}, 11.0 / 240, true},
		{WindowQuery{Func: WindowDelta, Window: time.Hour}, -1, true},
		{WindowQuery{Func: WindowQuantile, Q: 0.5, Window: time.Hour}, 9, true},
		{WindowQuery{Func: WindowQuantile, Q: 0.25, Window: time.Hour}, 5, true},
		{WindowQuery{Func: WindowStddev, Window: 90 * time.Second}, 2, true},
		{WindowQuery{Func: WindowRate, Window: 30 * time.Second}, 0, false}, // one sample
	} {
		v, ok := c.q.Reduce(s, now)
		if ok != c.ok || math.Abs(v-c.want) > 1e-9 {
			t.Errorf("%+v = %v, %v; want %v, %v", c.q, v, ok, c.want, c.ok)
		}
	}
	if _, ok := (WindowQuery{Func: WindowAvg, Window: time.Minute}).Reduce(s, t0.Add(-time.Hour)); ok {
		t.Error("a window before every sample has data")
	}
}
