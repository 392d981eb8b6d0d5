package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/vigil-sre/vigil/internal/wire"
)

// ExecutorConfig is the agent's `executor:` section: the command server
// that runs host actions (HostActions) when the controller asks for them
// with a signed envelope on vigil.cmd.<host>. Without the section the
// agent answers no command at all.
type ExecutorConfig struct {
	// TrustedKeys are the controllers' nkeys public keys (the controller
	// logs its key at start); an envelope signed by any other key is
	// refused. At least one is required.
	TrustedKeys []string `yaml:"trusted_keys"`
	// NonceWindow: commands may live (expires - issued) at most this long,
	// and their nonces are remembered as long, so a replay is always
	// caught. Default 10m.
	NonceWindow time.Duration `yaml:"nonce_window"`
	// MaxOutcomes: finished command outcomes remembered (oldest forgotten
	// first) to answer a repeated command ID without running it again.
	// Default 1000.
	MaxOutcomes int `yaml:"max_outcomes"`
}

func (e *ExecutorConfig) withDefaults() {
	if e.NonceWindow == 0 {
		e.NonceWindow = 10 * time.Minute
	}
	if e.MaxOutcomes == 0 {
		e.MaxOutcomes = 1000
	}
}

func (e *ExecutorConfig) validate(bad badFunc) {
	if len(e.TrustedKeys) == 0 {
		bad("executor.trusted_keys", "executor needs at least one trusted controller key")
	}
	for i, k := range e.TrustedKeys {
		if !validPublicKey(k) {
			bad(fmt.Sprintf("executor.trusted_keys[%d]", i), "%q is not an nkeys public key", k)
		}
	}
	if e.NonceWindow < time.Second {
		bad("executor.nonce_window", "executor.nonce_window %s is too short (at least 1s)", e.NonceWindow)
	}
	if e.MaxOutcomes < 1 {
		bad("executor.max_outcomes", "executor.max_outcomes must be at least 1")
	}
}

// Rejection reasons the executor adds to wire's envelope reasons.
const (
	rejectWrongHost   = "wrong_host"
	rejectLifetime    = "lifetime_too_long"
	rejectReplay      = "replay"
	rejectNotOffered  = "action_not_offered"
	rejectUndeclared  = "undeclared_param"
	rejectStaleEpoch  = "stale_epoch"
	rejectStaleLeader = "stale_leader"
	rejectEpochStore  = "epoch_store"
	rejectNotDecoded  = "unknown"
	outcomeRunning    = "running"
	executorEpochFile = "executor-epochs.json"
)

// executor is the agent's command server. Commands are checked in
// order: envelope (wire.Open: size, JSON, signer, signature, expiry),
// host, lifetime within the nonce window, nonce never seen (replay),
// command ID (a repeat gets the remembered outcome, nothing runs), action
// offered, parameters declared, fencing epoch not older than the newest
// seen for the service, leader epoch not older than the newest seen for
// the sending controller's lease (both persisted in state_dir). A refused command gets a
// "rejected" reply naming why and is counted by reason.
type executor struct {
	cfg     ExecutorConfig
	host    string
	actions *HostActions
	log     *slog.Logger
	now     func() time.Time
	epochs  *epochStore

	mu                    sync.Mutex
	nonces                map[string]time.Time  // nonce -> forget after
	outcomes              map[string]wire.Reply // command ID -> final reply, or running
	order                 []string              // IDs with a final outcome, oldest first
	rejected              map[string]uint64
	received, ran, failed uint64

	wg sync.WaitGroup
}

func newExecutor(cfg ExecutorConfig, host, stateDir string, actions *HostActions, log *slog.Logger) (*executor, error) {
	cfg.withDefaults()
	epochs, err := openEpochStore(stateDir)
	if err != nil {
		return nil, err
	}
	return &executor{
		cfg: cfg, host: host, actions: actions, log: log, now: time.Now, epochs: epochs,
		nonces: map[string]time.Time{}, outcomes: map[string]wire.Reply{}, rejected: map[string]uint64{},
	}, nil
}

// Run answers commands on nc until ctx ends, then waits for running
// actions (their contexts end with ctx).
func (e *executor) Run(ctx context.Context, nc *nats.Conn) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub, err := nc.Subscribe(wire.CommandSubject(e.host), func(m *nats.Msg) { e.handle(runCtx, nc, m) })
	if err != nil {
		return fmt.Errorf("executor: subscribe %s: %w", wire.CommandSubject(e.host), err)
	}
	e.log.Info("executor listening", "subject", sub.Subject, "actions", e.actions.Names(), "trusted_keys", len(e.cfg.TrustedKeys))
	<-ctx.Done()
	_ = sub.Unsubscribe()
	cancel()
	e.wg.Wait()
	return nil
}

// handle checks one command and starts it, replying on m.Reply.
func (e *executor) handle(ctx context.Context, nc *nats.Conn, m *nats.Msg) {
	reply := func(r wire.Reply) {
		r.Host, r.Time = e.host, e.now()
		if m.Reply == "" {
			return
		}
		if b, err := json.Marshal(r); err == nil {
			_ = nc.Publish(m.Reply, b)
		}
	}
	cmd, final, reason, err := e.admit(m.Data)
	switch {
	case err != nil:
		id := ""
		if cmd != nil {
			id = cmd.ID
		}
		e.log.Warn("command rejected", "id", id, "reason", reason, "err", err)
		reply(wire.Reply{ID: id, State: wire.ReplyRejected, Error: err.Error(), Message: reason})
		return
	case final != nil:
		reply(*final)
		return
	}
	reply(wire.Reply{ID: cmd.ID, State: wire.ReplyAccepted})
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		both := func(p wire.Reply) { // a repeat of a running ID follows the progress subject
			reply(p)
			if b, err := json.Marshal(p); err == nil {
				_ = nc.Publish(wire.CommandProgressSubject(e.host, cmd.ID), b)
			}
		}
		both(e.execute(ctx, cmd, both))
	}()
}

// admit runs every check; it returns the command to run, or the
// remembered outcome of its ID, or the rejection reason and error.
func (e *executor) admit(data []byte) (*wire.Command, *wire.Reply, string, error) {
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.received++
	reject := func(cmd *wire.Command, reason string, err error) (*wire.Command, *wire.Reply, string, error) {
		e.rejected[reason]++
		return cmd, nil, reason, err
	}
	cmd, err := wire.Open(data, e.cfg.TrustedKeys, now)
	if err != nil {
		reason := wire.RejectReason(err)
		if reason == "" {
			reason = rejectNotDecoded
		}
		return reject(nil, reason, err)
	}
	if cmd.Host != e.host && wire.Token(cmd.Host) != wire.Token(e.host) {
		return reject(cmd, rejectWrongHost, fmt.Errorf("command %s is for host %q, this is %q", cmd.ID, cmd.Host, e.host))
	}
	if life := cmd.Expires.Sub(cmd.Issued); life > e.cfg.NonceWindow {
		return reject(cmd, rejectLifetime, fmt.Errorf("command %s lives %s, longer than executor.nonce_window %s", cmd.ID, life, e.cfg.NonceWindow))
	}
	e.forgetNonces(now)
	if _, seen := e.nonces[cmd.Nonce]; seen {
		return reject(cmd, rejectReplay, fmt.Errorf("command %s: nonce %q already used (replay)", cmd.ID, cmd.Nonce))
	}
	e.nonces[cmd.Nonce] = cmd.Expires.Add(wire.ClockSkew)
	if r, ok := e.outcomes[cmd.ID]; ok {
		return cmd, &r, "", nil
	}
	act, ok := e.actions.Get(cmd.Action)
	if !ok {
		return reject(cmd, rejectNotOffered, fmt.Errorf("command %s: action %q is not offered by this agent (offered: %v)", cmd.ID, cmd.Action, e.actions.Names()))
	}
	declared := act.Params()
	for _, k := range sortedKeys(cmd.Params) {
		if !slices.Contains(declared, k) {
			return reject(cmd, rejectUndeclared, fmt.Errorf("command %s: action %s has no parameter %q (declared: %v)", cmd.ID, cmd.Action, k, declared))
		}
	}
	raise := map[string]uint64{}
	if cmd.Service != "" {
		if newest := e.epochs.get(cmd.Service); cmd.Epoch < newest {
			return reject(cmd, rejectStaleEpoch, fmt.Errorf("command %s: epoch %d of service %s is older than the newest seen, %d", cmd.ID, cmd.Epoch, cmd.Service, newest))
		}
		raise[cmd.Service] = cmd.Epoch
	}
	if cmd.Lease != "" {
		if newest := e.epochs.get(leaseEpochKey(cmd.Lease)); cmd.LeaderEpoch < newest {
			return reject(cmd, rejectStaleLeader, fmt.Errorf("command %s: leader epoch %d of lease %s is older than the newest seen, %d (sent by a deposed controller)", cmd.ID, cmd.LeaderEpoch, cmd.Lease, newest))
		}
		raise[leaseEpochKey(cmd.Lease)] = cmd.LeaderEpoch
	}
	if err := e.epochs.raise(raise); err != nil {
		return reject(cmd, rejectEpochStore, fmt.Errorf("command %s: %w", cmd.ID, err))
	}
	e.outcomes[cmd.ID] = wire.Reply{ID: cmd.ID, State: wire.ReplyAccepted, Message: "already " + outcomeRunning}
	return cmd, nil, "", nil
}

// forgetNonces drops nonces whose command can no longer be opened.
func (e *executor) forgetNonces(now time.Time) {
	for n, until := range e.nonces {
		if now.After(until) {
			delete(e.nonces, n)
		}
	}
}

// execute runs cmd under its expiry and remembers the outcome.
func (e *executor) execute(ctx context.Context, cmd *wire.Command, progress func(wire.Reply)) wire.Reply {
	ctx, cancel := context.WithDeadline(ctx, cmd.Expires)
	defer cancel()
	act, _ := e.actions.Get(cmd.Action)
	start := e.now()
	e.log.Info("command started", "id", cmd.ID, "action", cmd.Action)
	res, err := runAction(ctx, act, cmd, func(frac float64, msg string) {
		progress(wire.Reply{ID: cmd.ID, State: wire.ReplyProgress, Progress: min(max(frac, 0), 1), Message: msg, Host: e.host, Time: e.now()})
	})
	r := wire.Reply{ID: cmd.ID, State: wire.ReplyDone, Result: res, Host: e.host, Time: e.now()}
	if err != nil {
		r.State, r.Error = wire.ReplyFailed, err.Error()
		e.log.Warn("command failed", "id", cmd.ID, "action", cmd.Action, "duration", r.Time.Sub(start), "err", err)
	} else {
		e.log.Info("command done", "id", cmd.ID, "action", cmd.Action, "duration", r.Time.Sub(start))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ran++
	if err != nil {
		e.failed++
	}
	e.outcomes[cmd.ID] = r
	e.order = append(e.order, cmd.ID)
	for len(e.order) > e.cfg.MaxOutcomes {
		delete(e.outcomes, e.order[0])
		e.order = e.order[1:]
	}
	return r
}

// runAction runs a with panic recovery.
func runAction(ctx context.Context, a HostAction, cmd *wire.Command, progress func(float64, string)) (res map[string]string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("action %s panicked: %v", a.Name(), p)
		}
	}()
	res, err = a.Run(ctx, cmd, progress)
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("action %s: %w", a.Name(), ctx.Err())
	}
	return res, err
}

// ExecutorStats are the command server's counters.
type ExecutorStats struct {
	Received, Ran, Failed uint64
	// Rejected by reason (wire.Reject* and the executor's own reasons).
	Rejected map[string]uint64
}

func (e *executor) stats() ExecutorStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := ExecutorStats{Received: e.received, Ran: e.ran, Failed: e.failed, Rejected: make(map[string]uint64, len(e.rejected))}
	for k, v := range e.rejected {
		s.Rejected[k] = v
	}
	return s
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// HostActions is the set of host actions the agent offers to signed
// commands; add to it before Run.
func (a *Agent) HostActions() *HostActions { return &a.actions }

// ExecutorStats returns the command server's counters (zero without an
// executor section).
func (a *Agent) ExecutorStats() ExecutorStats {
	if a.exec == nil {
		return ExecutorStats{}
	}
	return a.exec.stats()
}

func (a *Agent) addExecutor() error {
	if a.cfg.Executor == nil {
		return nil
	}
	e, err := newExecutor(*a.cfg.Executor, a.host, a.cfg.StateDir, &a.actions, a.log.With("component", "executor"))
	if err != nil {
		return err
	}
	a.exec = e
	return nil
}

// startExecutor runs the command server on the agent's connection; the
// returned function stops it and waits for running actions.
func (a *Agent) startExecutor(ctx context.Context) (stop func()) {
	if a.exec == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.exec.Run(ctx, a.pub.nc); err != nil {
			a.log.Error("executor stopped", "err", err)
		}
	}()
	return func() { cancel(); <-done }
}
