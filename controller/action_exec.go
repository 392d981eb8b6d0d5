package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/vigil-sre/vigil/rules"
)

// execAction runs a program named in a rule file, with the arguments
// written there — never anything that arrived with telemetry — without a
// shell, under a timeout, capturing its combined output (bounded).
//
// The program does not inherit the controller's environment (which holds
// secrets such as INFLUX_TOKEN): it gets the variables named in
// actions.pass_env (default PATH, HOME, USER, LANG, LC_ALL, TZ, TMPDIR)
// when set, and its context only through these variables:
// VIGIL_RULE, VIGIL_GROUP, VIGIL_HOST, VIGIL_SEVERITY, VIGIL_KEY (the
// idempotency key), VIGIL_FIRED_AT and VIGIL_PREDICTED_FAILURE (RFC 3339,
// empty when the rule made no time prediction), VIGIL_VALUES (JSON object
// of the values that made the rule fire).
//
// On timeout the whole process group is killed. Exit code 0 is success.
type execAction struct {
	program   string
	args      []string
	timeout   time.Duration
	maxOutput int
	passEnv   []string
}

func newExecAction(spec *rules.Action, cfg ActionsConfig) (Action, error) {
	if spec.Program == "" {
		return nil, fmt.Errorf("action %q: exec needs a program", spec.Name)
	}
	t := spec.Timeout
	if t <= 0 {
		t = time.Minute
	}
	return &execAction{program: spec.Program, args: spec.Args, timeout: t, maxOutput: cfg.MaxOutput, passEnv: cfg.passEnv()}, nil
}

func (a *execAction) Kind() string { return "exec" }

func (a *execAction) Execute(ctx context.Context, in rules.Intent) (Outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, a.program, a.args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	cmd.Env = append(inherited(a.passEnv), execEnv(in)...)
	out := &limitedBuffer{max: a.maxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	o := Outcome{Status: OutcomeSuccess, Output: out.String()}
	if cmd.ProcessState != nil {
		o.ExitCode = cmd.ProcessState.ExitCode()
	}
	switch {
	case err == nil:
		return o, nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		o.Status = OutcomeTimeout
		return o, fmt.Errorf("exec %s: timed out after %s", a.program, a.timeout)
	default:
		o.Status = OutcomeFailure
		return o, fmt.Errorf("exec %s: %w", a.program, err)
	}
}

// inherited is the part of the controller's environment an action gets.
func inherited(names []string) []string {
	var env []string
	for _, k := range names {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func execEnv(in rules.Intent) []string {
	var rule, group, sev string
	if in.Rule != nil {
		rule, group, sev = in.Rule.Name, in.Rule.Group, in.Rule.Severity
	}
	vals, _ := json.Marshal(finiteValues(in.Values))
	pred := ""
	if !in.PredictedFailure.IsZero() {
		pred = in.PredictedFailure.UTC().Format(time.RFC3339Nano)
	}
	return []string{
		"VIGIL_RULE=" + rule,
		"VIGIL_GROUP=" + group,
		"VIGIL_HOST=" + in.Subject,
		"VIGIL_SEVERITY=" + sev,
		"VIGIL_KEY=" + in.Key,
		"VIGIL_FIRED_AT=" + in.At.UTC().Format(time.RFC3339Nano),
		"VIGIL_PREDICTED_FAILURE=" + pred,
		"VIGIL_VALUES=" + string(vals),
	}
}

// limitedBuffer keeps the first max bytes written and notes truncation.
type limitedBuffer struct {
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	room := b.max - b.buf.Len()
	if room <= 0 {
		b.truncated = b.truncated || len(p) > 0
		return len(p), nil
	}
	if len(p) > room {
		b.buf.Write(p[:room])
		b.truncated = true
		return len(p), nil
	}
	b.buf.Write(p)
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	if b.truncated {
		return b.buf.String() + "\n[output truncated]"
	}
	return b.buf.String()
}

func init() { registerAction("exec", newExecAction) }

var _ Action = (*execAction)(nil)
