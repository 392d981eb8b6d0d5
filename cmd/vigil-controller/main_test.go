package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	rulesDir := filepath.Join(dir, "rules")
	os.Mkdir(rulesDir, 0o755)
	os.WriteFile(filepath.Join(rulesDir, "r.yaml"), []byte("groups:\n  - name: g\n    rules:\n      - name: r\n        expr: value(\"mem.used_percent\") > 90\n"), 0o644)
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("nats: {url: nats://127.0.0.1:4222}\nrules: ["+rulesDir+"]\n"), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("nats:\n  url: nats://127.0.0.1:4222\n  ulr: x\n"), 0o644)

	var out, errb bytes.Buffer
	if code := run([]string{"-config", good, "-check-config"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "ok (1 rules)") {
		t.Fatalf("good config: code %d out %q err %q", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"-config", bad, "-check-config"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), bad+`:3:3: unknown key "ulr" in nats`) {
		t.Fatalf("bad config: code %d err %q", code, errb.String())
	}
}

func TestPrintExampleIsValid(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-print-example"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "nats:") {
		t.Fatalf("code %d out %q", code, out.String())
	}
	t.Setenv("NATS_URL", "nats://127.0.0.1:4222")
	t.Setenv("INFLUX_URL", "http://127.0.0.1:8086")
	t.Setenv("INFLUX_TOKEN", "user:password")
	path := filepath.Join(t.TempDir(), "example.yaml")
	os.WriteFile(path, out.Bytes(), 0o644)
	// The example names rules/examples relative to the repository root.
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	os.Chdir(filepath.Join("..", ".."))
	errb.Reset()
	out.Reset()
	if code := run([]string{"-config", path, "-check-config"}, &out, &errb); code != 0 {
		t.Fatalf("example config does not check: %s", errb.String())
	}
}
