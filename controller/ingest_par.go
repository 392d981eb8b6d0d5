package controller

import (
	"sync"

	"github.com/vigil-sre/vigil/internal/wire"
)

// Parallel model updates. Most of ingestion's time goes into the models
// of a series (anomaly detector, forecaster): the ensemble's state is tens
// of KiB per series, mostly out of cache. Those updates are pure and
// independent per series, so telemetry is handled in three stages:
//
//  1. the owner decodes the batches already queued (up to the rule
//     evaluation that follows them, see Controller.loop, or maxQueuedWork
//     samples) and, per sample, finds the series and takes the sample
//     (store.take: change marks, latest value, window, gap accounting),
//     queueing the model update (modelWork);
//  2. the queued updates run on up to GOMAXPROCS goroutines, each on its
//     own contiguous part of the queue; each touches only the models,
//     score and peak hold of its own series;
//  3. the owner goes through the queue in order for everything that
//     depends on order: anomaly events and gaps, forecast crossings,
//     counters; then it acknowledges the messages.
//
// A series appears at most once in the queue: another sample of it first
// finishes the queue (stages 2 and 3). So every series sees the same
// sequence of updates, and the controller emits the same events in the
// same order, as when each sample is handled in full before the next.
// Nothing else reads the models or scores before stage 3: rules are
// evaluated after it. Small queues, or GOMAXPROCS 1, run stage 2 on the
// owner alone.
//
// The owner starts a goroutine for every part rather than taking one
// itself: a goroutine it starts waits in its own run queue's next slot,
// which an idle processor steals only after a pause (tens of µs on a VM),
// while it steals the others at once.

// minParallelWork is the smallest queue whose model updates are shared
// out; below it starting goroutines costs more than it saves (an idle
// processor takes ~20 µs to wake on a VM; the ensemble updates a
// cache-cold series in ~1 µs). maxQueuedWork bounds the queue (56 B per
// sample), and so how long the samples of a group of batches wait for
// their events.
const (
	minParallelWork = 256
	maxQueuedWork   = 8192
)

// modelWork is the model update of one taken sample.
type modelWork struct {
	h   *host
	s   *series
	t   int64
	x   float64 // the sample, for the forecaster
	in  float64 // the detector's input (series.detectorInput)
	det bool    // the detector takes in
	fed bool    // the models take the sample (false: it came out of order)
}

// feed updates the models of w's series. It touches nothing but them.
func (w *modelWork) feed() {
	if !w.fed {
		return
	}
	s := w.s
	if w.det {
		s.score = s.det.Observe(w.t, w.in)
		s.hold.Observe(w.t, s.score.Likelihood)
	}
	s.fc.Observe(w.t, w.x)
}

// decodeBatch decodes one telemetry batch and handles its samples in full.
func (c *Controller) decodeBatch(data []byte) (ok, bad int, errs []*wire.LineError) {
	ok, bad, errs = c.dec.Decode(data, c.visitFn)
	c.flushWork()
	return ok, bad, errs
}

// finishBatches finishes the queued samples and acknowledges the messages
// they came in.
func (c *Controller) finishBatches() {
	c.flushWork()
	for i, m := range c.unacked {
		_ = m.Ack()
		c.unacked[i] = nil
	}
	c.unacked = c.unacked[:0]
}

// queueSample takes sample x at t of the field f of point p on host h and
// queues its model update.
func (c *Controller) queueSample(h *host, p *wire.PointView, f *wire.FieldView, x float64, t int64) {
	s, ok := c.store.lookup(h, p, f)
	if !ok {
		c.stats.SeriesLimit.Add(1)
		return
	}
	if s.queued {
		c.flushWork()
	}
	s.queued = true
	c.work = append(c.work, c.store.take(h, s, x, t))
}

// flushWork runs the queued model updates and then, in order, what
// follows from them.
func (c *Controller) flushWork() {
	if len(c.work) == 0 {
		return
	}
	c.runModels(c.work)
	for i := range c.work {
		w := &c.work[i]
		s := w.s
		s.queued = false
		if s.score.Likelihood >= c.cfg.Detectors.AnomalyThreshold {
			c.anomaly(w.h, s)
		} else if s.anomalous && s.score.Likelihood < 0.5 {
			s.anomalous = false
		}
		if len(s.preds) > 0 {
			c.checkCrossing(w.h, s)
		}
		*w = modelWork{}
	}
	c.stats.Samples.Add(uint64(len(c.work)))
	c.work = c.work[:0]
}

// runModels feeds the models of work, shared out over c.parallel
// goroutines when work is large enough.
func (c *Controller) runModels(work []modelWork) {
	n := min(c.parallel, 2*len(work)/minParallelWork) // parts of at least minParallelWork/2
	if n < 2 {
		for i := range work {
			work[i].feed()
		}
		return
	}
	var wg sync.WaitGroup
	per := (len(work) + n - 1) / n
	for lo := 0; lo < len(work); lo += per {
		part := work[lo:min(lo+per, len(work))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range part {
				part[i].feed()
			}
		}()
	}
	wg.Wait()
}
