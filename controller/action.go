package controller

import (
	"context"
	"fmt"
	"sort"

	"github.com/vigil-sre/vigil/rules"
)

// Outcome statuses of an action.
const (
	OutcomeSuccess  = "success"
	OutcomeFailure  = "failure"
	OutcomeTimeout  = "timeout"
	OutcomeDryRun   = "dry_run"
	OutcomeCooldown = "cooldown"
	OutcomeDup      = "duplicate"
	OutcomeRejected = "rejected"
)

// Outcome is what an action did. Values are measurements of the action
// recorded with its finished event (v_<name> in InfluxDB), e.g.
// rpo_seconds.
type Outcome struct {
	Status   string
	ExitCode int
	Output   string
	Values   map[string]float64
}

// Action carries out an intent. Execute must be idempotent for one intent
// key; the dispatcher already runs each key at most once.
type Action interface {
	Kind() string
	Execute(ctx context.Context, in rules.Intent) (Outcome, error)
}

// actionFactory builds an action from its rule-file specification.
type actionFactory func(spec *rules.Action, cfg ActionsConfig) (Action, error)

var actionKinds = map[string]actionFactory{}

// registerAction makes an action kind available under name.
func registerAction(name string, f actionFactory) {
	if _, dup := actionKinds[name]; dup {
		panic("controller: action kind registered twice: " + name)
	}
	actionKinds[name] = f
}

// ActionKinds lists the registered action kinds.
func ActionKinds() []string {
	names := make([]string, 0, len(actionKinds))
	for n := range actionKinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func newAction(spec *rules.Action, cfg ActionsConfig) (Action, error) {
	f, ok := actionKinds[spec.Kind]
	if !ok {
		return nil, fmt.Errorf("action %q: unknown kind %q (known: %v)", spec.Name, spec.Kind, ActionKinds())
	}
	return f(spec, cfg)
}
