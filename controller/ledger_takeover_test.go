package controller_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/controller"
	"github.com/vigil-sre/vigil/internal/wire"
)

// TestTakeoverAbandonsRunningEntries: a leader that stopped with an entry
// left running (as if it crashed mid-action) is succeeded by a controller
// that marks the entry abandoned at its takeover, counts it and publishes
// one event; the next leader finds nothing more to do with it.
func TestTakeoverAbandonsRunningEntries(t *testing.T) {
	env := startNATSEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leave := func(rc *runningCtl, key string) {
		t.Helper()
		kv, err := env.js.KeyValue(ctx, controller.DefaultLedgerBucket)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		e := controller.LedgerEntry{Key: key, State: "running", Rule: "flag_up", Group: "lease", Subject: "h1", Action: "protect", Kind: "exec",
			Epoch: rc.leader(t).Epoch, Attempts: 1, Updated: now, History: []controller.LedgerStep{{State: "pending", At: now}, {State: "running", At: now}}}
		b, _ := json.Marshal(e)
		h := sha256.Sum256([]byte(key))
		if _, err := kv.Put(ctx, "k_"+hex.EncodeToString(h[:]), b); err != nil {
			t.Fatal(err)
		}
	}
	entry := func(key string) controller.LedgerEntry {
		t.Helper()
		kv, err := env.js.KeyValue(ctx, controller.DefaultLedgerBucket)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256([]byte(key))
		kve, err := kv.Get(ctx, "k_"+hex.EncodeToString(h[:]))
		if err != nil {
			t.Fatal(err)
		}
		var e controller.LedgerEntry
		if err := json.Unmarshal(kve.Value(), &e); err != nil {
			t.Fatal(err)
		}
		return e
	}

	a := startLeaseCtl(t, env, "ctl-a", leaseRules(t))
	eventually(t, "ctl-a leads", func() bool { return a.leader(t).Leader })
	e1 := a.leader(t).Epoch
	eventually(t, "ctl-a's ledger", func() bool { _, err := env.js.KeyValue(ctx, controller.DefaultLedgerBucket); return err == nil })
	leave(a, "lease/flag_up/h1/a")
	a.stop(t)

	b := startLeaseCtl(t, env, "ctl-b", leaseRules(t))
	eventually(t, "ctl-b leads", func() bool { return b.leader(t).Leader })
	eventually(t, "ctl-b abandons ctl-a's action", func() bool { return b.metric(t, "vigil_actions_abandoned_total") == 1 })
	e := entry("lease/flag_up/h1/a")
	if e.State != controller.StateAbandoned || e.Epoch != e1 || e.AbandonedBy != b.leader(t).Epoch || e.AbandonedBy <= e1 {
		t.Fatalf("entry %+v: want abandoned, epoch %d, abandoned by ctl-b's epoch", e, e1)
	}
	leave(b, "lease/flag_up/h1/b")
	b.stop(t)

	c := startLeaseCtl(t, env, "ctl-c", leaseRules(t))
	eventually(t, "ctl-c leads", func() bool { return c.leader(t).Leader })
	eventually(t, "ctl-c abandons ctl-b's action", func() bool { return c.metric(t, "vigil_actions_abandoned_total") == 1 })
	c.stop(t) // its events are in the stream
	evs := streamEvents(t, env.srv.URL(), func(ev *wire.Event) bool { return ev.Kind == wire.KindAction })
	got := map[string]int{}
	for _, ev := range evs {
		if ev.State != controller.StateAbandoned || ev.Outcome != controller.OutcomeUnknown || ev.Host != "h1" || ev.Rule != "flag_up" {
			t.Errorf("action event %+v, want abandoned", ev)
		}
		got[ev.Key]++
	}
	if len(got) != 2 || got["lease/flag_up/h1/a"] != 1 || got["lease/flag_up/h1/b"] != 1 {
		t.Fatalf("abandoned events per key %v, want one for each", got)
	}
}
