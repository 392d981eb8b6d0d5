package controller

import (
	"time"

	"github.com/vigil-sre/vigil/detectors"
	"github.com/vigil-sre/vigil/internal/wire"
)

// prediction is the state of one forecast watch on one series: whether a
// crossing of the watch's level is predicted within its horizon, and
// whether the series has actually crossed it.
//
// Hysteresis keeps a prediction from flapping (detectors.Watch, the same
// logic `vigil bench forecast` replays): it starts when the forecaster is
// confident (≥ min_confidence) of a crossing within the horizon, and holds
// until confidence falls below min_confidence − 0.2 or the crossing moves
// beyond 1.25 × horizon.
type prediction struct {
	watch    *ForecastConfig
	w        detectors.Watch
	lastEmit time.Time
	crossed  bool
}

// checkCrossing is called on every sample of a watched series; it reports
// the first sample at or over the level.
func (c *Controller) checkCrossing(h *host, s *series) {
	for i := range s.preds {
		p := &s.preds[i]
		lvl := p.watch.Level
		switch {
		case !p.crossed && s.last >= lvl:
			p.crossed = true
			ev := c.seriesEvent(wire.KindForecast, h, s, time.Unix(0, s.lastT))
			ev.State = "crossed"
			ev.Level = lvl
			if p.w.Active {
				ev.PredictedAt = time.Unix(0, p.w.PredictedAt)
				ev.LeadSeconds = float64(s.lastT-p.w.Since) / 1e9
			}
			p.w.Clear()
			c.emit(ev)
		case p.crossed && s.last < lvl-0.01*abs(lvl)-1e-9:
			p.crossed = false
		}
	}
}

// updateForecasts re-evaluates every watched series at now.
func (c *Controller) updateForecasts(now time.Time) {
	for _, name := range c.store.names {
		h := c.store.hosts[name]
		for _, s := range h.ordered {
			for i := range s.preds {
				c.updatePrediction(now, h, s, &s.preds[i])
			}
		}
	}
}

func (c *Controller) updatePrediction(now time.Time, h *host, s *series, p *prediction) {
	if p.crossed {
		return
	}
	w := p.watch
	f := p.w.Forecast(s.fc, now.UnixNano(), w.Level, w.Horizon)
	change := p.w.Update(now.UnixNano(), f, w.Horizon, w.MinConfidence)
	hold := change == detectors.WatchStarted || change == detectors.WatchHeld
	state := ""
	switch {
	case change == detectors.WatchStarted:
		state = "predicted"
	case hold && now.Sub(p.lastEmit) >= w.Interval:
		state = "updated"
	case change == detectors.WatchCleared:
		state = "cleared"
	}
	if state == "" {
		return
	}
	p.lastEmit = now
	ev := c.seriesEvent(wire.KindForecast, h, s, now)
	ev.State = state
	ev.Level = w.Level
	ev.Confidence = f.Confidence
	ev.Slope = s.fc.Slope()
	if hold {
		ev.ETASeconds = f.ETA.Seconds()
		ev.PredictedAt = now.Add(f.ETA)
	}
	c.emit(ev)
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
