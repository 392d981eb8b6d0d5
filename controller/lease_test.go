package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/controller"
	"github.com/vigil-sre/vigil/rules"
)

// leaseRules fire on a host whose app.flag is positive and run the test
// binary as the exec action (it appends the intent key to the action log).
func leaseRules(t *testing.T) *rules.Set {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.Parse("lease.yaml", []byte(fmt.Sprintf(`groups:
  - name: lease
    interval: 200ms
    rules:
      - name: flag_up
        expr: value("app.flag") > 0
        severity: critical
        cooldown: 1h
        action: {name: protect, kind: exec, program: %q, timeout: 20s}
`, self)))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func startLeaseCtl(t *testing.T, env *natsEnv, name string, set *rules.Set) *runningCtl {
	t.Helper()
	cfg, err := controller.ParseConfig(name+".yaml", []byte(fmt.Sprintf(
		"name: %s\nnats: {url: %q}\napi: {listen: \"off\"}\ndetectors: {anomaly: ewma}\nlease: {ttl: 2s}\n", name, env.srv.URL())))
	if err != nil {
		t.Fatal(err)
	}
	return startCtl(t, cfg, connectNATS(t, env.srv.URL()), set)
}

func (rc *runningCtl) leader(t *testing.T) controller.LeaderStatus {
	t.Helper()
	rec := rc.get(t, "/api/v1/status")
	var st struct {
		Leader controller.LeaderStatus `json:"leader"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatalf("/api/v1/status: %v\n%s", err, rec.Body)
	}
	return st.Leader
}

// actionOutcome is the outcome of the dispatcher's record on host.
func (rc *runningCtl) actionOutcome(t *testing.T, host string) string {
	t.Helper()
	var recs []map[string]any
	if err := json.Unmarshal(rc.get(t, "/api/v1/actions").Body.Bytes(), &recs); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r["subject"] == host || r["host"] == host {
			s, _ := r["outcome"].(string)
			return s
		}
	}
	return ""
}

// TestLeaderLease runs two real controllers on one embedded NATS:
// exactly one leads; the follower evaluates (its rule fires too) but does
// not act; the leader's stop hands over to the follower within the TTL,
// which does not repeat the episode its predecessor dispatched; a leader
// whose lease is taken over stops dispatching and holds what its rules
// ask for, which it dispatches exactly once when it leads again; epochs
// strictly increase and are recorded in the action ledger.
func TestLeaderLease(t *testing.T) {
	env := startNATSEnv(t)
	logPath := filepath.Join(t.TempDir(), "actions.log")
	t.Setenv("VIGIL_TEST_ACTION_LOG", logPath)
	lines := func() []string {
		b, err := os.ReadFile(logPath)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}

	a := startLeaseCtl(t, env, "ctl-a", leaseRules(t))
	eventually(t, "ctl-a leads", func() bool { return a.leader(t).Leader })
	e1 := a.leader(t).Epoch
	b := startLeaseCtl(t, env, "ctl-b", leaseRules(t))
	eventually(t, "ctl-b follows ctl-a", func() bool { l := b.leader(t); return !l.Leader && l.Holder == "ctl-a" && l.Epoch == e1 })
	if !a.leader(t).Leader || a.metric(t, "vigil_leader") != 1 || b.metric(t, "vigil_leader") != 0 {
		t.Fatalf("want exactly one leader: a %+v, b %+v", a.leader(t), b.leader(t))
	}

	// The leader acts; the follower's rule fires as well, and it holds.
	env.publish(t, "h1", "", 0, "app,host=h1 flag=1\n")
	eventually(t, "the action on h1", func() bool { return len(lines()) >= 1 })
	eventually(t, "ctl-b's rule fires on h1", func() bool { return b.status(t).ruleState("flag_up", "h1") == "firing" })
	if n := b.metric(t, "vigil_follower_intents_total"); n < 1 {
		t.Fatalf("follower held %v intents, want ≥ 1", n)
	}

	// The leader stops: the follower takes over and skips the episode.
	a.stop(t)
	eventually(t, "ctl-b takes over", func() bool { return b.leader(t).Leader })
	e2 := b.leader(t).Epoch
	eventually(t, "ctl-b's handover of h1 recorded", func() bool { return b.actionOutcome(t, "h1") != "" })
	if o := b.actionOutcome(t, "h1"); o != controller.OutcomeDup {
		t.Fatalf("ctl-b's held intent on h1: outcome %q, want %q (its predecessor ran it)", o, controller.OutcomeDup)
	}

	// The lease is taken from ctl-b: it steps down and holds.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := env.js.KeyValue(ctx, controller.DefaultLeaseBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "leader", []byte(`{"holder":"intruder"}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ctl-b steps down", func() bool { return !b.leader(t).Leader })
	held := b.metric(t, "vigil_follower_intents_total")
	env.publish(t, "h2", "", 0, "app,host=h2 flag=1\n")
	eventually(t, "ctl-b's rule fires on h2", func() bool { return b.status(t).ruleState("flag_up", "h2") == "firing" })
	if n := b.metric(t, "vigil_follower_intents_total"); n <= held {
		t.Fatalf("deposed leader held %v intents, %v before: it did not hold the one on h2", n, held)
	}
	if got := lines(); len(got) != 1 {
		t.Fatalf("a deposed leader acted: action log %q", got)
	}

	// The intruder's key goes: ctl-b leads again and runs h2 once.
	if err := kv.Delete(ctx, "leader"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ctl-b leads again", func() bool { return b.leader(t).Leader })
	e3 := b.leader(t).Epoch
	eventually(t, "the action on h2", func() bool { return len(lines()) >= 2 })
	if !(e1 < e2 && e2 < e3) {
		t.Fatalf("epochs %d, %d, %d: not strictly increasing", e1, e2, e3)
	}
	eventually(t, "h2's action finished", func() bool { return b.actionOutcome(t, "h2") == controller.OutcomeSuccess })
	got := lines()
	if len(got) != 2 || !strings.Contains(got[0], " h1 ") || !strings.Contains(got[1], " h2 ") {
		t.Fatalf("action log %q: want h1 once, then h2 once", got)
	}
	if tr := b.metric(t, "vigil_leader_transitions_total"); tr != 3 {
		t.Fatalf("ctl-b transitions %v, want 3 (acquired, lost, acquired)", tr)
	}

	// The ledger holds both actions, each at its leader's epoch.
	epochs := ledgerEpochs(t, env.js, ctx)
	if len(epochs) != 2 || epochs["h1"] != e1 || epochs["h2"] != e3 {
		t.Fatalf("ledger epochs %v, want h1 at %d and h2 at %d", epochs, e1, e3)
	}
}

// ledgerEpochs maps the subject of every succeeded ledger entry to its
// epoch.
func ledgerEpochs(t *testing.T, js jetstream.JetStream, ctx context.Context) map[string]uint64 {
	t.Helper()
	kv, err := js.KeyValue(ctx, controller.DefaultLedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for k := range keys.Keys() {
		if !strings.HasPrefix(k, "k_") {
			continue
		}
		e, err := kv.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		var le controller.LedgerEntry
		if err := json.Unmarshal(e.Value(), &le); err != nil {
			t.Fatal(err)
		}
		if le.State == "succeeded" {
			out[le.Subject] = le.Epoch
		}
	}
	return out
}
