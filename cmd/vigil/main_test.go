package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for the vigil binary when the
// demo's backup action runs it (os.Executable is the test binary here).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "demo-backup" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestDemoPredictsAndActsBeforeDiskFull runs the real demo (embedded NATS,
// controller, both agents, the filling disk, the backup action) with a
// faster disk and checks its JSON summary.
func TestDemoPredictsAndActsBeforeDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for 20 s")
	}
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run([]string{"demo", "--duration", "20s", "--fill-time", "12s", "--json", "--dir", dir}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("demo exit code %d; stderr:\n%s", code, stderr.String())
	}
	var sum demoSummary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("stdout is not one JSON summary: %v\n%s", err, stdout.String())
	}
	if len(sum.Predictions) == 0 {
		t.Fatalf("no prediction in summary; stderr:\n%s", stderr.String())
	}
	p := sum.Predictions[0]
	if p.Host != "sim-gpu-1" || !strings.HasPrefix(p.Series, "disk.used_percent{") || p.ActualCrossing == nil || p.LeadSeconds == nil {
		t.Fatalf("prediction %+v: want sim-gpu-1 disk.used_percent reaching 100 with a lead time", p)
	}
	if *p.LeadSeconds < 3 {
		t.Errorf("lead time %.1fs, want ≥ 3 s on a 12 s fill", *p.LeadSeconds)
	}
	// The first prediction names the crossing time, not just "soon".
	if p.ErrorSeconds == nil || math.Abs(*p.ErrorSeconds) > 4.2 {
		t.Errorf("first predicted crossing off by %v s, want within 35 %% of the 12 s fill", p.ErrorSeconds)
	}
	var ok bool
	for _, a := range sum.Actions {
		if a.Host == "sim-gpu-1" && a.Outcome == "success" && a.FinishedBeforeFailure != nil && *a.FinishedBeforeFailure {
			ok = true
			if !a.Finished.Before(*p.ActualCrossing) {
				t.Errorf("action finished %s, not before the crossing %s", a.Finished, *p.ActualCrossing)
			}
		}
	}
	if !ok {
		t.Fatalf("no successful action finished before the disk was full: %+v", sum.Actions)
	}
	// The backup action really copied the data.
	snaps, _ := filepath.Glob(filepath.Join(dir, "backups", "snapshot-*"))
	if len(snaps) != 1 {
		t.Fatalf("snapshots %v, want exactly 1", snaps)
	}
	files, _ := os.ReadDir(snaps[0])
	if len(files) < 2 {
		t.Errorf("snapshot holds %d files", len(files))
	}
	// Events were printed for a person on stderr (stdout is only JSON).
	for _, want := range []string{"FORECAST  sim-gpu-1", "RULE      sim-gpu-1", "ACTION    sim-gpu-1", "REACHED   sim-gpu-1"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if sum.DurationSeconds < 19 || sum.Ended.Sub(sum.Started) > time.Minute {
		t.Errorf("duration %.1f s", sum.DurationSeconds)
	}
}

func TestRulesCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("groups:\n  - name: g\n    rules:\n      - name: r\n        expr: value(\"mem.used_percent\") > 90\n"), 0o644)
	os.WriteFile(bad, []byte("groups:\n  - name: g\n    rules:\n      - name: r\n        expr: value(\"mem.used_percent\") >\n        fro: 5m\n"), 0o644)
	var out, errb bytes.Buffer
	if code := run([]string{"rules", "check", good}, &out, &errb); code != 0 || !strings.Contains(out.String(), "ok: 1 rules") {
		t.Fatalf("good file: code %d out %q err %q", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	code := run([]string{"rules", "check", good, bad}, &out, &errb)
	if code != 1 {
		t.Fatalf("bad file: exit %d, want 1", code)
	}
	for _, want := range []string{bad + ":6:9:", bad + ":5:"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("errors lack %q:\n%s", want, errb.String())
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unknown command "frobnicate"`) {
		t.Fatalf("code %d stderr %q", code, errb.String())
	}
}
