package controller_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/controller"
	"github.com/vigil-sre/vigil/internal/wire"
	"github.com/vigil-sre/vigil/rules"
)

// approvalRules: flag_up (manual mode) appends "<key> <host> <rule>" to
// logPath when it runs; busy (automatic) holds the only action slot
// until a second "start" line is appended to gate.
func approvalRules(t *testing.T, logPath, gate string) *rules.Set {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("VIGIL_TEST_PROG", "1") // the test binary runs as the actions' program
	set, err := rules.Parse("approval.yaml", []byte(fmt.Sprintf(`groups:
  - name: appr
    interval: 200ms
    rules:
      - name: flag_up
        expr: value("app.flag") > 0
        mode: manual
        cooldown: 1h
        action: {name: protect, kind: exec, program: %[1]q, args: [log, %[2]q], timeout: 60s}
      - name: busy
        expr: value("app.busy") > 0
        cooldown: 1h
        action: {name: hold, kind: exec, program: %[1]q, args: [slow, %[3]q, busy, "2", 60s], timeout: 90s}
`, self, logPath, gate)))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// startApprovalCtl starts a controller with one action slot; the lease
// TTL is long (an intruder's lease key stays until deleted), renewals are
// frequent.
func startApprovalCtl(t *testing.T, env *natsEnv, name string, set *rules.Set) *runningCtl {
	t.Helper()
	cfg, err := controller.ParseConfig(name+".yaml", []byte(fmt.Sprintf(
		"name: %s\nnats: {url: %q}\napi: {listen: \"off\"}\ndetectors: {anomaly: ewma}\nlease: {ttl: 30s, renew: 300ms}\n"+
			"actions: {concurrency: 1, approval_timeout: 1h}\n", name, env.srv.URL())))
	if err != nil {
		t.Fatal(err)
	}
	return startCtl(t, cfg, connectNATS(t, env.srv.URL()), set)
}

// decide posts an approval or denial to the controller's API.
func (rc *runningCtl) decide(t *testing.T, verb, key, by, reason string) (int, map[string]string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"key": key, "by": by, "reason": reason})
	rec := httptest.NewRecorder()
	rc.h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/actions/"+verb, strings.NewReader(string(body))))
	var out map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: %v\n%s", verb, key, err, rec.Body)
	}
	return rec.Code, out
}

// awaitingKey waits until the controller lists an action on host awaiting
// approval and returns its key.
func (rc *runningCtl) awaitingKey(t *testing.T, host string) string {
	t.Helper()
	var key string
	eventually(t, "an action on "+host+" awaiting approval", func() bool {
		var recs []controller.ActionRecord
		if err := json.Unmarshal(rc.get(t, "/api/v1/actions").Body.Bytes(), &recs); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Host == host && r.State == "awaiting_approval" {
				key = r.Key
			}
		}
		return key != ""
	})
	return key
}

// ledgerEntry reads an intent key's entry in the action ledger (nil: none).
func ledgerEntry(t *testing.T, env *natsEnv, key string) *controller.LedgerEntry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := env.js.KeyValue(ctx, controller.DefaultLedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte(key))
	kve, err := kv.Get(ctx, "k_"+hex.EncodeToString(h[:]))
	if err != nil {
		t.Fatalf("ledger entry %s: %v", key, err)
	}
	var e controller.LedgerEntry
	if err := json.Unmarshal(kve.Value(), &e); err != nil {
		t.Fatal(err)
	}
	return &e
}

// fileLines reads a file's lines; a missing file has none.
func fileLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.TrimSpace(string(b)); s != "" {
		return strings.Split(s, "\n")
	}
	return nil
}

func appendFile(t *testing.T, path, line string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintln(f, line); err != nil {
		t.Fatal(err)
	}
}

// TestApprovalSurvivesLeaderChange: an operator approves an action on the
// leader, which records the approval in the ledger; the leader stops
// before the action starts (it waits for the action slot a long action
// holds). The new leader takes the approved action over and runs it,
// exactly once: the old one, when the slot frees, does not run it too.
func TestApprovalSurvivesLeaderChange(t *testing.T) {
	env := startNATSEnv(t)
	dir := t.TempDir()
	logPath, gate := filepath.Join(dir, "actions.log"), filepath.Join(dir, "gate")
	set := approvalRules(t, logPath, gate)

	a := startApprovalCtl(t, env, "ctl-a", set)
	eventually(t, "ctl-a leads", func() bool { return a.leader(t).Leader })
	e1 := a.leader(t).Epoch
	b := startApprovalCtl(t, env, "ctl-b", set)
	eventually(t, "ctl-b follows ctl-a", func() bool { l := b.leader(t); return !l.Leader && l.Holder == "ctl-a" })

	env.publish(t, "h0", "", 0, "app,host=h0 busy=1\n")
	eventually(t, "ctl-a's busy action holds the slot", func() bool { return len(fileLines(t, gate)) == 1 })
	env.publish(t, "h1", "", 0, "app,host=h1 flag=1\n")
	key := a.awaitingKey(t, "h1")
	eventually(t, "ctl-b's rules fire on h0 and h1", func() bool {
		st := b.status(t)
		return st.ruleState("busy", "h0") == "firing" && st.ruleState("flag_up", "h1") == "firing"
	})

	if code, out := a.decide(t, "approve", key, "alice", ""); code != http.StatusOK || out["status"] != "approved" {
		t.Fatalf("approve on the leader: %d %v", code, out)
	}
	e := ledgerEntry(t, env, key)
	if e.State != "awaiting_approval" || e.Epoch != e1 || e.Approval == nil || e.Approval.Decision != controller.DecisionApproved ||
		e.Approval.By != "alice" || e.Approval.On != "ctl-a" || e.Approval.At.IsZero() {
		t.Fatalf("ledger entry after the approval: %+v %+v, want awaiting_approval at epoch %d with alice's approval", e, e.Approval, e1)
	}

	// ctl-a stops (its Run waits for the busy action); ctl-b takes over.
	a.cancel()
	eventually(t, "ctl-b takes over", func() bool { return b.leader(t).Leader })
	e2 := b.leader(t).Epoch
	eventually(t, "the approved action runs", func() bool { return len(fileLines(t, logPath)) >= 1 })
	eventually(t, "its entry settles", func() bool { return ledgerEntry(t, env, key).State == "succeeded" })

	appendFile(t, gate, "start release") // the slot frees: ctl-a's attempt comes up
	a.stop(t)
	b.stop(t)
	if got := fileLines(t, logPath); len(got) != 1 || got[0] != key+" h1 flag_up" {
		t.Fatalf("action log %q, want %s run once", got, key)
	}
	e = ledgerEntry(t, env, key)
	if e.State != "succeeded" || e.Epoch != e2 || e2 <= e1 || e.Approval.By != "alice" {
		t.Fatalf("ledger entry %+v: want succeeded at ctl-b's epoch %d", e, e2)
	}
	started := streamEvents(t, env.srv.URL(), func(ev *wire.Event) bool {
		return ev.Kind == wire.KindAction && ev.Key == key && ev.State == "started"
	})
	if len(started) != 1 || started[0].Labels["approved_by"] != "alice" {
		t.Fatalf("started events of %s: %d (%v), want one approved by alice", key, len(started), describe(started))
	}
}

// TestDecisionsThroughAnyController: a decision sent to a standby is
// recorded in the ledger (202, naming the leader), and the leader carries
// it out; a denial recorded while no controller leads is carried out by
// the next leader; a second decision on the same action is refused.
func TestDecisionsThroughAnyController(t *testing.T) {
	env := startNATSEnv(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "actions.log")
	set := approvalRules(t, logPath, filepath.Join(dir, "gate"))

	a := startApprovalCtl(t, env, "ctl-a", set)
	eventually(t, "ctl-a leads", func() bool { return a.leader(t).Leader })
	b := startApprovalCtl(t, env, "ctl-b", set)
	eventually(t, "ctl-b follows ctl-a", func() bool { l := b.leader(t); return !l.Leader && l.Holder == "ctl-a" })
	env.publish(t, "h1", "", 0, "app,host=h1 flag=1\n")
	env.publish(t, "h2", "", 0, "app,host=h2 flag=1\n")
	k1, k2 := a.awaitingKey(t, "h1"), a.awaitingKey(t, "h2")

	// Approved through the standby: recorded, and the leader runs it.
	code, out := b.decide(t, "approve", k1, "carol", "")
	if code != http.StatusAccepted || out["status"] != "approval recorded" || !strings.Contains(out["note"], "ctl-a") {
		t.Fatalf("approve on the standby: %d %v, want 202 naming the leader ctl-a", code, out)
	}
	eventually(t, "the leader runs the approved action", func() bool { return len(fileLines(t, logPath)) == 1 })
	eventually(t, "its entry settles", func() bool { return ledgerEntry(t, env, k1).State == "succeeded" })

	// Nobody leads (an intruder holds the lease): a denial is recorded.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lkv, err := env.js.KeyValue(ctx, controller.DefaultLeaseBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lkv.Put(ctx, "leader", []byte(`{"holder":"intruder"}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ctl-a steps down and sees the intruder", func() bool { l := a.leader(t); return !l.Leader && l.Holder == "intruder" })
	code, out = a.decide(t, "deny", k2, "dave", "maintenance window")
	if code != http.StatusAccepted || out["status"] != "denial recorded" || !strings.Contains(out["note"], "intruder") {
		t.Fatalf("deny while ctl-a follows: %d %v, want 202 naming the holder", code, out)
	}
	if e := ledgerEntry(t, env, k2); e.State != "awaiting_approval" || e.Approval == nil || e.Approval.Decision != controller.DecisionDenied ||
		e.Approval.By != "dave" || e.Approval.Reason != "maintenance window" {
		t.Fatalf("ledger entry after the denial: %+v", e)
	}
	if code, out := b.decide(t, "approve", k2, "erin", ""); code != http.StatusConflict || !strings.Contains(out["error"], "denied by dave") {
		t.Fatalf("a second decision: %d %v, want 409 naming the first", code, out)
	}

	// A controller leads again and settles the denied action.
	if err := lkv.Delete(ctx, "leader"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a controller leads", func() bool { return a.leader(t).Leader || b.leader(t).Leader })
	eventually(t, "the denied action settles", func() bool { return ledgerEntry(t, env, k2).State == "skipped" })
	if e := ledgerEntry(t, env, k2); e.Error != "denied: denied by dave: maintenance window" {
		t.Errorf("denied entry's error %q", e.Error)
	}
	a.stop(t)
	b.stop(t)
	if got := fileLines(t, logPath); len(got) != 1 || got[0] != k1+" h1 flag_up" {
		t.Fatalf("action log %q, want only %s once", got, k1)
	}
	evs := streamEvents(t, env.srv.URL(), func(ev *wire.Event) bool {
		return ev.Kind == wire.KindAction && (ev.Key == k1 && ev.State == "started" || ev.Key == k2 && ev.State == "skipped")
	})
	if len(evs) != 2 || evs[0].Key != k1 || evs[0].Labels["approved_by"] != "carol" ||
		evs[1].Key != k2 || evs[1].Outcome != controller.OutcomeDenied || evs[1].Error != "denied by dave: maintenance window" {
		t.Fatalf("events %s, want %s started (approved by carol), %s denied by dave", describe(evs), k1, k2)
	}
}

func describe(evs []*wire.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "[%s %s %s %s %v] ", ev.Key, ev.State, ev.Outcome, ev.Error, ev.Labels)
	}
	return b.String()
}
