package controller

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// A rule in manual mode waits for an operator: nothing runs before the
// approval, the approved intent runs once, a denied one never, and one
// nobody decides on expires.
func TestManualModeApproveDenyExpire(t *testing.T) {
	log := filepath.Join(t.TempDir(), "actions.log")
	h := startDispatcher(t, ActionsConfig{Concurrency: 2, ApprovalTimeout: time.Hour}, nil)
	r := testRule("r", execSpec(testProg(t), "log", log), 0, "manual")
	ctx := context.Background()

	h.d.Submit(testIntent(r, "web-1", "k1"))
	h.d.Submit(testIntent(r, "web-2", "k2"))
	h.d.Submit(testIntent(r, "web-3", "k3"))
	for i, ev := range h.events(t, 3) {
		wantEvent(t, ev, []string{"k1", "k2", "k3"}[i], "awaiting_approval", "")
	}
	if got := logLines(t, log); len(got) != 0 {
		t.Fatalf("ran before approval: %q", got)
	}
	if recs := h.d.records.list(); len(recs) != 3 || recs[0].State != "awaiting_approval" {
		t.Fatalf("records %+v", recs)
	}

	if _, err := h.d.Decide(ctx, "k1", "alice", "", true); err != nil {
		t.Fatal(err)
	}
	evs := h.events(t, 2)
	wantEvent(t, evs[0], "k1", "started", "")
	wantEvent(t, evs[1], "k1", "finished", OutcomeSuccess)
	if evs[0].Labels["approved_by"] != "alice" {
		t.Errorf("started event labels %v, want approved_by=alice", evs[0].Labels)
	}
	if _, err := h.d.Decide(ctx, "k1", "bob", "", true); !errors.Is(err, ErrNoSuchApproval) {
		t.Errorf("approving twice: %v, want ErrNoSuchApproval", err)
	}

	if _, err := h.d.Decide(ctx, "k2", "bob", "maintenance window", false); err != nil {
		t.Fatal(err)
	}
	ev := h.events(t, 1)[0]
	wantEvent(t, ev, "k2", "skipped", OutcomeDenied)
	if ev.Error != "denied by bob: maintenance window" {
		t.Errorf("deny reason %q", ev.Error)
	}

	h.offset.Store(int64(2 * time.Hour)) // k3 was never decided on
	ev = h.events(t, 1)[0]
	wantEvent(t, ev, "k3", "skipped", OutcomeExpired)
	h.stop()
	h.noMoreEvents(t)
	if got := logLines(t, log); len(got) != 1 || got[0] != "k1 web-1 r" {
		t.Errorf("action log %q, want exactly the approved k1", got)
	}
}
