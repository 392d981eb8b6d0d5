package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/vigil-sre/vigil/internal/run"
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
	res := run.Run(ctx, run.Spec{
		Argv:    append([]string{a.program}, a.args...),
		PassEnv: a.passEnv, Env: execEnv(in),
		Timeout: a.timeout, MaxOutput: a.maxOutput, Combined: true, WaitDelay: 2 * time.Second,
	})
	o := Outcome{Status: OutcomeSuccess, Output: string(res.Stdout)}
	if res.StdoutTruncated {
		o.Output += "\n[output truncated]"
	}
	if res.Started {
		o.ExitCode = res.ExitCode
	}
	switch {
	case res.Err == nil:
		return o, nil
	case res.TimedOut:
		o.Status = OutcomeTimeout
	default:
		o.Status = OutcomeFailure
	}
	return o, fmt.Errorf("exec %s: %w", a.program, res.Err)
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

func init() { registerAction("exec", newExecAction) }

var _ Action = (*execAction)(nil)
