package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/vigil-sre/vigil/internal/natsembed"
	"github.com/vigil-sre/vigil/internal/wire"
)

// countAction is a test host action: it counts its runs per command ID,
// reports progress and fails when asked to.
type countAction struct {
	mu   sync.Mutex
	runs map[string]int
	n    atomic.Int64
}

func (c *countAction) Name() string     { return "touch" }
func (c *countAction) Params() []string { return []string{"file", "fail"} }
func (c *countAction) Run(ctx context.Context, cmd *wire.Command, progress func(float64, string)) (map[string]string, error) {
	c.mu.Lock()
	c.runs[cmd.ID]++
	c.mu.Unlock()
	c.n.Add(1)
	progress(0.5, "half way")
	if cmd.Params["fail"] == "yes" {
		return nil, errors.New("asked to fail")
	}
	if f := cmd.Params["file"]; f != "" {
		if err := os.WriteFile(f, []byte(cmd.ID), 0o600); err != nil {
			return nil, err
		}
	}
	return map[string]string{"id": cmd.ID}, nil
}

type execHarness struct {
	a      *Agent
	act    *countAction
	nc     *nats.Conn
	kp     nkeys.KeyPair
	seq    int
	stop   func() error
	stateD string
}

func startExecAgent(t *testing.T, url, stateDir string, kp nkeys.KeyPair) *execHarness {
	t.Helper()
	pub, _ := kp.PublicKey()
	cfg := natsConfig("exec-1", url)
	cfg.StateDir = stateDir
	cfg.Executor = &ExecutorConfig{TrustedKeys: []string{pub}, NonceWindow: time.Minute}
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	act := &countAction{runs: map[string]int{}}
	if err := a.HostActions().Add(act); err != nil {
		t.Fatal(err)
	}
	stop := start(t, a)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	h := &execHarness{a: a, act: act, nc: nc, kp: kp, stop: stop, stateD: stateDir}
	waitFor(t, "executor subscribed", func() bool {
		r := h.send(t, signed(t, kp, h.cmd("probe", "nope", nil)))
		return len(r) > 0
	})
	return h
}

func (h *execHarness) cmd(id, action string, params map[string]string) *wire.Command {
	h.seq++
	now := time.Now()
	return &wire.Command{ID: id, Host: "exec-1", Action: action, Params: params,
		Nonce: fmt.Sprintf("nonce-%d-%d", now.UnixNano(), h.seq), Issued: now, Expires: now.Add(30 * time.Second)}
}

func signed(t *testing.T, kp nkeys.KeyPair, c *wire.Command) []byte {
	t.Helper()
	b, err := wire.Sign(c, kp)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// send publishes an envelope and collects replies until a final one
// (done, failed, rejected, or a remembered non-final answer).
func (h *execHarness) send(t *testing.T, env []byte) []wire.Reply {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := h.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := h.nc.PublishRequest(wire.CommandSubject("exec-1"), inbox, env); err != nil {
		t.Fatal(err)
	}
	var out []wire.Reply
	for {
		m, err := sub.NextMsg(2 * time.Second)
		if err != nil {
			return out
		}
		var r wire.Reply
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
		switch r.State {
		case wire.ReplyDone, wire.ReplyFailed, wire.ReplyRejected:
			return out
		case wire.ReplyAccepted:
			if r.Message != "" { // remembered: already running
				return out
			}
		}
	}
}

func last(t *testing.T, rs []wire.Reply) wire.Reply {
	t.Helper()
	if len(rs) == 0 {
		t.Fatal("no reply")
	}
	return rs[len(rs)-1]
}

func TestExecutorRejectsAndRunsOnce(t *testing.T) {
	srv := natsembed.StartT(t)
	createStream(t, srv.URL())
	kp, _ := nkeys.CreateUser()
	h := startExecAgent(t, srv.URL(), t.TempDir(), kp)
	base := h.a.ExecutorStats().Rejected[rejectNotOffered] // the probes

	// A valid command runs, with accepted, progress and done replies.
	file := filepath.Join(t.TempDir(), "out")
	valid := signed(t, kp, h.cmd("k1", "touch", map[string]string{"file": file}))
	rs := h.send(t, valid)
	if len(rs) != 3 || rs[0].State != wire.ReplyAccepted || rs[1].State != wire.ReplyProgress || rs[1].Progress != 0.5 ||
		rs[2].State != wire.ReplyDone || rs[2].Result["id"] != "k1" {
		t.Fatalf("replies %+v", rs)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "k1" {
		t.Fatalf("action output %q %v", b, err)
	}
	// The same envelope again is a replay; the same ID with a fresh nonce
	// gets the remembered outcome. Neither runs the action.
	if r := last(t, h.send(t, valid)); r.State != wire.ReplyRejected || r.Message != rejectReplay {
		t.Fatalf("replay: %+v", r)
	}
	if r := last(t, h.send(t, signed(t, kp, h.cmd("k1", "touch", map[string]string{"file": file})))); r.State != wire.ReplyDone || r.Result["id"] != "k1" {
		t.Fatalf("repeat ID: %+v", r)
	}
	if got := h.act.runs["k1"]; got != 1 {
		t.Fatalf("k1 ran %d times", got)
	}

	// Refusals, each with its reason.
	forger, _ := nkeys.CreateUser()
	expired := h.cmd("k3", "touch", nil)
	expired.Issued, expired.Expires = time.Now().Add(-2*time.Minute), time.Now().Add(-time.Minute)
	long := h.cmd("k4", "touch", nil)
	long.Expires = long.Issued.Add(time.Hour)
	other := h.cmd("k5", "touch", nil)
	other.Host = "exec-2"
	cases := []struct {
		reason string
		env    []byte
	}{
		{wire.RejectUntrustedKey, signed(t, forger, h.cmd("k2", "touch", nil))},
		{wire.RejectExpired, signed(t, kp, expired)},
		{rejectLifetime, signed(t, kp, long)},
		{rejectWrongHost, signed(t, kp, other)},
		{rejectNotOffered, signed(t, kp, h.cmd("k6", "rm_rf", nil))},
		{rejectUndeclared, signed(t, kp, h.cmd("k7", "touch", map[string]string{"program": "/bin/sh"}))},
		{wire.RejectMalformed, []byte(`{"payload":"e30=",`)},
	}
	for _, c := range cases {
		r := last(t, h.send(t, c.env))
		if r.State != wire.ReplyRejected || r.Message != c.reason || r.Error == "" {
			t.Errorf("%s: reply %+v", c.reason, r)
		}
	}
	// Fencing epochs: newer accepted, older refused.
	e5 := h.cmd("k8", "touch", nil)
	e5.Service, e5.Epoch = "api", 5
	if r := last(t, h.send(t, signed(t, kp, e5))); r.State != wire.ReplyDone {
		t.Fatalf("epoch 5: %+v", r)
	}
	e4 := h.cmd("k9", "touch", nil)
	e4.Service, e4.Epoch = "api", 4
	if r := last(t, h.send(t, signed(t, kp, e4))); r.State != wire.ReplyRejected || r.Message != rejectStaleEpoch {
		t.Fatalf("epoch 4: %+v", r)
	}
	// Leader epochs, per controller lease: the newest term's command runs,
	// a deposed leader's is refused (and does not raise the service epoch),
	// another lease's line is independent.
	l7 := h.cmd("k12", "touch", nil)
	l7.Lease, l7.LeaderEpoch = "VIGIL_LEASE/leader", 7
	if r := last(t, h.send(t, signed(t, kp, l7))); r.State != wire.ReplyDone {
		t.Fatalf("leader epoch 7: %+v", r)
	}
	l6 := h.cmd("k13", "touch", nil)
	l6.Lease, l6.LeaderEpoch, l6.Service, l6.Epoch = "VIGIL_LEASE/leader", 6, "api", 9
	if r := last(t, h.send(t, signed(t, kp, l6))); r.State != wire.ReplyRejected || r.Message != rejectStaleLeader ||
		!strings.Contains(r.Error, "deposed") {
		t.Fatalf("leader epoch 6: %+v", r)
	}
	if got := h.a.exec.epochs.get("api"); got != 5 {
		t.Fatalf("a refused command raised the service epoch to %d", got)
	}
	shard2 := h.cmd("k14", "touch", nil)
	shard2.Lease, shard2.LeaderEpoch = "VIGIL_LEASE/shard-2", 3
	if r := last(t, h.send(t, signed(t, kp, shard2))); r.State != wire.ReplyDone {
		t.Fatalf("another lease's epoch 3: %+v", r)
	}
	// A failing action answers failed, and is not run again either.
	fail := h.cmd("k10", "touch", map[string]string{"fail": "yes"})
	if r := last(t, h.send(t, signed(t, kp, fail))); r.State != wire.ReplyFailed || !strings.Contains(r.Error, "asked to fail") {
		t.Fatalf("failing: %+v", r)
	}

	st := h.a.ExecutorStats()
	want := map[string]uint64{wire.RejectUntrustedKey: 1, wire.RejectExpired: 1, rejectLifetime: 1, rejectWrongHost: 1,
		rejectNotOffered: base + 1, rejectUndeclared: 1, wire.RejectMalformed: 1, rejectReplay: 1, rejectStaleEpoch: 1,
		rejectStaleLeader: 1}
	for k, v := range want {
		if st.Rejected[k] != v {
			t.Errorf("rejected[%s] = %d, want %d (all %v)", k, st.Rejected[k], v, st.Rejected)
		}
	}
	if st.Ran != 5 || st.Failed != 1 || h.act.n.Load() != 5 {
		t.Errorf("ran %d failed %d action runs %d, want 5 1 5", st.Ran, st.Failed, h.act.n.Load())
	}
	var m strings.Builder
	h.a.WriteMetrics(&m)
	if !strings.Contains(m.String(), `vigil_agent_commands_rejected_total{reason="replay"} 1`) {
		t.Errorf("metrics lack the replay count:\n%s", m.String())
	}

	// The epoch survives a restart of the agent (state_dir).
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	h2 := startExecAgent(t, srv.URL(), h.stateD, kp)
	e4b := h2.cmd("k11", "touch", nil)
	e4b.Service, e4b.Epoch = "api", 4
	if r := last(t, h2.send(t, signed(t, kp, e4b))); r.State != wire.ReplyRejected || r.Message != rejectStaleEpoch {
		t.Fatalf("epoch 4 after restart: %+v", r)
	}
	l6b := h2.cmd("k15", "touch", nil)
	l6b.Lease, l6b.LeaderEpoch = "VIGIL_LEASE/leader", 6
	if r := last(t, h2.send(t, signed(t, kp, l6b))); r.State != wire.ReplyRejected || r.Message != rejectStaleLeader {
		t.Fatalf("leader epoch 6 after restart: %+v", r)
	}
}

func TestExecutorConfigErrors(t *testing.T) {
	cfg := testConfig("h", time.Second)
	cfg.Executor = &ExecutorConfig{TrustedKeys: []string{"not-a-key"}}
	_, err := New(cfg, nil)
	if err == nil || !strings.Contains(err.Error(), `"not-a-key" is not an nkeys public key`) {
		t.Fatalf("bad key: %v", err)
	}
	cfg.Executor = &ExecutorConfig{}
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "at least one trusted") {
		t.Fatalf("no keys: %v", err)
	}
}
