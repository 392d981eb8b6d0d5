package influxtest

import (
	"context"
	"testing"
	"time"
)

// Start launches influxd for a test, with its data in t.TempDir() and the
// database "vigil" (bucket "vigil/autogen") created, and stops it when the
// test ends. The test fails at once if the server cannot start.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options; an empty Dir means t.TempDir().
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	s, err := Launch(o)
	if err != nil {
		t.Fatalf("influxtest: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Stop stops the process and keeps its data (for outage tests).
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.Halt(); err != nil {
		t.Fatalf("influxtest: stop: %v", err)
	}
}

// Start starts a stopped server again on the same port with the same data.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	if err := s.Resume(); err != nil {
		t.Fatalf("influxtest: start: %v", err)
	}
}

// Restart stops and starts the server, keeping port and data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop(t)
	s.Start(t)
}

// Query runs InfluxQL and returns the series rows; errors fail the test.
func (s *Server) Query(t testing.TB, influxql string) []Row {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := s.QueryContext(ctx, influxql)
	if err != nil {
		t.Fatalf("influxtest: %v", err)
	}
	return rows
}

// Count returns the number of points of measurement matching where ("" for
// all); see CountContext.
func (s *Server) Count(t testing.TB, measurement, where string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := s.CountContext(ctx, measurement, where)
	if err != nil {
		t.Fatalf("influxtest: %v", err)
	}
	return n
}

// Write writes line protocol (nanosecond timestamps); errors fail the test.
func (s *Server) Write(t testing.TB, lines string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.WriteLines(ctx, lines); err != nil {
		t.Fatalf("influxtest: %v", err)
	}
}
