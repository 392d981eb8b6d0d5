package controller

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/natsembed"
	"github.com/vigil-sre/vigil/rules"
)

// approvalSet: g/r (manual mode) appends "<key> <host> <rule>" to logPath
// when it runs; g/busy (automatic) holds an action slot until a second
// "start" line is appended to gate.
func approvalSet(t *testing.T, logPath, gate string) (set *rules.Set, manual, busy *rules.Rule) {
	t.Helper()
	prog := testProg(t)
	set, err := rules.Parse("approval.yaml", []byte(fmt.Sprintf(`groups:
  - name: g
    rules:
      - name: r
        expr: value("m.v") > 0
        mode: manual
        action: {name: act, kind: exec, program: %[1]q, args: [log, %[2]q], timeout: 60s}
      - name: busy
        expr: value("m.busy") > 0
        action: {name: hold, kind: exec, program: %[1]q, args: [slow, %[3]q, busy, "2", 60s], timeout: 90s}
`, prog, logPath, gate)))
	if err != nil {
		t.Fatal(err)
	}
	rs := set.Rules()
	return set, rs[0], rs[1]
}

func leadingAt(epoch uint64) *lease {
	return &lease{leader: true, epoch: epoch, validUntil: time.Now().Add(time.Hour)}
}

// awaitingEntry is a ledger entry of g/r as a leader at epoch leaves it
// when the approval it requested ago is pending, with decision dec ("":
// none) by bob.
func awaitingEntry(key string, epoch uint64, ago time.Duration, dec string) LedgerEntry {
	at := time.Now().Add(-ago)
	e := LedgerEntry{Key: key, State: "awaiting_approval", Rule: "r", Group: "g", Severity: "critical", Subject: "web-1", Action: "act", Kind: "exec",
		Epoch: epoch, Updated: at, History: []LedgerStep{{State: "pending", At: at}, {State: "awaiting_approval", At: at}},
		Approval: &LedgerApproval{Requested: at, FiredAt: at, Values: map[string]float64{"v": 2}, Labels: map[string]string{"team": "db"}}}
	if dec != "" {
		e.Approval.Decision, e.Approval.By, e.Approval.Reason, e.Approval.At = dec, "bob", "change freeze", at.Add(time.Second)
	}
	return e
}

// TestTakenOverApprovals: a new term takes over what an earlier one left
// awaiting approval: a recorded approval runs (once, with the recorded
// intent, under the new epoch), unless it is older than the approval
// timeout (then it is settled as expired), a recorded denial is settled
// as denied, and an undecided request waits on, expiring at the approval
// timeout counted from the original request, not from the takeover.
func TestTakenOverApprovals(t *testing.T) {
	ns := natsembed.StartT(t)
	pub, stop := jsPublisher(t, ns.URL())
	defer stop()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "actions.log")
	set, _, _ := approvalSet(t, logPath, filepath.Join(dir, "gate"))
	h := startDispatcher(t, ActionsConfig{Concurrency: 1, ApprovalTimeout: time.Hour}, pub, func(d *dispatcher) {
		d.lease = leadingAt(7)
		d.rules.Store(set)
	})
	b := openLedgerBucket(t, ns.URL())
	young := awaitingEntry("young-3", 3, 59*time.Minute, "")
	late := awaitingEntry("late-3", 3, 3*time.Hour, DecisionApproved) // approved 3h ago
	for _, e := range []LedgerEntry{
		late,
		awaitingEntry("approved-3", 3, 10*time.Minute, DecisionApproved),
		awaitingEntry("denied-3", 3, 10*time.Minute, DecisionDenied),
		awaitingEntry("old-3", 3, 2*time.Hour, ""),
		young,
	} {
		b.put(e)
	}

	h.d.NewTerm(7)
	got := map[string]string{}
	for _, ev := range h.events(t, 5) { // approved: started, finished; late, denied; old: expired
		got[ev.Key+" "+ev.State] = ev.Outcome + " " + ev.Error + " " + ev.Labels["approved_by"]
	}
	want := map[string]string{
		"approved-3 started":  "  bob",
		"approved-3 finished": OutcomeSuccess + "  bob",
		"denied-3 skipped":    OutcomeDenied + " denied by bob: change freeze ",
		"old-3 skipped":       OutcomeExpired + " no decision within 1h0m0s ",
		"late-3 skipped": OutcomeExpired + " approved by bob at " + late.Approval.At.UTC().Format(time.RFC3339) +
			", but not carried out within actions.approval_timeout (1h0m0s) of the approval: not run ",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("event %s: %q, want %q (all: %q)", k, got[k], v, got)
		}
	}
	if lines := logLines(t, logPath); len(lines) != 1 || lines[0] != "approved-3 web-1 r" {
		t.Fatalf("action log %q, want approved-3 once", lines)
	}
	for key, state := range map[string]string{"approved-3": "succeeded", "denied-3": "skipped", "old-3": "skipped", "late-3": "skipped"} {
		waitFor(t, key+" settled", func() bool { return b.entry(key).State == state })
		if e := b.entry(key); e.Epoch != 7 {
			t.Errorf("%s: settled at epoch %d, want 7", key, e.Epoch)
		}
	}

	// The young request waits on, held at the new epoch ...
	waitFor(t, "young-3 taken over", func() bool { return b.entry("young-3").Epoch == 7 })
	e := b.entry("young-3")
	if e.State != "awaiting_approval" || e.Approval.Decision != "" || !e.Approval.Requested.Equal(young.Approval.Requested) {
		t.Fatalf("young-3 after the takeover: %+v %+v, want awaiting approval requested 59m ago", e, e.Approval)
	}
	if recs := h.d.records.list(); !hasRecord(recs, "young-3", "awaiting_approval") {
		t.Errorf("young-3 not listed as awaiting approval: %+v", recs)
	}
	// ... and expires an hour after its request: two minutes on, not an
	// hour after the takeover.
	h.offset.Store(int64(2 * time.Minute))
	ev := h.events(t, 1)[0]
	wantEvent(t, ev, "young-3", "skipped", OutcomeExpired)
	waitFor(t, "young-3 settled", func() bool { return b.entry("young-3").State == "skipped" })
	if e := b.entry("young-3"); e.Approval.Decision != DecisionExpired || e.Epoch != 7 {
		t.Errorf("young-3 expired: %+v %+v", e, e.Approval)
	}
	if n := h.d.abandoned.Load(); n != 0 {
		t.Errorf("%d entries abandoned, want 0", n)
	}
	h.stop()
	h.noMoreEvents(t)
}

func hasRecord(recs []ActionRecord, key, state string) bool {
	for _, r := range recs {
		if r.Key == key && r.State == state {
			return true
		}
	}
	return false
}

// TestDeposedLeaderDoesNotRunTakenOverApproval: a leader records an
// approval and launches the action, which waits for a slot; meanwhile a
// newer term takes the approved action over and runs it. When the slot
// frees, the old leader, which still believes it leads, does not run it
// again: its start is refused by the ledger entry's newer epoch.
func TestDeposedLeaderDoesNotRunTakenOverApproval(t *testing.T) {
	ns := natsembed.StartT(t)
	dir := t.TempDir()
	logPath, gate := filepath.Join(dir, "actions.log"), filepath.Join(dir, "gate")
	set, manual, busy := approvalSet(t, logPath, gate)
	cfg := ActionsConfig{Concurrency: 1, ApprovalTimeout: time.Hour}
	pubX, stopX := jsPublisher(t, ns.URL())
	defer stopX()
	x := startDispatcher(t, cfg, pubX, func(d *dispatcher) { d.lease = leadingAt(3); d.rules.Store(set) })
	openLedgerBucket(t, ns.URL())

	hold := testIntent(busy, "web-0", "g/busy/web-0/1")
	hold.Epoch = 3
	x.d.Submit(hold)
	wantEvent(t, x.events(t, 1)[0], hold.Key, "started", "")
	waitFor(t, "the busy action holds the slot", func() bool { b, _ := os.ReadFile(gate); return strings.Count(string(b), "start ") == 1 })
	in := testIntent(manual, "web-1", "g/r/web-1/1")
	in.Epoch = 3
	x.d.Submit(in)
	wantEvent(t, x.events(t, 1)[0], in.Key, "awaiting_approval", "")
	if acted, err := x.d.Decide(context.Background(), in.Key, "alice", "", true); err != nil || !acted {
		t.Fatalf("approve on the leader: acted %v, %v", acted, err)
	}

	// A newer term takes the approved action over and runs it.
	pubY, stopY := jsPublisher(t, ns.URL())
	defer stopY()
	y := startDispatcher(t, cfg, pubY, func(d *dispatcher) { d.lease = leadingAt(9); d.rules.Store(set) })
	y.d.NewTerm(9)
	got := map[string]string{}
	for _, ev := range y.events(t, 3) { // the busy action abandoned; ours started, finished
		got[ev.Key+" "+ev.State] = ev.Outcome + " " + ev.Labels["approved_by"]
	}
	if got[in.Key+" started"] != " alice" || got[in.Key+" finished"] != OutcomeSuccess+" alice" || got[hold.Key+" abandoned"] != OutcomeUnknown+" " {
		t.Fatalf("new term's events %q", got)
	}

	// The slot frees: the old leader's attempt is refused.
	f, err := os.OpenFile(gate, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("start release\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	evs := x.events(t, 2)
	wantEvent(t, evs[0], hold.Key, "finished", OutcomeSuccess)
	wantEvent(t, evs[1], in.Key, "skipped", OutcomeNotLeader)
	x.stop()
	y.stop()
	x.noMoreEvents(t)
	y.noMoreEvents(t)
	if lines := logLines(t, logPath); len(lines) != 1 || lines[0] != in.Key+" web-1 r" {
		t.Fatalf("action log %q, want %s once", lines, in.Key)
	}
	b := openLedgerBucket(t, ns.URL())
	if e := b.entry(in.Key); e.State != "succeeded" || e.Epoch != 9 || e.Approval.By != "alice" {
		t.Errorf("entry %+v: want succeeded at epoch 9, approved by alice", e)
	}
}
