package controller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/vigil-sre/vigil/internal/wire"
	"github.com/vigil-sre/vigil/rules"
)

// hostAction asks the agent on the intent's subject host to run one of
// its host actions (backup, restore, rollback, ...): a wire.Command with
// ID = the intent key, the action named by params.action and every other
// param except retries passed as the command's params, signed with the
// controller's key (actions.signing), sent on vigil.cmd.<host>. It waits
// for the agent's final reply until the rule's action timeout (default
// 1m), which is also the command's lifetime: keep it within the agents'
// executor.nonce_window. done is success; failed, rejected and no reply
// are failures (timeout when nothing final came). Agents answer a repeated
// ID with the outcome they already have, so a resend never runs twice.
//
// Rule file: action: {kind: host, params: {action: backup, policy: data}}
type hostAction struct {
	action  string
	params  map[string]string
	timeout time.Duration
	rt      *actionRuntime
}

// SigningConfig is the controller's command signing key.
type SigningConfig struct {
	// SeedFile holds an nkeys seed (`nk -gen user`, "SU..."); agents trust
	// its public key (executor.trusted_keys). Without it the controller
	// makes an ephemeral key at each start and logs its public key.
	SeedFile string `yaml:"seed_file"`
}

// actionRuntime is what actions need beyond their rule-file spec.
type actionRuntime struct {
	nc     *nats.Conn
	kp     nkeys.KeyPair
	pubKey string
	err    error  // why there is no signing key
	lease  *lease // the leader lease whose epoch fences host commands (nil: none)
}

func newActionRuntime(cfg ActionsConfig, pub *publisher, log *slog.Logger) *actionRuntime {
	rt := &actionRuntime{}
	if pub != nil && pub.js != nil {
		rt.nc = pub.js.Conn()
	}
	rt.kp, rt.err = loadSigningKey(cfg.Signing.SeedFile)
	if rt.err != nil {
		log.Error("host commands disabled: no signing key", "err", rt.err)
		return rt
	}
	rt.pubKey, _ = rt.kp.PublicKey()
	if cfg.Signing.SeedFile == "" {
		log.Info("host commands signed with an ephemeral key (set actions.signing.seed_file to keep one)", "public_key", rt.pubKey)
	} else {
		log.Info("host commands signing key", "public_key", rt.pubKey, "seed_file", cfg.Signing.SeedFile)
	}
	return rt
}

// loadSigningKey reads a seed file, or makes an ephemeral key.
func loadSigningKey(file string) (nkeys.KeyPair, error) {
	if file == "" {
		return nkeys.CreateUser()
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("actions.signing.seed_file: %w", err)
	}
	kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(b))))
	if err != nil {
		return nil, fmt.Errorf("actions.signing.seed_file %s: not an nkeys seed: %w", file, err)
	}
	return kp, nil
}

func validateHostParams(p map[string]string) error {
	if p["action"] == "" {
		return errors.New("host action needs params.action (the agent's host action name)")
	}
	return nil
}

func newHostAction(spec *rules.Action, cfg ActionsConfig) (Action, error) {
	if err := validateHostParams(spec.Params); err != nil {
		return nil, fmt.Errorf("action %q: %w", spec.Name, err)
	}
	if cfg.rt == nil || cfg.rt.nc == nil {
		return nil, fmt.Errorf("action %q: host actions need the controller's NATS connection", spec.Name)
	}
	if cfg.rt.err != nil {
		return nil, fmt.Errorf("action %q: %w", spec.Name, cfg.rt.err)
	}
	params := map[string]string{}
	for k, v := range spec.Params {
		if k != "action" && k != "retries" {
			params[k] = v
		}
	}
	t := spec.Timeout
	if t <= 0 {
		t = time.Minute
	}
	return &hostAction{action: spec.Params["action"], params: params, timeout: t, rt: cfg.rt}, nil
}

func (a *hostAction) Kind() string { return "host" }

func (a *hostAction) Execute(ctx context.Context, in rules.Intent) (Outcome, error) {
	now := time.Now()
	cmd := &wire.Command{ID: in.Key, Host: in.Subject, Action: a.action, Params: a.params,
		Nonce: newNonce(), Issued: now, Expires: now.Add(a.timeout)}
	cmd.Lease = a.rt.lease.fenceName()
	if cmd.Lease != "" {
		cmd.LeaderEpoch = in.Epoch
	}
	r, err := sendCommand(ctx, a.rt.nc, a.rt.kp, cmd)
	o := Outcome{Status: OutcomeSuccess, Output: replyOutput(r)}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		o.Status = OutcomeTimeout
		return o, fmt.Errorf("host %s action %s: no final reply within %s", in.Subject, a.action, a.timeout)
	case err != nil:
		o.Status = OutcomeFailure
		return o, err
	case r.State == wire.ReplyDone:
		o.Values = rpoOf(in, r.Result)
		return o, nil
	case r.State == wire.ReplyRejected:
		o.Status = OutcomeRejected
	default:
		o.Status = OutcomeFailure
	}
	return o, fmt.Errorf("host %s action %s %s: %s", in.Subject, a.action, r.State, r.Error)
}

// sendCommand signs cmd, sends it to its host's agent and returns the
// final reply (done, failed or rejected), waiting until cmd.Expires or
// ctx ends (context.DeadlineExceeded). An "accepted" answer to a repeated
// ID whose command is still running is followed on the command's
// progress subject.
func sendCommand(ctx context.Context, nc *nats.Conn, kp nkeys.KeyPair, cmd *wire.Command) (wire.Reply, error) {
	env, err := wire.Sign(cmd, kp)
	if err != nil {
		return wire.Reply{}, err
	}
	ctx, cancel := context.WithDeadline(ctx, cmd.Expires)
	defer cancel()
	replies := make(chan *nats.Msg, 64)
	inbox := nc.NewRespInbox()
	sub, err := nc.ChanSubscribe(inbox, replies)
	if err != nil {
		return wire.Reply{}, fmt.Errorf("command %s: subscribe: %w", cmd.ID, err)
	}
	defer sub.Unsubscribe()
	prog, err := nc.ChanSubscribe(wire.CommandProgressSubject(cmd.Host, cmd.ID), replies)
	if err != nil {
		return wire.Reply{}, fmt.Errorf("command %s: subscribe: %w", cmd.ID, err)
	}
	defer prog.Unsubscribe()
	if err := nc.PublishRequest(wire.CommandSubject(cmd.Host), inbox, env); err != nil {
		return wire.Reply{}, fmt.Errorf("command %s: publish: %w", cmd.ID, err)
	}
	for {
		select {
		case <-ctx.Done():
			return wire.Reply{}, ctx.Err()
		case m := <-replies:
			var r wire.Reply
			if json.Unmarshal(m.Data, &r) != nil || r.ID != cmd.ID && r.State != wire.ReplyRejected {
				continue
			}
			switch r.State {
			case wire.ReplyDone, wire.ReplyFailed, wire.ReplyRejected:
				return r, nil
			}
		}
	}
}

func replyOutput(r wire.Reply) string {
	if r.State == "" {
		return ""
	}
	b, _ := json.Marshal(struct {
		State   string            `json:"state"`
		Message string            `json:"message,omitempty"`
		Result  map[string]string `json:"result,omitempty"`
		Error   string            `json:"error,omitempty"`
	}{r.State, r.Message, r.Result, r.Error})
	return string(b)
}

func newNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func init() {
	registerAction("host", newHostAction)
	rules.RegisterActionKind("host", func(p map[string]string) error {
		if err := validateHostParams(p); err != nil {
			return err
		}
		return validateRetriesParam(p)
	})
}

var _ Action = (*hostAction)(nil)

// rpoOf measures the recovery point of a backup or restore from the
// snapshot time the agent reports: a backup made because a failure was
// predicted protects the data up to its snapshot, so the data at risk is
// what changes between the snapshot and the predicted failure (or now, if
// no failure was predicted); a restore loses what changed between its
// snapshot and the firing that asked for it.
func rpoOf(in rules.Intent, result map[string]string) map[string]float64 {
	st, err := time.Parse(time.RFC3339Nano, result["snapshot_time"])
	if err != nil {
		return nil
	}
	ref := in.At
	if !in.PredictedFailure.IsZero() && in.PredictedFailure.After(st) {
		ref = in.PredictedFailure
	}
	rpo := ref.Sub(st).Seconds()
	if rpo < 0 {
		rpo = 0
	}
	return map[string]float64{"rpo_seconds": rpo}
}
