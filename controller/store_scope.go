package controller

import (
	"math"
	"sort"
	"time"

	"github.com/vigil-sre/vigil/rules"
)

// The store's side of the rule scopes, labels, fleet and gap functions.
//
// Labels: a host's labels are the identity tags (rules.IdentityTags: role,
// zone, site, ...) of its series, the latest created series winning; they
// are read when a series is created, so a host that changes role shows it
// with its first point carrying the new tag. Scopes service and model: a
// subject is a value of the tag service or model; its series are those
// carrying it, whatever host sent them. Scope fleet: a subject is a role;
// its series are those of the hosts with that role label. Hosts without a
// role label belong to no fleet subject (but to hosts("")).
//
// Gaps: the Vigil-Seq gap accounting of ingest.go reports every gap here,
// under the subject token of the telemetry subject (the agent's host name);
// each host keeps its last maxGapEvents gap events (older ones are merged
// into the oldest kept), enough to answer gaps(window) for recent windows.

const maxGapEvents = 64

// storeExt is the state of these extensions; the store holds one.
type storeExt struct {
	labels    map[string]map[string]string      // host -> identity labels
	tagSubj   map[string]map[string]*tagSubject // "service"/"model" -> value -> subject
	tagNames  map[string][]string               // sorted subject names per tag, nil when stale
	roles     map[string][]string               // role -> sorted hosts; nil when stale
	rolesN    int                               // len(store.names) when roles was built
	roleNames []string                          // sorted keys of roles
	roleLbls  map[string]map[string]string      // fleet subject labels
	gaps      map[string][]gapEvent             // host -> recent gap events, oldest first
	needs     []rules.WindowNeed
	needsGen  uint64
	scratch   []rules.Sample
	matchTmp  []*series
	viewCache map[string]rules.Source
}

type gapEvent struct {
	t time.Time
	n int
}

// tagSubject is one subject of scope service or model.
type tagSubject struct {
	series  []*series
	hosts   map[string]bool
	labels  map[string]string
	matchN  int
	matches map[*rules.Selector][]*series
}

func (st *store) extension() *storeExt {
	if st.ext == nil {
		st.ext = &storeExt{labels: map[string]map[string]string{}, tagSubj: map[string]map[string]*tagSubject{},
			tagNames: map[string][]string{}, gaps: map[string][]gapEvent{}, viewCache: map[string]rules.Source{}}
	}
	return st.ext
}

// indexSeries is called once for every new series of host h.
func (st *store) indexSeries(h *host, s *series) {
	x := st.extension()
	for _, t := range s.tags {
		if !rules.IsIdentityTag(t.Key) {
			continue
		}
		l := x.labels[h.name]
		if l == nil {
			l = map[string]string{}
			x.labels[h.name] = l
		}
		if l[t.Key] != t.Value {
			l[t.Key] = t.Value
			if t.Key == "role" {
				x.roles = nil
			}
		}
	}
	for _, tag := range []string{"service", "model"} {
		v, ok := s.tag(tag)
		if !ok || v == "" {
			continue
		}
		m := x.tagSubj[tag]
		if m == nil {
			m = map[string]*tagSubject{}
			x.tagSubj[tag] = m
		}
		ts := m[v]
		if ts == nil {
			ts = &tagSubject{hosts: map[string]bool{}, labels: map[string]string{tag: v},
				matches: map[*rules.Selector][]*series{}}
			m[v] = ts
			x.tagNames[tag] = nil
		}
		ts.series = append(ts.series, s)
		if !ts.hosts[h.name] {
			h.tagSubjects = append(h.tagSubjects, tagRef{tag: tag, value: v})
		}
		ts.hosts[h.name] = true
		for _, t := range s.tags {
			if rules.IsIdentityTag(t.Key) && t.Key != tag {
				ts.labels[t.Key] = t.Value
			}
		}
	}
	if len(x.needs) > 0 {
		st.attachWindow(s)
	}
}

// recordGap notes n lost batches of host at t (from ingest's sequence).
func (st *store) recordGap(hostName string, t time.Time, n uint64) {
	x := st.extension()
	ev := x.gaps[hostName]
	if len(ev) >= maxGapEvents {
		ev[1].n += ev[0].n
		ev = append(ev[:0], ev[1:]...)
	}
	x.gaps[hostName] = append(ev, gapEvent{t: t, n: int(n)})
}

// Gaps implements rules.Source for the host scope.
func (st *store) Gaps(subject string, since time.Time) (int, bool) {
	if st.hosts[subject] == nil {
		return 0, false
	}
	n := 0
	for _, g := range st.extension().gaps[subject] {
		if !g.t.Before(since) {
			n += g.n
		}
	}
	return n, true
}

// Labels implements rules.Source for the host scope.
func (st *store) Labels(subject string) map[string]string { return st.extension().labels[subject] }

// Hosts implements rules.Source: hosts with the role label ("" = all).
func (st *store) Hosts(role string) []string {
	if role == "" {
		return st.names
	}
	return st.roleIndex()[role]
}

// roleIndex answers role -> sorted hosts, rebuilt after a role changed or
// a host appeared.
func (st *store) roleIndex() map[string][]string {
	x := st.extension()
	if x.roles == nil || x.rolesN != len(st.names) {
		x.roles, x.rolesN, x.roleNames = map[string][]string{}, len(st.names), nil
		for _, name := range st.names {
			if r := x.labels[name]["role"]; r != "" {
				x.roles[r] = append(x.roles[r], name)
			}
		}
		for r := range x.roles {
			x.roleNames = append(x.roleNames, r)
		}
		sort.Strings(x.roleNames)
	}
	return x.roles
}

// Scope implements rules.Source.
func (st *store) Scope(scope string) rules.Source {
	if scope == rules.ScopeHost {
		return st
	}
	x := st.extension()
	v := x.viewCache[scope]
	if v == nil {
		v = &scopeView{st: st, scope: scope, tag: rules.ScopeTag(scope)}
		x.viewCache[scope] = v
	}
	return v
}

// scopeView is the store seen from scope service, model or fleet.
type scopeView struct {
	st         *store
	scope, tag string
}

var _ rules.Source = (*scopeView)(nil)

func (v *scopeView) Subjects() []string {
	x := v.st.extension()
	if v.scope == rules.ScopeFleet {
		v.st.roleIndex()
		return x.roleNames
	}
	return sortedKeys(x.tagSubj[v.tag], &x.tagNames, v.tag)
}

func sortedKeys[V any](m map[string]V, cache *map[string][]string, key string) []string {
	if names := (*cache)[key]; names != nil && len(names) == len(m) {
		return names
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	(*cache)[key] = names
	return names
}

// match answers the series of a subject selected by sel. For fleet
// subjects the answer is built in a scratch slice valid until the next call.
func (v *scopeView) match(subject string, sel *rules.Selector) []*series {
	x := v.st.extension()
	if v.scope == rules.ScopeFleet {
		out := x.matchTmp[:0]
		for _, name := range v.st.Hosts(subject) {
			out = append(out, v.st.hosts[name].match(sel)...)
		}
		x.matchTmp = out
		return out
	}
	ts := x.tagSubj[v.tag][subject]
	if ts == nil {
		return nil
	}
	if ts.matchN != len(ts.series) {
		clear(ts.matches)
		ts.matchN = len(ts.series)
	}
	m, ok := ts.matches[sel]
	if !ok {
		for _, s := range ts.series {
			if sel.Match(s.measurement, s.field, s.tag) {
				m = append(m, s)
			}
		}
		ts.matches[sel] = m
	}
	return m
}

func (v *scopeView) Value(subject string, sel *rules.Selector) (float64, bool) {
	best, ok := math.Inf(-1), false
	for _, s := range v.match(subject, sel) {
		if s.last > best || !ok {
			best, ok = s.last, true
		}
	}
	return best, ok
}

func (v *scopeView) Anomaly(subject string, sel *rules.Selector) (float64, bool) {
	best, ok := 0.0, false
	for _, s := range v.match(subject, sel) {
		if l := s.hold.Value(); l > best || !ok {
			best, ok = l, true
		}
	}
	return best, ok
}

func (v *scopeView) ETA(subject string, sel *rules.Selector, level float64, now time.Time) (time.Duration, float64, bool) {
	eta, conf, ok := rules.Never, 0.0, false
	for _, s := range v.match(subject, sel) {
		ok = true
		if f := s.fc.ETA(now.UnixNano(), level); f.OK && f.ETA < eta {
			eta, conf = f.ETA, f.Confidence
		}
	}
	return eta, conf, ok
}

func (v *scopeView) ETAWithin(subject string, sel *rules.Selector, level float64, horizon time.Duration, minConfidence float64, now time.Time) (time.Duration, bool) {
	return etaWithin(v.match(subject, sel), level, horizon, minConfidence, now)
}

func (v *scopeView) Forecast(subject string, sel *rules.Selector, horizon time.Duration, now time.Time) (float64, bool) {
	best, ok := math.Inf(-1), false
	for _, s := range v.match(subject, sel) {
		if p, _, _, fok := s.fc.Predict(now.UnixNano(), horizon); fok && p > best {
			best, ok = p, true
		}
	}
	return best, ok
}

func (v *scopeView) Window(subject string, sel *rules.Selector, q rules.WindowQuery, now time.Time) (float64, bool) {
	return v.st.windowOver(v.match(subject, sel), q, now)
}

// hosts are the hosts whose series make up the subject.
func (v *scopeView) hosts(subject string) []string {
	if v.scope == rules.ScopeFleet {
		return v.st.Hosts(subject)
	}
	ts := v.st.extension().tagSubj[v.tag][subject]
	if ts == nil {
		return nil
	}
	out := make([]string, 0, len(ts.hosts))
	for h := range ts.hosts {
		out = append(out, h)
	}
	return out
}

// LastSeen is the newest sample of any series of the subject (fleet: the
// latest time any of its hosts was heard from).
func (v *scopeView) LastSeen(subject string) (time.Time, bool) {
	var last time.Time
	ok := false
	if v.scope == rules.ScopeFleet {
		for _, name := range v.st.Hosts(subject) {
			if t := v.st.hosts[name].lastSeen; t.After(last) || !ok {
				last, ok = t, true
			}
		}
		return last, ok
	}
	ts := v.st.extension().tagSubj[v.tag][subject]
	if ts == nil {
		return last, false
	}
	for _, s := range ts.series {
		if t := time.Unix(0, s.lastT); t.After(last) || !ok {
			last, ok = t, true
		}
	}
	return last, ok
}

// Gaps sums the gaps of the subject's hosts.
func (v *scopeView) Gaps(subject string, since time.Time) (int, bool) {
	hosts := v.hosts(subject)
	if len(hosts) == 0 {
		return 0, false
	}
	n := 0
	for _, h := range hosts {
		g, _ := v.st.Gaps(h, since)
		n += g
	}
	return n, true
}

func (v *scopeView) Labels(subject string) map[string]string {
	if v.scope == rules.ScopeFleet {
		x := v.st.extension()
		if x.roleLbls == nil || len(x.roleLbls) > 4096 {
			x.roleLbls = map[string]map[string]string{}
		}
		l := x.roleLbls[subject]
		if l == nil {
			l = map[string]string{"role": subject}
			x.roleLbls[subject] = l
		}
		return l
	}
	if ts := v.st.extension().tagSubj[v.tag][subject]; ts != nil {
		return ts.labels
	}
	return nil
}

func (v *scopeView) Hosts(role string) []string      { return v.st.Hosts(role) }
func (v *scopeView) Scope(scope string) rules.Source { return v.st.Scope(scope) }
