package natsembed

import "testing"

// StartT starts an embedded server for a test and shuts it down when the
// test ends.
func StartT(t testing.TB) *Server {
	t.Helper()
	s, err := Start(Options{})
	if err != nil {
		t.Fatalf("embedded nats: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}
