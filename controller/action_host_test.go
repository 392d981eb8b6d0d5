package controller

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/vigil-sre/vigil/agent"
	"github.com/vigil-sre/vigil/internal/config"
	"github.com/vigil-sre/vigil/internal/natsembed"
	"github.com/vigil-sre/vigil/internal/wire"
	"github.com/vigil-sre/vigil/rules"
)

// snapAction is a test host action that appends the command ID to a file
// (one line per run) and reports progress.
type snapAction struct {
	file string
	mu   sync.Mutex
}

func (s *snapAction) Name() string     { return "snap" }
func (s *snapAction) Params() []string { return []string{"policy"} }
func (s *snapAction) Run(_ context.Context, cmd *wire.Command, progress func(float64, string)) (map[string]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	progress(0.5, "copying")
	if cmd.Params["policy"] == "broken" {
		return nil, os.ErrPermission
	}
	f, err := os.OpenFile(s.file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	_, err = f.WriteString(cmd.ID + " " + cmd.Params["policy"] + "\n")
	return map[string]string{"policy": cmd.Params["policy"]}, err
}

// runAgent starts a real agent with an executor trusting pub, offering a.
func runAgent(t *testing.T, url, host, pub string, a agent.HostAction) {
	t.Helper()
	cfg := agent.Config{Host: host, Interval: time.Second}
	cfg.DisableCollectors()
	off := false
	cfg.SelfMetrics = &off
	cfg.NATS.URL = config.Expand(url)
	cfg.NATS.ReconnectWait = 50 * time.Millisecond
	cfg.Publish.ShutdownGrace = 100 * time.Millisecond
	cfg.Executor = &agent.ExecutorConfig{TrustedKeys: []string{pub}}
	ag, err := agent.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ag.HostActions().Add(a); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = ag.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitExecutor(t, url, host)
}

// waitExecutor waits until host's executor answers (a malformed envelope:
// rejected).
func waitExecutor(t *testing.T, url, host string) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for end := time.Now().Add(10 * time.Second); ; {
		if _, err := nc.Request(wire.CommandSubject(host), []byte("{}"), 200*time.Millisecond); err == nil {
			return
		}
		if time.Now().After(end) {
			t.Fatal("agent executor never answered")
		}
	}
}

// jsPublisher connects to url and makes an events publisher on it.
func jsPublisher(t *testing.T, url string) (*publisher, func()) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := EnsureStreams(ctx, js, StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	// Not run: the test reads the events from its queue.
	return newPublisher(js, discardLog(), 1024), nc.Close
}

func writeSeed(t *testing.T) (file, pub string) {
	t.Helper()
	kp, _ := nkeys.CreateUser()
	seed, _ := kp.Seed()
	pub, _ = kp.PublicKey()
	file = filepath.Join(t.TempDir(), "controller.nk")
	if err := os.WriteFile(file, append(seed, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, pub
}

func fileLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(string(b), " ", "|"))
}

// The host action drives a HostAction on a real agent over NATS; the
// ledger keeps a restarted controller (and NATS server) from running the
// same intent key again.
func TestHostActionEndToEndAndLedgerAcrossRestart(t *testing.T) {
	ns := natsembed.StartT(t)
	seed, pubKey := writeSeed(t)
	out := filepath.Join(t.TempDir(), "snaps")
	runAgent(t, ns.URL(), "gpu-1", pubKey, &snapAction{file: out})

	cfg := ActionsConfig{Concurrency: 2, Safety: Safety{Signing: SigningConfig{SeedFile: seed}}}
	spec := &rules.Action{Name: "backup", Kind: "host", Params: map[string]string{"action": "snap", "policy": "data"}, Timeout: 10 * time.Second}
	r := testRule("disk_full", spec, 0, "")

	pub, stopPub := jsPublisher(t, ns.URL())
	h := startDispatcher(t, cfg, pub)
	h.d.Submit(testIntent(r, "gpu-1", "g/disk_full/gpu-1/1"))
	evs := h.events(t, 2)
	wantEvent(t, evs[0], "g/disk_full/gpu-1/1", "started", "")
	wantEvent(t, evs[1], "g/disk_full/gpu-1/1", "finished", OutcomeSuccess)
	if !strings.Contains(evs[1].Output, `"policy":"data"`) {
		t.Errorf("output %q lacks the agent's result", evs[1].Output)
	}
	if got := fileLines(t, out); len(got) != 1 || got[0] != "g/disk_full/gpu-1/1|data" {
		t.Fatalf("agent ran %v", got)
	}
	e, err := h.d.ledger.get(context.Background(), "g/disk_full/gpu-1/1")
	if err != nil || e == nil || e.State != "succeeded" || len(e.History) != 3 {
		t.Fatalf("ledger entry %+v %v", e, err)
	}
	h.stop()
	stopPub()

	// Restart NATS (same store) and a new dispatcher: the same key is a
	// duplicate, a new key runs.
	ns.Stop()
	if err := ns.Restart(); err != nil {
		t.Fatal(err)
	}
	waitExecutor(t, ns.URL(), "gpu-1") // the agent reconnected
	pub2, stopPub2 := jsPublisher(t, ns.URL())
	defer stopPub2()
	h2 := startDispatcher(t, cfg, pub2)
	h2.d.Submit(testIntent(r, "gpu-1", "g/disk_full/gpu-1/1"))
	ev := h2.events(t, 1)[0]
	wantEvent(t, ev, "g/disk_full/gpu-1/1", "skipped", OutcomeDup)
	if !strings.Contains(ev.Error, "succeeded (action ledger)") {
		t.Errorf("skip reason %q", ev.Error)
	}
	h2.d.Submit(testIntent(r, "gpu-1", "g/disk_full/gpu-1/2"))
	evs = h2.events(t, 2)
	wantEvent(t, evs[1], "g/disk_full/gpu-1/2", "finished", OutcomeSuccess)
	if got := fileLines(t, out); len(got) != 2 {
		t.Fatalf("agent ran %v, want 2 runs", got)
	}

	// A failing host action and a host without an agent are failures.
	broken := testRule("broken", &rules.Action{Name: "b", Kind: "host", Params: map[string]string{"action": "snap", "policy": "broken"}, Timeout: 5 * time.Second}, 0, "")
	h2.d.Submit(testIntent(broken, "gpu-1", "g/broken/gpu-1/1"))
	evs = h2.events(t, 2)
	wantEvent(t, evs[1], "g/broken/gpu-1/1", "finished", OutcomeFailure)
	if !strings.Contains(evs[1].Error, "failed") {
		t.Errorf("error %q", evs[1].Error)
	}
	nobody := testRule("nobody", &rules.Action{Name: "n", Kind: "host", Params: map[string]string{"action": "snap"}, Timeout: 300 * time.Millisecond}, 0, "")
	h2.d.Submit(testIntent(nobody, "gpu-404", "g/nobody/gpu-404/1"))
	evs = h2.events(t, 2)
	wantEvent(t, evs[1], "g/nobody/gpu-404/1", "finished", OutcomeTimeout)
}

// A command signed by a key the agent does not trust is rejected.
func TestHostActionUntrustedKeyRejected(t *testing.T) {
	ns := natsembed.StartT(t)
	_, trusted := writeSeed(t)
	out := filepath.Join(t.TempDir(), "snaps")
	runAgent(t, ns.URL(), "gpu-2", trusted, &snapAction{file: out})
	pub, stopPub := jsPublisher(t, ns.URL())
	defer stopPub()
	h := startDispatcher(t, ActionsConfig{Concurrency: 1}, pub) // ephemeral key
	r := testRule("x", &rules.Action{Name: "x", Kind: "host", Params: map[string]string{"action": "snap"}, Timeout: 5 * time.Second}, 0, "")
	h.d.Submit(testIntent(r, "gpu-2", "g/x/gpu-2/1"))
	evs := h.events(t, 2)
	wantEvent(t, evs[1], "g/x/gpu-2/1", "finished", OutcomeRejected)
	if !strings.Contains(evs[1].Error, wire.RejectUntrustedKey) {
		t.Errorf("error %q", evs[1].Error)
	}
	if fileLines(t, out) != nil {
		t.Error("the untrusted command ran")
	}
}

// Host commands carry the leader lease's epoch: once the agent has run a
// command of the newer term, a deposed leader's command (an older epoch of
// the same lease) is refused and does not run.
func TestHostActionFencedByLeaderEpoch(t *testing.T) {
	ns := natsembed.StartT(t)
	seed, pubKey := writeSeed(t)
	out := filepath.Join(t.TempDir(), "snaps")
	runAgent(t, ns.URL(), "gpu-3", pubKey, &snapAction{file: out})
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	kp, err := loadSigningKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	rt := &actionRuntime{nc: nc, kp: kp, lease: &lease{cfg: LeaseConfig{Bucket: "VIGIL_LEASE", Key: "leader"}}}
	spec := &rules.Action{Name: "backup", Kind: "host", Params: map[string]string{"action": "snap", "policy": "p"}, Timeout: 5 * time.Second}
	a, err := newHostAction(spec, ActionsConfig{rt: rt})
	if err != nil {
		t.Fatal(err)
	}
	in := func(key string, epoch uint64) rules.Intent {
		return rules.Intent{Key: key, Subject: "gpu-3", Epoch: epoch, At: time.Now()}
	}
	if o, err := a.Execute(context.Background(), in("new-term", 8)); err != nil || o.Status != OutcomeSuccess {
		t.Fatalf("epoch 8: %+v %v", o, err)
	}
	o, err := a.Execute(context.Background(), in("old-term", 7))
	if o.Status != OutcomeRejected || err == nil || !strings.Contains(err.Error(), "deposed") || !strings.Contains(o.Output, "stale_leader") {
		t.Fatalf("epoch 7 after 8: %+v %v", o, err)
	}
	if got := fileLines(t, out); len(got) != 1 || got[0] != "new-term|p" {
		t.Fatalf("agent ran %v, want only the new term's command", got)
	}
	// Without a lease (a lone controller) commands carry no leader epoch.
	rt.lease = nil
	if o, err := a.Execute(context.Background(), in("lone", 0)); err != nil || o.Status != OutcomeSuccess {
		t.Fatalf("no lease: %+v %v", o, err)
	}
}
