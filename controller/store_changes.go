package controller

import (
	"slices"
	"sort"

	"github.com/vigil-sre/vigil/rules"
)

// Changes: which series took samples since the rules last looked, so that
// the rules reading them are evaluated right after the telemetry batch
// (rules.Engine.EvalChanged) instead of waiting for their group's next
// round. The store counts passes: observe stamps a series that takes a
// sample with the current pass and lists its host once per pass; after
// the evaluation nextPass starts a new one. A stamp costs a store and a
// comparison per sample; nothing is allocated once the hosts are known.

// tagRef is one service or model subject (tag value) a host's series
// belong to.
type tagRef struct{ tag, value string }

// nextPass forgets the changes of the pass that ends.
func (st *store) nextPass() {
	st.pass++
	clear(st.changed)
	st.changed = st.changed[:0]
}

// storeChanges is the store's rules.Changes for the current pass.
type storeChanges struct{ st *store }

var _ rules.Changes = storeChanges{}

// Subjects are the subjects of scope with a series that took a sample,
// sorted: hosts, the service or model tag values of their series (a
// superset: every such value of a changed host), or their roles.
func (c storeChanges) Subjects(scope string) []string {
	st := c.st
	var out []string
	switch scope {
	case rules.ScopeHost:
		for _, h := range st.changed {
			out = append(out, h.name)
		}
	case rules.ScopeFleet:
		labels := st.extension().labels
		for _, h := range st.changed {
			if r := labels[h.name]["role"]; r != "" {
				out = append(out, r)
			}
		}
	default:
		tag := rules.ScopeTag(scope)
		for _, h := range st.changed {
			for _, ref := range h.tagSubjects {
				if ref.tag == tag {
					out = append(out, ref.value)
				}
			}
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// Changed reports whether a series of subject selected by sel took a
// sample in this pass.
func (c storeChanges) Changed(scope, subject string, sel *rules.Selector) bool {
	st := c.st
	switch scope {
	case rules.ScopeHost:
		if h := st.hosts[subject]; h != nil && h.pass == st.pass {
			return stamped(h.match(sel), st.pass)
		}
		return false
	case rules.ScopeFleet: // the changed hosts of the role, not all of them
		labels := st.extension().labels
		for _, h := range st.changed {
			if labels[h.name]["role"] == subject && stamped(h.match(sel), st.pass) {
				return true
			}
		}
		return false
	}
	v, ok := st.Scope(scope).(*scopeView)
	return ok && stamped(v.match(subject, sel), st.pass)
}

func stamped(ss []*series, pass uint64) bool {
	for _, s := range ss {
		if s.pass == pass {
			return true
		}
	}
	return false
}
