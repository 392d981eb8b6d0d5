package agent

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/vigil-sre/vigil/internal/backup"
	"github.com/vigil-sre/vigil/internal/wire"
)

// backupCollector publishes, every tick, the state of each backup policy
// in the agent's repository, one point per policy and snapshot kind it
// has:
//
//	backup (tags service=<policy name>, kind=full|incremental|differential)
//	  last_success  Unix seconds: start time of the newest snapshot of
//	                that kind whose verification did not fail (a snapshot
//	                not yet verified counts)
//	  age_seconds   now minus the start time of the newest snapshot of
//	                that kind verified OK; absent while none is
//	  size_bytes    size of the files in the newest snapshot of that kind
//	  verified      1 when the newest snapshot of that kind was verified
//	                OK, else 0
//
// The shipped rule backup_older_than_rpo reads age("backup.last_success"),
// the newest of the kinds. A policy without snapshots publishes nothing
// (the rule's no_data: keep_state applies); a repository that does not
// exist yet is reported once and publishes nothing.
//
// Memory: one small summary per snapshot; manifests are read once each
// (new ids only), verification records every tick (one small file per
// policy and kind).
type backupCollector struct {
	b *Backups

	mu     sync.Mutex
	cache  map[string]snapSummary // by snapshot id
	missed bool                   // repository absence reported
}

type snapSummary struct {
	id, name string
	kind     backup.Kind
	time     time.Time
	size     int64
	bad      bool // the manifest cannot be read (reported once)
}

func (c *backupCollector) Name() string { return "backup" }

func (c *backupCollector) Collect(_ context.Context, now time.Time, emit Emit) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	repo, err := c.b.open(c.b.cfg.Repository, false)
	if errors.Is(err, backup.ErrNotRepo) {
		if !c.missed {
			c.missed = true
			c.b.log.Info("backup repository does not exist yet; nothing to report until the first backup", "repository", c.b.cfg.Repository)
		}
		return nil
	}
	if err != nil {
		return err
	}
	c.missed = false
	sums, err := c.summaries(repo)
	if err != nil {
		return err
	}
	type key struct {
		name string
		kind backup.Kind
	}
	groups := map[key][]snapSummary{}
	for _, s := range sums {
		k := key{s.name, s.kind}
		groups[k] = append(groups[k], s)
	}
	var errs []error
	for _, p := range c.b.cfg.Policies {
		for _, kind := range []backup.Kind{backup.Full, backup.Incremental, backup.Differential} {
			g := groups[key{p.Name, kind}]
			if len(g) == 0 {
				continue
			}
			fields, err := kindFields(repo, g, now)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			emit("backup", []wire.Tag{{Key: "kind", Value: string(kind)}, {Key: "service", Value: p.Name}}, fields)
		}
	}
	return errors.Join(errs...)
}

// kindFields computes the fields from g, oldest first.
func kindFields(repo *backup.Repo, g []snapSummary, now time.Time) ([]wire.Field, error) {
	newest := g[len(g)-1]
	var lastSuccess, lastVerified time.Time
	verified := int64(0)
	for i := len(g) - 1; i >= 0 && lastVerified.IsZero(); i-- {
		rec, ok, err := repo.Verified(g[i].id)
		if err != nil {
			return nil, fmt.Errorf("backup %s: %w", g[i].id, err)
		}
		if ok && !rec.OK {
			continue // damaged: neither a success nor verified
		}
		if lastSuccess.IsZero() {
			lastSuccess = g[i].time
		}
		if ok {
			lastVerified = g[i].time
			if i == len(g)-1 {
				verified = 1
			}
		}
	}
	fields := []wire.Field{
		wire.I("size_bytes", newest.size),
		wire.I("verified", verified),
	}
	if !lastSuccess.IsZero() {
		fields = append(fields, wire.I("last_success", lastSuccess.Unix()))
	}
	if !lastVerified.IsZero() {
		fields = append(fields, wire.F("age_seconds", max(now.Sub(lastVerified).Seconds(), 0)))
	}
	return fields, nil
}

// summaries lists the repository's snapshots, oldest first, loading only
// manifests not seen before.
func (c *backupCollector) summaries(repo *backup.Repo) ([]snapSummary, error) {
	ids, err := repo.SnapshotIDs()
	if err != nil {
		return nil, err
	}
	present := make(map[string]bool, len(ids))
	out := make([]snapSummary, 0, len(ids))
	for _, id := range ids {
		present[id] = true
		s, ok := c.cache[id]
		if !ok {
			snap, err := repo.Snapshot(id)
			var ce *backup.CorruptError
			if errors.As(err, &ce) {
				// A damaged manifest (verify reports it) must not hide
				// every other snapshot.
				c.b.log.Warn("backup manifest unreadable", "snapshot", id, "err", err)
				c.cache[id] = snapSummary{id: id, bad: true}
				continue
			}
			if err != nil {
				return nil, err
			}
			s = snapSummary{id: snap.ID, name: snap.Name, kind: snap.Kind, time: snap.Time, size: snap.Size}
			c.cache[id] = s
		}
		if !s.bad {
			out = append(out, s)
		}
	}
	for id := range c.cache {
		if !present[id] {
			delete(c.cache, id)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].time.Equal(out[j].time) {
			return out[i].time.Before(out[j].time)
		}
		return out[i].id < out[j].id
	})
	return out, nil
}

var _ Collector = (*backupCollector)(nil)
