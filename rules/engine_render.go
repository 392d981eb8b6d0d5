package rules

import (
	"strings"
	"time"
)

// scopeLabel is the label that names the subject in a scope.
func scopeLabel(scope string) string {
	if t := ScopeTag(scope); t != "" {
		return t
	}
	return "host"
}

// templateData builds the dot of templates for one rule on one subject,
// with its labels rendered: the subject's labels, then the rule's, then
// severity, group, rule and <scope>=subject (which a rule cannot override).
// values are the captured values alone (templates also see aliases).
func (e *Engine) templateData(rr *ruleRun, subject string, src Source, st *subjectState, now time.Time) (data *TemplateData, values map[string]float64) {
	r := rr.rule
	scope := r.group.Scope
	base := src.Labels(subject)
	labels := make(map[string]string, len(base)+len(r.Labels)+4)
	for k, v := range base {
		labels[k] = v
	}
	fixed := func() {
		labels["severity"], labels["group"], labels["rule"], labels[scopeLabel(scope)] = r.Severity, r.Group, r.Name, subject
	}
	fixed()
	values = make(map[string]float64, len(st.values))
	for _, c := range st.values {
		if _, dup := values[c.key]; !dup {
			values[c.key] = c.v
		}
	}
	withAliases := make(map[string]float64, len(values)*2)
	for k, v := range values {
		withAliases[k] = v
	}
	for _, c := range st.values {
		fn, _, _ := strings.Cut(c.key, ":")
		if _, dup := withAliases[fn]; !dup {
			withAliases[fn] = c.v
		}
	}
	data = &TemplateData{Subject: subject, Scope: scope, Rule: r.Name, Group: r.Group, Severity: r.Severity,
		State: st.state.String(), Labels: labels, Values: withAliases, Time: now, PredictedFailure: st.predicted}
	if scope == ScopeHost {
		data.Host = subject
	}
	rendered := make(map[string]string, len(r.Labels))
	for k, raw := range r.Labels {
		rendered[k] = e.render(rr, "labels."+k, raw, data)
	}
	for k, v := range rendered {
		labels[k] = v
	}
	fixed()
	return data, values
}

// annotations renders the rule's annotations.
func (e *Engine) annotations(rr *ruleRun, data *TemplateData) map[string]string {
	if len(rr.rule.Annotations) == 0 {
		return nil
	}
	out := make(map[string]string, len(rr.rule.Annotations))
	for k, raw := range rr.rule.Annotations {
		out[k] = e.render(rr, "annotations."+k, raw, data)
	}
	return out
}

func (e *Engine) render(rr *ruleRun, name, raw string, data *TemplateData) string {
	t := rr.rule.templates[name]
	if t == nil {
		return raw
	}
	s, err := t.render(raw, data)
	if err != nil {
		rr.stats.TemplateErrors++
	}
	return s
}
