package ruletest

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vigil-sre/vigil/rules"
)

// alertLine is one alert, expected or got, in a comparable form.
type alertLine struct {
	subject, state string
	flapping       bool
	labels, annots map[string]string
}

func (a alertLine) String() string {
	s := a.subject + " " + a.state
	if a.flapping {
		s += " flapping"
	}
	if len(a.labels) > 0 {
		s += " labels " + formatMap(a.labels)
	}
	if len(a.annots) > 0 {
		s += " annotations " + formatMap(a.annots)
	}
	return s
}

func formatMap(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, m[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// matches: same subject, state and flapping; the expected labels are
// there; the expected annotations are equal.
func (a alertLine) matches(got alertLine) bool {
	if a.subject != got.subject || a.state != got.state || a.flapping != got.flapping {
		return false
	}
	for k, v := range a.labels {
		if got.labels[k] != v {
			return false
		}
	}
	for k, v := range a.annots {
		if got.annots[k] != v {
			return false
		}
	}
	return true
}

func (r *runner) checkAlerts(i int, states []rules.RuleStatus, last map[string]rules.Transition) []string {
	check := r.spec.Alerts[i]
	rule := r.rule(check.Rule)
	var got []alertLine
	for _, st := range states {
		if st.Rule.Group != rule.Group || st.Rule.Name != rule.Name || st.State == rules.Inactive {
			continue
		}
		tr := last[rule.Group+"/"+rule.Name+"/"+st.Subject]
		got = append(got, alertLine{subject: st.Subject, state: st.State.String(), flapping: st.Flapping,
			labels: tr.Labels, annots: tr.Annotations})
	}
	var exp []alertLine
	for _, a := range check.Alerts {
		exp = append(exp, alertLine{subject: a.Subject, state: a.State, flapping: a.Flapping,
			labels: a.Labels, annots: a.Annotations})
	}
	sort.SliceStable(exp, func(i, j int) bool { return exp[i].subject < exp[j].subject })
	ok := len(exp) == len(got)
	for k := 0; ok && k < len(exp); k++ {
		ok = exp[k].matches(got[k])
	}
	if ok {
		return nil
	}
	return []string{r.fail(fmt.Sprintf(".alerts[%d]", i), "alerts of %s at %s:\n  expected:%s\n  got:%s",
		check.Rule, formatDur(r.alertAt[i]), listLines(exp), listLines(got))}
}

func listLines[T fmt.Stringer](xs []T) string {
	if len(xs) == 0 {
		return " none"
	}
	var b strings.Builder
	for _, x := range xs {
		b.WriteString("\n    ")
		b.WriteString(x.String())
	}
	return b.String()
}

// actionLine is one intent, expected or got.
type actionLine struct {
	at                          time.Duration
	rule, subject, action, mode string
	groupSize                   int
}

func (a actionLine) String() string {
	s := fmt.Sprintf("at %s %s on %s", formatDur(a.at), a.rule, a.subject)
	if a.action != "" {
		s += ": " + a.action
	}
	if a.mode != "" {
		s += " mode " + a.mode
	}
	if a.groupSize > 0 {
		s += fmt.Sprintf(" group of %d", a.groupSize)
	}
	return s
}

func (a actionLine) matches(got actionLine) bool {
	return a.at == got.at && (a.rule == got.rule || strings.HasSuffix(got.rule, "/"+a.rule)) &&
		a.subject == got.subject && (a.action == "" || a.action == got.action) &&
		(a.mode == "" || a.mode == got.mode) && (a.groupSize == 0 || a.groupSize == got.groupSize)
}

func (r *runner) checkActions(intents []gotIntent) []string {
	var got []actionLine
	for _, g := range intents {
		got = append(got, actionLine{at: g.at, rule: g.in.Rule.Group + "/" + g.in.Rule.Name, subject: g.in.Subject,
			action: g.in.Rule.Action.Name, mode: g.in.Mode, groupSize: g.in.GroupSize})
	}
	var exp []actionLine
	for i, a := range *r.spec.Actions {
		exp = append(exp, actionLine{at: r.actionAt[i], rule: a.Rule, subject: a.Subject, action: a.Action,
			mode: a.Mode, groupSize: a.GroupSize})
	}
	less := func(x []actionLine) func(i, j int) bool {
		return func(i, j int) bool {
			if x[i].at != x[j].at {
				return x[i].at < x[j].at
			}
			return x[i].subject < x[j].subject
		}
	}
	sort.SliceStable(exp, less(exp))
	sort.SliceStable(got, less(got))
	ok := len(exp) == len(got)
	for k := 0; ok && k < len(exp); k++ {
		ok = exp[k].matches(got[k])
	}
	if ok {
		return nil
	}
	return []string{r.fail(".actions", "actions:\n  expected:%s\n  got:%s", listLines(exp), listLines(got))}
}

// formatDur writes d without zero units: 30s, 5m, 1h, 1h30m, 1m30s.
func formatDur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") || strings.HasSuffix(s, "h0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
