package agent

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/route"
)

// While the route drains a service the switch splits requests by weight,
// retries on the other member when the chosen one is down, and never
// sends anything to a fenced member.
func TestTrafficSwitchWeights(t *testing.T) {
	a, b := answer("a"), answer("b")
	defer a.Close()
	s := newTrafficSwitch(TrafficConfig{Listen: "127.0.0.1:0", Service: "svc", SwitchWait: 200 * time.Millisecond}, slog.New(slog.DiscardHandler))
	share := func(n int) float64 {
		got := 0
		for range n {
			code, body := get(t, s, "")
			if code != http.StatusOK {
				t.Fatalf("request failed: %d %s", code, body)
			}
			if strings.HasPrefix(body, "b:") {
				got++
			}
		}
		return float64(got) / float64(n)
	}
	entry := func(wa, wb int) route.Entry {
		return route.Entry{Service: "svc", Active: "a", Endpoint: a.URL, Epoch: 1, State: route.StateActive,
			Weights: map[string]int{"a": wa, "b": wb}, WeightEndpoints: map[string]string{"b": b.URL}}
	}
	for _, tc := range []struct {
		wb       int
		min, max float64
	}{{0, 0, 0}, {25, 0.15, 0.35}, {50, 0.38, 0.62}, {100, 1, 1}} {
		s.apply(entry(100-tc.wb, tc.wb))
		if got := share(400); got < tc.min || got > tc.max {
			t.Errorf("weight %d to b: share %.3f, want %.2f..%.2f", tc.wb, got, tc.min, tc.max)
		}
	}
	// the draining target dies: its requests are retried on the active member
	b.Close()
	s.apply(entry(50, 50))
	if got := share(100); got != 0 {
		t.Errorf("b is down but answered %.2f", got)
	}
	if s.retries.Load() == 0 {
		t.Error("no request was retried on the active member")
	}
	// a weight for a fenced member is refused: a takes everything
	s.apply(route.Entry{Service: "svc", Active: "a", Endpoint: a.URL, Epoch: 3, State: route.StateActive, Fenced: "b"})
	stale := s.stale.Load()
	s.apply(route.Entry{Service: "svc", Active: "a", Endpoint: a.URL, Epoch: 3, State: route.StateActive,
		Weights: map[string]int{"a": 50, "b": 50}, WeightEndpoints: map[string]string{"b": "http://127.0.0.1:1"}})
	if s.stale.Load() != stale+1 || s.cur.Load().altURL != nil {
		t.Fatalf("fenced draining target accepted: %+v", s.cur.Load())
	}
}
