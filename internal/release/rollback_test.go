package release

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// healthServer answers 200 when the current version's health file says
// "ok", else 503: the service's health depends on what `current` holds.
func healthServer(t *testing.T, r *Registry) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		b, err := os.ReadFile(filepath.Join(r.CurrentPath(), "health"))
		if err != nil || strings.TrimSpace(string(b)) != "ok" {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// hookCommand re-executes the test binary as the restart hook; it writes
// the version current points to into marker.
func hookCommand(r *Registry, marker string) Command {
	return Command{
		Program: os.Args[0], Args: []string{"-test.run=^$"}, Timeout: 30 * time.Second,
		Env: []string{"RELEASE_TEST_HOOK=" + marker, "RELEASE_TEST_CURRENT=" + r.CurrentPath()},
	}
}

// setupLKG: v1 deployed and LKG after 10 healthy minutes, v2 deployed and
// unhealthy. It returns the time after that.
func setupLKG(t *testing.T, r *Registry) time.Time {
	t.Helper()
	deploy(t, r, map[string]string{"v1": "ok", "v2": "bad"})
	steps := []func() error{
		func() error { return r.Activate("v1", t0) },
		func() error { _, err := r.RecordHealth(true, t0.Add(time.Minute)); return err },
		func() error { _, err := r.RecordHealth(true, t0.Add(11*time.Minute)); return err },
		func() error { return r.Activate("v2", t0.Add(20*time.Minute)) },
		func() error { _, err := r.RecordHealth(false, t0.Add(21*time.Minute)); return err },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := r.LastKnownGood(); v != "v1" || err != nil {
		t.Fatalf("LKG = %q, %v", v, err)
	}
	return t0.Add(22 * time.Minute)
}

func TestRollbackToLKG(t *testing.T) {
	r := openT(t)
	now := setupLKG(t, r)
	srv := healthServer(t, r)
	marker := filepath.Join(t.TempDir(), "marker")
	check := HealthCheck{URL: srv.URL, Timeout: 2 * time.Second}
	if err := check.Check(context.Background()); err == nil {
		t.Fatal("v2 is healthy before the rollback; the test server is wrong")
	}

	var stop atomic.Bool
	var reads, misses atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a reader of current, all through the rollback
		defer wg.Done()
		for !stop.Load() {
			if _, err := os.Stat(filepath.Join(r.CurrentPath(), "health")); err != nil {
				misses.Add(1)
			}
			reads.Add(1)
		}
	}()
	var steps []string
	res, err := r.Rollback(context.Background(), now, Hooks{
		Restart:  hookCommand(r, marker).Run,
		Check:    check.Check,
		Progress: func(_ float64, msg string) { steps = append(steps, msg) },
	})
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if res.From != "v2" || res.To != "v1" || res.Outcome != OutcomeSuccess {
		t.Fatalf("result %+v", res)
	}
	if misses.Load() != 0 {
		t.Fatalf("reader found current missing %d times of %d", misses.Load(), reads.Load())
	}
	if cur, _ := r.Current(); cur != "v1" {
		t.Fatalf("current = %s", cur)
	}
	b, err := os.ReadFile(marker)
	if err != nil || string(b) != "restarted v1\n" {
		t.Fatalf("restart hook marker: %q, %v (want it run once, after the switch)", b, err)
	}
	st, _ := r.State()
	if st.Rollbacks != 1 || len(st.History) != 1 || st.History[0].Outcome != OutcomeSuccess ||
		st.History[0].From != "v2" || !st.History[0].Time.Equal(now) {
		t.Fatalf("recorded: %+v", st)
	}
	if l := st.Versions["v1"].Last(); l == nil || !l.Healthy || l.From.Before(now) {
		t.Fatalf("v1 health after rollback: %+v", l)
	}
	t.Logf("rollback %s: switch %s, restart %s, verify %s, total %s; steps %q",
		res.Outcome, res.Switch, res.Restart, res.Verify, res.Total, steps)

	// v1 is now current and the LKG: a second rollback is refused.
	_, err = r.Rollback(context.Background(), now.Add(time.Minute), Hooks{})
	if !errors.Is(err, ErrAlreadyCurrent) || !strings.Contains(err.Error(), "last-known-good") {
		t.Fatalf("rollback to the current LKG: %v", err)
	}
	if _, err := r.Rollback(context.Background(), now, Hooks{To: "v1"}); !errors.Is(err, ErrAlreadyCurrent) {
		t.Fatalf("rollback --to current: %v", err)
	}
}

func TestRollbackRefusals(t *testing.T) {
	r := openT(t)
	deploy(t, r, map[string]string{"v1": "ok", "v2": "ok"})
	if _, err := r.Rollback(context.Background(), t0, Hooks{}); !errors.Is(err, ErrNoCurrent) {
		t.Fatalf("no current: %v", err)
	}
	if err := r.Activate("v1", t0); err != nil {
		t.Fatal(err)
	}
	if err := r.Activate("v2", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	_, err := r.Rollback(context.Background(), t0, Hooks{})
	if !errors.Is(err, ErrNoLKG) || !strings.Contains(err.Error(), "name a version") {
		t.Fatalf("no LKG: %v", err)
	}
	if _, err := r.Rollback(context.Background(), t0, Hooks{To: "v7"}); !errors.Is(err, ErrUnknownVersion) {
		t.Fatalf("unknown version: %v", err)
	}
	// Dry run: the plan, nothing changed.
	res, err := r.Rollback(context.Background(), t0, Hooks{To: "v1", DryRun: true})
	if err != nil || res.Outcome != OutcomeDryRun || res.From != "v2" || res.To != "v1" {
		t.Fatalf("dry run: %+v, %v", res, err)
	}
	if cur, _ := r.Current(); cur != "v2" {
		t.Fatalf("dry run changed current to %s", cur)
	}

	// Concurrent rollback: the first holds the lock in its restart hook.
	entered, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := r.Rollback(context.Background(), t0, Hooks{To: "v1", Restart: func(context.Context) error {
			close(entered)
			<-release
			return nil
		}})
		done <- err
	}()
	<-entered
	_, err = r.Rollback(context.Background(), t0, Hooks{To: "v1"})
	errDeploy := r.Activate("v2", t0)
	close(release)
	if err1 := <-done; err1 != nil {
		t.Fatalf("first rollback: %v", err1)
	}
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("concurrent rollback: %v, want ErrBusy", err)
	}
	if !errors.Is(errDeploy, ErrBusy) {
		t.Fatalf("deploy during a rollback: %v, want ErrBusy", errDeploy)
	}
	if st, _ := r.State(); st.Rollbacks != 1 || st.History[0].Outcome != OutcomeUnverified {
		t.Fatalf("state after the concurrent attempt: %+v", st)
	}
}

func TestRollbackFailures(t *testing.T) {
	r := openT(t)
	now := setupLKG(t, r)
	srv := healthServer(t, r)
	check := HealthCheck{URL: srv.URL, Timeout: time.Second, Retries: 2, Interval: 10 * time.Millisecond}
	marker := filepath.Join(t.TempDir(), "marker")

	// v1 (the LKG) has gone bad too: verification fails; with revert,
	// current goes back to v2 and the hook runs twice; v1 loses LKG.
	if err := os.WriteFile(filepath.Join(r.VersionDir("v1"), "health"), []byte("bad"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := r.Rollback(context.Background(), now, Hooks{Restart: hookCommand(r, marker).Run, Check: check.Check, OnFailure: OnFailureRevert})
	if !errors.Is(err, ErrVerifyFailed) || !strings.Contains(err.Error(), "3 attempts") {
		t.Fatalf("verify failure: %v", err)
	}
	if !res.Reverted || !res.LKGRevoked || res.Outcome != OutcomeVerifyFailed {
		t.Fatalf("result %+v", res)
	}
	if cur, _ := r.Current(); cur != "v2" {
		t.Fatalf("current after revert = %s", cur)
	}
	if b, _ := os.ReadFile(marker); string(b) != "restarted v1\nrestarted v2\n" {
		t.Fatalf("hook runs: %q", b)
	}
	if _, err := r.LastKnownGood(); !errors.Is(err, ErrNoLKG) {
		t.Fatalf("LKG after failed verification: %v", err)
	}

	// A failing restart hook (exit 3), default policy: stay on the target.
	fail := Command{Program: os.Args[0], Args: []string{"-test.run=^$"}, Env: []string{"RELEASE_TEST_HOOK_EXIT=3"}}
	res, err = r.Rollback(context.Background(), now.Add(time.Minute), Hooks{To: "v1", Restart: fail.Run, Check: check.Check})
	if !errors.Is(err, ErrRestartFailed) || !strings.Contains(err.Error(), "failing on purpose") {
		t.Fatalf("restart failure: %v", err)
	}
	if cur, _ := r.Current(); cur != "v1" || res.Reverted || res.Outcome != OutcomeRestartFailed {
		t.Fatalf("after a failed restart (stay): current %s, %+v", cur, res)
	}
	st, _ := r.State()
	if st.Rollbacks != 2 || st.History[1].Outcome != OutcomeRestartFailed || st.History[1].Error == "" {
		t.Fatalf("history: %+v", st.History)
	}
}

func TestHealthCheckCommand(t *testing.T) {
	ok := HealthCheck{Command: Command{Program: os.Args[0], Args: []string{"-test.run=^$"}}}
	if err := ok.Check(context.Background()); err != nil {
		t.Fatalf("command check: %v", err)
	}
	bad := HealthCheck{Command: Command{Program: os.Args[0], Args: []string{"-test.run=^$"}, Env: []string{"RELEASE_TEST_HOOK_EXIT=3"}}}
	if err := bad.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("failing command check: %v", err)
	}
}
