package forecastbench

import (
	"time"

	"github.com/vigil-sre/vigil/detectors"
)

// Watch is the controller's forecast watch being replayed: a prediction starts when the
// forecaster is at least MinConfidence sure of a crossing within Horizon (detectors.Watch).
type Watch struct {
	Horizon       time.Duration
	MinConfidence float64
}

// HostResult is what happened on one simulated host.
type HostResult struct {
	Seed     uint64
	Failure  bool
	Onset    int64 // Unix ns; 0 on a stable host
	Crossing int64 // the first sample at or over the level after the onset; 0: none
	// Predicted: a prediction stood when the series crossed the level, started at Since (the
	// moment the forecast first held steadily: it stayed predicted until the crossing) with the
	// crossing then predicted for PredictedAt.
	Predicted   bool
	Since       int64
	PredictedAt int64
	LastPredAt  int64 // the crossing time predicted by the last forecast before the crossing
	// FalseAlarms: predictions started on a stable host or before a failure's onset.
	FalseAlarms int
	// Flaps: predictions started after the onset and cleared before the crossing.
	Flaps int
	// AlarmTime: the simulated time in which a false alarm could happen (the whole trace on a
	// stable host, the time before the onset on a failing one).
	AlarmTime time.Duration
}

// Lead is the time from the steady prediction to the crossing (0 if none).
func (h HostResult) Lead() time.Duration {
	if !h.Predicted {
		return 0
	}
	return time.Duration(h.Crossing - h.Since)
}

// Replay feeds tr to fc sample by sample and, after each sample, asks fc for the ETA to level
// at that sample's time and applies the controller's hysteresis (detectors.Watch) to it — what
// the controller does on every forecast tick. On a failing host the replay stops at the first
// sample at or over the level after the onset, as the controller's "crossed" event does.
func Replay(tr Trace, fc detectors.Forecaster, level float64, w Watch) HostResult {
	res := HostResult{Failure: tr.Onset != 0, Onset: tr.Onset}
	var watch benchWatch
	for i, t := range tr.T {
		x := tr.X[i]
		fc.Observe(t, x)
		if res.Failure && t >= tr.Onset && x >= level {
			res.Crossing = t
			if watch.Active {
				res.Predicted, res.Since, res.PredictedAt = true, watch.Since, watch.predictedAtStart
			}
			break
		}
		change := watch.update(t, watch.Forecast(fc, t, level, w.Horizon), w)
		switch change {
		case detectors.WatchStarted:
			if !res.Failure || t < tr.Onset {
				res.FalseAlarms++
			}
		case detectors.WatchCleared:
			if res.Failure && watch.startedAfterOnset(tr.Onset) {
				res.Flaps++
			}
		}
		if watch.Active {
			res.LastPredAt = watch.PredictedAt
		}
	}
	if res.Failure {
		res.AlarmTime = time.Duration(tr.Onset - tr.T[0])
	} else {
		res.AlarmTime = time.Duration(tr.End - tr.T[0])
	}
	return res
}

// benchWatch is detectors.Watch plus the crossing time predicted when the prediction started.
type benchWatch struct {
	detectors.Watch
	predictedAtStart int64
}

func (b *benchWatch) update(now int64, f detectors.Forecast, w Watch) detectors.WatchChange {
	c := b.Update(now, f, w.Horizon, w.MinConfidence)
	if c == detectors.WatchStarted {
		b.predictedAtStart = b.PredictedAt
	}
	return c
}

func (b *benchWatch) startedAfterOnset(onset int64) bool { return b.Since >= onset }
