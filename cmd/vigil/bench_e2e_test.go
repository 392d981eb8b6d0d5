package main

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestBenchE2E runs `vigil bench e2e` for 2 s at a low rate: every acknowledged sample must be
// processed by the controller, exactly once, and the probes must measure latencies.
func TestBenchE2E(t *testing.T) {
	var out, errOut bytes.Buffer
	code := cmdBench([]string{"e2e", "--duration", "2s", "--rate", "20000", "--hosts", "4", "--publishers", "2",
		"--lines", "100", "--fields", "5", "--drain", "30s", "--json"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var r e2eResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("output is not the JSON result: %v\n%s", err, out.String())
	}
	if r.SamplesPerMessage != 500 || r.Messages == 0 || r.PublishErrors != 0 {
		t.Fatalf("published %d messages of %d samples, %d errors", r.Messages, r.SamplesPerMessage, r.PublishErrors)
	}
	if r.SamplesPublished != r.Messages*500 || r.SamplesProcessed != r.SamplesPublished {
		t.Errorf("published %d samples (%d messages), controller processed %d", r.SamplesPublished, r.Messages, r.SamplesProcessed)
	}
	// 2 s at 20,000/s: about 40,000 samples; far fewer means the pacing or publishing is broken.
	if r.SamplesPublished < 20000 || r.SamplesPublished > 60000 {
		t.Errorf("published %d samples in 2s at 20000/s", r.SamplesPublished)
	}
	if r.Probes == 0 {
		t.Fatal("no probes")
	}
	for name, l := range map[string]e2eLatency{"ingest": r.IngestLatency, "rule": r.RuleLatency, "dispatch": r.DispatchLatency} {
		if l.N == 0 || l.N+l.Missed != r.Probes || !(l.P50 > 0) || l.P50 > l.P99 || l.P99 > l.Max {
			t.Errorf("%s latency %+v over %d probes", name, l, r.Probes)
		}
	}
	if r.DispatchLatency.P50 < r.IngestLatency.P50 {
		t.Errorf("dispatch p50 %.3f ms before ingest p50 %.3f ms", r.DispatchLatency.P50, r.IngestLatency.P50)
	}
}
