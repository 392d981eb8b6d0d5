package controller_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
	"github.com/vigil-sre/vigil/rules"
)

const cpuRule = `groups:
  - name: g
    interval: 100ms
    rules:
      - name: cpu_high
        expr: value("cpu.usage") > 90
`

// writeRules writes a rule file and returns its path and loaded set.
func writeRules(t *testing.T, dir, text string) (string, *rules.Set) {
	t.Helper()
	path := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := rules.LoadFiles(path)
	if err != nil {
		t.Fatalf("rules: %v", err)
	}
	return path, set
}

func TestBadTelemetryIsCountedAndSkipped(t *testing.T) {
	env := startNATSEnv(t)
	path, set := writeRules(t, t.TempDir(), cpuRule)
	cfg := ctlConfig(t, env.srv.URL(), "rules: ["+path+"]\n")
	rc := startCtl(t, cfg, env.nc, set)

	// Three good lines and three malformed ones.
	env.publish(t, "h1", "r1", 1, strings.Join([]string{
		"cpu,host=h1 usage=12.5",
		"this is not line protocol",
		"mem,host=h1 used_percent=40",
		"cpu,host=h1 usage=",
		"disk,host=h1,path=/ used_percent=70 1700000000000000000",
		"disk,host=h1,path=/data used_percent=abc",
	}, "\n"))
	// Values that are not finite are malformed; a string field is not a
	// sample, the integer beside it is.
	env.publish(t, "h1", "r1", 2, "cpu,host=h1 usage=NaN\ncpu,host=h1 usage=+Inf\ncpu,host=h1 usage=-Inf\nstatus,host=h1 msg=\"degraded\",code=3i\n")
	// An oversize batch is dropped whole.
	big := strings.Repeat("big,host=h-big v=1\n", wire.MaxBatchBytes/len("big,host=h-big v=1\n")+1)
	if len(big) <= wire.MaxBatchBytes {
		t.Fatal("test batch not oversize")
	}
	env.publish(t, "h-big", "r9", 1, big)
	// Good data afterwards is still processed.
	env.publish(t, "h1", "r1", 3, "cpu,host=h1 usage=95\n")
	env.publish(t, "h2", "r2", 1, "net,host=h2,iface=eth0 rx_bytes=1024u\n")

	rc.waitMetric(t, "vigil_telemetry_messages_total", 5)
	m := rc.metrics(t)
	for name, want := range map[string]float64{
		"vigil_telemetry_malformed_lines_total":    6,
		"vigil_telemetry_oversize_batches_total":   1,
		"vigil_telemetry_non_numeric_fields_total": 1,
		"vigil_telemetry_points_total":             3 + 1 + 1 + 1,
		"vigil_telemetry_samples_total":            3 + 1 + 1 + 1,
		"vigil_telemetry_gaps_total":               0,
	} {
		if m[name] != want {
			t.Errorf("%s = %v, want %v", name, m[name], want)
		}
	}

	st := rc.status(t)
	// h1: cpu.usage, mem.used_percent, disk.used_percent{path=/}, status.code
	if n := st.hostSeries("h1"); n != 4 {
		t.Errorf("h1 has %d series, want 4 (status %+v)", n, st.Hosts)
	}
	if n := st.hostSeries("h2"); n != 1 {
		t.Errorf("h2 has %d series, want 1", n)
	}
	if n := st.hostSeries("h-big"); n != -1 {
		t.Errorf("the oversize batch's host exists with %d series", n)
	}
	// The rule sees the latest good value (95 > 90).
	eventually(t, "cpu_high firing on h1", func() bool { return rc.status(t).ruleState("cpu_high", "h1") == "firing" })
}

func TestFailedRuleReloadKeepsRunningRules(t *testing.T) {
	env := startNATSEnv(t)
	path, set := writeRules(t, t.TempDir(), cpuRule)
	cfg := ctlConfig(t, env.srv.URL(), "rules: ["+path+"]\n")
	rc := startCtl(t, cfg, env.nc, set)
	env.publish(t, "h1", "", 0, "cpu,host=h1 usage=95\n")
	eventually(t, "cpu_high firing on h1", func() bool { return rc.status(t).ruleState("cpu_high", "h1") == "firing" })

	bad := cpuRule + "        severity: fatal\n" // line 7
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := rc.c.Reload(ctx)
	if err == nil {
		t.Fatal("Reload of a bad rule file returned no error")
	}
	if !strings.Contains(err.Error(), path+":7:") || !strings.Contains(err.Error(), "fatal") {
		t.Errorf("reload error %q should name %s:7 and the bad value", err, path)
	}
	if v := rc.metric(t, "vigil_rule_reload_errors_total"); v != 1 {
		t.Errorf("vigil_rule_reload_errors_total = %v, want 1", v)
	}
	if v := rc.metric(t, "vigil_rule_reloads_total"); v != 0 {
		t.Errorf("vigil_rule_reloads_total = %v, want 0", v)
	}
	// The old rule keeps running: still there, still firing, still evaluated.
	before := rc.metric(t, "vigil_rule_evaluation_rounds_total")
	eventually(t, "more evaluation rounds", func() bool { return rc.metric(t, "vigil_rule_evaluation_rounds_total") > before+2 })
	if s := rc.status(t).ruleState("cpu_high", "h1"); s != "firing" {
		t.Errorf("after the failed reload cpu_high on h1 is %q, want firing", s)
	}

	// A good file loads: the new rule replaces the old.
	good := strings.Replace(cpuRule, "cpu_high", "cpu_very_high", 1)
	if err := os.WriteFile(path, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rc.c.Reload(ctx); err != nil {
		t.Fatalf("Reload of a good file: %v", err)
	}
	if v := rc.metric(t, "vigil_rule_reloads_total"); v != 1 {
		t.Errorf("vigil_rule_reloads_total = %v, want 1", v)
	}
	eventually(t, "cpu_very_high evaluated", func() bool {
		st := rc.status(t)
		return st.ruleState("cpu_very_high", "h1") == "firing" && st.ruleState("cpu_high", "h1") == ""
	})
}
