// Package rules loads Vigil's failure-prediction rule files, compiles
// their conditions with expr against a typed environment, and runs the
// alert state machine of every rule on every subject.
//
// # Rule files
//
//	groups:
//	  - name: capacity           # [a-z0-9_]+, unique across the loaded files
//	    scope: host              # host | service | model | fleet (what a subject is, below); default host
//	    interval: 10s            # evaluation interval; default 10s, at least 100ms
//	    min_confidence: 0.8      # eta() ignores forecasts less confident than this; default 0.8
//	    rules:
//	      - name: disk_full_predicted      # [a-z0-9_]+, unique within the group
//	        expr: eta("disk.used_percent{path=/data}", 100) < duration("30m")
//	        clear: eta("disk.used_percent{path=/data}", 100) > duration("2h")  # optional hysteresis
//	        for: 2m                        # default 0: fire on the first true evaluation
//	        keep_firing_for: 0s            # default 0
//	        severity: critical             # info | warning | critical; default warning
//	        labels: {team: storage}        # values are templates (template.go)
//	        annotations: {summary: "{{ .Labels.host }}: /data full in {{ humanizeDuration .Values.eta }}"}
//	        mode: auto                     # auto | manual (an operator approves) | dry_run; default auto
//	        cooldown: 30m                  # default 10m: least time between two actions on one subject
//	        no_data: nodata                # nodata | keep_state | alert | ok; default nodata
//	        flapping: {firings: 4, window: 1h}   # the default; "off" disables
//	        action:                        # optional
//	          name: backup_data            # default: the rule name
//	          kind: exec                   # exec, or a kind registered with RegisterActionKind
//	          program: tar                 # exec: a path, or a name looked up in PATH at run time
//	          args: ["-czf", "/backups/data.tgz", "/data"]
//	          params: {}                   # other kinds: their parameters (literal, never templated)
//	          timeout: 5m                  # default 1m
//
// Durations are Go durations (30s, 5m, 1h30m). Decoding is strict: unknown
// keys, values of the wrong shape, bad durations, duplicate names, bad
// templates and every problem inside expressions are reported, all of
// them, each as file:line:col, the column pointing inside the expression
// (or template) for expr errors whatever the YAML scalar style (plain,
// quoted, | or >). In a directory, *_test.yaml files are rule unit tests
// (package ruletest), not rule files.
//
// # Subjects and scopes
//
// A subject is a set of series a rule is evaluated on. Scope host: one
// host's series (the tag host). Scope service / model: the series carrying
// the tag service=<name> / model=<name>, from any host. Scope fleet: a role
// (the label role of hosts, from a role tag on their telemetry) and the
// series of its hosts. Functions aggregate over a subject's series: the
// maximum (value, anomaly, forecast, window functions), the earliest (eta,
// eta_within).
// Variables: subject; host, service, model, role (the subject in its scope,
// otherwise the subject's label of that name); labels (the subject's
// identity labels: IdentityTags). Transitions and intents carry the labels
// of the subject, the rule's (rendered), severity, group, rule and
// <scope>=subject (host, service, model or role).
//
// # Expressions
//
// expr (https://expr-lang.org) conditions that must type-check to bool.
// The functions (funcs.go, funcs_window.go, funcs_more.go, funcs_fleet.go):
//
//	value(sel) float64                     latest sample                 value("mem.used_percent") > 90
//	anomaly(sel) float64                   anomaly likelihood [0,1]      anomaly("cpu.usage_user{cpu=cpu-total}") > 0.9999
//	eta(sel, level) Duration               time until level is crossed   eta("disk.used_percent", 100) < duration("2h")
//	eta_confidence(sel, level) float64     that forecast's confidence    eta_confidence("disk.used_percent", 100) > 0.9
//	eta_within(sel, level, horizon) Duration   a crossing expected within horizon (whole forecaster), else Never
//	                                                                     eta_within("mem.used_percent", 95, duration("2h")) <= duration("2h")
//	forecast(sel, horizon) float64         value predicted at now+h      forecast("mem.used_percent", duration("1h")) > 95
//	avg_over min_over max_over sum_over count_over stddev_over (sel, window) float64
//	                                       over the last window          avg_over("cpu.usage_user", duration("10m")) > 85
//	quantile_over(sel, q, window) float64  q-quantile over the window    quantile_over("probe_http.latency_ms", 0.9, duration("5m")) > 500
//	rate(sel, window), increase(sel, window) float64   counters, resets handled
//	                                                                     increase("procstat.restarts", duration("10m")) >= 3
//	delta(sel, window) float64             last − first (gauges)         delta("mem.used_percent", duration("30m")) > 5
//	drift(model, feature, stat) float64    model_drift.<stat>            drift(model, "*", "psi") > 0.2
//	age(sel) Duration                      now − a Unix-seconds value    age("backup.last_success") > duration("24h")
//	since_seen() Duration                  since the subject was heard   since_seen() > duration("2m")
//	gaps(window) int, complete(window) bool   lost telemetry batches     complete(duration("10m"))
//	hosts(role) int                        hosts of a role ("" = all)    hosts(role) >= 2
//	count_hosts(role, sel, op, x) int      hosts where value(sel) op x   count_hosts("gpu", "sensors.temp_c", ">", 85) > 3
//	share_hosts(role, sel, op, x) float64  the same as a share [0,1]     share_hosts(role, "cpu.usage_user", ">", 90) > 0.5
//	silent_hosts(role, d) int, share_silent(role, d) float64
//	                                       hosts not heard from for d    share_silent(role, duration("2m")) >= 0.5
//	hour() int, weekday() int              of the evaluation time, UTC   hour() >= 8 && hour() < 20
//
// expr's builtins work too, duration("30m") in particular (folded at load
// time). The now() builtin is disabled: the evaluation time is an argument
// of Engine.Eval, never the wall clock. Selector arguments must be string
// literals, parsed at load time (see Selector); windows and eta_within's
// horizon must be constant durations (a Source keeps history only for the
// selectors rules read over a window: Set.WindowNeeds). A call that finds
// no data makes the evaluation's outcome NoData whatever the expression
// answers.
//
// # Evaluation
//
// An Engine evaluates each group when its interval has passed, every rule
// on every subject of its scope (a round, Engine.Eval). In between, the
// controller has it evaluate the rules whose series just took samples, on
// the subjects that have them (Engine.EvalChanged): a condition is seen
// when its data arrives, not up to an interval later; rules calling fleet
// functions or reading no series, no data and errors are left to the
// rounds. An evaluation's outcome is true, false,
// no data or error; the no_data policy maps no data first. The state
// machine (statemachine.go) runs inactive → pending → firing → inactive,
// with keep_firing_for, the clear condition (evaluated instead of expr
// while firing) and flap detection. Entering Firing produces one Intent for
// rules with an action, unless the rule is flapping or the episode began on
// missing data; the intents of one rule in one round share a GroupKey. The
// dispatcher applies mode (manual: wait for approval), cooldown and dry
// runs. Every evaluation records the values its function calls returned
// (capture keys in funcs.go) and the earliest finite eta or eta_within,
// which becomes the intent's PredictedFailure (for lead times). Stats counts evaluations,
// errors, no data, transitions, intents, suppressed intents and time, per
// rule.
package rules
