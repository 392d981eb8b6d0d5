// Package route is Vigil's route table: which member of a service takes
// its traffic, kept in the JetStream KV bucket VIGIL_ROUTES (key = service
// name, value = an Entry as JSON). The controller writes it, the agents'
// traffic switches follow it.
//
// Every change is a compare-and-swap on the key's KV revision, so of two
// writers that read the same entry (two controllers, or a controller and
// its restarted self) exactly one succeeds and the other reads again.
// A failover is two writes under one new fencing epoch:
//
//	{active: A, epoch: E, state: active}
//	  --Fence-->  {active: "", epoch: E+1, state: fenced, fenced: A, target: B}
//	  --Switch--> {active: B, epoch: E+1, state: active, fenced: A}
//
// While fenced no member is active, so there is never a revision naming two
// members, and A can never be active again at epoch E+1 or later without a
// new failover. A controller that stops between the two writes leaves a
// fenced entry that names its target: whoever reads it next completes the
// switch (exactly once, by CAS).
package route

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the KV bucket of the route table.
const Bucket = "VIGIL_ROUTES"

// States of an entry.
const (
	StateActive = "active" // Active takes the traffic
	StateFenced = "fenced" // a failover to Target is under way: nobody takes traffic
)

// Errors.
var (
	// ErrConflict: the entry is not what the caller expected (another
	// writer changed it, or the epoch or member does not match).
	ErrConflict = errors.New("route: entry changed or does not match")
	// ErrNotFound: the service has no route.
	ErrNotFound = errors.New("route: no route for service")
	// ErrSwitched: Switch found the target already active at the epoch
	// (someone else completed the failover); the entry is returned too.
	ErrSwitched = errors.New("route: failover already completed")
	// ErrStaleLeader: the entry was written by a controller at a newer
	// leader epoch than the one the write carries (a deposed leader).
	ErrStaleLeader = errors.New("route: entry written at a newer leader epoch")
)

type leaderEpochKey struct{}

// WithLeaderEpoch returns a context whose route writes carry the leader
// lease epoch: they stamp it on the entry and are refused when the entry
// they replace carries a newer one.
func WithLeaderEpoch(ctx context.Context, epoch uint64) context.Context {
	return context.WithValue(ctx, leaderEpochKey{}, epoch)
}

func leaderEpoch(ctx context.Context) (uint64, bool) {
	e, ok := ctx.Value(leaderEpochKey{}).(uint64)
	return e, ok
}

var serviceRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_\-]*$`)

// ValidService reports whether name can be a service name (a KV key and a
// subject token: letters, digits, '_' and '-').
func ValidService(name string) error {
	if !serviceRe.MatchString(name) {
		return fmt.Errorf("service name %q: use letters, digits, '_' and '-'", name)
	}
	return nil
}

// Entry is the route of one service.
type Entry struct {
	Service  string `json:"service"`
	Active   string `json:"active,omitempty"`   // member name; empty while fenced
	Endpoint string `json:"endpoint,omitempty"` // of Active, e.g. http://10.0.0.2:8080
	Epoch    uint64 `json:"epoch"`              // fencing epoch, +1 per failover
	State    string `json:"state"`
	// Fenced is the member fenced at Epoch: it is never routed to at this
	// epoch or later.
	Fenced string `json:"fenced,omitempty"`
	// Target and TargetEndpoint: while fenced, the member being promoted.
	Target         string `json:"target,omitempty"`
	TargetEndpoint string `json:"target_endpoint,omitempty"`
	// Detected is when the fault that started the failover was detected
	// (RTO is measured from it, across controller restarts).
	Detected time.Time `json:"detected,omitzero"`
	Reason   string    `json:"reason,omitempty"`
	// Weights, on an active entry being drained (SetWeights), split its
	// traffic: member -> weight 0..100, summing to 100, between Active and
	// the members in WeightEndpoints. Absent: Active takes everything.
	Weights map[string]int `json:"weights,omitempty"`
	// WeightEndpoints: endpoints of the weighted members other than Active.
	WeightEndpoints map[string]string `json:"weight_endpoints,omitempty"`
	Updated         time.Time         `json:"updated"`
	By              string            `json:"by,omitempty"`
	// LeaderEpoch: the leader lease term (fencing token) of the controller
	// that wrote the entry (0: none given). A write carrying an older
	// leader epoch is refused (ErrStaleLeader); see WithLeaderEpoch.
	LeaderEpoch uint64 `json:"leader_epoch,omitempty"`
	// Revision is the KV revision the entry was read at (not stored).
	Revision uint64 `json:"-"`
}

// Target is a member to promote.
type Target struct {
	Member, Endpoint string
}

// Ensure creates the route bucket if needed (file storage, 64 revisions
// of history per key) and returns it.
func Ensure(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "vigil route table: service -> active member and fencing epoch",
		History:     64,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("route bucket %s: %w", Bucket, err)
	}
	return kv, nil
}

// Open returns the route bucket, which must exist.
func Open(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, Bucket)
	if err != nil {
		return nil, fmt.Errorf("route bucket %s: %w", Bucket, err)
	}
	return kv, nil
}

// Decode parses a stored entry and checks it.
func Decode(data []byte, rev uint64) (Entry, error) {
	var e Entry
	if err := json.Unmarshal(data, &e); err != nil {
		return Entry{}, fmt.Errorf("route entry (revision %d): %w", rev, err)
	}
	e.Revision = rev
	switch {
	case e.State == StateActive && (e.Active == "" || e.Endpoint == ""):
		return e, fmt.Errorf("route entry %s (revision %d): active without member or endpoint", e.Service, rev)
	case e.State == StateActive && e.Active == e.Fenced:
		return e, fmt.Errorf("route entry %s (revision %d): member %q is active and fenced", e.Service, rev, e.Active)
	case e.State == StateFenced && e.Active != "":
		return e, fmt.Errorf("route entry %s (revision %d): fenced with active member %q", e.Service, rev, e.Active)
	case e.State != StateActive && e.State != StateFenced:
		return e, fmt.Errorf("route entry %s (revision %d): unknown state %q", e.Service, rev, e.State)
	}
	if err := checkWeights(e); err != nil {
		return e, fmt.Errorf("route entry %s (revision %d): %w", e.Service, rev, err)
	}
	return e, nil
}

// Get reads the route of service.
func Get(ctx context.Context, kv jetstream.KeyValue, service string) (Entry, error) {
	ent, err := kv.Get(ctx, service)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Entry{}, fmt.Errorf("%w %q", ErrNotFound, service)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("route %s: %w", service, err)
	}
	return Decode(ent.Value(), ent.Revision())
}

// Init creates the route of service with member active at epoch 1 if the
// service has none; an existing route is returned unchanged.
func Init(ctx context.Context, kv jetstream.KeyValue, service string, member Target, by string, now time.Time) (Entry, error) {
	e := Entry{Service: service, Active: member.Member, Endpoint: member.Endpoint, Epoch: 1, State: StateActive, Updated: now, By: by}
	e.LeaderEpoch, _ = leaderEpoch(ctx)
	data, err := json.Marshal(&e)
	if err != nil {
		return Entry{}, err
	}
	rev, err := kv.Create(ctx, service, data)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return Get(ctx, kv, service)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("route %s: create: %w", service, err)
	}
	e.Revision = rev
	return e, nil
}

// cas writes e over cur (compare-and-swap on its revision), stamped with
// the leader epoch of ctx if it has one.
func cas(ctx context.Context, kv jetstream.KeyValue, e Entry, cur Entry) (Entry, error) {
	rev := cur.Revision
	e.LeaderEpoch = cur.LeaderEpoch
	if le, ok := leaderEpoch(ctx); ok {
		if cur.LeaderEpoch > le {
			return Entry{}, fmt.Errorf("%w: %s written at leader epoch %d, this write is of epoch %d", ErrStaleLeader, e.Service, cur.LeaderEpoch, le)
		}
		e.LeaderEpoch = le
	}
	data, err := json.Marshal(&e)
	if err != nil {
		return Entry{}, err
	}
	nrev, err := kv.Update(ctx, e.Service, data, rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return Entry{}, fmt.Errorf("%w: %s changed since revision %d", ErrConflict, e.Service, rev)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("route %s: update: %w", e.Service, err)
	}
	e.Revision = nrev
	return e, nil
}

// Fence starts a failover of service from member from to to: it requires
// from active at expectedEpoch and writes the fenced entry at
// expectedEpoch+1 (nobody active, to named as the target).
func Fence(ctx context.Context, kv jetstream.KeyValue, service, from string, to Target, expectedEpoch uint64, detected time.Time, by, reason string, now time.Time) (Entry, error) {
	cur, err := Get(ctx, kv, service)
	if err != nil {
		return Entry{}, err
	}
	if cur.State != StateActive || cur.Active != from || cur.Epoch != expectedEpoch {
		return cur, fmt.Errorf("%w: %s is %s %q at epoch %d, expected active %q at epoch %d",
			ErrConflict, service, cur.State, cur.Active+cur.Target, cur.Epoch, from, expectedEpoch)
	}
	if to.Member == from || to.Member == "" || to.Endpoint == "" {
		return cur, fmt.Errorf("route %s: bad promotion target %q (%q)", service, to.Member, to.Endpoint)
	}
	e := Entry{
		Service: service, Epoch: expectedEpoch + 1, State: StateFenced, Fenced: from,
		Target: to.Member, TargetEndpoint: to.Endpoint, Detected: detected, Reason: reason, Updated: now, By: by,
	}
	return cas(ctx, kv, e, cur)
}

// Switch completes a fenced failover: the target named by the fenced entry
// at epoch becomes active. Switching an entry where to is already active at
// epoch returns it unchanged with ErrSwitched (someone else completed it).
func Switch(ctx context.Context, kv jetstream.KeyValue, service, to string, epoch uint64, by string, now time.Time) (Entry, error) {
	cur, err := Get(ctx, kv, service)
	if err != nil {
		return Entry{}, err
	}
	if cur.State == StateActive && cur.Active == to && cur.Epoch == epoch {
		return cur, ErrSwitched
	}
	if cur.State != StateFenced || cur.Target != to || cur.Epoch != epoch {
		return cur, fmt.Errorf("%w: %s is %s (target %q) at epoch %d, expected fenced for %q at epoch %d",
			ErrConflict, service, cur.State, cur.Target, cur.Epoch, to, epoch)
	}
	e := cur
	e.Active, e.Endpoint, e.State = cur.Target, cur.TargetEndpoint, StateActive
	e.Target, e.TargetEndpoint, e.Updated, e.By = "", "", now, by
	return cas(ctx, kv, e, cur)
}

// Promote fences from and switches to in one go: the new entry has to
// active at expectedEpoch+1.
func Promote(ctx context.Context, kv jetstream.KeyValue, service, from string, to Target, expectedEpoch uint64) (Entry, error) {
	now := time.Now()
	f, err := Fence(ctx, kv, service, from, to, expectedEpoch, now, "", "promote", now)
	if err != nil {
		return f, err
	}
	return Switch(ctx, kv, service, to.Member, f.Epoch, "", time.Now())
}

// Watch calls fn with the current route of service and every later
// change, in order, until ctx ends (then it returns nil). Deleted or
// undecodable entries are skipped; fn runs on Watch's goroutine.
func Watch(ctx context.Context, kv jetstream.KeyValue, service string, fn func(Entry)) error {
	w, err := kv.Watch(ctx, service)
	if err != nil {
		return fmt.Errorf("route %s: watch: %w", service, err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ent, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("route %s: watch ended", service)
			}
			if ent == nil || ent.Operation() != jetstream.KeyValuePut {
				continue
			}
			if e, err := Decode(ent.Value(), ent.Revision()); err == nil {
				fn(e)
			}
		}
	}
}

// History returns every stored revision of service's route, oldest first.
func History(ctx context.Context, kv jetstream.KeyValue, service string) ([]Entry, error) {
	ents, err := kv.History(ctx, service)
	if err != nil {
		return nil, fmt.Errorf("route %s: history: %w", service, err)
	}
	out := make([]Entry, 0, len(ents))
	for _, ent := range ents {
		if ent.Operation() != jetstream.KeyValuePut {
			continue
		}
		e, err := Decode(ent.Value(), ent.Revision())
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}
