package agent

import (
	"slices"
	"time"

	"github.com/vigil-sre/vigil/detectors"
)

// maxRefSample bounds the values kept per numeric feature while a reference is built.
const maxRefSample = 100_000

// modelLimits are the settings every model state uses (from ModelsConfig, defaulted).
type modelLimits struct {
	window        time.Duration // time window, or 0 with windowCount
	windowCount   int
	panes         int
	minCount      int
	bins          int
	first         int
	maxFeatures   int
	maxCategories int
	tolerance     float64
	pendingLabels int
	labelTTL      time.Duration
}

// pane is one slice of the sliding window: scalar statistics here, feature counts in each
// feature's pane histograms at the same index.
type pane struct {
	n                uint64 // observations
	confSum          float64
	confN            uint64
	labeled, correct uint64
	lat              *detectors.LogHistogram
}

func (p *pane) reset() {
	p.n, p.confSum, p.confN, p.labeled, p.correct = 0, 0, 0, 0, 0
	p.lat.Reset()
}

// feature holds the reference and the window of one feature (or of the prediction).
type feature struct {
	name    string
	numeric bool
	inRef   bool      // the reference is frozen and has this feature
	sample  []float64 // numeric values while the reference is built

	bins  *detectors.Bins
	ref   *detectors.Histogram
	hists []*detectors.Histogram // per pane
	total *detectors.Histogram   // scratch: the window

	cats       *detectors.Categories
	refCounts  []float64
	paneCounts [][]float64
	totCounts  []float64
}

// modelState is the drift state of one model. Its owner (Models) serialises every call.
type modelState struct {
	lim           *modelLimits
	name, version string

	observations uint64 // since the start
	sinceCollect uint64
	lastCollect  time.Time

	frozen   bool // the reference is complete
	refN     int  // observations in the reference
	fromFile bool // the reference came from the reference file

	features map[string]*feature
	order    []*feature // sorted by name once frozen
	pred     *feature

	panes     []pane
	cur       int
	paneStart time.Time
	latTotal  *detectors.LogHistogram // scratch

	pending pendingLabels

	// Counters since the start.
	featuresDropped, typeErrors, unknownFeatures, missing uint64
	labelsUnmatched                                       uint64
}

func newLatencySketch() *detectors.LogHistogram {
	h, err := detectors.NewLogHistogram(detectors.DefaultLatencyMin, detectors.DefaultLatencyMax, detectors.DefaultLatencyRelErr)
	if err != nil {
		panic(err) // constant, valid parameters
	}
	return h
}

func newModelState(name string, lim *modelLimits, now time.Time) *modelState {
	m := &modelState{lim: lim, name: name, lastCollect: now, paneStart: now,
		features: map[string]*feature{}, panes: make([]pane, lim.panes), latTotal: newLatencySketch()}
	for i := range m.panes {
		m.panes[i].lat = newLatencySketch()
	}
	m.pending.init(lim.pendingLabels, lim.labelTTL)
	return m
}

// observe adds one observation (not a label line) at time now.
func (m *modelState) observe(o *observation, now time.Time) {
	m.rotate(now)
	if m.lim.windowCount > 0 && m.panes[m.cur].n >= uint64(max(m.lim.windowCount/m.lim.panes, 1)) {
		m.advance() // lazily, so that a full window holds window_count observations
	}
	m.observations++
	m.sinceCollect++
	if o.version != "" {
		m.version = o.version
	}
	for i := range o.features {
		m.addFeature(o.features[i].name, o.features[i].value, false)
	}
	if o.hasPred {
		m.addFeature(predictionKey, o.pred, true)
	}
	p := &m.panes[m.cur]
	if o.conf == o.conf { // not NaN
		p.confSum += o.conf
		p.confN++
	}
	if o.latency == o.latency {
		p.lat.Add(o.latency)
	}
	switch {
	case o.hasPred && o.hasLabel:
		m.score(o.pred, o.label)
	case o.hasPred && o.id != "":
		m.pending.put(o.id, o.pred, now)
	}
	if !m.frozen {
		m.refN++
		if m.lim.first > 0 && m.refN >= m.lim.first && !m.fromFile {
			m.freeze()
		}
	}
	p.n++
}

// label scores a label arriving after its observation.
func (m *modelState) label(id string, l value, now time.Time) {
	m.rotate(now)
	pred, ok, expired := m.pending.take(id, now)
	if !ok {
		if !expired {
			m.labelsUnmatched++
		}
		return
	}
	m.score(pred, l)
}

func (m *modelState) score(pred, label value) {
	p := &m.panes[m.cur]
	p.labeled++
	if pred.equal(label, m.lim.tolerance) {
		p.correct++
	}
}

func (m *modelState) addFeature(name string, v value, isPred bool) {
	if v.kind == kindMissing {
		m.missing++
		return
	}
	f := m.features[name]
	if f == nil {
		if m.frozen {
			m.unknownFeatures++
			return
		}
		if !isPred && len(m.features)-btoi(m.pred != nil) >= m.lim.maxFeatures {
			m.featuresDropped++
			return
		}
		f = m.newFeature(name, v.kind == kindNumber)
		if isPred {
			m.pred = f
		}
	}
	if (v.kind == kindNumber) != f.numeric {
		m.typeErrors++
		return
	}
	switch {
	case !m.frozen && f.numeric:
		if len(f.sample) < maxRefSample {
			f.sample = append(f.sample, v.num)
		}
	case !m.frozen:
		f.refCounts[f.cats.Index(v.str)]++
	case !f.inRef:
		m.unknownFeatures++
	case f.numeric:
		f.hists[m.cur].Add(v.num)
	default:
		f.paneCounts[m.cur][f.cats.Index(v.str)]++
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (m *modelState) newFeature(name string, numeric bool) *feature {
	f := &feature{name: name, numeric: numeric}
	if !numeric {
		f.cats, _ = detectors.NewCategories(m.lim.maxCategories) // validated in config
		f.refCounts = make([]float64, f.cats.Cap())
	}
	m.features[name] = f
	return f
}

// freeze completes the reference: numeric features get quantile bins from their sample.
func (m *modelState) freeze() {
	m.frozen = true
	m.order = m.order[:0]
	for name, f := range m.features {
		if f.numeric {
			bins, err := detectors.QuantileBins(f.sample, m.lim.bins)
			if err != nil { // no finite value: no reference for it
				delete(m.features, name)
				continue
			}
			f.bins, f.ref = bins, detectors.NewHistogram(bins)
			for _, x := range f.sample {
				f.ref.Add(x)
			}
			f.sample = nil
			f.total = detectors.NewHistogram(bins)
			f.hists = make([]*detectors.Histogram, m.lim.panes)
			for i := range f.hists {
				f.hists[i] = detectors.NewHistogram(bins)
			}
		} else {
			f.totCounts = make([]float64, f.cats.Cap())
			f.paneCounts = make([][]float64, m.lim.panes)
			for i := range f.paneCounts {
				f.paneCounts[i] = make([]float64, f.cats.Cap())
			}
		}
		f.inRef = true
		m.order = append(m.order, f)
	}
	slices.SortFunc(m.order, func(a, b *feature) int {
		if a.name < b.name {
			return -1
		}
		if a.name > b.name {
			return 1
		}
		return 0
	})
}

// rotate advances a time window to now: a pane covers window/panes.
func (m *modelState) rotate(now time.Time) {
	if m.lim.window <= 0 {
		return
	}
	d := m.lim.window / time.Duration(m.lim.panes)
	for k := 0; now.Sub(m.paneStart) >= d; k++ {
		if k >= m.lim.panes { // every pane is stale: realign
			m.paneStart = now
			return
		}
		m.advance()
		m.paneStart = m.paneStart.Add(d)
	}
}

// advance starts the next pane, dropping the oldest.
func (m *modelState) advance() {
	m.cur = (m.cur + 1) % len(m.panes)
	m.panes[m.cur].reset()
	for _, f := range m.order {
		if f.numeric {
			f.hists[m.cur].Reset()
		} else {
			clear(f.paneCounts[m.cur])
		}
	}
}

// windowStats sums the panes: observations, mean confidence, labelled and correct counts and
// the latency sketch of the window (m.latTotal).
func (m *modelState) windowStats() (n uint64, conf float64, labeled, correct uint64) {
	var cs float64
	var cn uint64
	m.latTotal.Reset()
	for i := range m.panes {
		p := &m.panes[i]
		n += p.n
		cs += p.confSum
		cn += p.confN
		labeled += p.labeled
		correct += p.correct
		m.latTotal.Merge(p.lat)
	}
	conf = nan
	if cn > 0 {
		conf = cs / float64(cn)
	}
	return n, conf, labeled, correct
}

// drift sums the panes of f and compares the window with the reference; count is the number
// of values in the window.
func (f *feature) drift() (detectors.Drift, float64) {
	if f.numeric {
		f.total.Reset()
		for _, h := range f.hists {
			f.total.Merge(h)
		}
		return detectors.NumericDrift(f.ref, f.total), f.total.N
	}
	clear(f.totCounts)
	n := 0.0
	for _, c := range f.paneCounts {
		for i, x := range c {
			f.totCounts[i] += x
			n += x
		}
	}
	return detectors.CategoricalDrift(f.refCounts, f.totCounts), n
}

// addReference adds one observation of the reference file to the reference being built.
func (m *modelState) addReference(o *observation) {
	for i := range o.features {
		m.addFeature(o.features[i].name, o.features[i].value, false)
	}
	if o.hasPred {
		m.addFeature(predictionKey, o.pred, true)
	}
	m.refN++
}
