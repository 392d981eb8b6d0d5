package route

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// checkWeights: weights only on an active entry, each 0..100, summing to
// 100, naming Active, every other member with an endpoint, never the
// fenced member.
func checkWeights(e Entry) error {
	if len(e.Weights) == 0 {
		if len(e.WeightEndpoints) != 0 {
			return errors.New("weight endpoints without weights")
		}
		return nil
	}
	if e.State != StateActive {
		return errors.New("weights on an entry that is not active")
	}
	if _, ok := e.Weights[e.Active]; !ok {
		return fmt.Errorf("weights do not name the active member %q", e.Active)
	}
	sum := 0
	for m, w := range e.Weights {
		if w < 0 || w > 100 {
			return fmt.Errorf("weight %d of %q: use 0..100", w, m)
		}
		if m == e.Fenced {
			return fmt.Errorf("fenced member %q has a weight", m)
		}
		if m != e.Active && e.WeightEndpoints[m] == "" {
			return fmt.Errorf("weighted member %q has no endpoint", m)
		}
		sum += w
	}
	if sum != 100 {
		return fmt.Errorf("weights sum to %d, not 100", sum)
	}
	for m := range e.WeightEndpoints {
		if _, ok := e.Weights[m]; !ok || m == e.Active {
			return fmt.Errorf("endpoint for %q, which has no weight or is active", m)
		}
	}
	return nil
}

// SetWeights splits the traffic of service, whose active member must be
// active at epoch (the epoch does not change: nobody is fenced), between
// the members of weights (0..100, summing to 100, Active among them);
// endpoints gives the other members' endpoints. Empty weights clear the
// split (Active takes everything). It is a CAS like every other write: a
// failover that moved the epoch on makes it fail with ErrConflict.
func SetWeights(ctx context.Context, kv jetstream.KeyValue, service, active string, epoch uint64, weights map[string]int, endpoints map[string]string, by string, now time.Time) (Entry, error) {
	cur, err := Get(ctx, kv, service)
	if err != nil {
		return Entry{}, err
	}
	if cur.State != StateActive || cur.Active != active || cur.Epoch != epoch {
		return cur, fmt.Errorf("%w: %s is %s %q at epoch %d, expected active %q at epoch %d",
			ErrConflict, service, cur.State, cur.Active+cur.Target, cur.Epoch, active, epoch)
	}
	e := cur
	e.Weights, e.WeightEndpoints = nil, nil
	if len(weights) > 0 {
		e.Weights = maps.Clone(weights)
		if len(endpoints) > 0 {
			e.WeightEndpoints = maps.Clone(endpoints)
		}
	}
	e.Updated, e.By = now, by
	if err := checkWeights(e); err != nil {
		return cur, fmt.Errorf("route %s: %w", service, err)
	}
	return cas(ctx, kv, e, cur)
}
