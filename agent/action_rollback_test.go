package agent

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/release"
	"github.com/vigil-sre/vigil/internal/wire"
)

// collectReleaseAt runs r.Collect at tick now, waits for the health check
// it started, and returns the release point of the first release (nil
// when none was emitted).
func collectReleaseAt(t *testing.T, r *Releases, now time.Time) *point {
	t.Helper()
	var out *point
	emit := func(m string, tags []wire.Tag, fields []wire.Field) {
		p := point{m: m, tags: map[string]string{}, fields: map[string]wire.Field{}}
		for _, tg := range tags {
			p.tags[tg.Key] = tg.Value
		}
		for _, f := range fields {
			p.fields[f.Key] = f
		}
		out = &p
	}
	if err := r.Collect(context.Background(), now, emit); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		e := r.entries[0]
		e.mu.Lock()
		busy := e.busy
		e.mu.Unlock()
		if !busy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("health check did not finish")
		}
	}
	return out
}

func TestReleasesCollectorAndRollbackAction(t *testing.T) {
	touch, err := exec.LookPath("touch")
	if err != nil {
		t.Skip("no touch program")
	}
	root, marker := t.TempDir(), filepath.Join(t.TempDir(), "restarted")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if b, err := os.ReadFile(filepath.Join(root, "svc", "current", "health")); err != nil || string(b) != "ok" {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	yaml := fmt.Sprintf(`host: h1
releases:
  - name: svc
    root: %s
    healthy_for: 10m
    check_every: 1m
    restart: {program: %s, args: [%s], timeout: 10s}
    health: {url: "%s/healthz", timeout: 2s, retries: 1, interval: 10ms}
`, root, touch, marker, srv.URL)
	cfg, err := ParseConfig("agent.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReleases(cfg.Releases, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	reg := r.entries[0].reg
	for v, h := range map[string]string{"v1": "ok", "v2": "bad"} {
		os.MkdirAll(reg.VersionDir(v), 0o755)
		if err := os.WriteFile(filepath.Join(reg.VersionDir(v), "health"), []byte(h), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if p := collectReleaseAt(t, r, t0); p != nil {
		t.Fatalf("point without a current version: %+v", p)
	}
	if err := reg.Activate("v1", t0); err != nil {
		t.Fatal(err)
	}
	// The agent's own checks, one per minute, make v1 the LKG at 10 min.
	var p *point
	for i := 0; i <= 11; i++ {
		p = collectReleaseAt(t, r, t0.Add(time.Duration(i)*time.Minute+time.Second))
	}
	if lkg, err := reg.LastKnownGood(); err != nil || lkg != "v1" {
		t.Fatalf("LKG %q, %v", lkg, err)
	}
	p = collectReleaseAt(t, r, t0.Add(12*time.Minute+time.Second))
	if p.tags["release"] != "svc" || p.num(t, "is_lkg") != 1 || p.num(t, "healthy") != 1 || p.num(t, "current_version_age_seconds") != 721 {
		t.Fatalf("v1 point: %+v", p)
	}
	// v2 deployed, found unhealthy by the agent's check.
	if err := reg.Activate("v2", t0.Add(20*time.Minute)); err != nil {
		t.Fatal(err)
	}
	collectReleaseAt(t, r, t0.Add(20*time.Minute+time.Second))
	p = collectReleaseAt(t, r, t0.Add(20*time.Minute+2*time.Second)) // not due: reads the recorded health
	if p.num(t, "is_lkg") != 0 || p.num(t, "healthy") != 0 || p.num(t, "rollbacks") != 0 {
		t.Fatalf("v2 point: %+v", p)
	}

	// The host action rolls back to the LKG through the same path.
	act := r.Action()
	if act.Name() != "rollback" || strings.Join(act.Params(), ",") != "release,version" {
		t.Fatalf("action %s %v", act.Name(), act.Params())
	}
	var frac []float64
	res, err := act.Run(context.Background(), &wire.Command{ID: "c1", Action: "rollback", Params: map[string]string{"release": "svc"}},
		func(f float64, _ string) { frac = append(frac, f) })
	if err != nil {
		t.Fatalf("rollback action: %v", err)
	}
	if res["from"] != "v2" || res["to"] != "v1" || res["outcome"] != release.OutcomeSuccess || len(frac) < 3 || frac[len(frac)-1] != 1 {
		t.Fatalf("result %v, progress %v", res, frac)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("restart hook did not run: %v", err)
	}
	if cur, _ := reg.Current(); cur != "v1" {
		t.Fatalf("current %s", cur)
	}
	p = collectReleaseAt(t, r, t0.Add(20*time.Minute+3*time.Second))
	if p.num(t, "rollbacks") != 1 || p.num(t, "is_lkg") != 1 || p.num(t, "healthy") != 1 {
		t.Fatalf("after rollback: %+v", p)
	}
	// Refusals: already current, unknown release.
	if _, err := act.Run(context.Background(), &wire.Command{ID: "c2", Params: map[string]string{}}, func(float64, string) {}); err == nil ||
		!strings.Contains(err.Error(), "already current") {
		t.Fatalf("second rollback: %v", err)
	}
	if _, err := act.Run(context.Background(), &wire.Command{ID: "c3", Params: map[string]string{"release": "nope"}}, func(float64, string) {}); err == nil ||
		!strings.Contains(err.Error(), `unknown release "nope"`) {
		t.Fatalf("unknown release: %v", err)
	}
}

func TestReleasesConfigErrors(t *testing.T) {
	_, err := ParseConfig("agent.yaml", []byte(`host: h1
releases:
  - name: a
    root: /tmp/x
    health: {url: "ftp://x"}
    on_failure: maybe
  - name: a
    health: {url: "http://x", program: /bin/true}
`))
	if err == nil {
		t.Fatal("bad releases accepted")
	}
	for _, want := range []string{
		"agent.yaml:5:", "health.url", "agent.yaml:6:", "on_failure \"maybe\"", "listed twice", "root must be set", "exactly one of url and program",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}
