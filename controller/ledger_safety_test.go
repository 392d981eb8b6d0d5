package controller

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/internal/natsembed"
)

// ledgerBucket gives a test its own handle on the ledger bucket, once the
// dispatcher made it, and ways to take it away and bring it back (as when
// its stream has no reachable leader: the KV cannot be written).
type ledgerBucket struct {
	t  *testing.T
	js jetstream.JetStream
	kv jetstream.KeyValue
}

func openLedgerBucket(t *testing.T, url string) *ledgerBucket {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	b := &ledgerBucket{t: t, js: js}
	waitFor(t, "the dispatcher's ledger bucket", func() bool {
		b.kv, err = js.KeyValue(context.Background(), DefaultLedgerBucket)
		return err == nil
	})
	return b
}

func (b *ledgerBucket) remove() {
	b.t.Helper()
	if err := b.js.DeleteKeyValue(context.Background(), DefaultLedgerBucket); err != nil {
		b.t.Fatal(err)
	}
}

func (b *ledgerBucket) restore() {
	b.t.Helper()
	var err error
	b.kv, err = b.js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{
		Bucket: DefaultLedgerBucket, TTL: 7 * 24 * time.Hour, History: 1, Storage: jetstream.FileStorage,
	})
	if err != nil {
		b.t.Fatal(err)
	}
}

func (b *ledgerBucket) put(e LedgerEntry) {
	b.t.Helper()
	v, _ := json.Marshal(e)
	if _, err := b.kv.Put(context.Background(), ledgerKey(e.Key), v); err != nil {
		b.t.Fatal(err)
	}
}

func (b *ledgerBucket) entry(key string) *LedgerEntry {
	b.t.Helper()
	kve, err := b.kv.Get(context.Background(), ledgerKey(key))
	if err != nil {
		b.t.Fatalf("ledger entry %s: %v", key, err)
	}
	var e LedgerEntry
	if err := json.Unmarshal(kve.Value(), &e); err != nil {
		b.t.Fatal(err)
	}
	return &e
}

// TestLedgerUnreachableFailsClosed: an automatic action whose claim cannot
// be written does not run; it waits (an event says so), runs exactly once
// when the ledger is back, and is a duplicate for a restarted dispatcher.
// One that waits longer than ledger_wait is dropped and never runs. Dry
// runs and manual-mode actions need no claim.
func TestLedgerUnreachableFailsClosed(t *testing.T) {
	ns := natsembed.StartT(t)
	hook := newHookServer(t, 0)
	pub, stop := jsPublisher(t, ns.URL())
	defer stop()
	cfg := ActionsConfig{Concurrency: 1, Safety: Safety{LedgerWait: 10 * time.Minute}}
	h := startDispatcher(t, cfg, pub)
	b := openLedgerBucket(t, ns.URL())

	b.remove()
	auto := hookRule("auto", hook.URL)
	in := testIntent(auto, "web-1", "g/auto/web-1/1")
	h.d.Submit(in)
	ev := h.events(t, 1)[0]
	wantEvent(t, ev, in.Key, "deferred", "")
	if !strings.Contains(ev.Error, "action ledger") {
		t.Errorf("deferred event's error %q does not name the ledger", ev.Error)
	}
	h.offset.Store(int64(time.Minute)) // a probe is due, and fails
	waitFor(t, "a second failed claim", func() bool { return h.d.ledgerErrors.Load() >= 2 })
	if n := len(hook.calls()); n != 0 || h.d.deferredNow.Load() != 1 {
		t.Fatalf("while the ledger is unreachable: %d calls, %d waiting; want 0 and 1", n, h.d.deferredNow.Load())
	}

	// Without a claim: a manual action awaits approval, a dry run is recorded.
	man := testIntent(testRule("man", execSpec("true"), 0, "manual"), "web-1", "g/man/web-1/1")
	dry := testIntent(testRule("dry", execSpec("true"), 0, "dry_run"), "web-1", "g/dry/web-1/1")
	h.d.Submit(man)
	h.d.Submit(dry)
	evs := h.events(t, 2)
	wantEvent(t, evs[0], man.Key, "awaiting_approval", "")
	wantEvent(t, evs[1], dry.Key, "skipped", OutcomeDryRun)

	b.restore()
	h.offset.Store(int64(2 * time.Minute))
	evs = h.events(t, 2)
	wantEvent(t, evs[0], in.Key, "started", "")
	wantEvent(t, evs[1], in.Key, "finished", OutcomeSuccess)
	if got := hook.calls(); !slices.Equal(got, []string{in.Key}) {
		t.Fatalf("calls %v, want one of %s", got, in.Key)
	}
	if e := b.entry(in.Key); e.State != "succeeded" {
		t.Errorf("ledger state %q, want succeeded", e.State)
	}
	if n := h.d.deferredNow.Load(); n != 0 {
		t.Errorf("%d still waiting", n)
	}

	// A restarted dispatcher finds the key in the ledger.
	h2 := startDispatcher(t, cfg, pub)
	h2.d.Submit(in)
	ev = h2.events(t, 1)[0]
	wantEvent(t, ev, in.Key, "skipped", OutcomeDup)
	if !strings.Contains(ev.Error, "action ledger") {
		t.Errorf("duplicate's reason %q, want the ledger's", ev.Error)
	}
	h2.stop()

	// Waiting longer than ledger_wait: dropped, never run.
	b.remove()
	in2 := testIntent(auto, "web-2", "g/auto/web-2/1")
	h.d.Submit(in2)
	wantEvent(t, h.events(t, 1)[0], in2.Key, "deferred", "")
	h.offset.Store(int64(13 * time.Minute))
	ev = h.events(t, 1)[0]
	wantEvent(t, ev, in2.Key, "skipped", OutcomeLedgerUnavailable)
	b.restore()
	in3 := testIntent(auto, "web-3", "g/auto/web-3/1")
	h.d.Submit(in3)
	evs = h.events(t, 2)
	wantEvent(t, evs[1], in3.Key, "finished", OutcomeSuccess)
	if got := hook.calls(); !slices.Equal(got, []string{in.Key, in3.Key}) {
		t.Fatalf("calls %v, want %s and %s only", got, in.Key, in3.Key)
	}
	h.noMoreEvents(t)
}

// TestAbandonedAtNewTerm: on a new term, the entries older terms left
// pending, running or retrying become abandoned exactly once, each with
// an event, and are never run; settled entries, the current term's and
// actions of this process still in flight are left alone; the late
// outcome of the old term is still recorded.
func TestAbandonedAtNewTerm(t *testing.T) {
	ns := natsembed.StartT(t)
	pub, stop := jsPublisher(t, ns.URL())
	defer stop()
	ls := &lease{leader: true, epoch: 7, validUntil: time.Now().Add(time.Hour)}
	h := startDispatcher(t, ActionsConfig{Concurrency: 1}, pub, func(d *dispatcher) { d.lease = ls })
	b := openLedgerBucket(t, ns.URL())
	at := time.Now().Add(-time.Minute)
	entry := func(key, state string, epoch uint64) LedgerEntry {
		return LedgerEntry{Key: key, State: state, Rule: "r", Group: "g", Severity: "critical", Subject: "web-1", Action: "act", Kind: "exec",
			Epoch: epoch, Updated: at, History: []LedgerStep{{State: "pending", At: at}, {State: state, At: at}}}
	}
	for _, e := range []LedgerEntry{
		entry("running-3", "running", 3), entry("retrying-3", "retrying", 3), entry("pending-5", "pending", 5),
		entry("done-3", "succeeded", 3), entry("running-7", "running", 7), entry("inflight-3", "running", 3),
	} {
		b.put(e)
	}
	h.d.inflight.add("inflight-3")

	h.d.NewTerm(7)
	got := map[string]string{}
	for _, ev := range h.events(t, 3) {
		got[ev.Key] = ev.State + "/" + ev.Outcome
		if ev.Rule != "r" || ev.Host != "web-1" || ev.Action != "act" || ev.ActionKind != "exec" || ev.Values["abandoned_by"] != 7 || ev.Error == "" {
			t.Errorf("abandoned event %+v", ev)
		}
	}
	want := map[string]string{"running-3": "abandoned/unknown", "retrying-3": "abandoned/unknown", "pending-5": "abandoned/unknown"}
	if !maps.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	e := b.entry("running-3")
	if e.State != StateAbandoned || e.Epoch != 3 || e.AbandonedBy != 7 || !strings.Contains(e.Error, "not re-run") || e.History[len(e.History)-1].State != StateAbandoned {
		t.Errorf("abandoned entry %+v", e)
	}
	for key, state := range map[string]string{"done-3": "succeeded", "running-7": "running", "inflight-3": "running"} {
		if s := b.entry(key).State; s != state {
			t.Errorf("%s: state %q, want %q (untouched)", key, s, state)
		}
	}

	// Exactly once: scans racing on another stale entry abandon it once.
	b.put(entry("running-4", "running", 4))
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := h.d.abandonStale(context.Background(), 7)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if total != 1 {
		t.Fatalf("racing scans abandoned %d entries, want 1", total)
	}
	wantEvent(t, h.events(t, 1)[0], "running-4", StateAbandoned, OutcomeUnknown)
	if n, err := h.d.abandonStale(context.Background(), 7); n != 0 || err != nil {
		t.Fatalf("a scan after: %d abandoned (%v), want 0", n, err)
	}
	if n := h.d.abandoned.Load(); n != 4 {
		t.Errorf("abandoned counter %d, want 4", n)
	}

	// The old term's late outcome is still recorded.
	old := testIntent(testRule("r", execSpec("true"), 0, ""), "web-1", "running-3")
	old.Epoch = 3
	h.d.ledger.set(old, "succeeded", 1, "", time.Now())
	if e := b.entry("running-3"); e.State != "succeeded" {
		t.Errorf("late outcome not recorded: %+v", e)
	}

	// The next term settles what the last one left running.
	ls.mu.Lock()
	ls.epoch = 8
	ls.mu.Unlock()
	h.d.NewTerm(8)
	wantEvent(t, h.events(t, 1)[0], "running-7", StateAbandoned, OutcomeUnknown)
	h.d.inflight.remove("inflight-3")
	h.stop()
	h.noMoreEvents(t)
}
