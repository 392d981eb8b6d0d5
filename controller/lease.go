package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/internal/config"
	"github.com/vigil-sre/vigil/internal/wire"
)

// The leader lease: of the controllers of one shard (those sharing the
// lease bucket and key) exactly one leads at a time. All of them ingest
// telemetry (each through its own durable consumer, so their series state
// is warm) and evaluate rules; only the leader publishes anomaly, forecast
// and rule events, dispatches actions and runs failovers and drains.
//
// The lease is one key in a JetStream KV bucket whose *bucket-wide* TTL is
// the lease TTL (a per-key TTL would be dropped by the first Update):
//
//   - acquire: Create (the key is absent: never written, deleted on a
//     release, or expired because its holder stopped renewing). A
//     controller finding its own name as the holder (its previous self
//     that crashed) takes the key over with Update on the revision it read.
//   - renew: Update on the revision it holds (CAS) every lease.renew; each
//     write restarts the key's age.
//   - step down at once when a renewal fails (revision mismatch: another
//     holder; or any other error), when a renewal comes later than the TTL
//     after the last successful one, or on shutdown (then the key is
//     deleted on the held revision so a follower takes over at its next
//     attempt instead of after the TTL).
//
// The epoch (fencing token) of a term is the KV revision of the write that
// acquired it: revisions are the bucket stream's sequence numbers, which
// only grow (also when keys expire), so epochs strictly increase across
// terms and controllers. The epoch travels with every intent the leader
// dispatches and is checked again before an action is claimed in the
// ledger, before it starts and before every ledger and route write; the
// ledger entries and route entries record it, and a write over an entry
// stamped with a newer epoch is refused.
//
// Locally a term is valid until the start of the last successful write
// plus TTL − TTL/10: the server's copy of the key cannot expire earlier,
// so no other controller can hold the lease while this one believes it
// does (clocks of one machine run at the same rate; the margin covers the
// rate differences of two).
//
// Lines of terms: a term that ends without evidence of another holder (a
// renewal failed with an error other than a revision mismatch, e.g. NATS
// unreachable, or came too late) leaves a lapse. If this controller's next
// term is acquired by the write directly after its own last write to the
// key (revision base+1, base being the last revision it wrote or, when
// its deletion of the key went through, the deletion's), nobody else
// wrote the key in between, so nobody else led: the new term continues
// the old one's line, and the events made during the lapse can be published
// (leadership.go). Expiry by the bucket's age limit writes no revision
// (lease_kv_test.go checks this against the real server, also across a
// server restart), so a key that expired during the outage does not break
// the line. Seeing another holder, losing the key to a revision mismatch,
// or any other write to the bucket in between ends the line: every
// revision of the bucket counts, so in a bucket shared by the keys of
// several shards, a write to another key also ends it (conservatively:
// the lapse's events are then discarded).

// LeaseConfig configures the leader lease.
type LeaseConfig struct {
	// Bucket: the JetStream KV bucket of the lease. Default "VIGIL_LEASE";
	// "off" disables the lease: this controller always leads (epoch 0),
	// which is only safe when it runs alone.
	Bucket string `yaml:"bucket"`
	// Key: the lease's key; controllers sharing it elect one leader (one
	// key per shard). Default "leader".
	Key string `yaml:"key"`
	// TTL: a leader that stops renewing loses the lease after this; a
	// follower takes over within TTL + Renew. At least 1s. Default 10s.
	TTL time.Duration `yaml:"ttl"`
	// Renew: interval of renewals, and of a follower's attempts to
	// acquire. Less than TTL/2. Default TTL/3.
	Renew time.Duration `yaml:"renew"`
}

// DefaultLeaseBucket is the default of lease.bucket.
const DefaultLeaseBucket = "VIGIL_LEASE"

func (l *LeaseConfig) validate(doc *config.Doc) config.Errors {
	var errs config.Errors
	if l.Bucket == "" {
		l.Bucket = DefaultLeaseBucket
	}
	if l.Key == "" {
		l.Key = "leader"
	}
	if l.TTL == 0 {
		l.TTL = 10 * time.Second
	}
	if l.Renew == 0 {
		l.Renew = l.TTL / 3
	}
	switch {
	case l.TTL < time.Second:
		errs = append(errs, doc.Errorf("lease.ttl", "ttl %v: at least 1s", l.TTL))
	case l.Renew <= 0 || l.Renew*2 >= l.TTL:
		errs = append(errs, doc.Errorf("lease.renew", "renew %v: must be positive and less than ttl/2 (%v)", l.Renew, l.TTL/2))
	}
	if !kvKeyRe.MatchString(l.Key) {
		errs = append(errs, doc.Errorf("lease.key", "key %q: use letters, digits, '_', '-', '=' and '/'", l.Key))
	}
	return errs
}

var kvKeyRe = regexp.MustCompile(`^[-/_=a-zA-Z0-9]+$`)

// ErrNotLeader: this controller does not hold the leader lease.
var ErrNotLeader = errors.New("this controller is not the leader")

// OutcomeNotLeader: an intent refused because the controller holding it
// no longer leads at the intent's epoch.
const OutcomeNotLeader = "not_leader"

// leaseValue is the lease key's value.
type leaseValue struct {
	Holder   string    `json:"holder"`
	Epoch    uint64    `json:"epoch,omitempty"` // 0 in the acquiring write (its revision is the epoch)
	Acquired time.Time `json:"acquired"`
	Renewed  time.Time `json:"renewed"`
}

// LeaderStatus is the lease as /api/v1/status shows it.
type LeaderStatus struct {
	// Leader: this controller holds the lease.
	Leader bool `json:"leader"`
	// Epoch of this controller's term while it leads; otherwise of the
	// holder's term last seen (0: none seen).
	Epoch uint64 `json:"epoch"`
	// Holder: the controller holding the lease ("" unknown or none).
	Holder string `json:"holder,omitempty"`
	// Since: when this controller's state (leader or follower) began.
	Since       time.Time `json:"since"`
	Transitions uint64    `json:"transitions"`
	Disabled    bool      `json:"disabled,omitempty"`
}

// lease holds or pursues the leader lease. Its state is read by any
// goroutine (Leader, status); Run changes it.
type lease struct {
	cfg  LeaseConfig
	js   jetstream.JetStream
	name string
	pub  *publisher
	log  *slog.Logger
	off  bool

	kv jetstream.KeyValue

	mu         sync.Mutex
	leader     bool
	epoch      uint64 // own term while leading, else the holder's last seen
	rev        uint64 // revision held (leader)
	acquired   time.Time
	validUntil time.Time
	holder     string
	since      time.Time
	line       uint64 // line of the current or last term: the epoch of its first term

	// The lapse after a term that ended without evidence of another holder
	// (lapseLine 0: none): lapseEpoch is that term's epoch, lapseBase the last
	// revision of the key it wrote (or its deletion's).
	lapseLine, lapseEpoch, lapseBase uint64

	changed     chan struct{} // a leadership change, for the owner goroutine
	transitions atomic.Uint64
}

func newLease(cfg LeaseConfig, js jetstream.JetStream, name string, pub *publisher, log *slog.Logger) *lease {
	l := &lease{cfg: cfg, js: js, name: name, pub: pub, log: log, changed: make(chan struct{}, 1), since: time.Now()}
	if cfg.Bucket == "off" || js == nil {
		l.off, l.leader, l.holder = true, true, name
	}
	return l
}

// fenceName names the lease for the agents that fence host commands by its
// epochs ("<bucket>/<key>"), or "" when there is none (nil or off).
func (l *lease) fenceName() string {
	if l == nil || l.off {
		return ""
	}
	return l.cfg.Bucket + "/" + l.cfg.Key
}

// Leader returns the epoch of the current term and true while this
// controller holds a valid lease.
func (l *lease) Leader() (uint64, bool) {
	if l == nil {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.off {
		return 0, true
	}
	return l.epoch, l.leader && time.Now().Before(l.validUntil)
}

// holderName is this controller's name ("" without a lease).
func (l *lease) holderName() string {
	if l == nil {
		return ""
	}
	return l.name
}

// leads reports whether this controller leads at epoch.
func (l *lease) leads(epoch uint64) bool {
	e, ok := l.Leader()
	return ok && e == epoch
}

// standing returns, besides the epoch and whether this controller leads
// (as Leader), the line of the term: while leading, the current term's;
// while following in a lapse (no evidence that another controller led since
// this one's last term), that term's; otherwise 0.
func (l *lease) standing() (epoch uint64, leader bool, line uint64) {
	if l == nil {
		return 0, true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.off:
		return 0, true, 0
	case l.leader && time.Now().Before(l.validUntil):
		return l.epoch, true, l.line
	case l.leader: // expired but not stepped down yet: no evidence either way
		return l.epoch, false, l.line
	}
	return l.epoch, false, l.lapseLine
}

func (l *lease) status() LeaderStatus {
	if l == nil {
		return LeaderStatus{Leader: true, Disabled: true}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	leader := l.leader && (l.off || time.Now().Before(l.validUntil))
	return LeaderStatus{Leader: leader, Epoch: l.epoch, Holder: l.holder, Since: l.since, Transitions: l.transitions.Load(), Disabled: l.off}
}

// leaseBucketConfig is the lease bucket: one revision per key, expired by
// the bucket-wide age limit (no expiry markers: an expiry writes no
// revision, which the lines of terms rely on).
func leaseBucketConfig(cfg LeaseConfig) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket: cfg.Bucket, Description: "vigil controller leader lease", TTL: cfg.TTL, History: 1, Storage: jetstream.FileStorage,
	}
}

// Run pursues and holds the lease until ctx ends, then releases it.
func (l *lease) Run(ctx context.Context) error {
	if l.off {
		return nil
	}
	for l.kv == nil {
		kv, err := l.js.CreateOrUpdateKeyValue(ctx, leaseBucketConfig(l.cfg))
		if err == nil {
			l.kv = kv
			break
		}
		l.log.Warn("lease bucket unavailable, retrying", "bucket", l.cfg.Bucket, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(l.cfg.Renew):
		}
	}
	tick := time.NewTicker(l.cfg.Renew)
	defer tick.Stop()
	for {
		l.step(ctx)
		select {
		case <-ctx.Done():
			l.release()
			return nil
		case <-tick.C:
		}
	}
}

// step renews a held lease or tries to acquire it.
func (l *lease) step(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	l.mu.Lock()
	leader, rev, epoch, valid := l.leader, l.rev, l.epoch, l.validUntil
	l.mu.Unlock()
	if leader {
		if time.Now().After(valid) {
			l.stepDown("renewal late beyond the ttl", true)
			return
		}
		l.renew(ctx, rev, epoch)
		return
	}
	l.acquire(ctx)
}

func (l *lease) write(ctx context.Context, rev, epoch uint64, acquired time.Time) (uint64, error) {
	b, _ := json.Marshal(leaseValue{Holder: l.name, Epoch: epoch, Acquired: acquired, Renewed: time.Now()})
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Renew)
	defer cancel()
	if rev == 0 {
		return l.kv.Create(ctx, l.cfg.Key, b)
	}
	return l.kv.Update(ctx, l.cfg.Key, b, rev)
}

func (l *lease) renew(ctx context.Context, rev, epoch uint64) {
	t0 := time.Now()
	l.mu.Lock()
	acquired := l.acquired
	l.mu.Unlock()
	nrev, err := l.write(ctx, rev, epoch, acquired)
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down: Run releases
		}
		taken := errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)
		l.stepDown("renewal failed: "+err.Error(), !taken)
		return
	}
	l.mu.Lock()
	if l.leader && l.epoch == epoch {
		l.rev, l.validUntil = nrev, t0.Add(l.cfg.TTL-l.cfg.TTL/10)
	}
	l.mu.Unlock()
}

func (l *lease) acquire(ctx context.Context) {
	gctx, cancel := context.WithTimeout(ctx, l.cfg.Renew)
	e, err := l.kv.Get(gctx, l.cfg.Key)
	cancel()
	var rev uint64
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		l.log.Debug("lease read", "err", err)
		return
	default:
		var v leaseValue
		_ = json.Unmarshal(e.Value(), &v)
		epoch := v.Epoch
		if epoch == 0 {
			epoch = e.Revision()
		}
		if v.Holder != l.name {
			l.mu.Lock()
			ended := l.lapseLine != 0
			l.holder, l.epoch, l.lapseLine = v.Holder, epoch, 0
			l.mu.Unlock()
			if ended {
				l.notify() // another controller leads: the lapse's events go
			}
			return
		}
		rev = e.Revision() // our own earlier term (a restart): a new term over it
		l.mu.Lock()
		if l.lapseLine != 0 && epoch == l.lapseEpoch {
			l.lapseBase = rev // the last term's own write (a renewal that went through unacknowledged)
		}
		l.mu.Unlock()
	}
	t0 := time.Now()
	nrev, err := l.write(ctx, rev, 0, t0)
	if err != nil {
		l.log.Debug("lease not acquired", "err", err)
		return
	}
	l.mu.Lock()
	lapseLine, lapseBase := l.lapseLine, l.lapseBase
	line := nrev
	if lapseLine != 0 && nrev == lapseBase+1 {
		line = lapseLine // nobody wrote the key since this controller's last term
	}
	l.leader, l.epoch, l.rev, l.holder, l.line, l.lapseLine = true, nrev, nrev, l.name, line, 0
	l.acquired, l.since, l.validUntil = t0, t0, t0.Add(l.cfg.TTL-l.cfg.TTL/10)
	l.mu.Unlock()
	l.transitions.Add(1)
	if lapseLine != 0 && line != lapseLine {
		l.log.Info("lease key written by another since the last term", "last_revision", lapseBase, "revision", nrev)
	}
	l.log.Info("leader lease acquired", "epoch", nrev, "key", l.cfg.Key, "continues", line != nrev)
	l.record("acquired", nrev, "")
	l.notify()
}

// stepDown ends this controller's term; del deletes the key on the held
// revision (when nobody else wrote it) so the next term starts at once.
func (l *lease) stepDown(reason string, del bool) {
	l.mu.Lock()
	if !l.leader {
		l.mu.Unlock()
		return
	}
	epoch, rev := l.epoch, l.rev
	l.leader, l.since, l.holder = false, time.Now(), ""
	if del { // no other holder seen: a lapse, unless the key shows one later
		l.lapseLine, l.lapseEpoch, l.lapseBase = l.line, epoch, rev
	}
	l.mu.Unlock()
	l.transitions.Add(1)
	l.log.Warn("leader lease lost: stepping down", "epoch", epoch, "reason", reason)
	l.record("lost", epoch, reason)
	l.notify()
	if del && l.deleteHeld(rev) {
		l.mu.Lock()
		if l.lapseLine != 0 && l.lapseEpoch == epoch && l.lapseBase == rev {
			l.lapseBase = rev + 1 // the deletion is the key's next revision
		}
		l.mu.Unlock()
	}
}

// release steps down at shutdown and frees the key for a follower.
func (l *lease) release() {
	l.mu.Lock()
	leader, epoch, rev := l.leader, l.epoch, l.rev
	l.leader, l.since, l.holder, l.lapseLine = false, time.Now(), "", 0
	l.mu.Unlock()
	if !leader {
		return
	}
	l.transitions.Add(1)
	l.deleteHeld(rev)
	l.log.Info("leader lease released", "epoch", epoch)
	l.record("released", epoch, "shutdown")
	l.notify()
}

// deleteHeld deletes the key if its revision is still rev and reports
// whether the deletion was acknowledged.
func (l *lease) deleteHeld(rev uint64) bool {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.Renew)
	defer cancel()
	if err := l.kv.Delete(ctx, l.cfg.Key, jetstream.LastRevision(rev)); err != nil {
		l.log.Debug("lease key not deleted", "err", err)
		return false
	}
	return true
}

func (l *lease) notify() {
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// record publishes a leader event (measurement vigil_leader): state
// acquired, lost or released; value leader 1/0; epoch.
func (l *lease) record(state string, epoch uint64, reason string) {
	if l.pub == nil {
		return
	}
	lead := 0.0
	if state == "acquired" {
		lead = 1
	}
	l.pub.Publish(&wire.Event{
		Kind: wire.KindLeader, Time: time.Now(), Host: l.name, State: state, Error: reason,
		Key: fmt.Sprintf("lease/%s/epoch-%d", l.cfg.Key, epoch), Values: map[string]float64{"leader": lead, "epoch": float64(epoch)},
	})
}
