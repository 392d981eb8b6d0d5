package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/nats-io/nkeys"
)

// Envelope carries one signed Command on vigil.cmd.<host>: Payload is the
// Command's JSON exactly as signed, Key the signer's nkeys public key
// (ed25519, "U..." user or "A..." account key), Sig the ed25519 signature
// of Payload. The agent acts only on an envelope signed by a key its
// config trusts, unexpired, never seen before (nonce) and within the
// size limit; Open checks all but the nonce, which needs the agent's
// memory.
type Envelope struct {
	Payload []byte `json:"payload"`
	Key     string `json:"key"`
	Sig     []byte `json:"sig"`
}

const (
	// MaxEnvelopeBytes bounds an envelope; larger ones are refused unread.
	MaxEnvelopeBytes = 64 << 10
	// ClockSkew is tolerated between the controller's and the agent's
	// clocks when checking Issued and Expires.
	ClockSkew = 30 * time.Second
	// CommandProgressPrefix is followed by <host>.<id token>: progress
	// replies of one command are also published there.
	CommandProgressPrefix = "vigil.cmd.progress."
)

// Reasons an envelope is refused (OpenError.Reason), also the agent's
// rejection counter labels.
const (
	RejectTooLarge     = "too_large"
	RejectMalformed    = "malformed"
	RejectUntrustedKey = "untrusted_key"
	RejectBadSignature = "bad_signature"
	RejectInvalid      = "invalid_command"
	RejectExpired      = "expired"
	RejectNotYetValid  = "not_yet_valid"
)

// OpenError says why an envelope was refused; Reason is one of the
// Reject* constants.
type OpenError struct {
	Reason string
	Err    error
}

func (e *OpenError) Error() string { return "command envelope " + e.Reason + ": " + e.Err.Error() }
func (e *OpenError) Unwrap() error { return e.Err }

// RejectReason returns the Reason of an *OpenError in err's chain, or "".
func RejectReason(err error) string {
	var oe *OpenError
	if errors.As(err, &oe) {
		return oe.Reason
	}
	return ""
}

func openErr(reason, format string, args ...any) error {
	return &OpenError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// CommandProgressSubject is where progress of command id on host is
// published besides the request's reply subject.
func CommandProgressSubject(host, id string) string {
	return CommandProgressPrefix + Token(host) + "." + Token(id)
}

// Check reports the first missing or inconsistent field of c.
func (c *Command) Check() error {
	switch {
	case c.ID == "":
		return errors.New("id is empty")
	case c.Host == "":
		return errors.New("host is empty")
	case c.Action == "":
		return errors.New("action is empty")
	case c.Nonce == "":
		return errors.New("nonce is empty")
	case c.Issued.IsZero():
		return errors.New("issued is not set")
	case !c.Expires.After(c.Issued):
		return fmt.Errorf("expires %s is not after issued %s", c.Expires.Format(time.RFC3339Nano), c.Issued.Format(time.RFC3339Nano))
	}
	return nil
}

// Sign returns the envelope of cmd signed with kp (a key pair holding a
// seed), as JSON ready to publish.
func Sign(cmd *Command, kp nkeys.KeyPair) ([]byte, error) {
	if err := cmd.Check(); err != nil {
		return nil, fmt.Errorf("sign command: %w", err)
	}
	payload, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("sign command %s: %w", cmd.ID, err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("sign command %s: public key: %w", cmd.ID, err)
	}
	sig, err := kp.Sign(payload)
	if err != nil {
		return nil, fmt.Errorf("sign command %s: %w", cmd.ID, err)
	}
	out, err := json.Marshal(Envelope{Payload: payload, Key: pub, Sig: sig})
	if err != nil {
		return nil, err
	}
	if len(out) > MaxEnvelopeBytes {
		return nil, fmt.Errorf("sign command %s: envelope is %d bytes, more than %d", cmd.ID, len(out), MaxEnvelopeBytes)
	}
	return out, nil
}

// Open verifies an envelope and returns its command: size, strict JSON
// (unknown fields and trailing data refused), signer among trusted public
// keys, signature, required fields, Issued not more than ClockSkew in the
// future and Expires not more than ClockSkew in the past at now. Errors
// are *OpenError.
func Open(data []byte, trusted []string, now time.Time) (*Command, error) {
	if len(data) > MaxEnvelopeBytes {
		return nil, openErr(RejectTooLarge, "%d bytes, more than %d", len(data), MaxEnvelopeBytes)
	}
	var env Envelope
	if err := strictJSON(data, &env); err != nil {
		return nil, openErr(RejectMalformed, "envelope: %w", err)
	}
	if env.Key == "" || len(env.Sig) == 0 || len(env.Payload) == 0 {
		return nil, openErr(RejectMalformed, "envelope needs payload, key and sig")
	}
	if !slices.Contains(trusted, env.Key) {
		return nil, openErr(RejectUntrustedKey, "signer %s is not a trusted key", env.Key)
	}
	kp, err := nkeys.FromPublicKey(env.Key)
	if err != nil {
		return nil, openErr(RejectUntrustedKey, "signer %s: %w", env.Key, err)
	}
	if err := kp.Verify(env.Payload, env.Sig); err != nil {
		return nil, openErr(RejectBadSignature, "signature by %s does not verify: %w", env.Key, err)
	}
	cmd := new(Command)
	if err := strictJSON(env.Payload, cmd); err != nil {
		return nil, openErr(RejectMalformed, "command: %w", err)
	}
	if err := cmd.Check(); err != nil {
		return nil, openErr(RejectInvalid, "command %q: %w", cmd.ID, err)
	}
	if now.After(cmd.Expires.Add(ClockSkew)) {
		return nil, openErr(RejectExpired, "command %s expired at %s (now %s)", cmd.ID,
			cmd.Expires.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if cmd.Issued.After(now.Add(ClockSkew)) {
		return nil, openErr(RejectNotYetValid, "command %s issued at %s, in the future (now %s)", cmd.ID,
			cmd.Issued.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return cmd, nil
}

// strictJSON decodes exactly one JSON value with no unknown fields.
func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}
