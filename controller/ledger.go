package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/vigil-sre/vigil/internal/config"
	"github.com/vigil-sre/vigil/rules"
)

// Safety is the part of the actions config that keeps automation safe
// across restarts and storms: the ledger, retries, rate limits and the
// key host commands are signed with.
type Safety struct {
	// Ledger is the JetStream key-value bucket recording every intent
	// key's state (pending, awaiting_approval, running, retrying,
	// succeeded, failed, skipped) with its transitions' times. An intent
	// key present in the ledger never runs again, also after a controller
	// restart. Default "VIGIL_ACTIONS"; "off" disables it.
	Ledger string `yaml:"ledger"`
	// LedgerTTL: how long entries are kept. Default 168h (7 days); intent
	// keys embed the firing's start, so an old key does not come back.
	LedgerTTL time.Duration `yaml:"ledger_ttl"`
	// LedgerWait: how long an automatic action waits while the ledger
	// cannot be reached. Such an action does not run unrecorded (after a
	// restart it could run a second time): it waits, the claim retried
	// with doubling backoff (1s to 30s), and is dropped with outcome
	// ledger_unavailable when the ledger stays unreachable this long.
	// Dry runs and manual-mode actions do not wait. Default 5m.
	LedgerWait time.Duration `yaml:"ledger_wait"`
	// Retries of a failed action (default 0; a rule's action may ask for
	// more with params: {retries: N}, at most 10). Attempt n > 1 runs
	// with the intent key "<key>#retry<n-1>", so idempotent receivers
	// (agents) treat it as a new attempt.
	Retries int `yaml:"retries"`
	// RetryBackoff before the first retry, doubling after each, at most
	// 10m. Default 10s.
	RetryBackoff time.Duration `yaml:"retry_backoff"`
	// MaxPerMinute: actions started in any minute, controller-wide; more
	// are skipped with outcome rate_limited. 0: no limit.
	MaxPerMinute int `yaml:"max_per_minute"`
	// RuleMaxPerMinute: the same limit per rule (all subjects). 0: none.
	RuleMaxPerMinute int `yaml:"rule_max_per_minute"`
	// Signing: the key host commands are signed with (action_host.go).
	Signing SigningConfig `yaml:"signing"`
}

// Outcome of an action skipped by the rate limit.
const OutcomeRateLimited = "rate_limited"

// DefaultLedgerBucket is the default of actions.ledger.
const DefaultLedgerBucket = "VIGIL_ACTIONS"

const maxRetries = 10

// validate sets the defaults and checks the values.
func (s *Safety) validate(doc *config.Doc) config.Errors {
	var errs config.Errors
	if s.Ledger == "" {
		s.Ledger = DefaultLedgerBucket
	}
	if s.LedgerTTL == 0 {
		s.LedgerTTL = 7 * 24 * time.Hour
	}
	if s.RetryBackoff == 0 {
		s.RetryBackoff = 10 * time.Second
	}
	if s.LedgerWait == 0 {
		s.LedgerWait = 5 * time.Minute
	}
	if s.Retries < 0 || s.Retries > maxRetries {
		errs = append(errs, doc.Errorf("actions.retries", "retries %d is outside [0, %d]", s.Retries, maxRetries))
	}
	if s.RetryBackoff < 0 {
		errs = append(errs, doc.Errorf("actions.retry_backoff", "retry_backoff must not be negative"))
	}
	if s.MaxPerMinute < 0 || s.RuleMaxPerMinute < 0 {
		errs = append(errs, doc.Errorf("actions", "max_per_minute and rule_max_per_minute must not be negative"))
	}
	if s.LedgerTTL < 0 {
		errs = append(errs, doc.Errorf("actions.ledger_ttl", "ledger_ttl must not be negative"))
	}
	if s.LedgerWait < 0 {
		errs = append(errs, doc.Errorf("actions.ledger_wait", "ledger_wait must not be negative"))
	}
	return errs
}

func (s Safety) bucket() string {
	if s.Ledger == "" {
		return DefaultLedgerBucket
	}
	return s.Ledger
}

func (s Safety) ledgerWait() time.Duration {
	if s.LedgerWait <= 0 {
		return 5 * time.Minute
	}
	return s.LedgerWait
}

func (s Safety) retryBackoff(attempt int) time.Duration {
	b := s.RetryBackoff
	if b <= 0 {
		b = 10 * time.Second
	}
	for range attempt - 1 {
		if b >= 10*time.Minute {
			break
		}
		b *= 2
	}
	return min(b, 10*time.Minute)
}

// LedgerEntry is one intent key's record in the ledger.
type LedgerEntry struct {
	Key      string `json:"key"`
	State    string `json:"state"`
	Rule     string `json:"rule"`
	Group    string `json:"group"`
	Severity string `json:"severity,omitempty"`
	Subject  string `json:"subject"`
	Action   string `json:"action,omitempty"`
	Kind     string `json:"kind,omitempty"` // of the action
	Attempts int    `json:"attempts,omitempty"`
	Error    string `json:"error,omitempty"`
	// Epoch: the leader lease term (fencing token) of the controller that
	// wrote the entry; a controller at an older epoch does not overwrite it.
	// An abandoned entry keeps the epoch of the term that left it (its
	// late outcome may still be recorded) and names the term that
	// abandoned it in AbandonedBy (ledger_abandon.go).
	Epoch       uint64 `json:"epoch,omitempty"`
	AbandonedBy uint64 `json:"abandoned_by,omitempty"`
	// Lease names the leader lease ("<bucket>/<key>") Epoch is a term of;
	// controllers of other shards sharing the ledger bucket leave the
	// entry alone (ledger_abandon.go). Empty: written without a lease, or
	// by a version that did not record it (such entries are treated as
	// any controller's, as before).
	Lease string `json:"lease,omitempty"`
	// Approval: of a manual-mode action, the request and the operator's
	// decision once given (ledger_approval.go).
	Approval *LedgerApproval `json:"approval,omitempty"`
	Updated  time.Time       `json:"updated"`
	History  []LedgerStep    `json:"history"`
}

// LedgerStep is one state change of an entry.
type LedgerStep struct {
	State string    `json:"state"`
	At    time.Time `json:"at"`
}

// ledger is the action ledger in a JetStream KV bucket. Keys are the
// SHA-256 of the intent key (intent keys hold characters KV keys may
// not); the value holds the intent key itself.
type ledger struct {
	kv    jetstream.KeyValue
	log   *slog.Logger
	lease string // the lease this controller's terms are of, recorded in the entries it writes ("": none)
}

func openLedger(ctx context.Context, js jetstream.JetStream, s Safety, lease string, log *slog.Logger) (*ledger, error) {
	ttl := s.LedgerTTL
	if ttl == 0 {
		ttl = 7 * 24 * time.Hour
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: s.bucket(), Description: "vigil action ledger", TTL: ttl, History: 1, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("action ledger %s: %w", s.bucket(), err)
	}
	return &ledger{kv: kv, log: log, lease: lease}, nil
}

func ledgerKey(intentKey string) string {
	h := sha256.Sum256([]byte(intentKey))
	return "k_" + hex.EncodeToString(h[:])
}

// claim records in as pending unless its key is in the ledger already;
// then it returns the recorded state and false. When the ledger cannot be
// reached the error is returned (with true); the dispatcher then holds an
// automatic action until a claim succeeds (ledger_wait.go).
func (l *ledger) claim(ctx context.Context, in rules.Intent, now time.Time) (string, bool, error) {
	e := l.newEntry(in, "pending", now)
	b, _ := json.Marshal(e)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := l.kv.Create(ctx, ledgerKey(in.Key), b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		old, gerr := l.get(ctx, in.Key)
		if gerr != nil || old == nil {
			return "recorded", false, nil
		}
		return old.State, false, nil
	}
	if err != nil {
		return "", true, fmt.Errorf("action ledger: claim %s: %w", in.Key, err)
	}
	if in.Rule != nil {
		last, _ := json.Marshal(ledgerLast{Key: in.Key, At: now, Epoch: in.Epoch})
		if _, err := l.kv.Put(ctx, lastKey(in), last); err != nil {
			l.log.Warn("action ledger: rule record not written", "key", in.Key, "err", err)
		}
	}
	return "pending", true, nil
}

// ledgerLast records, per rule and subject, the last intent claimed: a
// new leader reads it to tell whether its predecessor dispatched the
// episode it holds an intent of (intent keys embed each controller's own
// firing time, so they differ between controllers).
type ledgerLast struct {
	Key   string    `json:"key"`
	At    time.Time `json:"at"`
	Epoch uint64    `json:"epoch,omitempty"`
	State string    `json:"-"` // of Key's entry, filled by lastOf
}

// handoverSkew: an intent claimed by the previous leader at most this
// long before the held intent's episode began (as this controller saw it)
// belongs to the same episode: the two controllers evaluate the same data
// at slightly different times.
const handoverSkew = 2 * time.Second

func lastKey(in rules.Intent) string {
	h := sha256.Sum256([]byte(in.Rule.Group + "/" + in.Rule.Name + "/" + in.Subject))
	return "r_" + hex.EncodeToString(h[:])
}

// lastOf returns the last intent claimed for in's rule and subject, nil
// when there is none.
func (l *ledger) lastOf(ctx context.Context, in rules.Intent) (*ledgerLast, error) {
	if in.Rule == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	kve, err := l.kv.Get(ctx, lastKey(in))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r ledgerLast
	if err := json.Unmarshal(kve.Value(), &r); err != nil {
		return nil, fmt.Errorf("action ledger rule record: %w", err)
	}
	if e, err := l.get(ctx, r.Key); err == nil && e != nil {
		r.State = e.State
	}
	return &r, nil
}

// set moves in's entry to state: a compare-and-swap on the entry's
// revision, refused when a controller at a newer epoch wrote the entry.
func (l *ledger) set(in rules.Intent, state string, attempts int, errText string, now time.Time) {
	if err := l.setErr(in, state, attempts, errText, now); err != nil {
		l.log.Warn("action ledger: write failed", "key", in.Key, "state", state, "epoch", in.Epoch, "err", err)
	}
}

// setErr is set returning why the entry was not written; ErrNotLeader
// when a controller at a newer epoch wrote it.
func (l *ledger) setErr(in rules.Intent, state string, attempts int, errText string, now time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := l.change(ctx, in.Key, func(e *LedgerEntry) (*LedgerEntry, error) {
		e, err := l.advance(e, in, state, now)
		if err != nil {
			return nil, err
		}
		e.Error = errText
		if attempts > 0 {
			e.Attempts = attempts
		}
		return e, nil
	})
	return err
}

// advance moves e, in's entry (nil: none yet, a new one is made), to
// state at now under in's epoch; ErrNotLeader when a newer epoch wrote it.
func (l *ledger) advance(e *LedgerEntry, in rules.Intent, state string, now time.Time) (*LedgerEntry, error) {
	if e == nil {
		return l.newEntry(in, state, now), nil
	}
	if e.Epoch > in.Epoch {
		return nil, fmt.Errorf("%w: entry written at epoch %d, this write is of epoch %d", ErrNotLeader, e.Epoch, in.Epoch)
	}
	e.State, e.Updated, e.Epoch = state, now, in.Epoch
	e.History = append(e.History, LedgerStep{State: state, At: now})
	l.stamp(e)
	return e, nil
}

// change applies fn to intentKey's entry (nil when there is none) and
// writes what fn returns in a compare-and-swap on the revision read; when
// another writer came first it reads and applies fn again (at most four
// times). An error of fn writes nothing and is returned as is.
func (l *ledger) change(ctx context.Context, intentKey string, fn func(*LedgerEntry) (*LedgerEntry, error)) (*LedgerEntry, error) {
	for try := 0; ; try++ {
		e, rev, err := l.getRev(ctx, intentKey)
		if err != nil {
			return nil, err
		}
		if e, err = fn(e); err != nil {
			return nil, err
		}
		b, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("action ledger entry %s: %w", intentKey, err)
		}
		if rev == 0 {
			_, err = l.kv.Create(ctx, ledgerKey(intentKey), b)
		} else {
			_, err = l.kv.Update(ctx, ledgerKey(intentKey), b, rev)
		}
		if err == nil {
			return e, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) || try >= 3 {
			return nil, err
		}
	}
}

// get returns the entry of intentKey, nil when there is none.
func (l *ledger) get(ctx context.Context, intentKey string) (*LedgerEntry, error) {
	e, _, err := l.getRev(ctx, intentKey)
	return e, err
}

// getRev returns the entry of intentKey and its revision, nil when there
// is none.
func (l *ledger) getRev(ctx context.Context, intentKey string) (*LedgerEntry, uint64, error) {
	kve, err := l.kv.Get(ctx, ledgerKey(intentKey))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var e LedgerEntry
	if err := json.Unmarshal(kve.Value(), &e); err != nil {
		return nil, 0, fmt.Errorf("action ledger entry %s: %w", intentKey, err)
	}
	return &e, kve.Revision(), nil
}

// newEntry is in's new entry in state, of this controller's lease.
func (l *ledger) newEntry(in rules.Intent, state string, now time.Time) *LedgerEntry {
	e := &LedgerEntry{Key: in.Key, State: state, Subject: in.Subject, Epoch: in.Epoch, Lease: l.lease, Updated: now, History: []LedgerStep{{State: state, At: now}}}
	if r := in.Rule; r != nil {
		e.Rule, e.Group, e.Severity = r.Name, r.Group, r.Severity
		if r.Action != nil {
			e.Action, e.Kind = r.Action.Name, r.Action.Kind
		}
	}
	return e
}

// stamp records this controller's lease in e, written at one of its
// epochs (an entry of another lease is never written at ours: those are
// left alone, see ledger_abandon.go).
func (l *ledger) stamp(e *LedgerEntry) {
	if l.lease != "" {
		e.Lease = l.lease
	}
}
