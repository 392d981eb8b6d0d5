package controller

import (
	"math"
	"sort"
	"strings"
	"time"

	"github.com/vigil-sre/vigil/detectors"
	"github.com/vigil-sre/vigil/internal/wire"
	"github.com/vigil-sre/vigil/rules"
)

// series is the state of one numeric series of one host: its latest
// sample, an anomaly detector and a forecaster, all O(1).
type series struct {
	measurement, field string
	tags               []rules.Tag // sorted, host excluded
	tagString          string      // canonical "k=v,k=v"
	last               float64
	lastT              int64
	score              detectors.Score
	hold               detectors.PeakHold // score.Likelihood held for rules: see Anomaly
	det                detectors.Detector
	fc                 detectors.Forecaster
	lastAnomalyT       int64 // when the last anomaly event was emitted
	anomalous          bool
	preds              []prediction // one per forecast watch selecting it
	gauge              bool         // has decreased (not a counter reset): see detectorInput
	win                *sampleRing  // recent samples, only if a rule reads a window of it (store_window.go)
	pass               uint64       // the store's pass when it last took a sample (store_changes.go)
	queued             bool         // its model update is queued (ingest_par.go)
}

func (s *series) name() string { return s.measurement + "." + s.field }

func (s *series) tag(key string) (string, bool) {
	for _, t := range s.tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return "", false
}

// host is everything known about one host.
type host struct {
	name     string
	series   map[string]*series // by key: measurement \0 field \0 tags (line order)
	ordered  []*series          // for selector scans, in creation order
	lastSeen time.Time
	// selector cache: selector text -> matching series, valid while
	// len(ordered) is unchanged.
	matchN  int
	matches map[*rules.Selector][]*series
	// pass: the store's pass when a series of the host last took a sample;
	// tagSubjects: the service and model subjects its series belong to
	// (store_changes.go).
	pass        uint64
	tagSubjects []tagRef
}

// store holds every host's series. It is owned by the controller's state
// goroutine; nothing else touches it.
type store struct {
	hosts    map[string]*host
	names    []string // sorted host names, rebuilt when a host appears
	newDet   func() detectors.Detector
	newFc    func() detectors.Forecaster
	watches  []ForecastConfig
	key      []byte // scratch
	maxSerie int    // per host series limit
	// anomalyHold: how long Anomaly keeps a series' highest likelihood (detectors.anomaly_hold).
	anomalyHold time.Duration
	ext         *storeExt // scopes, labels, gaps, windows (store_scope.go)
	pass        uint64    // the current pass of changes, from 1 (store_changes.go)
	changed     []*host   // hosts with a series that took a sample in this pass
}

func newStore(newDet func() detectors.Detector, newFc func() detectors.Forecaster, watches []ForecastConfig) *store {
	return &store{hosts: map[string]*host{}, newDet: newDet, newFc: newFc, watches: watches, maxSerie: 100000, pass: 1}
}

func (st *store) host(name string) *host {
	h := st.hosts[name]
	if h == nil {
		h = &host{name: name, series: map[string]*series{}, matches: map[*rules.Selector][]*series{}}
		st.hosts[name] = h
		st.names = append(st.names, name)
		sort.Strings(st.names)
	}
	return h
}

// observe updates the series of one field of point p on host h and
// returns it. ok is false when the host reached its series limit.
func (st *store) observe(h *host, p *wire.PointView, f *wire.FieldView, x float64, t int64) (*series, bool) {
	s, ok := st.lookup(h, p, f)
	if !ok {
		return nil, false
	}
	w := st.take(h, s, x, t)
	w.feed()
	return s, true
}

// lookup returns the series of one field of point p on host h, created
// if new. ok is false when the host reached its series limit.
func (st *store) lookup(h *host, p *wire.PointView, f *wire.FieldView) (*series, bool) {
	k := st.key[:0]
	k = append(k, p.Measurement...)
	k = append(k, 0)
	k = append(k, f.Key...)
	k = append(k, 0)
	for _, tg := range p.Tags {
		if string(tg.Key) == "host" {
			continue
		}
		k = append(k, tg.Key...)
		k = append(k, '=')
		k = append(k, tg.Value...)
		k = append(k, ',')
	}
	st.key = k
	s := h.series[string(k)]
	if s == nil {
		if len(h.ordered) >= st.maxSerie {
			return nil, false
		}
		s = st.newSeries(p, f)
		h.series[string(k)] = s
		h.ordered = append(h.ordered, s)
		st.indexSeries(h, s)
	}
	return s, true
}

// take records sample x at t of series s of host h — everything but the
// models: the change marks, the latest value, the rule window — and
// returns the update of the models (detector, peak hold, forecaster) that
// is left to do, which touches s's models only (modelWork.feed).
func (st *store) take(h *host, s *series, x float64, t int64) modelWork {
	w := modelWork{h: h, s: s}
	if t < s.lastT { // out of order: keep latest, do not feed the models
		return w
	}
	s.pass = st.pass
	if h.pass != st.pass {
		h.pass = st.pass
		st.changed = append(st.changed, h)
	}
	w.in, w.det = s.detectorInput(t, x)
	w.fed, w.t, w.x = true, t, x
	s.last, s.lastT = x, t
	if s.win != nil {
		s.win.add(t, x)
	}
	return w
}

// detectorInput is what the anomaly detector sees of sample x at t. A
// cumulative counter (bytes sent, errors, reads) only ever grows, so its
// level says nothing: as long as a series has never decreased — apart from
// a drop to under a tenth of its value, a counter reset, which is skipped
// — the detector gets its rate per second. The first real decrease marks
// the series a gauge for good: the detector starts again on its values.
// Forecasters and rule functions always see the values themselves.
func (s *series) detectorInput(t int64, x float64) (float64, bool) {
	if s.gauge {
		return x, true
	}
	if s.lastT == 0 { // first sample: no rate yet
		return 0, false
	}
	switch {
	case x < s.last && x >= 0 && x < s.last/10: // counter reset
		return 0, false
	case x < s.last:
		s.gauge = true
		s.det.Reset()
		return x, true
	case t == s.lastT:
		return 0, false
	}
	return (x - s.last) / (float64(t-s.lastT) / 1e9), true
}

func (st *store) newSeries(p *wire.PointView, f *wire.FieldView) *series {
	s := &series{measurement: string(p.Measurement), field: string(f.Key), det: st.newDet(), fc: st.newFc()}
	s.hold.Span = int64(st.anomalyHold)
	for _, tg := range p.Tags {
		if string(tg.Key) == "host" {
			continue
		}
		s.tags = append(s.tags, rules.Tag{Key: string(tg.Key), Value: string(tg.Value)})
	}
	sort.Slice(s.tags, func(i, j int) bool { return s.tags[i].Key < s.tags[j].Key })
	parts := make([]string, len(s.tags))
	for i, t := range s.tags {
		parts[i] = t.Key + "=" + t.Value
	}
	s.tagString = strings.Join(parts, ",")
	for i := range st.watches {
		w := &st.watches[i]
		if w.sel.Match(s.measurement, s.field, s.tag) {
			s.preds = append(s.preds, prediction{watch: w})
		}
	}
	return s
}

// match returns the series of h selected by sel, cached until h gains a
// series.
func (h *host) match(sel *rules.Selector) []*series {
	if h.matchN != len(h.ordered) {
		clear(h.matches)
		h.matchN = len(h.ordered)
	}
	m, ok := h.matches[sel]
	if ok {
		return m
	}
	for _, s := range h.ordered {
		if sel.Match(s.measurement, s.field, s.tag) {
			m = append(m, s)
		}
	}
	h.matches[sel] = m
	return m
}

// Source implementation for the rule engine.

var _ rules.Source = (*store)(nil)

func (st *store) Subjects() []string { return st.names }

func (st *store) Value(subject string, sel *rules.Selector) (float64, bool) {
	h := st.hosts[subject]
	if h == nil {
		return 0, false
	}
	best, ok := math.Inf(-1), false
	for _, s := range h.match(sel) {
		if s.last > best || !ok {
			best, ok = s.last, true
		}
	}
	return best, ok
}

// Anomaly is the highest anomaly likelihood of the selected series, each held over the last
// anomalyHold of its samples (detectors.PeakHold): the ensemble reports an anomaly on the one
// sample where it starts, and a rule group evaluated less often must still see it.
func (st *store) Anomaly(subject string, sel *rules.Selector) (float64, bool) {
	h := st.hosts[subject]
	if h == nil {
		return 0, false
	}
	best, ok := 0.0, false
	for _, s := range h.match(sel) {
		if l := s.hold.Value(); l > best || !ok {
			best, ok = l, true
		}
	}
	return best, ok
}

func (st *store) ETA(subject string, sel *rules.Selector, level float64, now time.Time) (time.Duration, float64, bool) {
	h := st.hosts[subject]
	if h == nil {
		return 0, 0, false
	}
	eta, conf, ok := rules.Never, 0.0, false
	for _, s := range h.match(sel) {
		ok = true
		f := s.fc.ETA(now.UnixNano(), level)
		if f.OK && f.ETA < eta {
			eta, conf = f.ETA, f.Confidence
		}
	}
	return eta, conf, ok
}

// ETAWithin is the earliest ETA among the selected series whose forecaster expects a crossing
// within horizon with at least minConfidence (detectors.ForecastWithin, Forecast.Within).
func (st *store) ETAWithin(subject string, sel *rules.Selector, level float64, horizon time.Duration, minConfidence float64, now time.Time) (time.Duration, bool) {
	h := st.hosts[subject]
	if h == nil {
		return 0, false
	}
	return etaWithin(h.match(sel), level, horizon, minConfidence, now)
}

// etaWithin is the earliest ETA, among ss, of a crossing expected within horizon with at least
// minConfidence; Never if none; ok=false when ss is empty.
func etaWithin(ss []*series, level float64, horizon time.Duration, minConfidence float64, now time.Time) (time.Duration, bool) {
	eta := rules.Never
	for _, s := range ss {
		if f := detectors.ForecastWithin(s.fc, now.UnixNano(), level, horizon); f.Within(horizon, minConfidence) && f.ETA < eta {
			eta = f.ETA
		}
	}
	return eta, len(ss) > 0
}

func (st *store) Forecast(subject string, sel *rules.Selector, horizon time.Duration, now time.Time) (float64, bool) {
	h := st.hosts[subject]
	if h == nil {
		return 0, false
	}
	best, ok := math.Inf(-1), false
	for _, s := range h.match(sel) {
		if v, _, _, fok := s.fc.Predict(now.UnixNano(), horizon); fok && v > best {
			best, ok = v, true
		}
	}
	return best, ok
}

func (st *store) LastSeen(subject string) (time.Time, bool) {
	h := st.hosts[subject]
	if h == nil {
		return time.Time{}, false
	}
	return h.lastSeen, true
}
