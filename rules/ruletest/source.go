package ruletest

import (
	"math"
	"sort"
	"time"

	"github.com/vigil-sre/vigil/detectors"
	"github.com/vigil-sre/vigil/rules"
)

// tseries is one input series and its models, fed up to the clock.
type tseries struct {
	measurement, field, host string
	tags                     []rules.Tag // sorted, host excluded
	input                    []rules.Sample
	fed                      int
	det                      detectors.Detector
	fc                       detectors.Forecaster
	score                    detectors.Score
	hold                     detectors.PeakHold // what anomaly() reads, as in the controller
}

func (s *tseries) tag(key string) (string, bool) {
	for _, t := range s.tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return "", false
}

func (s *tseries) latest() (rules.Sample, bool) {
	if s.fed == 0 {
		return rules.Sample{}, false
	}
	return s.input[s.fed-1], true
}

type gapEvent struct {
	t time.Time
	n int
}

// source is a rules.Source over the input series of one test.
type source struct {
	series []*tseries
	det    string // anomaly detector name
	fc     string // forecaster name
	gaps   map[string][]gapEvent
	scope  string
	root   *source
	labels map[string]map[string]string // host -> identity labels
	now    time.Time                    // the evaluation time (gaps after it have not happened yet)
}

func newSource(det, fc string) *source {
	s := &source{det: det, fc: fc, gaps: map[string][]gapEvent{}, scope: rules.ScopeHost, labels: map[string]map[string]string{}}
	s.root = s
	return s
}

func (src *source) add(s *tseries) error {
	var err error
	if s.det, err = detectors.NewDetector(src.det); err != nil {
		return err
	}
	if s.fc, err = detectors.NewForecaster(src.fc); err != nil {
		return err
	}
	src.series = append(src.series, s)
	for _, t := range s.tags {
		if rules.IsIdentityTag(t.Key) {
			if src.labels[s.host] == nil {
				src.labels[s.host] = map[string]string{}
			}
			src.labels[s.host][t.Key] = t.Value
		}
	}
	return nil
}

// advance feeds every sample up to now to the models.
func (src *source) advance(now time.Time) {
	t := now.UnixNano()
	for _, s := range src.series {
		for s.fed < len(s.input) && s.input[s.fed].T <= t {
			x := s.input[s.fed]
			s.score = s.det.Observe(x.T, x.V)
			s.hold.Observe(x.T, s.score.Likelihood)
			s.fc.Observe(x.T, x.V)
			s.fed++
		}
	}
}

// member reports whether series s belongs to subject in the scope.
func (src *source) member(s *tseries, subject string) bool {
	switch src.scope {
	case rules.ScopeHost:
		return s.host == subject
	case rules.ScopeFleet:
		return src.root.labels[s.host]["role"] == subject
	}
	v, ok := s.tag(rules.ScopeTag(src.scope))
	return ok && v == subject
}

// each calls f for every fed series of subject selected by sel.
func (src *source) each(subject string, sel *rules.Selector, f func(s *tseries)) {
	for _, s := range src.series {
		if s.fed > 0 && src.member(s, subject) && sel.Match(s.measurement, s.field, s.tag) {
			f(s)
		}
	}
}

func (src *source) Subjects() []string {
	set := map[string]bool{}
	for _, s := range src.series {
		if s.fed == 0 {
			continue
		}
		switch src.scope {
		case rules.ScopeHost:
			set[s.host] = true
		case rules.ScopeFleet:
			if r := src.root.labels[s.host]["role"]; r != "" {
				set[r] = true
			}
		default:
			if v, ok := s.tag(rules.ScopeTag(src.scope)); ok && v != "" {
				set[v] = true
			}
		}
	}
	return sortedSet(set)
}

func sortedSet(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// maxOf answers the largest of the values f gives for the selected series.
func (src *source) maxOf(subject string, sel *rules.Selector, f func(s *tseries) (float64, bool)) (float64, bool) {
	best, ok := math.Inf(-1), false
	src.each(subject, sel, func(s *tseries) {
		if v, vok := f(s); vok && (v > best || !ok) {
			best, ok = v, true
		}
	})
	return best, ok
}

func (src *source) Value(subject string, sel *rules.Selector) (float64, bool) {
	return src.maxOf(subject, sel, func(s *tseries) (float64, bool) {
		x, ok := s.latest()
		return x.V, ok
	})
}

func (src *source) Anomaly(subject string, sel *rules.Selector) (float64, bool) {
	return src.maxOf(subject, sel, func(s *tseries) (float64, bool) { return s.hold.Value(), true })
}

func (src *source) ETA(subject string, sel *rules.Selector, level float64, now time.Time) (time.Duration, float64, bool) {
	eta, conf, ok := rules.Never, 0.0, false
	src.each(subject, sel, func(s *tseries) {
		ok = true
		if f := s.fc.ETA(now.UnixNano(), level); f.OK && f.ETA < eta {
			eta, conf = f.ETA, f.Confidence
		}
	})
	return eta, conf, ok
}

func (src *source) ETAWithin(subject string, sel *rules.Selector, level float64, horizon time.Duration, minConfidence float64, now time.Time) (time.Duration, bool) {
	eta, ok := rules.Never, false
	src.each(subject, sel, func(s *tseries) {
		ok = true
		if f := detectors.ForecastWithin(s.fc, now.UnixNano(), level, horizon); f.Within(horizon, minConfidence) && f.ETA < eta {
			eta = f.ETA
		}
	})
	return eta, ok
}

func (src *source) Forecast(subject string, sel *rules.Selector, horizon time.Duration, now time.Time) (float64, bool) {
	return src.maxOf(subject, sel, func(s *tseries) (float64, bool) {
		v, _, _, ok := s.fc.Predict(now.UnixNano(), horizon)
		return v, ok
	})
}

func (src *source) Window(subject string, sel *rules.Selector, q rules.WindowQuery, now time.Time) (float64, bool) {
	return src.maxOf(subject, sel, func(s *tseries) (float64, bool) { return q.Reduce(s.input[:s.fed], now) })
}

// hostsOf are the hosts contributing fed series to the subject.
func (src *source) hostsOf(subject string) []string {
	set := map[string]bool{}
	for _, s := range src.series {
		if s.fed > 0 && src.member(s, subject) {
			set[s.host] = true
		}
	}
	return sortedSet(set)
}

func (src *source) LastSeen(subject string) (time.Time, bool) {
	var last int64
	ok := false
	for _, s := range src.series {
		if x, fed := s.latest(); fed && src.member(s, subject) && (x.T > last || !ok) {
			last, ok = x.T, true
		}
	}
	return time.Unix(0, last), ok
}

func (src *source) Gaps(subject string, since time.Time) (int, bool) {
	hosts := src.hostsOf(subject)
	if len(hosts) == 0 {
		return 0, false
	}
	n := 0
	for _, h := range hosts {
		for _, g := range src.root.gaps[h] {
			if !g.t.Before(since) && !g.t.After(src.root.now) {
				n += g.n
			}
		}
	}
	return n, true
}

func (src *source) Labels(subject string) map[string]string {
	switch src.scope {
	case rules.ScopeHost:
		return src.root.labels[subject]
	case rules.ScopeFleet:
		return map[string]string{"role": subject}
	}
	tag := rules.ScopeTag(src.scope)
	out := map[string]string{tag: subject}
	for _, s := range src.series {
		if v, ok := s.tag(tag); ok && v == subject {
			for _, t := range s.tags {
				if rules.IsIdentityTag(t.Key) && t.Key != tag {
					out[t.Key] = t.Value
				}
			}
		}
	}
	return out
}

func (src *source) Hosts(role string) []string {
	root := src.root
	set := map[string]bool{}
	for _, s := range root.series {
		if s.fed > 0 && (role == "" || root.labels[s.host]["role"] == role) {
			set[s.host] = true
		}
	}
	return sortedSet(set)
}

func (src *source) Scope(scope string) rules.Source {
	if scope == rules.ScopeHost {
		return src.root
	}
	return &source{series: src.root.series, scope: scope, root: src.root}
}
