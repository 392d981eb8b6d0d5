package detectors

import (
	"math"
	"testing"
	"time"
)

// ETAWithin's confidence is the probability of a crossing within the horizon: a clear trend
// whose crossing is just about at the horizon is a coin toss, one well inside it is certain,
// while ETA's sign-of-slope confidence is ≈ 1 in both cases. The ETA itself is unchanged.
func TestETAWithinIsCrossingProbability(t *testing.T) {
	fcs := map[string]func() HorizonForecaster{
		"trend": func() HorizonForecaster {
			return NewTrend(TrendConfig{Window: time.Hour, MinSamples: 5, MinSpan: 10 * time.Minute})
		},
		"robust_trend":     func() HorizonForecaster { return NewRobustTrend(DefaultRobustTrendConfig()) },
		"saturating_trend": func() HorizonForecaster { return NewSaturatingTrend(DefaultSaturatingTrendConfig()) },
	}
	for name, mk := range fcs {
		f := mk()
		fc := f.(Forecaster)
		feedLine(fc, 3, 0, 4*3600, 10, 40, 2.0/3600, 0.3) // 2 units/h from 40
		now := at(4*3600 - 10)
		eta := fc.ETA(now, 60)
		if !eta.OK || eta.Confidence < 0.999 {
			t.Fatalf("%s: ETA %+v, want a confident crossing", name, eta)
		}
		near := f.ETAWithin(now, 60, eta.ETA)
		if near.ETA != eta.ETA || near.OK != eta.OK {
			t.Errorf("%s: ETAWithin changed the ETA: %+v vs %+v", name, near, eta)
		}
		if near.Confidence < 0.2 || near.Confidence > 0.8 {
			t.Errorf("%s: confidence of a crossing within its own ETA %v = %v, want ≈ 0.5", name, eta.ETA, near.Confidence)
		}
		if far := f.ETAWithin(now, 60, 2*eta.ETA); far.Confidence < 0.99 {
			t.Errorf("%s: confidence of a crossing within twice its ETA = %v, want ≥ 0.99", name, far.Confidence)
		}
		if short := f.ETAWithin(now, 60, eta.ETA/2); short.Confidence > 0.01 {
			t.Errorf("%s: confidence of a crossing within half its ETA = %v, want ≤ 0.01", name, short.Confidence)
		}
		if away := f.ETAWithin(now, 30, time.Hour); away.OK {
			t.Errorf("%s: ETAWithin towards a level behind the trend = %+v, want not OK", name, away)
		}
	}
}

// Watch.Forecast uses ETAWithin with the horizon to start a prediction and 1.25 × horizon to
// keep it, and plain ETA for a forecaster without ETAWithin.
func TestWatchForecastHorizon(t *testing.T) {
	rt := NewRobustTrend(DefaultRobustTrendConfig())
	feedLine(rt, 5, 0, 4*3600, 10, 40, 2.0/3600, 0.3)
	now := at(4*3600 - 10)
	eta := rt.ETA(now, 60)
	h := time.Duration(float64(eta.ETA) / 1.1) // the crossing is just beyond h, within 1.25 h
	var w Watch
	got := w.Forecast(rt, now, 60, h)
	if want := rt.ETAWithin(now, 60, h); got != want {
		t.Fatalf("idle watch: %+v, want ETAWithin(h) %+v", got, want)
	}
	w.Active = true
	held := w.Forecast(rt, now, 60, h)
	if want := rt.ETAWithin(now, 60, time.Duration(1.25*float64(h))); held != want {
		t.Fatalf("standing watch: %+v, want ETAWithin(1.25 h) %+v", held, want)
	}
	if !(held.Confidence > got.Confidence) {
		t.Errorf("holding confidence %v not above starting confidence %v", held.Confidence, got.Confidence)
	}
	ho := NewHolt(DefaultHoltConfig())
	feedLine(ho, 5, 0, 4*3600, 10, 40, 2.0/3600, 0.3)
	if got, want := w.Forecast(ho, now, 60, h), ho.ETA(now, 60); got != want || !want.OK {
		t.Errorf("holt: %+v, want its ETA %+v", got, want)
	}
}

// The GPU-job case of `vigil bench forecast`: on a warm card (76 °C) a job adds a few °C/h;
// the moment the slope first points at 90 °C with certainty, the crossing is at the edge of
// the 2 h horizon, so the probability of a crossing within it is far from the 0.9 a watch needs.
func TestETAWithinWarmCardJob(t *testing.T) {
	rt := NewRobustTrend(DefaultRobustTrendConfig())
	seen := false
	feedThermal(rt, 9, 0, 8*3600, func(s float64) float64 {
		return 11 + 5*math.Max(0, s-4*3600)/3600
	}, func(s float64) {
		now := at(s)
		eta := rt.ETA(now, 90)
		if seen || !eta.OK || eta.Confidence < 0.99 || eta.ETA > 2*time.Hour || eta.ETA < 100*time.Minute {
			return
		}
		seen = true
		within := rt.ETAWithin(now, 90, 2*time.Hour)
		if within.Confidence >= 0.9 || math.IsNaN(within.Confidence) {
			t.Errorf("at %vs: ETA %+v, ETAWithin confidence %v: want below 0.9", s, eta, within.Confidence)
		}
	})
	if !seen {
		t.Fatal("the ETA never came within 100–120 min with confidence ≥ 0.99")
	}
}

func BenchmarkRobustTrendETAWithin(b *testing.B) {
	rt := NewRobustTrend(DefaultRobustTrendConfig())
	feedLine(rt, 1, 0, 7200, 10, 40, 0.005, 0.2)
	b.ReportAllocs()
	for b.Loop() {
		_ = rt.ETAWithin(at(7200), 100, 2*time.Hour)
	}
}

func BenchmarkSaturatingTrendETAWithin(b *testing.B) {
	st := NewSaturatingTrend(DefaultSaturatingTrendConfig())
	feedLine(st, 1, 0, 4*3600, 10, 40, 0.001, 0.2)
	b.ReportAllocs()
	for b.Loop() {
		_ = st.ETAWithin(at(4*3600), 100, 2*time.Hour)
	}
}
