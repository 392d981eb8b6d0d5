package controller

import (
	"testing"
	"time"

	"github.com/vigil-sre/vigil/detectors"
)

func TestDetectorInputCountersAndGauges(t *testing.T) {
	sec := int64(time.Second)
	s := &series{det: &recordingDetector{}}
	feed := func(ts int64, x float64) (float64, bool) {
		in, ok := s.detectorInput(ts, x)
		s.last, s.lastT = x, ts
		return in, ok
	}
	if _, ok := feed(1*sec, 100); ok {
		t.Fatal("first sample of a possible counter fed the detector")
	}
	if in, ok := feed(3*sec, 160); !ok || in != 30 {
		t.Fatalf("counter 100 -> 160 in 2 s: input %v %v, want rate 30/s", in, ok)
	}
	if _, ok := feed(4*sec, 5); ok || s.gauge {
		t.Fatal("a drop to under a tenth (counter reset) fed the detector or made a gauge")
	}
	if in, ok := feed(5*sec, 15); !ok || in != 10 {
		t.Fatalf("after the reset: %v %v, want rate 10/s", in, ok)
	}
	resets := s.det.(*recordingDetector).resets
	if in, ok := feed(6*sec, 12); !ok || in != 12 || !s.gauge {
		t.Fatalf("a real decrease: %v %v gauge=%v, want the value and a gauge", in, ok, s.gauge)
	}
	if s.det.(*recordingDetector).resets != resets+1 {
		t.Fatal("the detector was not restarted when the series turned out a gauge")
	}
	if in, ok := feed(7*sec, 30); !ok || in != 30 {
		t.Fatalf("gauge: %v %v, want the value", in, ok)
	}
	// Negative gauges are not counters with resets.
	n := &series{det: &recordingDetector{}}
	n.detectorInput(1*sec, -10)
	n.last, n.lastT = -10, 1*sec
	if in, ok := n.detectorInput(2*sec, -20); !ok || in != -20 || !n.gauge {
		t.Fatalf("negative decrease: %v %v gauge=%v", in, ok, n.gauge)
	}
}

// recordingDetector counts restarts.
type recordingDetector struct{ resets int }

func (r *recordingDetector) Observe(int64, float64) detectors.Score { return detectors.Score{} }
func (r *recordingDetector) Reset()                                 { r.resets++ }
