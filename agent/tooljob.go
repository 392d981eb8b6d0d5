package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"sync"
	"time"

	"github.com/vigil-sre/vigil/internal/run"
	"github.com/vigil-sre/vigil/internal/wire"
)

// toolJob runs an external tool (nvidia-smi, smartctl) for a collector in
// the background, every `every`, bounded by `timeout`, so that a tick never
// waits for a fork: Collect emits the points of the run that finished since
// the previous tick (once) and starts the next run when it is due.
//
// A tool that is not installed makes the collector unavailable: one log
// line, no points, no errors; it is looked up again at every due time (a
// cheap PATH search), and its return is logged too. A run that fails is the
// collector's error on the tick that picks it up.
type toolJob struct {
	collector, tool string // e.g. "gpu", "nvidia-smi"
	program         string // configured path, or "" for PATH
	every, timeout  time.Duration
	log             *slog.Logger
	run             func(ctx context.Context, program string) ([]toolPoint, error)

	mu          sync.Mutex
	next        time.Time
	busy        bool
	points      []toolPoint // finished, not yet emitted
	err         error
	unavailable string
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup
}

// toolPoint is one point of a tool's output.
type toolPoint struct {
	measurement string
	tags        []wire.Tag
	fields      []wire.Field
}

// collect emits the finished run's points and starts a run when due.
func (j *toolJob) collect(now time.Time, emit Emit) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, p := range j.points {
		emit(p.measurement, p.tags, p.fields)
	}
	j.points = nil
	err := j.err
	j.err = nil
	if j.busy || now.Before(j.next) {
		return err
	}
	j.next = now.Add(j.every)
	name := j.program
	if name == "" {
		name = j.tool
	}
	path, lerr := exec.LookPath(name)
	if lerr != nil {
		if j.unavailable == "" {
			j.unavailable = lerr.Error()
			j.log.Info(j.tool+" not found: collector idle until it appears", "collector", j.collector, "reason", j.unavailable)
		}
		return err
	}
	if j.unavailable != "" {
		j.log.Info(j.tool+" found", "collector", j.collector, "path", path)
		j.unavailable = ""
	}
	if j.ctx == nil {
		j.ctx, j.cancel = context.WithCancel(context.Background())
	}
	if j.ctx.Err() != nil {
		return err // closed
	}
	j.busy = true
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		ctx, cancel := context.WithTimeout(j.ctx, j.timeout)
		defer cancel()
		pts, rerr := j.run(ctx, path)
		j.mu.Lock()
		j.busy = false
		j.points, j.err = pts, rerr
		j.mu.Unlock()
	}()
	return err
}

// Unavailable implements Availability for the collector.
func (j *toolJob) Unavailable() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.unavailable
}

// close stops a running tool and waits for it.
func (j *toolJob) close() error {
	j.mu.Lock()
	if j.cancel != nil {
		j.cancel()
	} else {
		j.ctx, j.cancel = context.WithCancel(context.Background())
		j.cancel()
	}
	j.mu.Unlock()
	j.wg.Wait()
	return nil
}

// maxToolOutput bounds what is kept of a tool's output.
const maxToolOutput = 4 << 20

// runTool runs program with args in its own process group (killed at the
// context's end) and returns its standard output and exit code. A non-zero
// exit is not an error here: smartctl reports disk problems in its exit
// status. Errors are: not started, killed, output too large.
func runTool(ctx context.Context, program string, args ...string) ([]byte, int, error) {
	res := run.Run(ctx, run.Spec{Argv: append([]string{program}, args...), InheritEnv: true, MaxOutput: maxToolOutput, MaxStderr: 4096})
	if ctx.Err() != nil {
		return nil, -1, fmt.Errorf("%s: %w", program, ctx.Err())
	}
	var ee *exec.ExitError
	if res.Err != nil && !errors.As(res.Err, &ee) {
		return nil, -1, fmt.Errorf("%s: %w", program, res.Err)
	}
	if res.StdoutTruncated {
		return nil, -1, fmt.Errorf("%s: output larger than %d bytes", program, maxToolOutput)
	}
	code := res.ExitCode
	if code < 0 {
		return nil, code, fmt.Errorf("%s: %v", program, res.Err)
	}
	if code != 0 && len(res.Stdout) == 0 {
		return nil, code, fmt.Errorf("%s: exit status %d: %s", program, code, bytes.TrimSpace(res.Stderr))
	}
	return res.Stdout, code, nil
}
