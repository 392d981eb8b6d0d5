package controller

import (
	"testing"
	"time"

	"github.com/vigil-sre/vigil/rules"
)

func TestRPOOfSnapshot(t *testing.T) {
	fired := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	snap := fired.Add(-90 * time.Second).Format(time.RFC3339Nano)
	// A restore (no prediction): data since the snapshot is lost.
	if v := rpoOf(rules.Intent{At: fired}, map[string]string{"snapshot_time": snap}); v["rpo_seconds"] != 90 {
		t.Errorf("restore RPO %v, want 90 s", v)
	}
	// A backup made 30 min before a predicted failure protects up to its
	// snapshot: what changes until the failure is at risk.
	in := rules.Intent{At: fired, PredictedFailure: fired.Add(30 * time.Minute)}
	if v := rpoOf(in, map[string]string{"snapshot_time": fired.Add(10 * time.Second).Format(time.RFC3339Nano)}); v["rpo_seconds"] != 1790 {
		t.Errorf("backup RPO %v, want 1790 s", v)
	}
	if v := rpoOf(in, map[string]string{"files": "3"}); v != nil {
		t.Errorf("no snapshot time: %v, want nothing", v)
	}
}
