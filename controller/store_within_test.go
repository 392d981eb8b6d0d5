package controller

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/detectors"
	"github.com/vigil-sre/vigil/internal/wire"
	"github.com/vigil-sre/vigil/rules"
)

// leakUnderJobs is memory at minute i: 50 %, a job adding 12 for 90 min every 6 h from 02:00,
// and from 30 h a leak of 3 points an hour (the job at 44 h crosses 95).
func leakUnderJobs(i int, leak bool) float64 {
	x := 50.0
	if m := i - 120; m >= 0 && m%360 < 90 {
		x += 12
	}
	if leak && i >= 1800 {
		x += 0.05 * float64(i-1800)
	}
	return x
}

// The store's ETAWithin (host and service scope) reads the whole forecaster: 3.5 h before a
// job crosses 95 %, the peak envelope expects the crossing within 2 h while the mean line
// (ETA) is still more than 2 h from it; of two series the one expected is answered.
func TestStoreETAWithinSeesThePeaks(t *testing.T) {
	newDet := func() detectors.Detector { d, _ := detectors.NewDetector("ewma"); return d }
	newFc := func() detectors.Forecaster { f, _ := detectors.NewForecaster("robust_trend"); return f }
	st := newStore(newDet, newFc, nil)
	var dec wire.Decoder
	const minutes = 40*60 + 30
	var b strings.Builder
	for i := 0; i <= minutes; i++ {
		ts := tBase.Add(time.Duration(i) * time.Minute).UnixNano()
		fmt.Fprintf(&b, "mem,host=h1,service=batch,slot=a used_percent=%g %d\n", leakUnderJobs(i, true), ts)
		fmt.Fprintf(&b, "mem,host=h1,service=batch,slot=b used_percent=%g %d\n", leakUnderJobs(i, false), ts)
		if b.Len() > 1<<16 {
			feed(t, st, &dec, b.String())
			b.Reset()
		}
	}
	feed(t, st, &dec, b.String())
	now := tBase.Add(minutes * time.Minute)
	sel, _ := rules.ParseSelector("mem.used_percent")
	selB, _ := rules.ParseSelector("mem.used_percent{slot=b}")

	if eta, conf, ok := st.ETA("h1", sel, 95, now); !ok || eta <= 2*time.Hour && conf >= 0.8 {
		t.Fatalf("ETA %v (confidence %.2f, ok %v): the mean line already sees it, the case tests nothing", eta, conf, ok)
	}
	for _, src := range []rules.Source{st, st.Scope(rules.ScopeService)} {
		subject := src.Subjects()[0]
		if eta, ok := src.ETAWithin(subject, sel, 95, 2*time.Hour, 0.8, now); !ok || eta > 2*time.Hour {
			t.Errorf("%s: ETAWithin = %v, %v; want a crossing within 2h", subject, eta, ok)
		}
		if eta, ok := src.ETAWithin(subject, selB, 95, 2*time.Hour, 0.8, now); !ok || eta != rules.Never {
			t.Errorf("%s: ETAWithin of the series without a leak = %v, %v; want Never", subject, eta, ok)
		}
		if eta, ok := src.ETAWithin(subject, sel, 95, 2*time.Hour, 1.01, now); !ok || eta != rules.Never {
			t.Errorf("%s: ETAWithin with min confidence above 1 = %v, %v; want Never", subject, eta, ok)
		}
	}
	if _, ok := st.ETAWithin("h2", sel, 95, 2*time.Hour, 0.8, now); ok {
		t.Error("an unknown host has data")
	}
}
