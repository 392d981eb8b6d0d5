package detectors

import "time"

// WatchChange is what one Watch.Update did to the prediction.
type WatchChange uint8

// The outcomes of Watch.Update.
const (
	WatchIdle    WatchChange = iota // no prediction before or after
	WatchStarted                    // a prediction started
	WatchHeld                       // a standing prediction still holds
	WatchCleared                    // a standing prediction was withdrawn
)

// Hysteresis of a Watch: a standing prediction is kept while its confidence stays at or above
// MinConfidence − HoldConfidenceDrop and its ETA within HoldHorizonFactor × horizon.
const (
	HoldConfidenceDrop = 0.2
	HoldHorizonFactor  = 1.25
)

// Watch turns the successive forecasts of one series towards one level into a steady
// prediction; it is the hysteresis the controller applies to every forecast watch and that
// `vigil bench forecast` replays, so both see the same predictions.
//
// Forecast asks the forecaster for the probability of a crossing within the horizon when it
// can (HorizonForecaster), so Confidence below is that probability, not merely that of the
// trend pointing at the level. A prediction starts when a forecast is OK, its Confidence ≥ minConfidence and its ETA ≤
// horizon; it holds while the forecast stays OK with Confidence ≥ minConfidence − 0.2 and ETA ≤
// 1.25 × horizon, and is cleared otherwise (or by Clear, when the series reached the level).
// The gap between the two thresholds keeps a forecast that wavers around them from flapping
// between "soon" and "never". Memory: 24 bytes; Update is O(1) and allocation-free.
type Watch struct {
	Active      bool  // a prediction stands
	Since       int64 // when the standing prediction started, Unix ns
	PredictedAt int64 // now + ETA at the latest Update that held, Unix ns
}

// HorizonForecaster is implemented by forecasters that can say how likely a crossing is
// within a given time, not only whether the trend points to the level: ETAWithin is ETA with
// Confidence the probability that the series reaches level within horizon of now.
type HorizonForecaster interface {
	ETAWithin(now int64, level float64, horizon time.Duration) Forecast
}

// Forecast asks fc for the forecast that Update judges: when fc is a HorizonForecaster, its
// ETAWithin for the horizon the prediction must meet (horizon to start one, HoldHorizonFactor ×
// horizon to keep a standing one), so the confidence is that of a crossing within the horizon;
// otherwise its ETA.
func (w *Watch) Forecast(fc Forecaster, now int64, level float64, horizon time.Duration) Forecast {
	if w.Active {
		horizon = time.Duration(HoldHorizonFactor * float64(horizon))
	}
	return ForecastWithin(fc, now, level, horizon)
}

// ForecastWithin is fc's forecast of a crossing of level within horizon of now: its ETAWithin
// when fc is a HorizonForecaster (Confidence = the probability of a crossing within horizon),
// otherwise its ETA (Confidence = how sure it is that the trend heads to level).
func ForecastWithin(fc Forecaster, now int64, level float64, horizon time.Duration) Forecast {
	if hf, ok := fc.(HorizonForecaster); ok {
		return hf.ETAWithin(now, level, horizon)
	}
	return fc.ETA(now, level)
}

// Within reports whether f predicts a crossing within horizon with Confidence ≥ minConfidence:
// the condition on which a Watch starts a prediction, and rules' eta_within() answers an ETA.
func (f Forecast) Within(horizon time.Duration, minConfidence float64) bool {
	return f.OK && f.Confidence >= minConfidence && f.ETA <= horizon
}

// Update feeds the forecast f made at now (Unix ns) and reports the transition.
func (w *Watch) Update(now int64, f Forecast, horizon time.Duration, minConfidence float64) WatchChange {
	var hold bool
	if w.Active {
		hold = f.OK && f.Confidence >= minConfidence-HoldConfidenceDrop &&
			float64(f.ETA) <= HoldHorizonFactor*float64(horizon)
	} else {
		hold = f.Within(horizon, minConfidence)
	}
	if hold {
		w.PredictedAt = now + int64(f.ETA)
	}
	switch {
	case hold && !w.Active:
		w.Active, w.Since = true, now
		return WatchStarted
	case hold:
		return WatchHeld
	case w.Active:
		w.Active = false
		return WatchCleared
	}
	return WatchIdle
}

// Clear ends a standing prediction without a transition (the series reached the level).
func (w *Watch) Clear() { w.Active = false }
