package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-sre/vigil/agent"
)

// The agent binary must stay lean: none of the controller's dependencies.
func TestNoControllerDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/expr-lang/expr",
		"github.com/influxdata/influxdb-client-go",
		"github.com/nats-io/nats-server",
		"github.com/vigil-sre/vigil/controller",
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 {
		t.Fatalf("go list returned only %d packages: %s", len(deps), out)
	}
	seen := map[string]bool{}
	for _, d := range deps {
		seen[d] = true
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("vigil-agent links %s", d)
			}
		}
	}
	// The check is only meaningful if the list holds what the agent uses.
	for _, want := range []string{"github.com/vigil-sre/vigil/agent", "github.com/nats-io/nats.go/jetstream", "github.com/shirou/gopsutil/v3/cpu"} {
		if !seen[want] {
			t.Errorf("go list -deps lacks %s", want)
		}
	}
}

func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestFlags(t *testing.T) {
	if code, out, _ := runMain(t, "-print-example"); code != 0 || out != string(agent.ExampleConfig) {
		t.Errorf("-print-example: code %d, output %d bytes", code, len(out))
	}
	if code, out, _ := runMain(t, "-version"); code != 0 || !strings.HasPrefix(out, "vigil-agent ") {
		t.Errorf("-version: %d %q", code, out)
	}
	code, _, errOut := runMain(t, "-help")
	if code != 0 {
		t.Errorf("-help exit %d", code)
	}
	for _, want := range []string{"-config", "-check-config", "-print-example", "-version", "-log-format", strings.Join(agent.Registered(), ", "), "cpu, disk, diskio", "vigil.telemetry.<host>", "spool"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("-help lacks %q:\n%s", want, errOut)
		}
	}
	if code, _, _ := runMain(t, "-nope"); code != 2 {
		t.Errorf("unknown flag: exit %d", code)
	}
	if code, _, _ := runMain(t, "extra"); code != 2 {
		t.Errorf("extra argument: exit %d", code)
	}
	if code, _, e := runMain(t, "-log-format", "xml", "-check-config"); code != 2 || !strings.Contains(e, "-log-format") {
		t.Errorf("bad log format: %d %q", code, e)
	}
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, agent.ExampleConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, e := runMain(t, "-check-config", "-config", good)
	if code != 0 || !strings.Contains(out, "ok (host web-1") {
		t.Fatalf("good config: %d %q %q", code, out, e)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("host: a\ncollectors:\n  cpu:\n    percpuu: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, e = runMain(t, "-check-config", "-config", bad)
	if code != 1 || !strings.Contains(e, bad+`:4:5: unknown key "percpuu"`) {
		t.Fatalf("bad config: %d %q", code, e)
	}
	if code, _, _ := runMain(t, "-check-config", "-config", filepath.Join(dir, "missing.yaml")); code != 1 {
		t.Fatalf("missing config: exit %d", code)
	}
}

// Without state_dir the command keeps its state where systemd says
// ($STATE_DIRECTORY), and -check-config shows the spool and metrics.
func TestDefaultStateDir(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("STATE_DIRECTORY", dir+":/other")
	cfg := filepath.Join(dir, "a.yaml")
	if err := os.WriteFile(cfg, []byte("host: a\nmetrics: {listen: \"127.0.0.1:9465\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, e := runMain(t, "-check-config", "-config", cfg)
	want := "spool " + filepath.Join(dir, "spool") + ", metrics 127.0.0.1:9465)"
	if code != 0 || !strings.Contains(out, want) {
		t.Fatalf("-check-config: %d %q %q, want %q", code, out, e, want)
	}
	if err := os.WriteFile(cfg, []byte("host: a\nspool: {dir: \"off\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := runMain(t, "-check-config", "-config", cfg); code != 0 || !strings.Contains(out, "spool off, metrics off") {
		t.Fatalf("spool off: %d %q", code, out)
	}
}
