package release

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Bounds of the state file.
const (
	maxRuns      = 50 // health runs kept per version
	maxRollbacks = 50 // rollback records kept
)

// State is the registry's state file (state.json).
type State struct {
	// LastKnownGood is the newest version that earned LKG; LKGSince when.
	LastKnownGood string    `json:"last_known_good,omitempty"`
	LKGSince      time.Time `json:"lkg_since,omitzero"`
	// Versions by name: what was observed of each.
	Versions map[string]*VersionState `json:"versions,omitempty"`
	// Rollbacks counts rollbacks attempted (not dry runs); History keeps
	// the last ones, oldest first.
	Rollbacks uint64           `json:"rollbacks"`
	History   []RollbackRecord `json:"history,omitempty"`
}

// VersionState is one version's history.
type VersionState struct {
	// Activated: when it last became current (deploy or rollback).
	Activated time.Time `json:"activated,omitzero"`
	// Runs of equal health observations, oldest first (run-length
	// encoded, so a check every few seconds keeps the file small).
	Runs []HealthRun `json:"runs,omitempty"`
}

// HealthRun is a run of consecutive observations with the same outcome.
type HealthRun struct {
	Healthy bool      `json:"healthy"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Count   int       `json:"count"`
}

// RollbackRecord is the outcome of one rollback.
type RollbackRecord struct {
	Time    time.Time `json:"time"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	Outcome string    `json:"outcome"`
	Error   string    `json:"error,omitempty"`
	// DurationSeconds from the start to verified health (or failure).
	DurationSeconds float64 `json:"duration_seconds"`
}

// Last is the version's latest health run, nil when never observed.
func (v *VersionState) Last() *HealthRun {
	if v == nil || len(v.Runs) == 0 {
		return nil
	}
	return &v.Runs[len(v.Runs)-1]
}

// HealthySince is the start of the version's unbroken healthy run since it
// was last activated; zero when it is not in one.
func (v *VersionState) HealthySince() time.Time {
	l := v.Last()
	if l == nil || !l.Healthy || l.From.Before(v.Activated) {
		return time.Time{}
	}
	return l.From
}

func (s *State) version(v string) *VersionState {
	if s.Versions == nil {
		s.Versions = map[string]*VersionState{}
	}
	vs := s.Versions[v]
	if vs == nil {
		vs = &VersionState{}
		s.Versions[v] = vs
	}
	return vs
}

// activate notes that v became current at now: its next observation
// starts a new run, so a healthy period never spans a deactivation.
func (s *State) activate(v string, now time.Time) {
	s.version(v).Activated = now
}

// record adds one observation of current version v and promotes v to LKG
// when it has been healthy for healthyFor.
func (s *State) record(v string, healthy bool, now time.Time, healthyFor time.Duration) {
	vs := s.version(v)
	if vs.Activated.IsZero() {
		vs.Activated = now // made current outside the registry (first sight)
	}
	l := vs.Last()
	if l != nil && l.Healthy == healthy && !l.To.Before(vs.Activated) && !now.Before(l.To) {
		l.To, l.Count = now, l.Count+1
	} else {
		vs.Runs = append(vs.Runs, HealthRun{Healthy: healthy, From: now, To: now, Count: 1})
		if len(vs.Runs) > maxRuns {
			vs.Runs = append(vs.Runs[:0], vs.Runs[len(vs.Runs)-maxRuns:]...)
		}
	}
	if since := vs.HealthySince(); !since.IsZero() && now.Sub(since) >= healthyFor && s.LastKnownGood != v {
		s.LastKnownGood, s.LKGSince = v, now
	}
}

func (s *State) addRollback(rec RollbackRecord) {
	s.Rollbacks++
	s.History = append(s.History, rec)
	if len(s.History) > maxRollbacks {
		s.History = append(s.History[:0], s.History[len(s.History)-maxRollbacks:]...)
	}
}

// VersionNames lists the versions the state knows, sorted.
func (s *State) VersionNames() []string {
	out := make([]string, 0, len(s.Versions))
	for v := range s.Versions {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

func (r *Registry) statePath() string { return filepath.Join(r.dir, "state.json") }

// State reads the state file; an absent file is an empty state.
func (r *Registry) State() (State, error) {
	var s State
	data, err := os.ReadFile(r.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("release %s: %w", r.name, err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("release %s: state file %s: %w", r.name, r.statePath(), err)
	}
	return s, nil
}

// withState runs f on the state under the state lock and writes the state
// back atomically when f succeeds.
func (r *Registry) withState(f func(*State) error) error {
	unlock, err := lockFile(filepath.Join(r.dir, ".state.lock"), true)
	if err != nil {
		return fmt.Errorf("release %s: state lock: %w", r.name, err)
	}
	defer unlock()
	s, err := r.State()
	if err != nil {
		return err
	}
	if err := f(&s); err != nil {
		return err
	}
	return r.writeState(&s)
}

// writeState replaces the state file atomically.
func (r *Registry) writeState(s *State) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("release %s: %w", r.name, err)
	}
	f, err := os.CreateTemp(r.dir, ".state.*.tmp")
	if err != nil {
		return fmt.Errorf("release %s: %w", r.name, err)
	}
	tmp := f.Name()
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, r.statePath())
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("release %s: write state: %w", r.name, err)
	}
	return syncDir(r.dir)
}
