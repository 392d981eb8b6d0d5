package rules

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// fakeSource is a test double of the controller's Source: answers come
// from maps keyed by subject and canonical selector; a missing key is "no
// data". It records the arguments of ETA, ETAWithin and Forecast calls.
type fakeSource struct {
	subjects  []string
	values    map[string]float64 // subject|selector
	anomalies map[string]float64
	etas      map[string]fakeETA       // subject|selector|level
	withins   map[string]time.Duration // subject|selector|level|horizon: ETAWithin's answer
	forecasts map[string]float64       // subject|selector|horizon
	lastSeen  map[string]time.Time
	samples   map[string][]Sample // subject|selector
	gaps      map[string][]time.Time
	labels    map[string]map[string]string
	scopes    map[string][]string // scope -> subjects
	calls     []string
}

type fakeETA struct {
	eta  time.Duration
	conf float64
}

func newFake(subjects ...string) *fakeSource {
	sort.Strings(subjects)
	return &fakeSource{subjects: subjects, values: map[string]float64{}, anomalies: map[string]float64{},
		etas: map[string]fakeETA{}, withins: map[string]time.Duration{}, forecasts: map[string]float64{}, lastSeen: map[string]time.Time{},
		samples: map[string][]Sample{}, gaps: map[string][]time.Time{}, labels: map[string]map[string]string{},
		scopes: map[string][]string{}}
}

func (f *fakeSource) Subjects() []string { return f.subjects }

func (f *fakeSource) Value(subject string, sel *Selector) (float64, bool) {
	v, ok := f.values[subject+"|"+sel.String()]
	return v, ok
}

func (f *fakeSource) Anomaly(subject string, sel *Selector) (float64, bool) {
	v, ok := f.anomalies[subject+"|"+sel.String()]
	return v, ok
}

func (f *fakeSource) ETA(subject string, sel *Selector, level float64, now time.Time) (time.Duration, float64, bool) {
	f.calls = append(f.calls, fmt.Sprintf("ETA(%s,%s,%v,%s)", subject, sel, level, now.Format(time.TimeOnly)))
	e, ok := f.etas[fmt.Sprintf("%s|%s|%v", subject, sel, level)]
	return e.eta, e.conf, ok
}

func (f *fakeSource) ETAWithin(subject string, sel *Selector, level float64, horizon time.Duration, minConfidence float64, now time.Time) (time.Duration, bool) {
	f.calls = append(f.calls, fmt.Sprintf("ETAWithin(%s,%s,%v,%s,%v,%s)", subject, sel, level, horizon, minConfidence, now.Format(time.TimeOnly)))
	eta, ok := f.withins[fmt.Sprintf("%s|%s|%v|%s", subject, sel, level, horizon)]
	return eta, ok
}

func (f *fakeSource) Forecast(subject string, sel *Selector, horizon time.Duration, now time.Time) (float64, bool) {
	f.calls = append(f.calls, fmt.Sprintf("Forecast(%s,%s,%s,%s)", subject, sel, horizon, now.Format(time.TimeOnly)))
	v, ok := f.forecasts[fmt.Sprintf("%s|%s|%s", subject, sel, horizon)]
	return v, ok
}

func (f *fakeSource) LastSeen(subject string) (time.Time, bool) {
	t, ok := f.lastSeen[subject]
	return t, ok
}

func (f *fakeSource) Window(subject string, sel *Selector, q WindowQuery, now time.Time) (float64, bool) {
	s, ok := f.samples[subject+"|"+sel.String()]
	if !ok {
		return 0, false
	}
	return q.Reduce(s, now)
}

func (f *fakeSource) Gaps(subject string, since time.Time) (int, bool) {
	if _, ok := f.lastSeen[subject]; !ok {
		return 0, false
	}
	n := 0
	for _, t := range f.gaps[subject] {
		if !t.Before(since) {
			n++
		}
	}
	return n, true
}

func (f *fakeSource) Labels(subject string) map[string]string { return f.labels[subject] }

func (f *fakeSource) Hosts(role string) []string {
	var out []string
	for _, h := range f.subjects {
		if role == "" || f.labels[h]["role"] == role {
			out = append(out, h)
		}
	}
	return out
}

func (f *fakeSource) Scope(scope string) Source {
	if scope == ScopeHost {
		return f
	}
	return &fakeScoped{fakeSource: f, subjects: f.scopes[scope]}
}

// fakeScoped is the fake's view of another scope: the same answers, keyed
// by the scope's subject names.
type fakeScoped struct {
	*fakeSource
	subjects []string
}

func (f *fakeScoped) Subjects() []string { return f.subjects }

// mustParse compiles a rule file or fails the test.
func mustParse(t interface {
	Helper()
	Fatal(...any)
}, src string) *Set {
	t.Helper()
	set, err := Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// oneRule is a rule file with one group (interval 10s) holding one rule
// named r with the given extra YAML lines.
func oneRule(expr string, extra ...string) string {
	s := "groups:\n  - name: g\n    interval: 10s\n    rules:\n      - name: r\n        expr: '" + expr + "'\n"
	for _, e := range extra {
		s += "        " + e + "\n"
	}
	return s
}

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

// fakeChanges is a test double of the controller's Changes: the host-scope
// pairs subject|selector (canonical) given, or scope:subject|selector for
// other scopes, received samples.
type fakeChanges map[string]bool

func newFakeChanges(keys ...string) fakeChanges {
	ch := fakeChanges{}
	for _, k := range keys {
		ch[k] = true
	}
	return ch
}

func (ch fakeChanges) key(scope, subject string) string {
	if scope == ScopeHost {
		return subject
	}
	return scope + ":" + subject
}

func (ch fakeChanges) Subjects(scope string) []string {
	var out []string
	for k := range ch {
		sk, _, _ := strings.Cut(k, "|")
		subject, ok := strings.CutPrefix(sk, ch.key(scope, ""))
		if !ok || scope == ScopeHost && strings.Contains(sk, ":") || slices.Contains(out, subject) {
			continue
		}
		out = append(out, subject)
	}
	sort.Strings(out)
	return out
}

func (ch fakeChanges) Changed(scope, subject string, sel *Selector) bool {
	return ch[ch.key(scope, subject)+"|"+sel.String()]
}
