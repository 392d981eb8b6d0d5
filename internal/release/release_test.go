package release

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestMain lets the test binary be the restart hook: with
// RELEASE_TEST_HOOK=<marker> set it appends the version `current` points
// to (RELEASE_TEST_CURRENT) to the marker file and exits; with
// RELEASE_TEST_HOOK_EXIT=n it exits with status n.
func TestMain(m *testing.M) {
	if marker := os.Getenv("RELEASE_TEST_HOOK"); marker != "" {
		t, err := os.Readlink(os.Getenv("RELEASE_TEST_CURRENT"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "hook:", err)
			os.Exit(4)
		}
		f, err := os.OpenFile(marker, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err == nil {
			_, err = fmt.Fprintln(f, "restarted "+filepath.Base(t))
			f.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "hook:", err)
			os.Exit(5)
		}
		os.Exit(0)
	}
	if code := os.Getenv("RELEASE_TEST_HOOK_EXIT"); code != "" {
		fmt.Fprintln(os.Stderr, "hook failing on purpose")
		os.Exit(3)
	}
	os.Exit(m.Run())
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// deploy creates version directories with a health file each.
func deploy(t *testing.T, r *Registry, health map[string]string) {
	t.Helper()
	for v, h := range health {
		if err := os.MkdirAll(r.VersionDir(v), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(r.VersionDir(v), "health"), []byte(h), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func openT(t *testing.T) *Registry {
	t.Helper()
	r, err := Open(t.TempDir(), "model-a")
	if err != nil {
		t.Fatal(err)
	}
	r.HealthyFor = 10 * time.Minute
	return r
}

func TestLKGAfterHealthyPeriod(t *testing.T) {
	r := openT(t)
	deploy(t, r, map[string]string{"v1": "ok", "v2": "ok"})
	if _, err := r.LastKnownGood(); !errors.Is(err, ErrNoLKG) {
		t.Fatalf("LKG of a new registry: %v, want ErrNoLKG", err)
	}
	if err := r.Activate("v1", t0); err != nil {
		t.Fatal(err)
	}
	rec := func(ok bool, at time.Duration) {
		t.Helper()
		if _, err := r.RecordHealth(ok, t0.Add(at)); err != nil {
			t.Fatal(err)
		}
	}
	rec(true, time.Minute)
	rec(true, 6*time.Minute)
	rec(false, 8*time.Minute) // breaks the run
	rec(true, 9*time.Minute)
	rec(true, 18*time.Minute) // 9 min healthy: not yet
	if _, err := r.LastKnownGood(); !errors.Is(err, ErrNoLKG) {
		t.Fatalf("LKG after an interrupted run: %v", err)
	}
	rec(true, 19*time.Minute)
	if v, err := r.LastKnownGood(); err != nil || v != "v1" {
		t.Fatalf("LKG = %q, %v; want v1", v, err)
	}
	// v2 healthy for 10 min, but v1 was re-activated in between: its
	// period restarts at the re-activation.
	if err := r.Activate("v2", t0.Add(20*time.Minute)); err != nil {
		t.Fatal(err)
	}
	rec(true, 21*time.Minute)
	if err := r.Activate("v1", t0.Add(25*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := r.Activate("v2", t0.Add(26*time.Minute)); err != nil {
		t.Fatal(err)
	}
	rec(true, 32*time.Minute)
	if v, _ := r.LastKnownGood(); v != "v1" {
		t.Fatalf("LKG = %q after 6 min of v2, want still v1", v)
	}
	rec(true, 42*time.Minute)
	if v, _ := r.LastKnownGood(); v != "v2" {
		t.Fatalf("LKG = %q after 10 min of v2, want v2", v)
	}
	st, err := r.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Current != "v2" || len(st.Versions) != 2 || !st.Versions[1].LKG || !st.Versions[1].Healthy ||
		!st.Versions[1].HealthySince.Equal(t0.Add(32*time.Minute)) {
		t.Fatalf("status: %+v", st)
	}
	// Observations are run-length encoded: v1 had 4 runs (ok, bad, ok... )
	s, _ := r.State()
	if n := len(s.Versions["v1"].Runs); n != 3 {
		t.Fatalf("v1 runs = %d, want 3: %+v", n, s.Versions["v1"].Runs)
	}
}

func TestActivateRefusals(t *testing.T) {
	r := openT(t)
	deploy(t, r, map[string]string{"v1": "ok"})
	for _, v := range []string{"v9", "../v1", ".hidden", ""} {
		if err := r.Activate(v, t0); err == nil {
			t.Errorf("Activate(%q) succeeded", v)
		}
	}
	if _, err := r.RecordHealth(true, t0); !errors.Is(err, ErrNoCurrent) {
		t.Errorf("RecordHealth without current: %v", err)
	}
	if _, err := Open(t.TempDir(), "a/b"); err == nil {
		t.Error("Open accepted a name with a slash")
	}
}

// TestSwapNeverMissing: a reader resolving `current` in a loop while it is
// switched back and forth never finds it missing.
func TestSwapNeverMissing(t *testing.T) {
	r := openT(t)
	deploy(t, r, map[string]string{"v1": "ok", "v2": "bad"})
	if err := r.Activate("v1", t0); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var reads, misses atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if _, err := os.ReadFile(filepath.Join(r.CurrentPath(), "health")); err != nil {
				misses.Add(1)
			}
			reads.Add(1)
		}
	}()
	for i := range 300 {
		v := []string{"v2", "v1"}[i%2]
		if err := r.Activate(v, t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if misses.Load() != 0 || reads.Load() == 0 {
		t.Fatalf("reader: %d reads, %d failed", reads.Load(), misses.Load())
	}
	t.Logf("%d reads during 300 switches, none failed", reads.Load())
}
