//go:build unix

package run

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func sh(script string, args ...string) []string {
	return append([]string{"/bin/sh", "-c", script, "sh"}, args...)
}

func TestRun(t *testing.T) {
	t.Setenv("VIGIL_RUN_SECRET", "hunter2")
	t.Setenv("VIGIL_RUN_PASSED", "yes")
	missing := filepath.Join(t.TempDir(), "no-such-program")
	tests := []struct {
		name       string
		spec       Spec
		code       int
		sig        syscall.Signal
		stdout     string
		stderr     string
		outTrunc   bool
		errTrunc   bool
		errHas     string // "" : Err must be nil
		errIs      error
		notStarted bool
	}{
		{name: "success", spec: Spec{Argv: sh("echo out; echo err >&2")}, stdout: "out\n", stderr: "err\n"},
		{name: "exit code", spec: Spec{Argv: sh("echo failing >&2; exit 3")}, code: 3, stderr: "failing\n", errHas: "exit status 3"},
		{name: "arguments are not split", spec: Spec{Argv: sh(`printf '%s|' "$@"`, "a b", "", "c")}, stdout: "a b||c|"},
		{name: "combined", spec: Spec{Argv: sh("echo one; echo two >&2; echo three"), Combined: true}, stdout: "one\ntwo\nthree\n"},
		{name: "signal", spec: Spec{Argv: sh("kill -TERM $$")}, code: -1, sig: syscall.SIGTERM, errHas: "signal: terminated"},
		{name: "head kept", spec: Spec{Argv: sh("printf 0123456789"), MaxOutput: 4}, stdout: "0123", outTrunc: true},
		{name: "tail kept", spec: Spec{Argv: sh("printf 0123456789"), MaxOutput: 4, KeepTail: true}, stdout: "6789", outTrunc: true},
		{name: "exactly max is whole", spec: Spec{Argv: sh("printf 0123"), MaxOutput: 4}, stdout: "0123"},
		{name: "stderr bound", spec: Spec{Argv: sh("printf 0123456789; printf abcdef >&2"), MaxStderr: 2}, stdout: "0123456789", stderr: "ab", errTrunc: true},
		{name: "discarded", spec: Spec{Argv: sh("echo out; echo err >&2"), MaxOutput: -1}},
		{name: "huge output truncated", spec: Spec{Argv: sh("head -c 5000000 /dev/zero | tr '\\0' x"), MaxOutput: 1000}, stdout: strings.Repeat("x", 1000), outTrunc: true},
		{name: "huge output tail", spec: Spec{Argv: sh("head -c 5000000 /dev/zero | tr '\\0' x; printf END"), MaxOutput: 1000, KeepTail: true}, stdout: strings.Repeat("x", 997) + "END", outTrunc: true},
		{name: "clean environment", spec: Spec{Argv: sh(`echo "[$VIGIL_RUN_SECRET][$VIGIL_RUN_PASSED][$EXTRA]"`), PassEnv: []string{"VIGIL_RUN_PASSED", "VIGIL_RUN_ABSENT"}, Env: []string{"EXTRA=e"}}, stdout: "[][yes][e]\n"},
		{name: "inherited environment", spec: Spec{Argv: sh(`echo "[$VIGIL_RUN_SECRET][$EXTRA]"`), InheritEnv: true, Env: []string{"EXTRA=e"}}, stdout: "[hunter2][e]\n"},
		{name: "directory", spec: Spec{Argv: []string{"/bin/pwd"}, Dir: "/"}, stdout: "/\n"},
		{name: "timeout", spec: Spec{Argv: sh("echo started; sleep 30"), Timeout: 200 * time.Millisecond}, code: -1, sig: syscall.SIGKILL, stdout: "started\n", errHas: "timed out after 200ms", errIs: ErrTimeout},
		{name: "missing program path", spec: Spec{Argv: []string{missing}}, code: -1, errHas: missing, errIs: os.ErrNotExist, notStarted: true},
		{name: "missing program in PATH", spec: Spec{Argv: []string{"vigil-no-such-program"}}, code: -1, errHas: "vigil-no-such-program", errIs: exec.ErrNotFound, notStarted: true},
		{name: "no program", spec: Spec{}, code: -1, errHas: "no program", notStarted: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := Run(context.Background(), tc.spec)
			if res.ExitCode != tc.code || res.Signal != tc.sig {
				t.Errorf("exit code %d signal %v, want %d %v", res.ExitCode, res.Signal, tc.code, tc.sig)
			}
			if res.Started == tc.notStarted {
				t.Errorf("started %v", res.Started)
			}
			if string(res.Stdout) != tc.stdout || res.StdoutTruncated != tc.outTrunc {
				t.Errorf("stdout %.80q (truncated %v), want %.80q (%v)", res.Stdout, res.StdoutTruncated, tc.stdout, tc.outTrunc)
			}
			if string(res.Stderr) != tc.stderr || res.StderrTruncated != tc.errTrunc {
				t.Errorf("stderr %q (truncated %v), want %q (%v)", res.Stderr, res.StderrTruncated, tc.stderr, tc.errTrunc)
			}
			switch {
			case tc.errHas == "" && res.Err != nil:
				t.Errorf("err %v", res.Err)
			case tc.errHas != "" && (res.Err == nil || !strings.Contains(res.Err.Error(), tc.errHas)):
				t.Errorf("err %v, want it to say %q", res.Err, tc.errHas)
			case tc.errIs != nil && !errors.Is(res.Err, tc.errIs):
				t.Errorf("err %v is not %v", res.Err, tc.errIs)
			}
			if res.TimedOut != errors.Is(tc.errIs, ErrTimeout) {
				t.Errorf("TimedOut %v", res.TimedOut)
			}
		})
	}
}

// procAlive: pid is a process that has not exited (a zombie has).
func procAlive(pid int) bool {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(status), "\n") {
		if state, ok := strings.CutPrefix(line, "State:"); ok {
			state = strings.TrimSpace(state)
			return !strings.HasPrefix(state, "Z") && !strings.HasPrefix(state, "X")
		}
	}
	return false
}

// waitDead waits a little for pid to be gone (a killed grandchild is
// reaped by whoever adopts it).
func waitDead(pid int) bool {
	for i := 0; i < 200 && procAlive(pid); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	return !procAlive(pid)
}

// The timeout and the context's cancellation kill the program's children
// too, and Run does not wait for them.
func TestKillsProcessGroup(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	for _, timeout := range []bool{true, false} {
		dir := t.TempDir()
		pidfile := filepath.Join(dir, "pid")
		// The shell writes its output, starts a sleeping grandchild holding
		// the output open, writes its pid, and waits for it. (The output
		// comes first and the timeout is generous, so that a loaded machine
		// cannot make the kill come before it.)
		spec := Spec{Argv: sh(`echo started; sleep 60 & echo $! > "$1.tmp"; mv "$1.tmp" "$1"; wait`, pidfile), Combined: true}
		ctx, cancel := context.WithCancel(context.Background())
		if timeout {
			spec.Timeout = 2 * time.Second
		} else {
			go func() {
				for i := 0; i < 1000; i++ {
					if _, err := os.Stat(pidfile); err == nil {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
				cancel()
			}()
		}
		res := Run(ctx, spec)
		cancel()
		data, err := os.ReadFile(pidfile)
		if err != nil {
			t.Fatalf("timeout %v: grandchild pid: %v (result %+v)", timeout, err, res)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
		if !waitDead(pid) {
			t.Errorf("timeout %v: grandchild %d survived", timeout, pid)
		}
		if !bytes.Contains(res.Stdout, []byte("started")) {
			t.Errorf("timeout %v: output before the kill lost: %q", timeout, res.Stdout)
		}
		if timeout != res.TimedOut || res.Signal != syscall.SIGKILL {
			t.Errorf("timeout %v: TimedOut %v, signal %v", timeout, res.TimedOut, res.Signal)
		}
		if !timeout && (!errors.Is(res.Err, context.Canceled) || !strings.Contains(res.Err.Error(), "killed")) {
			t.Errorf("cancelled: err %v", res.Err)
		}
	}
}

// A program that exits while a daemon it started keeps the output pipe
// open: Run returns after WaitDelay with the exit code and what was
// written, and leaves the daemon alone.
func TestGrandchildHoldingOutput(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	done := make(chan Result, 1)
	go func() {
		done <- Run(context.Background(), Spec{
			Argv:      sh(`sleep 60 & echo $! > "$1"; echo bye`, pidfile),
			WaitDelay: 100 * time.Millisecond,
		})
	}()
	var res Result
	select {
	case res = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run waited for the grandchild")
	}
	data, _ := os.ReadFile(pidfile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if pid > 0 {
		defer syscall.Kill(pid, syscall.SIGKILL)
		if !procAlive(pid) {
			t.Errorf("the daemon %d was killed after a normal exit", pid)
		}
	}
	if res.ExitCode != 0 || string(res.Stdout) != "bye\n" || !errors.Is(res.Err, exec.ErrWaitDelay) {
		t.Errorf("result %+v, want exit 0, output bye and ErrWaitDelay", res)
	}
}

func TestCaptureTail(t *testing.T) {
	c := newCapture(5, true)
	var all []byte
	for i := 0; i < 100; i++ {
		p := []byte(strconv.Itoa(i))
		all = append(all, p...)
		_, _ = c.Write(p)
		got, trunc := c.result()
		want := all[max(0, len(all)-5):]
		if string(got) != string(want) || trunc != (len(all) > 5) {
			t.Fatalf("after %q: %q %v, want %q", all, got, trunc, want)
		}
	}
}
