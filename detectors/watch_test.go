package detectors

import (
	"testing"
	"time"
)

func TestWatchHysteresis(t *testing.T) {
	const h, conf = time.Hour, 0.9
	steps := []struct {
		f    Forecast
		want WatchChange
	}{
		{Forecast{ETA: 50 * time.Minute, Confidence: 0.85, OK: true}, WatchIdle},    // not confident enough
		{Forecast{ETA: 70 * time.Minute, Confidence: 0.95, OK: true}, WatchIdle},    // beyond the horizon
		{Forecast{ETA: 50 * time.Minute, Confidence: 0.95, OK: true}, WatchStarted}, // starts
		{Forecast{ETA: 70 * time.Minute, Confidence: 0.75, OK: true}, WatchHeld},    // within 1.25 h and 0.7
		{Forecast{ETA: 80 * time.Minute, Confidence: 0.95, OK: true}, WatchCleared}, // beyond 1.25 h
		{Forecast{ETA: 10 * time.Minute, Confidence: 0.95, OK: true}, WatchStarted},
		{Forecast{ETA: 10 * time.Minute, Confidence: 0.65, OK: true}, WatchCleared}, // below 0.7
		{Forecast{ETA: 10 * time.Minute, Confidence: 0.95, OK: true}, WatchStarted},
		{Forecast{}, WatchCleared},
	}
	var w Watch
	for i, s := range steps {
		now := at(float64(i * 60))
		if got := w.Update(now, s.f, h, conf); got != s.want {
			t.Fatalf("step %d %+v: %v, want %v", i, s.f, got, s.want)
		}
		if s.want == WatchStarted && (w.Since != now || w.PredictedAt != now+int64(s.f.ETA)) {
			t.Errorf("step %d: since %v predicted %v", i, w.Since, w.PredictedAt)
		}
	}
	w.Update(at(1000), Forecast{ETA: time.Minute, Confidence: 1, OK: true}, h, conf)
	w.Clear()
	if w.Active {
		t.Errorf("Clear left the prediction standing")
	}
}
