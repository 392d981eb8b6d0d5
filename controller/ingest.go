package controller

import (
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/internal/wire"
)

// handle processes one telemetry message in the owner goroutine. Bad input
// is counted and reported; the good lines of a batch are kept. The model
// updates of its samples may stay queued, and the message unacknowledged,
// until finishBatches (ingest_par.go).
func (c *Controller) handle(m jetstream.Msg) {
	c.stats.Messages.Add(1)
	data := m.Data()
	subj := m.Subject()
	if len(data) > wire.MaxBatchBytes {
		c.stats.Oversize.Add(1)
		c.log.Warn("telemetry batch too large, dropped", "subject", subj, "bytes", len(data), "limit", wire.MaxBatchBytes)
		_ = m.Term()
		return
	}
	c.msgHost = wire.HostFromSubject(subj)
	c.msgNow = c.now()
	if h := m.Headers(); h != nil {
		c.sequence(c.msgHost, h.Get(wire.HeaderRun), h.Get(wire.HeaderSeq))
	}
	ok, bad, errs := c.dec.Decode(data, c.visitFn)
	c.stats.Points.Add(uint64(ok))
	if bad > 0 {
		c.stats.MalformedLines.Add(uint64(bad))
		if last := c.badLog[subj]; c.msgNow.Sub(last) >= time.Minute {
			c.badLog[subj] = c.msgNow
			c.log.Warn("malformed telemetry lines skipped", "subject", subj, "bad", bad, "good", ok, "first", errs[0].Error())
		}
	}
	c.unacked = append(c.unacked, m)
	if len(c.work) >= maxQueuedWork {
		c.finishBatches()
	}
}

// seqState follows Vigil-Seq of one publisher (subject token).
type seqState struct {
	run  string
	seq  uint64
	gaps uint64
}

// hostSeqCounts are the per-host totals of gaps and duplicates that
// /metrics shows (label host = the subject token). The owner goroutine adds
// (only when a host first appears, and on a gap or duplicate); HTTP
// handlers read. The zero value is ready.
type hostSeqCounts struct {
	mu sync.Mutex
	m  map[string]*[2]uint64 // host token -> gaps, duplicates
}

func (h *hostSeqCounts) add(host string, gaps, dups uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]*[2]uint64{}
	}
	v := h.m[host]
	if v == nil {
		v = new([2]uint64)
		h.m[host] = v
	}
	v[0] += gaps
	v[1] += dups
}

// snapshot returns the hosts in order with their counts.
func (h *hostSeqCounts) snapshot() (hosts []string, counts [][2]uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k := range h.m {
		hosts = append(hosts, k)
	}
	sort.Strings(hosts)
	for _, k := range hosts {
		counts = append(counts, *h.m[k])
	}
	return hosts, counts
}

// sequence does the gap accounting of Vigil-Seq per host and run.
func (c *Controller) sequence(hostTok, run, seqStr string) {
	if run == "" || seqStr == "" {
		return
	}
	seq, err := strconv.ParseUint(seqStr, 10, 64)
	if err != nil {
		return
	}
	h := c.seqs[hostTok]
	if h == nil {
		h = &seqState{}
		c.seqs[hostTok] = h
		c.hostSeqs.add(hostTok, 0, 0)
	}
	switch {
	case h.run != run:
		h.run, h.seq = run, seq
	case seq <= h.seq:
		c.stats.Duplicates.Add(1)
		c.hostSeqs.add(hostTok, 0, 1)
	default:
		if gap := seq - h.seq - 1; gap > 0 {
			h.gaps += gap
			c.stats.Gaps.Add(gap)
			c.store.recordGap(hostTok, c.msgNow, gap)
			c.hostSeqs.add(hostTok, gap, 0)
		}
		h.seq = seq
	}
}

// visit handles one decoded point.
func (c *Controller) visit(p *wire.PointView) {
	name := c.msgHost
	if v, ok := p.Tag("host"); ok && len(v) > 0 {
		if h, ok := c.store.hosts[string(v)]; ok { // no allocation when known
			c.observePoint(h, p)
			return
		}
		name = string(v)
	}
	c.observePoint(c.store.host(name), p)
}

func (c *Controller) observePoint(h *host, p *wire.PointView) {
	t := p.Time
	if !p.HasTime {
		t = c.msgNow.UnixNano()
	}
	if st := time.Unix(0, t); st.After(h.lastSeen) {
		h.lastSeen = st
	}
	for i := range p.Fields {
		f := &p.Fields[i]
		x, ok := f.Number()
		if !ok || math.IsNaN(x) || math.IsInf(x, 0) {
			c.stats.NonNumeric.Add(1)
			continue
		}
		c.queueSample(h, p, f, x, t) // handled in decodeBatch's flushWork (ingest_par.go)
	}
}

// anomaly records an anomaly event, at most one per series per min gap.
func (c *Controller) anomaly(h *host, s *series) {
	if s.anomalous && time.Duration(s.lastT-s.lastAnomalyT) < c.cfg.Detectors.AnomalyMinGap {
		return
	}
	s.anomalous = true
	s.lastAnomalyT = s.lastT
	c.stats.Anomalies.Add(1)
	ev := c.seriesEvent(wire.KindAnomaly, h, s, time.Unix(0, s.lastT))
	ev.State = "anomalous"
	ev.Score = s.score.Likelihood
	ev.Raw = s.score.Raw
	c.emit(ev)
}

func (c *Controller) seriesEvent(kind string, h *host, s *series, t time.Time) *wire.Event {
	return &wire.Event{
		Kind: kind, Time: t, Host: h.name,
		Series: s.name(), SeriesTags: s.tagString, Value: s.last,
	}
}

// emit publishes an event of the owner goroutine (anomaly, forecast,
// rule). Only the leader publishes, so that the history holds each once; a
// follower keeps the event for its next term or drops it (leadership.go).
func (c *Controller) emit(ev *wire.Event) {
	if c.follows(ev) {
		return
	}
	c.publishEvent(ev)
}

func (c *Controller) publishEvent(ev *wire.Event) {
	if ev.Kind == wire.KindForecast && ev.State == "predicted" {
		c.stats.Predictions.Add(1)
	}
	c.pub.Publish(ev)
}
