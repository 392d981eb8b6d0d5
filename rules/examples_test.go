package rules

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The shipped example loads, and behaves as its comments say on a host
// whose data disk fills up.
func TestExampleHost(t *testing.T) {
	set, err := LoadFiles(filepath.Join("examples", "host.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range set.Rules() {
		names = append(names, r.Name)
	}
	want := "disk_full_predicted inode_exhaustion_predicted memory_leak_suspected cpu_anomaly"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("rules %s, want %s", got, want)
	}
	src := newFake("web1")
	src.etas["web1|disk.used_percent|100"] = fakeETA{90 * time.Minute, 0.9}
	src.etas["web1|disk.inodes_used_percent|100"] = fakeETA{Never, 1}
	src.etas["web1|mem.used_percent|95"] = fakeETA{3 * time.Hour, 0.9}
	src.anomalies["web1|cpu.usage_user{cpu=cpu-total}"] = 0.2
	e := NewEngine(set)
	var intents []Intent
	for s := 0; s <= 150; s += 30 {
		e.Eval(t0.Add(time.Duration(s)*time.Second), src, nil, func(in Intent) { intents = append(intents, in) })
	}
	var states []string
	for _, st := range e.States() {
		states = append(states, st.Rule.Name+"="+st.State.String())
	}
	wantStates := "disk_full_predicted=firing inode_exhaustion_predicted=inactive memory_leak_suspected=inactive cpu_anomaly=inactive"
	if got := strings.Join(states, " "); got != wantStates {
		t.Errorf("states %s\nwant   %s", got, wantStates)
	}
	if len(intents) != 1 || intents[0].Rule.Mode != ModeDryRun || intents[0].Rule.Action.Name != "example_cleanup" ||
		!intents[0].PredictedFailure.Equal(t0.Add(120*time.Second+90*time.Minute)) {
		t.Errorf("intents %+v", intents)
	}
}
