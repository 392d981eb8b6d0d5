// Package run runs an external program the one way Vigil does it: program
// and arguments, never through a shell; the environment chosen by the
// caller (by default none of the caller's own, which may hold secrets);
// bounded by a timeout; in its own process group, all of which is killed
// (SIGKILL) when the timeout passes or the context ends, so that the
// program's children die with it; standard output and error captured up to
// a bound (the first or the last bytes kept, truncation flagged); and the
// exit code or the signal that ended it reported.
//
// Waiting for the output never hangs on a grandchild that keeps the pipes
// open after the program exited (a daemon it started): after WaitDelay the
// pipes are closed and Run returns.
package run

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultMaxOutput is what is kept of an output when Spec.MaxOutput is 0.
const DefaultMaxOutput = 64 << 10

// DefaultWaitDelay is Spec.WaitDelay's default.
const DefaultWaitDelay = time.Second

// ErrTimeout is wrapped by Result.Err when Spec.Timeout (or a deadline of
// the context) ended the program.
var ErrTimeout = errors.New("timed out")

// Spec says what to run and how.
type Spec struct {
	// Argv is the program and its arguments. A program without a slash
	// is looked up in PATH.
	Argv []string
	// Env is added to the program's environment (KEY=value).
	Env []string
	// InheritEnv starts the program's environment from the caller's whole
	// environment. Without it the program gets only the caller's variables
	// named in PassEnv (those that are set) and Env.
	InheritEnv bool
	// PassEnv names the caller's variables passed on without InheritEnv.
	PassEnv []string
	// Dir is the working directory; "" is the caller's.
	Dir string
	// Timeout bounds the run; 0 leaves it to ctx.
	Timeout time.Duration
	// MaxOutput bounds what is kept of standard output (of both outputs
	// with Combined). Default DefaultMaxOutput; negative: the output goes
	// to the null device.
	MaxOutput int
	// MaxStderr bounds what is kept of standard error without Combined.
	// Default MaxOutput; negative: the null device.
	MaxStderr int
	// Combined writes standard error into Result.Stdout too, in the order
	// written.
	Combined bool
	// KeepTail keeps the last bytes of an output that is too long, not the
	// first.
	KeepTail bool
	// WaitDelay is how long to wait for the output pipes to close after
	// the program exited or was killed. Default DefaultWaitDelay.
	WaitDelay time.Duration
}

// Result is what happened.
type Result struct {
	// Started: the program was started (Err may still say why it failed).
	Started bool
	// ExitCode is the program's exit status; -1 when it did not start or
	// was ended by a signal.
	ExitCode int
	// Signal is the signal that ended the program, or 0.
	Signal syscall.Signal
	// Stdout is the kept standard output (both outputs with Combined),
	// Stderr the kept standard error.
	Stdout, Stderr []byte
	// StdoutTruncated and StderrTruncated: the output was longer than kept.
	StdoutTruncated, StderrTruncated bool
	// TimedOut: the program was killed at the timeout or the context's
	// deadline (Err wraps ErrTimeout and context.DeadlineExceeded).
	TimedOut bool
	// Duration from the start to the end of the wait.
	Duration time.Duration
	// Err is nil when the program exited 0 and its output was read to the
	// end. Otherwise: the failure to start it (a missing program's error
	// names it and wraps os.ErrNotExist or exec.ErrNotFound), an
	// *exec.ExitError ("exit status 3", "signal: segmentation fault"),
	// ErrTimeout ("timed out after 5s"), the context's cancellation
	// ("killed: context canceled"), or exec.ErrWaitDelay (exited 0, but
	// something kept its output open).
	Err error
}

// Run runs spec.Argv and waits for it.
func Run(ctx context.Context, spec Spec) Result {
	res := Result{ExitCode: -1}
	if len(spec.Argv) == 0 || spec.Argv[0] == "" {
		res.Err = errors.New("no program")
		return res
	}
	if spec.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, spec.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, spec.Argv[0], spec.Argv[1:]...)
	cmd.Dir = spec.Dir
	cmd.Env = environ(spec)
	var killed atomic.Bool
	ownGroup(cmd, &killed)
	cmd.WaitDelay = spec.WaitDelay
	if cmd.WaitDelay <= 0 {
		cmd.WaitDelay = DefaultWaitDelay
	}
	stdout := newCapture(spec.MaxOutput, spec.KeepTail)
	if stdout != nil {
		cmd.Stdout = stdout
	}
	var stderr *capture
	switch {
	case spec.Combined:
		if stdout != nil {
			cmd.Stderr = stdout // the same writer: exec calls it from one goroutine at a time
		}
	default:
		limit := spec.MaxStderr
		if limit == 0 {
			limit = spec.MaxOutput
		}
		if stderr = newCapture(limit, spec.KeepTail); stderr != nil {
			cmd.Stderr = stderr
		}
	}

	start := time.Now()
	err := cmd.Start()
	if err == nil {
		res.Started = true
		err = cmd.Wait()
		res.Duration = time.Since(start)
	}
	if ps := cmd.ProcessState; ps != nil {
		res.ExitCode = ps.ExitCode()
		res.Signal = signalOf(ps)
	}
	res.Stdout, res.StdoutTruncated = stdout.result()
	res.Stderr, res.StderrTruncated = stderr.result()
	switch {
	case err == nil:
	case ctx.Err() != nil && (killed.Load() || !res.Started && errors.Is(err, ctx.Err())):
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			res.TimedOut = true
			res.Err = timeoutError{spec.Timeout}
		} else {
			res.Err = fmt.Errorf("killed: %w", ctx.Err())
		}
	default:
		res.Err = err
	}
	return res
}

// timeoutError says how long the program had.
type timeoutError struct{ after time.Duration }

func (e timeoutError) Error() string {
	if e.after <= 0 {
		return ErrTimeout.Error()
	}
	return fmt.Sprintf("%v after %s", ErrTimeout, e.after)
}

func (e timeoutError) Is(target error) bool {
	return target == ErrTimeout || target == context.DeadlineExceeded
}

// environ is the program's environment: never nil, for exec.Cmd reads a
// nil Env as "the caller's".
func environ(spec Spec) []string {
	env := []string{}
	if spec.InheritEnv {
		env = os.Environ()
	} else {
		for _, k := range spec.PassEnv {
			if v, ok := os.LookupEnv(k); ok {
				env = append(env, k+"="+v)
			}
		}
	}
	return append(env, spec.Env...)
}

// capture keeps the first (or, with tail, the last) max bytes written to
// it and counts them all; it never refuses a write, so the program never
// blocks on a full pipe.
type capture struct {
	b     []byte
	max   int
	tail  bool
	total int64
}

// newCapture is nil (the null device) for a negative limit.
func newCapture(limit int, tail bool) *capture {
	if limit < 0 {
		return nil
	}
	if limit == 0 {
		limit = DefaultMaxOutput
	}
	return &capture{max: limit, tail: tail}
}

func (c *capture) Write(p []byte) (int, error) {
	c.total += int64(len(p))
	if !c.tail {
		if room := c.max - len(c.b); room > 0 {
			c.b = append(c.b, p[:min(room, len(p))]...)
		}
		return len(p), nil
	}
	if len(p) >= c.max {
		c.b = append(c.b[:0], p[len(p)-c.max:]...)
		return len(p), nil
	}
	c.b = append(c.b, p...)
	if len(c.b) > 2*c.max { // slide rarely: amortised O(1) a byte
		c.b = append(c.b[:0], c.b[len(c.b)-c.max:]...)
	}
	return len(p), nil
}

// result is what was kept and whether more was written.
func (c *capture) result() ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	if len(c.b) > c.max {
		c.b = c.b[len(c.b)-c.max:]
	}
	return c.b, c.total > int64(c.max)
}
