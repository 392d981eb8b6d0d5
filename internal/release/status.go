package release

import (
	"errors"
	"sort"
	"time"
)

// VersionStatus is what is known of one version.
type VersionStatus struct {
	Name    string
	Current bool
	LKG     bool
	// Deployed: its directory exists (a version may be known from the state
	// file after its directory was removed).
	Deployed  bool
	Activated time.Time
	// Observed: it has health observations; Healthy is the latest, seen
	// at LastSeen.
	Observed     bool
	Healthy      bool
	LastSeen     time.Time
	HealthySince time.Time
}

// Status is a registry's summary, for the CLI and the agent's collector.
type Status struct {
	Release       string
	Current       string // "" when none
	LastKnownGood string // "" when none
	LKGSince      time.Time
	Rollbacks     uint64
	Versions      []VersionStatus // sorted by name
	History       []RollbackRecord
}

// CurrentVersion is the status of the current version, nil when none.
func (s *Status) CurrentVersion() *VersionStatus {
	for i := range s.Versions {
		if s.Versions[i].Current {
			return &s.Versions[i]
		}
	}
	return nil
}

// Status reads the registry: versions on disk and in the state file,
// current, LKG and health.
func (r *Registry) Status() (Status, error) {
	st := Status{Release: r.name}
	deployed, err := r.Versions()
	if err != nil {
		return st, err
	}
	cur, err := r.Current()
	if err != nil && !errors.Is(err, ErrNoCurrent) {
		return st, err
	}
	s, err := r.State()
	if err != nil {
		return st, err
	}
	st.Current, st.LastKnownGood, st.LKGSince = cur, s.LastKnownGood, s.LKGSince
	st.Rollbacks, st.History = s.Rollbacks, s.History
	names := map[string]bool{}
	for _, v := range deployed {
		names[v] = true
	}
	all := append([]string(nil), deployed...)
	for _, v := range s.VersionNames() {
		if !names[v] {
			all = append(all, v)
		}
	}
	for _, v := range all {
		vs := VersionStatus{Name: v, Current: v == cur, LKG: v == s.LastKnownGood, Deployed: names[v]}
		if x := s.Versions[v]; x != nil {
			vs.Activated, vs.HealthySince = x.Activated, x.HealthySince()
			if l := x.Last(); l != nil {
				vs.Observed, vs.Healthy, vs.LastSeen = true, l.Healthy, l.To
			}
		}
		st.Versions = append(st.Versions, vs)
	}
	sort.Slice(st.Versions, func(i, j int) bool { return st.Versions[i].Name < st.Versions[j].Name })
	return st, nil
}
