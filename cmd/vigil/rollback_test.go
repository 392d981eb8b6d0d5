package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/release"
)

func TestRollbackCLI(t *testing.T) {
	touch, err := exec.LookPath("touch")
	if err != nil {
		t.Skip("no touch program")
	}
	root, marker := t.TempDir(), filepath.Join(t.TempDir(), "restarted")
	reg, err := release.Open(root, "svc")
	if err != nil {
		t.Fatal(err)
	}
	for v, h := range map[string]string{"v1": "ok", "v2": "bad"} {
		os.MkdirAll(reg.VersionDir(v), 0o755)
		os.WriteFile(filepath.Join(reg.VersionDir(v), "health"), []byte(h), 0o644)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if b, _ := os.ReadFile(filepath.Join(reg.CurrentPath(), "health")); string(b) != "ok" {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	cli := func(args ...string) (int, string, string) {
		var o, e bytes.Buffer
		code := run(args, &o, &e)
		return code, o.String(), e.String()
	}
	t0 := time.Now().Add(-time.Hour)
	if err := reg.Activate("v1", t0); err != nil {
		t.Fatal(err)
	}
	// Refused: no last-known-good yet (exit 3).
	if code, _, e := cli("rollback", "--root", root, "svc"); code != 3 || !strings.Contains(e, "no last-known-good") {
		t.Fatalf("no LKG: %d %q", code, e)
	}
	reg.RecordHealth(true, t0.Add(time.Minute))
	reg.RecordHealth(true, t0.Add(12*time.Minute))
	reg.Activate("v2", t0.Add(20*time.Minute))
	reg.RecordHealth(false, t0.Add(21*time.Minute))

	if code, o, e := cli("rollback", "--root", root, "--dry-run", "svc"); code != 0 || !strings.Contains(o, "would roll svc back from v2 to v1") {
		t.Fatalf("dry run: %d %q %q", code, o, e)
	}
	code, o, e := cli("rollback", "--root", root, "--health-url", srv.URL, "svc", "--", touch, marker)
	if code != 0 || !strings.Contains(o, "svc rolled back from v2 to v1: success") || !strings.Contains(o, "verifying health") {
		t.Fatalf("rollback: %d %q %q", code, o, e)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("restart program not run: %v", err)
	}
	if code, _, e := cli("rollback", "--root", root, "svc"); code != 3 || !strings.Contains(e, "already current") {
		t.Fatalf("already current: %d %q", code, e)
	}
	// Verification failure (v2 is unhealthy), revert: exit 1, current back on v1.
	code, _, e = cli("rollback", "--root", root, "--to", "v2", "--health-url", srv.URL, "--health-retries", "0", "--on-failure", "revert", "svc")
	if code != 1 || !strings.Contains(e, "health verification failed") || !strings.Contains(e, "current is now v1 (reverted: true") {
		t.Fatalf("failed verification: %d %q", code, e)
	}
	code, o, _ = cli("releases", "--root", root, "svc")
	if code != 0 || !strings.Contains(o, "current v1, last-known-good v1, 2 rollbacks") ||
		!strings.Contains(o, "v2 -> v1: success") || !strings.Contains(o, "v1 -> v2: verify_failed") {
		t.Fatalf("releases: %d\n%s", code, o)
	}
	if code, _, _ := cli("releases", "svc"); code != 2 {
		t.Fatalf("releases without --root: exit %d", code)
	}
}
