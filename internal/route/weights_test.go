package route_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/route"
)

// Weights are written by CAS at the active member's epoch, checked, and
// cleared by the fence of a failover.
func TestSetWeights(t *testing.T) {
	kv := bucket(t)
	ctx := context.Background()
	now := time.Now()
	if _, err := route.Init(ctx, kv, "llm", route.Target{Member: "a", Endpoint: "http://a"}, "t", now); err != nil {
		t.Fatal(err)
	}
	eps := map[string]string{"b": "http://b"}
	e, err := route.SetWeights(ctx, kv, "llm", "a", 1, map[string]int{"a": 75, "b": 25}, eps, "t", now)
	if err != nil || e.Weights["b"] != 25 || e.WeightEndpoints["b"] != "http://b" || e.Epoch != 1 {
		t.Fatalf("SetWeights = %+v, %v", e, err)
	}
	got, err := route.Get(ctx, kv, "llm")
	if err != nil || got.Weights["a"] != 75 || got.Revision != e.Revision {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	for _, tc := range []struct {
		active string
		epoch  uint64
		w      map[string]int
		eps    map[string]string
		want   string
	}{
		{"a", 2, map[string]int{"a": 50, "b": 50}, eps, "does not match"},
		{"b", 1, map[string]int{"a": 50, "b": 50}, eps, "does not match"},
		{"a", 1, map[string]int{"a": 50, "b": 40}, eps, "sum to 90"},
		{"a", 1, map[string]int{"a": 150, "b": -50}, eps, "0..100"},
		{"a", 1, map[string]int{"b": 100}, eps, "active member"},
		{"a", 1, map[string]int{"a": 50, "c": 50}, eps, "no endpoint"},
	} {
		_, err := route.SetWeights(ctx, kv, "llm", tc.active, tc.epoch, tc.w, tc.eps, "t", now)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SetWeights(%s@%d %v): %v, want %q", tc.active, tc.epoch, tc.w, err, tc.want)
		}
		if tc.want == "does not match" && !errors.Is(err, route.ErrConflict) {
			t.Errorf("want ErrConflict, got %v", err)
		}
	}
	f, err := route.Fence(ctx, kv, "llm", "a", route.Target{Member: "b", Endpoint: "http://b"}, 1, now, "t", "drained", now)
	if err != nil || f.Weights != nil {
		t.Fatalf("Fence after weights = %+v, %v", f, err)
	}
	if _, err := route.SetWeights(ctx, kv, "llm", "a", 1, map[string]int{"a": 100}, nil, "t", now); !errors.Is(err, route.ErrConflict) {
		t.Fatalf("weights on a fenced route: %v", err)
	}
	s, err := route.Switch(ctx, kv, "llm", "b", 2, "t", now)
	if err != nil || s.Active != "b" || s.Weights != nil {
		t.Fatalf("Switch = %+v, %v", s, err)
	}
	// a fenced member can never get weight back
	if _, err := route.SetWeights(ctx, kv, "llm", "b", 2, map[string]int{"b": 50, "a": 50}, map[string]string{"a": "http://a"}, "t", now); err == nil || !strings.Contains(err.Error(), "fenced member") {
		t.Fatalf("weight for the fenced member: %v", err)
	}
	c, err := route.SetWeights(ctx, kv, "llm", "b", 2, nil, nil, "t", now)
	if err != nil || c.Weights != nil {
		t.Fatalf("clearing weights = %+v, %v", c, err)
	}
}
