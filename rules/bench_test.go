package rules

import (
	"fmt"
	"testing"
	"time"
)

// benchSource answers constants without allocating, so that the benchmark
// measures the engine.
type benchSource struct{ subjects []string }

func (s *benchSource) Subjects() []string                        { return s.subjects }
func (s *benchSource) Value(string, *Selector) (float64, bool)   { return 72.5, true }
func (s *benchSource) Anomaly(string, *Selector) (float64, bool) { return 0.995, true }
func (s *benchSource) ETA(string, *Selector, float64, time.Time) (time.Duration, float64, bool) {
	return 20 * time.Minute, 0.9, true
}
func (s *benchSource) ETAWithin(string, *Selector, float64, time.Duration, float64, time.Time) (time.Duration, bool) {
	return 20 * time.Minute, true
}
func (s *benchSource) Forecast(string, *Selector, time.Duration, time.Time) (float64, bool) {
	return 80, true
}
func (s *benchSource) LastSeen(string) (time.Time, bool) { return t0, true }
func (s *benchSource) Window(string, *Selector, WindowQuery, time.Time) (float64, bool) {
	return 50, true
}
func (s *benchSource) Gaps(string, time.Time) (int, bool) { return 0, true }
func (s *benchSource) Labels(string) map[string]string    { return benchLabels }
func (s *benchSource) Hosts(string) []string              { return s.subjects }
func (s *benchSource) Scope(string) Source                { return s }

var benchLabels = map[string]string{"role": "gpu", "zone": "eu-1"}

const benchExpr = `eta("disk.used_percent{path=/data}", 100) < duration("30m")` +
	` && value("mem.used_percent") > 50 && anomaly("cpu.usage_user{cpu=cpu-total}") > 0.99`

// BenchmarkEvalRule: one 3-clause rule on one subject per Eval (every
// clause is evaluated: all are true), the engine's VM reused.
func BenchmarkEvalRule(b *testing.B) { benchEval(b, 1) }

// BenchmarkEvalRule100Subjects: the same rule over 100 subjects per Eval;
// ns/eval is the cost per rule and subject.
func BenchmarkEvalRule100Subjects(b *testing.B) { benchEval(b, 100) }

func benchEval(b *testing.B, subjects int) {
	e := NewEngine(mustParse(b, oneRule(benchExpr)))
	src := &benchSource{}
	for i := range subjects {
		src.subjects = append(src.subjects, fmt.Sprintf("h%03d", i))
	}
	now := t0
	e.Eval(now, src, nil, nil)
	if st := e.States(); len(st) != subjects || st[0].State != Firing {
		b.Fatalf("states %+v", st)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		now = now.Add(10 * time.Second)
		e.Eval(now, src, nil, nil)
	}
	b.StopTimer()
	st := e.Stats()
	if st.Errors+st.NoData != 0 || st.Evaluations < uint64(b.N*subjects) {
		b.Fatalf("stats %+v", st)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subjects), "ns/eval")
}
