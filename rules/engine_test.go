package rules

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// tick is one evaluation of a timeline: the value of m.v at that time
// (NaN: no data; errVal: makes the expression fail), the state after it,
// the transition it reports ("" none, "from>to", "+resolved") and whether
// it produces an intent.
type tick struct {
	at     time.Duration
	v      float64
	want   State
	trans  string
	intent bool
}

const errVal = -999

// The condition is m.v > 10; m.v = -999 indexes out of range: an error.
const timelineExpr = `[1, 2][value("m.v") == -999 ? 5 : 0] == 1 && value("m.v") > 10`

// runTimeline runs the ticks on rule g/r twice: with every tick a round
// (Eval), and with the ticks that bring a value evaluated as new data
// (EvalChanged; no data and errors are left to rounds, which stay due):
// the two must not differ.
func runTimeline(t *testing.T, extra []string, ticks []tick) {
	t.Helper()
	for _, changed := range []bool{false, true} {
		t.Run(map[bool]string{false: "rounds", true: "changed"}[changed], func(t *testing.T) {
			t.Helper()
			runTimelineOnce(t, extra, ticks, changed)
		})
	}
}

func runTimelineOnce(t *testing.T, extra []string, ticks []tick, changed bool) {
	t.Helper()
	set := mustParse(t, oneRule(timelineExpr, append(extra, "action: {kind: exec, program: /bin/true}")...))
	e := NewEngine(set)
	src := newFake("h1")
	keys := map[string]bool{}
	for _, tk := range ticks {
		if math.IsNaN(tk.v) {
			delete(src.values, "h1|m.v")
		} else {
			src.values["h1|m.v"] = tk.v
		}
		var trans []string
		var intents []Intent
		now := t0.Add(tk.at)
		eval := e.Eval
		if changed && !math.IsNaN(tk.v) && tk.v != errVal {
			eval = func(now time.Time, src Source, onT func(Transition), onI func(Intent)) {
				e.EvalChanged(now, src, newFakeChanges("h1|m.v"), onT, onI)
			}
		}
		eval(now, src, func(tr Transition) {
			s := tr.From.String() + ">" + tr.To.String()
			if tr.Resolved {
				s += "+resolved"
			}
			trans = append(trans, s)
			if tr.At != now || tr.Subject != "h1" || tr.Rule.Name != "r" {
				t.Errorf("at %s: transition %+v", tk.at, tr)
			}
			if (tr.To == NoData) != errors.Is(tr.Err, ErrNoData) || (tr.To == Error) != (tr.Err != nil && !errors.Is(tr.Err, ErrNoData)) {
				t.Errorf("at %s: transition to %s with Err %v", tk.at, tr.To, tr.Err)
			}
		}, func(in Intent) { intents = append(intents, in) })
		if got := strings.Join(trans, ","); got != tk.trans {
			t.Errorf("at %s: transitions %q, want %q", tk.at, got, tk.trans)
		}
		if got := len(intents); got != map[bool]int{true: 1}[tk.intent] {
			t.Errorf("at %s: %d intents, want intent=%v", tk.at, got, tk.intent)
		}
		for _, in := range intents {
			if keys[in.Key] {
				t.Errorf("at %s: intent key %s repeated", tk.at, in.Key)
			}
			keys[in.Key] = true
			if want := fmt.Sprintf("g/r/h1/%d", now.UnixNano()); in.Key != want {
				t.Errorf("intent key %s, want %s", in.Key, want)
			}
		}
		st := e.States()
		if len(st) != 1 || st[0].State != tk.want {
			t.Fatalf("at %s: states %+v, want %s", tk.at, st, tk.want)
		}
	}
}

var nan = math.NaN()

func TestTimelineForZero(t *testing.T) {
	runTimeline(t, nil, []tick{
		{at: 0, v: 12, want: Firing, trans: "inactive>firing", intent: true},
		{at: 10 * time.Second, v: 13, want: Firing},
		{at: 20 * time.Second, v: 5, want: Inactive, trans: "firing>inactive+resolved"},
		{at: 30 * time.Second, v: 5, want: Inactive},
		{at: 40 * time.Second, v: 11, want: Firing, trans: "inactive>firing", intent: true},
	})
}

func TestTimelineFor(t *testing.T) {
	runTimeline(t, []string{"for: 30s"}, []tick{
		{at: 0, v: 12, want: Pending, trans: "inactive>pending"},
		{at: 10 * time.Second, v: 12, want: Pending},
		{at: 20 * time.Second, v: 2, want: Inactive, trans: "pending>inactive"},
		{at: 30 * time.Second, v: 12, want: Pending, trans: "inactive>pending"},
		{at: 40 * time.Second, v: 12, want: Pending},
		{at: 50 * time.Second, v: 12, want: Pending},
		{at: 60 * time.Second, v: 12, want: Firing, trans: "pending>firing", intent: true},
		{at: 70 * time.Second, v: 12, want: Firing},
		{at: 80 * time.Second, v: 1, want: Inactive, trans: "firing>inactive+resolved"},
	})
}

func TestTimelineKeepFiringFor(t *testing.T) {
	runTimeline(t, []string{"keep_firing_for: 25s"}, []tick{
		{at: 0, v: 12, want: Firing, trans: "inactive>firing", intent: true},
		{at: 10 * time.Second, v: 1, want: Firing},
		{at: 20 * time.Second, v: 12, want: Firing}, // true again: the window restarts
		{at: 30 * time.Second, v: 1, want: Firing},
		{at: 40 * time.Second, v: nan, want: Firing}, // a data gap inside the window
		{at: 50 * time.Second, v: 1, want: Inactive, trans: "firing>inactive+resolved"},
	})
}

func TestTimelineNoData(t *testing.T) {
	runTimeline(t, []string{"for: 10s"}, []tick{
		{at: 0, v: nan, want: NoData, trans: "inactive>nodata"},
		{at: 10 * time.Second, v: nan, want: NoData},
		{at: 20 * time.Second, v: 12, want: Pending, trans: "nodata>pending"},
		{at: 30 * time.Second, v: nan, want: NoData, trans: "pending>nodata"},
		{at: 40 * time.Second, v: 12, want: Pending, trans: "nodata>pending"}, // `for` starts again
		{at: 50 * time.Second, v: 12, want: Firing, trans: "pending>firing", intent: true},
		{at: 60 * time.Second, v: nan, want: NoData, trans: "firing>nodata+resolved"},
		{at: 70 * time.Second, v: 3, want: Inactive, trans: "nodata>inactive"},
	})
}

func TestTimelineError(t *testing.T) {
	runTimeline(t, nil, []tick{
		{at: 0, v: errVal, want: Error, trans: "inactive>error"},
		{at: 10 * time.Second, v: 12, want: Firing, trans: "error>firing", intent: true},
		{at: 20 * time.Second, v: errVal, want: Error, trans: "firing>error+resolved"},
		{at: 30 * time.Second, v: nan, want: NoData, trans: "error>nodata"},
		{at: 40 * time.Second, v: errVal, want: Error, trans: "nodata>error"},
		{at: 50 * time.Second, v: 1, want: Inactive, trans: "error>inactive"},
	})
}

// Groups run at their own interval, whatever the caller's tick.
func TestGroupSchedule(t *testing.T) {
	set := mustParse(t, `groups:
  - name: fast
    interval: 1s
    rules: [{name: a, expr: 'value("m.v") > 1'}]
  - name: slow
    interval: 10s
    rules: [{name: b, expr: 'value("m.v") > 1'}]
`)
	e := NewEngine(set)
	src := newFake("h1", "h2")
	src.values["h1|m.v"], src.values["h2|m.v"] = 1, 1
	for ms := 0; ms <= 25000; ms += 500 {
		e.Eval(t0.Add(time.Duration(ms)*time.Millisecond), src, nil, nil)
	}
	st := e.Stats()
	// fast: 0,1,...,25 s = 26 rounds; slow: 0,10,20 s = 3 rounds; 2 subjects each.
	if st.Rules[0].Evaluations != 52 || st.Rules[1].Evaluations != 6 || st.Evaluations != 58 {
		t.Errorf("stats %+v", st)
	}
}

func TestSubjectsComeAndGo(t *testing.T) {
	e := NewEngine(mustParse(t, oneRule(`value("m.v") > 10`)))
	src := newFake("a", "b")
	src.values["a|m.v"], src.values["b|m.v"] = 1, 20
	var trans []Transition
	on := func(tr Transition) { trans = append(trans, tr) }
	e.Eval(t0, src, on, nil)
	src.subjects = []string{"a", "c"}
	e.Eval(t0.Add(10*time.Second), src, on, nil)
	if len(trans) != 3 || trans[0].Subject != "b" || trans[0].To != Firing ||
		trans[1].Subject != "c" || trans[1].To != NoData ||
		trans[2].Subject != "b" || trans[2].From != Firing || trans[2].To != Inactive ||
		!trans[2].Resolved || !errors.Is(trans[2].Err, ErrSubjectGone) {
		t.Fatalf("transitions %+v", trans)
	}
	var subjects []string
	for _, s := range e.States() {
		subjects = append(subjects, s.Subject+"="+s.State.String())
	}
	if got := strings.Join(subjects, " "); got != "a=inactive c=nodata" {
		t.Errorf("states %s", got)
	}
}
