package agent

import (
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

// point is one emitted point, copied.
type point struct {
	m      string
	tags   map[string]string
	fields map[string]wire.Field
}

func (p point) num(t *testing.T, key string) float64 {
	t.Helper()
	f, ok := p.fields[key]
	if !ok {
		t.Fatalf("%s %v: no field %q (have %v)", p.m, p.tags, key, p.fields)
	}
	switch f.Kind {
	case wire.FieldFloat:
		return f.Float
	case wire.FieldInt:
		return float64(f.Int)
	case wire.FieldUint:
		return float64(f.Uint)
	}
	t.Fatalf("%s: field %q is %v, not a number", p.m, key, f.Kind)
	return 0
}

// newCollector builds a registered collector or fails the test.
func newCollector(t *testing.T, name string, o Options) Collector {
	t.Helper()
	c, err := NewCollector(name, o)
	if err != nil {
		t.Fatalf("NewCollector(%s): %v", name, err)
	}
	if c.Name() != name {
		t.Fatalf("Name() = %q, want %q", c.Name(), name)
	}
	return c
}

// collect runs c once and returns its points.
func collect(t *testing.T, c Collector) []point {
	t.Helper()
	return tickAt(t, c, time.Now())
}

// byMeasurement selects the points of measurement m.
func byMeasurement(pts []point, m string) []point {
	var out []point
	for _, p := range pts {
		if p.m == m {
			out = append(out, p)
		}
	}
	return out
}

// inRange fails unless lo <= v <= hi.
func inRange(t *testing.T, what string, v, lo, hi float64) {
	t.Helper()
	if !(v >= lo && v <= hi) {
		t.Errorf("%s = %v, want in [%v, %v]", what, v, lo, hi)
	}
}
