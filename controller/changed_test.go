package controller_test

import (
	"testing"
)

// hourlyRule's group runs once an hour: only its first round, at start,
// falls within a test. Anything it does after that follows new data.
const hourlyRule = `groups:
  - name: g
    interval: 1h
    rules:
      - name: hot
        expr: value("temp.c") > 90
        mode: dry_run
        action: {name: cool, kind: exec, program: "true"}
`

// Rules are evaluated right after a batch that brings their data, not at
// their group's next round: with an hourly group, a batch still makes the
// rule's state and, once the value is high, its intent.
func TestRulesFollowTelemetry(t *testing.T) {
	env := startNATSEnv(t)
	path, set := writeRules(t, t.TempDir(), hourlyRule)
	rc := startCtl(t, ctlConfig(t, env.srv.URL(), "rules: ["+path+"]\n"), env.nc, set)
	// The group's first round (the first tick) is over: the next is an hour away.
	eventually(t, "two ticks", func() bool { return rc.metric(t, "vigil_rule_evaluation_rounds_total") >= 2 })

	env.publish(t, "h1", "r", 1, "temp,host=h1 c=40\n")
	eventually(t, "hot evaluated on h1", func() bool { return rc.status(t).ruleState("hot", "h1") == "inactive" })
	if n := rc.metric(t, "vigil_actions_submitted_total"); n != 0 {
		t.Fatalf("%v intents before the value is high", n)
	}
	env.publish(t, "h1", "r", 2, "temp,host=h1 c=95\n")
	eventually(t, "the intent", func() bool { return rc.metric(t, "vigil_actions_submitted_total") == 1 })
	if s := rc.status(t).ruleState("hot", "h1"); s != "firing" {
		t.Errorf("hot on h1 is %q, want firing", s)
	}
	// A series the rule does not read evaluates nothing.
	env.publish(t, "h1", "r", 3, "mem,host=h1 used=5\n")
	env.publish(t, "h1", "r", 4, "temp,host=h1 c=20\n")
	eventually(t, "hot resolved on h1", func() bool { return rc.status(t).ruleState("hot", "h1") == "inactive" })
	// Per-rule counters are refreshed once a second: wait 12 ticks.
	ticks := rc.metric(t, "vigil_rule_evaluation_rounds_total")
	eventually(t, "12 ticks", func() bool { return rc.metric(t, "vigil_rule_evaluation_rounds_total") >= ticks+12 })
	if n := rc.metric(t, `vigil_rule_triggered_evaluations_total{group="g",rule="hot"}`); n != 3 {
		t.Errorf("hot evaluated %v times after new data, want 3", n)
	}
	if n := rc.metric(t, `vigil_rule_evaluations_total{group="g",rule="hot"}`); n != 3 {
		t.Errorf("hot evaluated %v times, want 3 (the first round had no subjects)", n)
	}
}
