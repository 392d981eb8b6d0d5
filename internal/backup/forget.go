package backup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Keep is a retention policy, applied per snapshot name like restic's
// forget: walking the snapshots newest first, Last keeps the N newest;
// Hourly, Daily, Weekly and Monthly each keep the newest snapshot of each
// of the N most recent hours, days, ISO weeks and months (UTC) that have
// one. A snapshot is kept when any rule keeps it. The zero Keep keeps
// everything (forgetting all snapshots takes an explicit Last of 0 with
// nothing else, which Forget refuses).
type Keep struct {
	Last    int `json:"last" yaml:"last"`
	Hourly  int `json:"hourly" yaml:"hourly"`
	Daily   int `json:"daily" yaml:"daily"`
	Weekly  int `json:"weekly" yaml:"weekly"`
	Monthly int `json:"monthly" yaml:"monthly"`
}

// IsZero reports whether k keeps nothing by rule.
func (k Keep) IsZero() bool { return k == Keep{} }

// ForgetResult lists what a forget kept and removed.
type ForgetResult struct {
	Keep, Remove []*Snapshot
	// Pruned chunks and their bytes (when prune was asked for).
	PrunedChunks int
	PrunedBytes  int64
}

// bucket keys per rule.
var keepRules = []struct {
	n   func(Keep) int
	key func(time.Time) string
}{
	{func(k Keep) int { return k.Last }, nil},
	{func(k Keep) int { return k.Hourly }, func(t time.Time) string { return t.Format("2006-01-02T15") }},
	{func(k Keep) int { return k.Daily }, func(t time.Time) string { return t.Format("2006-01-02") }},
	{func(k Keep) int { return k.Weekly }, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%d-W%02d", y, w) }},
	{func(k Keep) int { return k.Monthly }, func(t time.Time) string { return t.Format("2006-01") }},
}

// ApplyKeep splits snaps (any order) into kept and removed by k, per name.
func ApplyKeep(snaps []*Snapshot, k Keep) (keep, remove []*Snapshot) {
	byName := map[string][]*Snapshot{}
	var names []string
	for _, s := range snaps {
		if _, ok := byName[s.Name]; !ok {
			names = append(names, s.Name)
		}
		byName[s.Name] = append(byName[s.Name], s)
	}
	for _, name := range names {
		group := byName[name]
		sortNewestFirst(group)
		left := make([]int, len(keepRules))
		last := make([]string, len(keepRules))
		for i, r := range keepRules {
			left[i] = r.n(k)
		}
		for _, s := range group {
			kept := false
			for i, r := range keepRules {
				if left[i] <= 0 {
					continue
				}
				key := s.ID
				if r.key != nil {
					key = r.key(s.Time.UTC())
				}
				if key != last[i] {
					last[i], left[i], kept = key, left[i]-1, true
				}
			}
			if kept {
				keep = append(keep, s)
			} else {
				remove = append(remove, s)
			}
		}
	}
	return keep, remove
}

func sortNewestFirst(s []*Snapshot) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && newer(s[j], s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func newer(a, b *Snapshot) bool {
	if !a.Time.Equal(b.Time) {
		return a.Time.After(b.Time)
	}
	return a.ID > b.ID
}

// Forget removes the snapshots of name (all names when empty) that k does
// not keep, then, with prune, the chunks no remaining snapshot names. With
// dryRun it only reports.
func (r *Repo) Forget(ctx context.Context, name string, k Keep, prune, dryRun bool) (*ForgetResult, error) {
	if k.IsZero() {
		return nil, fmt.Errorf("forget: the policy keeps nothing (set last, hourly, daily, weekly or monthly)")
	}
	unlock, err := r.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock.Close()
	all, err := r.Snapshots()
	if err != nil {
		return nil, err
	}
	var mine []*Snapshot
	for _, s := range all {
		if name == "" || s.Name == name {
			mine = append(mine, s)
		}
	}
	res := &ForgetResult{}
	res.Keep, res.Remove = ApplyKeep(mine, k)
	if dryRun {
		return res, nil
	}
	for _, s := range res.Remove {
		if err := os.Remove(r.manifestPath(s.ID)); err != nil {
			return res, fmt.Errorf("forget %s: %w", s.ID, err)
		}
		os.Remove(r.verifiedPath(s.ID))
	}
	if prune {
		res.PrunedChunks, res.PrunedBytes, err = r.prune(ctx)
	}
	return res, err
}

// Prune removes every chunk no snapshot names, and leftover temporary
// files of interrupted writes.
func (r *Repo) Prune(ctx context.Context) (chunks int, bytes int64, err error) {
	unlock, err := r.lock(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer unlock.Close()
	return r.prune(ctx)
}

func (r *Repo) prune(ctx context.Context) (chunks int, bytes int64, err error) {
	snaps, err := r.Snapshots()
	if err != nil {
		return 0, 0, err
	}
	used := map[string]bool{}
	for _, s := range snaps {
		for _, f := range s.Files {
			for _, c := range f.Chunks {
				used[c] = true
			}
		}
	}
	root := filepath.Join(r.path, "chunks")
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if used[d.Name()] {
			return nil
		}
		info, ierr := d.Info()
		if rerr := os.Remove(p); rerr != nil {
			return fmt.Errorf("prune: %w", rerr)
		}
		chunks++
		if ierr == nil {
			bytes += info.Size()
		}
		return nil
	})
	return chunks, bytes, err
}
