package controller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/vigil-sre/vigil/internal/natsembed"
	"github.com/vigil-sre/vigil/internal/wire"
	"github.com/vigil-sre/vigil/rules"
)

// setLeading moves l to a term at epoch, as when it lost the lease and
// acquired it again (or another controller did: this one then no longer
// leads at its old epoch).
func setLeading(l *lease, epoch uint64) {
	l.mu.Lock()
	l.epoch, l.leader, l.validUntil = epoch, true, time.Now().Add(time.Hour)
	l.mu.Unlock()
}

func releaseGate(t *testing.T, gate string) {
	t.Helper()
	f, err := os.OpenFile(gate, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("start release\n"); err != nil {
		t.Fatal(err)
	}
}

// approvedWaiting starts a dispatcher leading at epoch 3 with one action
// slot, which g/busy holds, and an approval of g/r on web-1 recorded in the
// ledger: the approved action waits for the slot (released by
// releaseGate).
func approvedWaiting(t *testing.T) (h *dispHarness, b *ledgerBucket, ls *lease, in rules.Intent, logPath, gate string) {
	t.Helper()
	ns := natsembed.StartT(t)
	pub, stop := jsPublisher(t, ns.URL())
	t.Cleanup(stop)
	dir := t.TempDir()
	logPath, gate = filepath.Join(dir, "actions.log"), filepath.Join(dir, "gate")
	set, manual, busy := approvalSet(t, logPath, gate)
	ls = leadingAt(3)
	h = startDispatcher(t, ActionsConfig{Concurrency: 1, ApprovalTimeout: time.Hour}, pub, func(d *dispatcher) { d.lease = ls; d.rules.Store(set) })
	b = openLedgerBucket(t, ns.URL())

	hold := testIntent(busy, "web-0", "g/busy/web-0/1")
	hold.Epoch = 3
	h.d.Submit(hold)
	wantEvent(t, h.events(t, 1)[0], hold.Key, "started", "")
	waitFor(t, "the busy action holds the slot", func() bool { b, _ := os.ReadFile(gate); return strings.Count(string(b), "start ") == 1 })
	in = testIntent(manual, "web-1", "g/r/web-1/1")
	in.Epoch = 3
	h.d.Submit(in)
	wantEvent(t, h.events(t, 1)[0], in.Key, "awaiting_approval", "")
	if acted, err := h.d.Decide(context.Background(), in.Key, "alice", "", true); err != nil || !acted {
		t.Fatalf("approve on the leader: acted %v, %v", acted, err)
	}
	return h, b, ls, in, logPath, gate
}

// TestApprovalSurvivesOwnLeaseBlip: a controller approves an action, which
// waits for a slot; the controller loses the lease and acquires it again
// (a new term). The new term takes the approved action over and runs it
// once; the old term's attempt is refused. (It used to stay awaiting
// approval, approved, until some later leader change ran it.)
func TestApprovalSurvivesOwnLeaseBlip(t *testing.T) {
	h, b, ls, in, logPath, gate := approvedWaiting(t)

	setLeading(ls, 4)
	h.d.NewTerm(4)
	waitFor(t, "the approved action taken over at epoch 4", func() bool { return b.entry(in.Key).Epoch == 4 })
	releaseGate(t, gate)
	got := map[string]string{}
	for _, ev := range h.events(t, 4) { // busy finished; ours: epoch 3 refused, started, finished
		got[ev.Key+" "+ev.State] = ev.Outcome + " " + ev.Labels["approved_by"]
	}
	want := map[string]string{
		"g/busy/web-0/1 finished": OutcomeSuccess + " ",
		in.Key + " skipped":       OutcomeNotLeader + " ",
		in.Key + " started":       " alice",
		in.Key + " finished":      OutcomeSuccess + " alice",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("event %s: %q, want %q (all: %q)", k, got[k], v, got)
		}
	}
	h.stop()
	h.noMoreEvents(t)
	if lines := logLines(t, logPath); len(lines) != 1 || lines[0] != in.Key+" web-1 r" {
		t.Fatalf("action log %q, want %s once", lines, in.Key)
	}
	if e := b.entry(in.Key); e.State != "succeeded" || e.Epoch != 4 || e.Approval.By != "alice" {
		t.Errorf("entry %+v: want succeeded at epoch 4, approved by alice", e)
	}
}

// swallow subscribes, on its own connection, to subject and never answers:
// requests to it wait for their timeout, as when a JetStream stream's
// leader is unreachable. It counts the requests.
func swallow(t *testing.T, url, subject string) (n *atomic.Int64, seen <-chan struct{}, stop func()) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	n = new(atomic.Int64)
	ch := make(chan struct{}, 1)
	sub, err := nc.Subscribe(subject, func(*nats.Msg) {
		n.Add(1)
		select {
		case ch <- struct{}{}:
		default:
		}
	})
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		t.Fatal(err)
	}
	stop = func() { _ = sub.Unsubscribe(); nc.Close() }
	t.Cleanup(stop)
	return n, ch, stop
}

// directGet is the subject of the ledger's reads of intentKey's entry.
func directGet(intentKey string) string {
	return "$JS.API.DIRECT.GET.KV_" + DefaultLedgerBucket + ".$KV." + DefaultLedgerBucket + "." + ledgerKey(intentKey)
}

// TestDeposedWhileRecordingStartDoesNotRun: the write that starts an
// approved action hangs (the ledger unreachable) and the controller loses
// the lease meanwhile; when the write fails, the action is not run.
func TestDeposedWhileRecordingStartDoesNotRun(t *testing.T) {
	h, b, ls, in, logPath, gate := approvedWaiting(t)
	url := h.pub.js.Conn().ConnectedUrl()

	b.remove() // the busy action's final write fails at once; ours hangs:
	_, seen, _ := swallow(t, url, directGet(in.Key))
	releaseGate(t, gate)
	wantEvent(t, h.events(t, 1)[0], "g/busy/web-0/1", "finished", OutcomeSuccess)
	select {
	case <-seen:
	case <-time.After(15 * time.Second):
		t.Fatal("the approved action's start was not written")
	}
	setLeading(ls, 4) // another term begins while the write hangs
	ev := h.events(t, 1)[0]
	wantEvent(t, ev, in.Key, "skipped", OutcomeNotLeader)
	if !strings.Contains(ev.Error, "stopped leading at epoch 3 while recording the start") {
		t.Errorf("not_leader reason %q", ev.Error)
	}
	h.stop()
	h.noMoreEvents(t)
	if lines := logLines(t, logPath); len(lines) != 0 {
		t.Fatalf("action log %q, want nothing run", lines)
	}
}

// TestApprovedStartWaitsForLedger: the write that starts an approved action
// fails while the controller still leads. The action does not run
// unrecorded (its entry still reads approved, and a later term would carry
// it out again): it is held, and started once the ledger answers.
func TestApprovedStartWaitsForLedger(t *testing.T) {
	h, b, _, in, logPath, gate := approvedWaiting(t)
	e := b.entry(in.Key)
	if e.State != "awaiting_approval" || e.Approval.Decision != DecisionApproved {
		t.Fatalf("entry before the start: %+v", e)
	}

	b.remove()
	releaseGate(t, gate)
	wantEvent(t, h.events(t, 1)[0], "g/busy/web-0/1", "finished", OutcomeSuccess)
	waitFor(t, "the approved action held again", func() bool {
		for _, r := range h.d.records.list() {
			if r.Key == in.Key {
				return r.State == "awaiting_approval" && strings.Contains(r.Error, "start could not be recorded")
			}
		}
		return false
	})
	if lines := logLines(t, logPath); len(lines) != 0 {
		t.Fatalf("action log %q while the ledger is unreachable, want nothing run", lines)
	}

	b.restore() // the ledger is back, with the entry
	b.put(*e)
	evs := h.events(t, 2)
	wantEvent(t, evs[0], in.Key, "started", "")
	wantEvent(t, evs[1], in.Key, "finished", OutcomeSuccess)
	if evs[0].Labels["approved_by"] != "alice" {
		t.Errorf("started event's approved_by %q", evs[0].Labels["approved_by"])
	}
	h.stop()
	h.noMoreEvents(t)
	if lines := logLines(t, logPath); len(lines) != 1 || lines[0] != in.Key+" web-1 r" {
		t.Fatalf("action log %q, want %s once", lines, in.Key)
	}
	if e := b.entry(in.Key); e.State != "succeeded" || e.Epoch != 3 {
		t.Errorf("entry %+v: want succeeded at epoch 3", e)
	}
}

// TestApprovalPassBounded: the dispatcher's per-tick pass over the
// requests it holds reads past entries it cannot read, and a ledger that
// does not answer costs it one timeout per tick, not one per request.
func TestApprovalPassBounded(t *testing.T) {
	ns := natsembed.StartT(t)
	pub, stop := jsPublisher(t, ns.URL())
	defer stop()
	set, manual, _ := approvalSet(t, filepath.Join(t.TempDir(), "actions.log"), "")
	d := newDispatcher(ActionsConfig{Concurrency: 1, ApprovalTimeout: time.Hour}, pub, discardLog(), time.Now)
	d.lease = leadingAt(3)
	d.rules.Store(set)
	l, err := openLedger(context.Background(), pub.js, Safety{}, d.lease.fenceName(), discardLog())
	if err != nil {
		t.Fatal(err)
	}
	d.ledger = l
	b := openLedgerBucket(t, ns.URL())
	hold := func(key string, since time.Time) {
		in := testIntent(manual, "web-1", key)
		in.Epoch = 3
		d.pending[key] = &pendingApproval{in: in, since: since, recorded: true}
	}

	// Ten entries cannot be read (not JSON), ten are denied: one pass
	// settles the ten denied ones.
	for i := range 10 {
		bad := fmt.Sprintf("bad-%d", i)
		if _, err := b.kv.Put(context.Background(), ledgerKey(bad), []byte("{not json")); err != nil {
			t.Fatal(err)
		}
		hold(bad, time.Now())
		denied := fmt.Sprintf("denied-%d", i)
		b.put(awaitingEntry(denied, 3, time.Minute, DecisionDenied))
		hold(denied, time.Now())
	}
	d.pollDecisions(context.Background())
	for i := range 10 {
		if _, ok := d.pending[fmt.Sprintf("denied-%d", i)]; ok {
			t.Errorf("denied-%d still held after a pass", i)
		}
		if _, ok := d.pending[fmt.Sprintf("bad-%d", i)]; !ok {
			t.Errorf("bad-%d let go", i)
		}
	}
	for range 10 {
		var ev *wire.Event
		select {
		case ev = <-pub.ch:
		default:
			t.Fatal("fewer than 10 events of denied actions")
		}
		if ev.State != "skipped" || ev.Outcome != OutcomeDenied || !strings.HasPrefix(ev.Key, "denied-") {
			t.Errorf("event %s, want a denied one skipped", describeEvents([]*wire.Event{ev}))
		}
	}

	// Six requests expired while the ledger does not answer: a pass asks
	// it once and leaves the rest for the next ticks.
	clear(d.pending)
	for i := range 6 {
		key := fmt.Sprintf("old-%d", i)
		b.put(awaitingEntry(key, 3, 2*time.Hour, ""))
		hold(key, time.Now().Add(-2*time.Hour))
	}
	b.remove()
	url := ns.URL()
	gets, _, stopGets := swallow(t, url, "$JS.API.DIRECT.GET.KV_"+DefaultLedgerBucket+".>")
	writes, _, stopWrites := swallow(t, url, "$KV."+DefaultLedgerBucket+".>")
	d.approvalPass(context.Background())
	if n := gets.Load() + writes.Load(); n > 1 {
		t.Errorf("one pass sent %d requests to a ledger that does not answer, want 1", n)
	}
	if len(d.pending) != 6 {
		t.Errorf("%d requests held after the pass, want 6", len(d.pending))
	}
	stopGets()
	stopWrites()
	b.restore()
	for i := range 6 {
		b.put(awaitingEntry(fmt.Sprintf("old-%d", i), 3, 2*time.Hour, ""))
	}
	for pass := 0; len(d.pending) > 0; pass++ {
		if pass == 100 {
			t.Fatalf("%d requests still held after 100 passes", len(d.pending))
		}
		d.approvalPass(context.Background())
	}
	for i := range 6 {
		if e := b.entry(fmt.Sprintf("old-%d", i)); e.State != "skipped" || e.Approval.Decision != DecisionExpired {
			t.Errorf("old-%d: %+v, want skipped as expired", i, e)
		}
	}

	// A request held when this controller no longer leads at its epoch is
	// let go, saying so.
	b.put(awaitingEntry("moved", 3, time.Minute, ""))
	hold("moved", time.Now())
	setLeading(d.lease, 4)
	d.pollDecisions(context.Background())
	const why = "no longer held here: this controller no longer leads at epoch 3"
	recs := d.records.list()
	i := slices.IndexFunc(recs, func(r ActionRecord) bool { return r.Key == "moved" })
	if _, ok := d.pending["moved"]; ok || i < 0 || recs[i].State != "handed_over" || recs[i].Error != why {
		t.Errorf("a request held at a lost epoch: still held %v, record %+v; want let go, %q", ok, recs[max(i, 0)], why)
	}
}

// TestShardsSharingLedgerLeaveEachOther: controllers of two shards (two
// lease keys) share the ledger bucket. A new term of shard A takes over
// and settles only the entries of its own lease (and those recording no
// lease, as before); shard B's, awaiting approval or running at an older
// epoch, are left alone.
func TestShardsSharingLedgerLeaveEachOther(t *testing.T) {
	ns := natsembed.StartT(t)
	pub, stop := jsPublisher(t, ns.URL())
	defer stop()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "actions.log")
	set, manual, _ := approvalSet(t, logPath, filepath.Join(dir, "gate"))
	ls := &lease{cfg: LeaseConfig{Bucket: DefaultLeaseBucket, Key: "shard-a"}}
	setLeading(ls, 7)
	h := startDispatcher(t, ActionsConfig{Concurrency: 1, ApprovalTimeout: time.Hour}, pub, func(d *dispatcher) { d.lease = ls; d.rules.Store(set) })
	b := openLedgerBucket(t, ns.URL())
	const shardA, shardB = DefaultLeaseBucket + "/shard-a", DefaultLeaseBucket + "/shard-b"
	ours := awaitingEntry("ours-3", 3, 10*time.Minute, DecisionApproved)
	ours.Lease = shardA
	theirs := awaitingEntry("theirs-3", 3, 10*time.Minute, DecisionApproved)
	theirs.Lease = shardB
	theirsRunning := awaitingEntry("theirs-running-3", 3, 10*time.Minute, DecisionApproved)
	theirsRunning.Lease, theirsRunning.State = shardB, "running"
	legacy := awaitingEntry("legacy-running-3", 3, 10*time.Minute, DecisionApproved)
	legacy.State = "running"
	for _, e := range []LedgerEntry{ours, theirs, theirsRunning, legacy} {
		b.put(e)
	}

	h.d.NewTerm(7)
	got := map[string]string{}
	for _, ev := range h.events(t, 3) { // legacy abandoned (the scan), then ours started, finished
		got[ev.Key+" "+ev.State] = ev.Outcome
	}
	want := map[string]string{"legacy-running-3 abandoned": OutcomeUnknown, "ours-3 started": "", "ours-3 finished": OutcomeSuccess}
	for k, v := range want {
		if o, ok := got[k]; !ok || o != v {
			t.Errorf("event %s: %q, want %q (all: %q)", k, o, v, got)
		}
	}
	waitFor(t, "ours-3 settled", func() bool { return b.entry("ours-3").State == "succeeded" })
	if e := b.entry("ours-3"); e.Epoch != 7 || e.Lease != shardA {
		t.Errorf("ours-3: epoch %d, lease %q; want 7, %s", e.Epoch, e.Lease, shardA)
	}
	for _, w := range []LedgerEntry{theirs, theirsRunning} {
		if e := b.entry(w.Key); e.State != w.State || e.Epoch != 3 || e.Lease != shardB {
			t.Errorf("shard B's %s written by shard A: %s at epoch %d, lease %q", w.Key, e.State, e.Epoch, e.Lease)
		}
	}

	// What shard A writes records its lease.
	in := testIntent(manual, "web-2", "g/r/web-2/1")
	in.Epoch = 7
	h.d.Submit(in)
	wantEvent(t, h.events(t, 1)[0], in.Key, "awaiting_approval", "")
	if e := b.entry(in.Key); e.Lease != shardA || e.Epoch != 7 {
		t.Errorf("new entry: lease %q at epoch %d, want %s at 7", e.Lease, e.Epoch, shardA)
	}
	h.stop()
	h.noMoreEvents(t)
	if lines := logLines(t, logPath); len(lines) != 1 || lines[0] != "ours-3 web-1 r" {
		t.Fatalf("action log %q, want ours-3 once", lines)
	}
}

// TestHeldApprovalExpiresWhileLedgerHangs: a request held in memory only
// (the ledger failed to record it) expires on time even while a read of
// a recorded request hangs, and an approval of it that comes after its
// timeout is refused, not run.
func TestHeldApprovalExpiresWhileLedgerHangs(t *testing.T) {
	ns, d, b, manual, logPath := ledgerDispatcher(t)
	rec := testIntent(manual, "web-1", "recorded")
	rec.Epoch = 3
	b.put(awaitingEntry("recorded", 3, time.Minute, ""))
	d.pending["recorded"] = &pendingApproval{in: rec, since: time.Now(), recorded: true}
	mem := testIntent(manual, "web-2", "memory")
	mem.Epoch = 3
	d.pending["memory"] = &pendingApproval{in: mem, since: time.Now().Add(-2 * time.Hour)}
	late := testIntent(manual, "web-3", "late")
	late.Epoch = 3
	d.pending["late"] = &pendingApproval{in: late, since: time.Now().Add(-2 * time.Hour)}

	b.remove()
	_, _, stopGets := swallow(t, ns.URL(), "$JS.API.DIRECT.GET.KV_"+DefaultLedgerBucket+".>")
	defer stopGets()
	_, _, stopWrites := swallow(t, ns.URL(), "$KV."+DefaultLedgerBucket+".>")
	defer stopWrites()

	// An approval of the 2-hour-old request held in memory: refused.
	acted, err := d.decideApproval(context.Background(), decision{key: "late", by: "alice", approve: true})
	if acted || !errors.Is(err, ErrNoSuchApproval) {
		t.Errorf("approving a request older than the approval timeout: acted %v, err %v; want refused", acted, err)
	}
	for range 3 {
		d.approvalPass(context.Background())
	}
	if _, ok := d.pending["memory"]; ok {
		t.Error("the 2-hour-old request held in memory is still held after 3 passes with the ledger hanging")
	}
	if _, ok := d.pending["recorded"]; !ok {
		t.Error("the recorded request was let go")
	}
	d.wg.Wait()
	if b, err := os.ReadFile(logPath); err == nil && len(b) > 0 {
		t.Errorf("an expired request ran: action log %q", b)
	}
}

// TestHeldApprovalKeepsItsRateSlot: an approved action held again because
// its start could not be recorded took its rate-limit slot at its first
// launch; launching it again must not count it twice (each retry used up a
// slot, until the approved action was skipped as rate limited).
func TestHeldApprovalKeepsItsRateSlot(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "actions.log")
	_, manual, _ := approvalSet(t, logPath, "")
	pub := &publisher{ch: make(chan *wire.Event, 64)}
	d := newDispatcher(ActionsConfig{Concurrency: 1, ApprovalTimeout: time.Hour, Safety: Safety{MaxPerMinute: 1}}, pub, discardLog(), time.Now)
	in := testIntent(manual, "web-1", "held")
	ap := &approved{by: "alice"}
	d.launch(context.Background(), in, time.Now(), ap) // its first launch takes the minute's only slot
	d.wg.Wait()
	d.hold(&pendingApproval{in: in, since: time.Now()})
	delete(d.pending, "held")
	d.launch(context.Background(), in, time.Now(), ap)
	d.wg.Wait()
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "web-1"); n != 2 {
		t.Errorf("action ran %d times, want 2 (the relaunch of a held approval is not rate limited): log %q", n, b)
	}
	for len(pub.ch) > 0 {
		if ev := <-pub.ch; ev.Outcome == OutcomeRateLimited {
			t.Errorf("relaunch skipped: %s", describeEvents([]*wire.Event{ev}))
		}
	}
}

// TestHeldApprovalWhoseStartLanded: the start write of an approved action
// reported a failure (a timeout) but the server applied it, so the entry
// says "running" at this term's epoch although nothing started. The held
// approval is this controller's own claim: it starts the action (once),
// instead of reading the entry as handed over and never running it.
func TestHeldApprovalWhoseStartLanded(t *testing.T) {
	_, d, b, manual, logPath := ledgerDispatcher(t)
	e := awaitingEntry("landed", 3, time.Minute, DecisionApproved)
	e.State = "running"
	e.History = append(e.History, LedgerStep{State: "running", At: time.Now()})
	b.put(e)
	in := testIntent(manual, "web-1", "landed")
	in.Epoch = 3
	d.hold(&pendingApproval{in: in, since: e.Approval.Requested, recorded: true})

	d.pollDecisions(context.Background())
	d.wg.Wait()
	log, err := os.ReadFile(logPath)
	if err != nil || strings.Count(string(log), "web-1") != 1 {
		t.Fatalf("action log %q (%v), want the approved action run once", log, err)
	}
	if got := b.entry("landed"); got.State != "succeeded" || got.Epoch != 3 {
		t.Errorf("entry %s at epoch %d, want succeeded at 3", got.State, got.Epoch)
	}
	if _, ok := d.pending["landed"]; ok {
		t.Error("still held after it ran")
	}
}

// ledgerDispatcher is a dispatcher leading at epoch 3 with the action
// ledger of a fresh server (approval timeout 1 h, one slot), the ledger's
// bucket for the test to read and break, the manual rule of approvalSet
// and its action log.
func ledgerDispatcher(t *testing.T) (ns *natsembed.Server, d *dispatcher, b *ledgerBucket, manual *rules.Rule, logPath string) {
	t.Helper()
	ns = natsembed.StartT(t)
	pub, stop := jsPublisher(t, ns.URL())
	t.Cleanup(stop)
	logPath = filepath.Join(t.TempDir(), "actions.log")
	set, manual, _ := approvalSet(t, logPath, "")
	d = newDispatcher(ActionsConfig{Concurrency: 1, ApprovalTimeout: time.Hour}, pub, discardLog(), time.Now)
	d.lease = leadingAt(3)
	d.rules.Store(set)
	l, err := openLedger(context.Background(), pub.js, Safety{}, d.lease.fenceName(), discardLog())
	if err != nil {
		t.Fatal(err)
	}
	d.ledger = l
	return ns, d, openLedgerBucket(t, ns.URL()), manual, logPath
}
