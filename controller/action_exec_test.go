package controller

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/rules"
)

// testProg returns the test binary, which TestMain runs as testProgram
// (testprog_test.go) when VIGIL_TEST_PROG is set in its environment.
func testProg(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("VIGIL_TEST_PROG", "1")
	return self
}

func newTestExec(t *testing.T, program string, args []string, timeout time.Duration, maxOutput int) Action {
	t.Helper()
	act, err := newAction(&rules.Action{Name: "t", Kind: "exec", Program: program, Args: args, Timeout: timeout},
		ActionsConfig{Concurrency: 1, MaxOutput: maxOutput})
	if err != nil {
		t.Fatal(err)
	}
	return act
}

func execIntent() rules.Intent {
	return rules.Intent{
		Key:     "g/r/web-1/1700000000000000000",
		Rule:    &rules.Rule{Name: "r", Group: "g", Severity: "critical"},
		Subject: "web-1",
		At:      time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
		Values:  map[string]float64{"eta:disk.used_percent": 42.5, "bad": math.NaN()},
	}
}

func TestExecSuccessCapturesOutput(t *testing.T) {
	act := newTestExec(t, testProg(t), []string{"exit", "0", "hello out", "hello err"}, 10*time.Second, 1024)
	o, err := act.Execute(context.Background(), execIntent())
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if o.Status != OutcomeSuccess || o.ExitCode != 0 {
		t.Errorf("outcome %+v, want success with exit code 0", o)
	}
	if !strings.Contains(o.Output, "hello out") || !strings.Contains(o.Output, "hello err") {
		t.Errorf("output %q: want both stdout and stderr", o.Output)
	}
	if act.Kind() != "exec" {
		t.Errorf("Kind() = %q", act.Kind())
	}
}

func TestExecNonZeroExitIsFailure(t *testing.T) {
	act := newTestExec(t, testProg(t), []string{"exit", "3", "", "disk is on fire"}, 10*time.Second, 1024)
	o, err := act.Execute(context.Background(), execIntent())
	if err == nil {
		t.Fatal("Execute: no error for exit code 3")
	}
	if o.Status != OutcomeFailure || o.ExitCode != 3 {
		t.Errorf("outcome %+v, want failure with exit code 3", o)
	}
	if !strings.Contains(o.Output, "disk is on fire") {
		t.Errorf("output %q does not hold stderr", o.Output)
	}
	if !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("error %q does not name the exit status", err)
	}
}

// procAlive reports whether pid is a live (not zombie) process.
func procAlive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	st := s[i+2]
	return st != 'Z' && st != 'X'
}

func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pids")
	act := newTestExec(t, testProg(t), []string{"tree", pidfile}, time.Second, 1024)
	start := time.Now()
	o, err := act.Execute(context.Background(), execIntent())
	elapsed := time.Since(start)
	data, rerr := os.ReadFile(pidfile)
	if rerr != nil {
		t.Fatalf("the program did not write its pids within the 1s timeout: %v", rerr)
	}
	fields := strings.Fields(string(data))
	if len(fields) != 2 {
		t.Fatalf("pidfile %q", data)
	}
	var pids []int
	for _, f := range fields {
		pid, _ := strconv.Atoi(f)
		pids = append(pids, pid)
		t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	}
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("error %v, want a timeout", err)
	}
	if o.Status != OutcomeTimeout {
		t.Errorf("status %q, want %q", o.Status, OutcomeTimeout)
	}
	if !strings.Contains(o.Output, "tree started") {
		t.Errorf("output before the timeout was lost: %q", o.Output)
	}
	if elapsed > 30*time.Second {
		t.Errorf("Execute returned after %s: the program (which sleeps a minute) was not killed", elapsed)
	}
	// The parent was waited for; the child is re-parented and reaped by
	// whoever adopts it, so give that a moment.
	deadline := time.Now().Add(2 * time.Second)
	for _, pid := range pids {
		for procAlive(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if procAlive(pid) {
			t.Errorf("process %d still alive after the timeout (pids %v: program, its child)", pid, pids)
		}
	}
}

func TestExecOutputTruncated(t *testing.T) {
	act := newTestExec(t, testProg(t), []string{"out", "100000"}, 10*time.Second, 100)
	o, err := act.Execute(context.Background(), execIntent())
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	want := strings.Repeat("x", 100) + "\n[output truncated]"
	if o.Output != want {
		t.Errorf("output (%d bytes) = %.60q..., want 100 x and the truncation note", len(o.Output), o.Output)
	}

	// Exactly max_output bytes is not truncated.
	act = newTestExec(t, testProg(t), []string{"out", "100"}, 10*time.Second, 100)
	if o, err = act.Execute(context.Background(), execIntent()); err != nil || o.Output != strings.Repeat("x", 100) {
		t.Errorf("100 bytes with max 100: output %q, err %v", o.Output, err)
	}
}

func TestExecEnvironment(t *testing.T) {
	act := newTestExec(t, testProg(t), []string{"env"}, 10*time.Second, 4096)
	in := execIntent()
	in.PredictedFailure = time.Date(2024, 5, 1, 14, 30, 0, 500, time.FixedZone("x", 3600))
	o, err := act.Execute(context.Background(), in)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(o.Output), "\n") {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	want := map[string]string{
		"VIGIL_RULE":              "r",
		"VIGIL_GROUP":             "g",
		"VIGIL_HOST":              "web-1",
		"VIGIL_SEVERITY":          "critical",
		"VIGIL_KEY":               "g/r/web-1/1700000000000000000",
		"VIGIL_FIRED_AT":          "2024-05-01T12:00:00Z",
		"VIGIL_PREDICTED_FAILURE": "2024-05-01T13:30:00.0000005Z",
	}
	for k, v := range want {
		if got, ok := env[k]; !ok || got != v {
			t.Errorf("%s = %q (set %v), want %q", k, got, ok, v)
		}
	}
	var vals map[string]float64
	if err := json.Unmarshal([]byte(env["VIGIL_VALUES"]), &vals); err != nil {
		t.Fatalf("VIGIL_VALUES %q: %v", env["VIGIL_VALUES"], err)
	}
	if len(vals) != 1 || vals["eta:disk.used_percent"] != 42.5 {
		t.Errorf("VIGIL_VALUES = %v, want only the finite value", vals)
	}

	// Without a predicted failure the variable is present and empty.
	o, err = act.Execute(context.Background(), execIntent())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(o.Output, "VIGIL_PREDICTED_FAILURE=\n") {
		t.Errorf("VIGIL_PREDICTED_FAILURE not empty without a prediction:\n%s", o.Output)
	}
}

func TestExecMissingProgram(t *testing.T) {
	for _, prog := range []string{filepath.Join(t.TempDir(), "no-such-program"), "vigil-no-such-program-in-path"} {
		act := newTestExec(t, prog, nil, 10*time.Second, 1024)
		o, err := act.Execute(context.Background(), execIntent())
		if err == nil {
			t.Fatalf("%s: no error", prog)
		}
		if o.Status != OutcomeFailure {
			t.Errorf("%s: status %q, want failure", prog, o.Status)
		}
		if !strings.Contains(err.Error(), prog) || !(errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "not found")) {
			t.Errorf("%s: error %q should name the program and say it does not exist", prog, err)
		}
	}
	if _, err := newAction(&rules.Action{Name: "x", Kind: "exec"}, ActionsConfig{}); err == nil || !strings.Contains(err.Error(), "needs a program") {
		t.Errorf("exec without program: %v", err)
	}
	if _, err := newAction(&rules.Action{Name: "x", Kind: "teleport"}, ActionsConfig{}); err == nil || !strings.Contains(err.Error(), `unknown kind "teleport"`) {
		t.Errorf("unknown kind: %v", err)
	}
}

// The test binary doubles as the actions' program (TestMain); let the
// variables that select its mode through to it.
func init() {
	DefaultPassEnv = append(DefaultPassEnv, "VIGIL_TEST_PROG", "VIGIL_TEST_ACTION_LOG")
}

func TestActionEnvironmentIsNotInherited(t *testing.T) {
	t.Setenv("VIGIL_SECRET_FOR_TEST", "hunter2")
	prog := testProg(t)
	for _, pass := range []bool{false, true} {
		cfg := ActionsConfig{Concurrency: 1, MaxOutput: 4096}
		if pass {
			cfg.PassEnv = append([]string{"VIGIL_SECRET_FOR_TEST", "VIGIL_ABSENT_FOR_TEST"}, DefaultPassEnv...)
		}
		act, err := newAction(&rules.Action{Name: "t", Kind: "exec", Program: prog, Args: []string{"env"}, Timeout: 10 * time.Second}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		o, err := act.Execute(context.Background(), execIntent())
		if err != nil {
			t.Fatalf("Execute: %v", err)
		}
		if strings.Contains(o.Output, "VIGIL_ABSENT_FOR_TEST") {
			t.Errorf("an unset variable reached the action:\n%s", o.Output)
		}
		if got := strings.Contains(o.Output, "VIGIL_SECRET_FOR_TEST=hunter2\n"); got != pass {
			t.Errorf("pass_env %v: the variable reached the action: %v\n%s", pass, got, o.Output)
		}
	}
}
