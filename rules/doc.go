// Package rules loads Vigil's failure-prediction rule files, compiles
// their conditions with expr against a typed environment, and runs the
// alert state machine of every rule on every subject.
//
// # Rule files
//
//	groups:
//	  - name: capacity           # [a-z0-9_]+, unique across the loaded files
//	    scope: host              # a subject is one host (the only scope for now)
//	    interval: 10s            # evaluation interval; default 10s, at least 100ms
//	    min_confidence: 0.8      # eta() ignores forecasts less confident than this; default 0.8
//	    rules:
//	      - name: disk_full_predicted      # [a-z0-9_]+, unique within the group
//	        expr: eta("disk.used_percent{path=/data}", 100) < duration("30m")
//	        for: 2m                        # default 0: fire on the first true evaluation
//	        keep_firing_for: 0s            # default 0
//	        severity: critical             # info | warning | critical; default warning
//	        labels: {team: storage}
//	        annotations: {summary: "data disk will be full soon"}
//	        mode: auto                     # auto | dry_run; default auto
//	        cooldown: 30m                  # default 10m: least time between two actions on one subject
//	        action:                        # optional
//	          name: backup_data            # default: the rule name
//	          kind: exec                   # the only kind for now
//	          program: tar                 # a path, or a name looked up in PATH at run time
//	          args: ["-czf", "/backups/data.tgz", "/data"]
//	          timeout: 5m                  # default 1m
//
// Durations are Go durations (30s, 5m, 1h30m). Decoding is strict: unknown
// keys, values of the wrong shape, bad durations, duplicate names and every
// problem inside expressions are reported, all of them, each as
// file:line:col, the column pointing inside the expression for expr errors
// whatever the YAML scalar style (plain, quoted, | or >).
//
// # Expressions
//
// expr (https://expr-lang.org) conditions that must type-check to bool.
// The variable host is the subject's name; the functions are listed in
// funcs.go (value, anomaly, eta, eta_confidence, forecast, since_seen), and
// expr's builtins work too, duration("30m") in particular (compare it with
// eta() and since_seen()). The now() builtin is disabled: the evaluation
// time is an argument of Engine.Eval, never the wall clock. Selector
// arguments must be string literals, parsed at load time (see Selector).
//
// # Evaluation
//
// An Engine evaluates each group when its interval has passed, every rule
// on every subject the Source lists. An evaluation's outcome is true,
// false, no data (a function found no data: the state NoData, which never
// produces an action) or error (the state Error, counted in Stats). The
// state machine is in statemachine.go. Entering Firing produces one Intent
// for rules with an action; the dispatcher applies mode and cooldown.
// Every evaluation records the values its function calls returned (keys in
// funcs.go) and the earliest finite eta, which becomes the intent's
// PredictedFailure (for lead times).
package rules
