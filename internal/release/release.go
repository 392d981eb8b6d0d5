// Package release is a release registry for one service or model on disk,
// with health history, last-known-good tracking and rollback.
//
// Layout under a root directory, per release name:
//
//	<root>/<name>/versions/<version>/...   one directory per deployed version
//	<root>/<name>/current -> versions/<v>  relative symlink, swapped atomically
//	<root>/<name>/state.json               health history, LKG, rollbacks
//	<root>/<name>/.state.lock              flock held for each state update
//	<root>/<name>/.rollback.lock           flock held for a whole rollback
//
// The service reads its files through `current`. Activate and Rollback
// replace the link by creating a new symlink under a temporary name and
// renaming it over `current` (rename(2) is atomic), so a reader always
// sees either the old or the new version, never a missing link.
//
// Last-known-good (LKG): a version becomes the LKG once it has been
// current and healthy, without an unhealthy observation in between, for
// HealthyFor (default 10m), counted from its first healthy observation
// after it was made current. Health is recorded by RecordHealth with the
// time passed in; the logic never reads the clock. The LKG stays the LKG
// until another version earns it.
//
// The state file is rewritten atomically (temporary file, fsync, rename)
// under the state lock, so concurrent writers (an agent recording health,
// an operator's CLI) never lose each other's updates.
package release

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// DefaultHealthyFor is how long a version must be current and healthy to
// become last-known-good when Registry.HealthyFor is zero.
const DefaultHealthyFor = 10 * time.Minute

// Errors a caller can test for with errors.Is.
var (
	ErrNoLKG          = errors.New("no last-known-good version")
	ErrAlreadyCurrent = errors.New("version is already current")
	ErrUnknownVersion = errors.New("unknown version")
	ErrBusy           = errors.New("another rollback or deploy is in progress")
	ErrNoCurrent      = errors.New("no current version")
	ErrVerifyFailed   = errors.New("health verification failed")
	ErrRestartFailed  = errors.New("restart hook failed")
)

// Registry is the release registry of one named service or model.
type Registry struct {
	// HealthyFor: how long a version must be current and healthy to
	// become last-known-good. Default DefaultHealthyFor.
	HealthyFor time.Duration

	root, name, dir string
}

// Open opens the registry of name under root, creating its directories
// when missing.
func Open(root, name string) (*Registry, error) {
	if err := validName(name); err != nil {
		return nil, fmt.Errorf("release name %q: %w", name, err)
	}
	if root == "" {
		return nil, errors.New("release registry: empty root")
	}
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Join(dir, "versions"), 0o755); err != nil {
		return nil, fmt.Errorf("release %s: %w", name, err)
	}
	return &Registry{root: root, name: name, dir: dir}, nil
}

// Name is the release's name.
func (r *Registry) Name() string { return r.name }

// Dir is the release's directory (<root>/<name>).
func (r *Registry) Dir() string { return r.dir }

// VersionDir is where version v's files live.
func (r *Registry) VersionDir(v string) string { return filepath.Join(r.dir, "versions", v) }

// CurrentPath is the path of the `current` symlink.
func (r *Registry) CurrentPath() string { return filepath.Join(r.dir, "current") }

func (r *Registry) healthyFor() time.Duration {
	if r.HealthyFor > 0 {
		return r.HealthyFor
	}
	return DefaultHealthyFor
}

// Versions lists the deployed versions (directories under versions/),
// sorted by name.
func (r *Registry) Versions() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(r.dir, "versions"))
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", r.name, err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && validName(e.Name()) == nil {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// Current is the version `current` points to; ErrNoCurrent when none.
func (r *Registry) Current() (string, error) {
	t, err := os.Readlink(r.CurrentPath())
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("release %s: %w", r.name, ErrNoCurrent)
	}
	if err != nil {
		return "", fmt.Errorf("release %s: %w", r.name, err)
	}
	v := filepath.Base(t)
	if filepath.Base(filepath.Dir(t)) != "versions" || validName(v) != nil {
		return "", fmt.Errorf("release %s: current points to %q, not to versions/<version>", r.name, t)
	}
	return v, nil
}

// Activate makes version v current (a deploy) at time now. Re-activating
// the current version changes nothing.
func (r *Registry) Activate(v string, now time.Time) error {
	if err := r.checkVersion(v); err != nil {
		return err
	}
	unlock, err := lockFile(filepath.Join(r.dir, ".rollback.lock"), false)
	if err != nil {
		return fmt.Errorf("release %s: activate %s: %w", r.name, v, err)
	}
	defer unlock()
	return r.withState(func(s *State) error {
		cur, err := r.Current()
		if err == nil && cur == v {
			return nil
		}
		if err := r.swap(v); err != nil {
			return err
		}
		s.activate(v, now)
		return nil
	})
}

// RecordHealth records one health observation of the current version at
// now, and makes it the last-known-good when it has been healthy long
// enough. It returns the current version.
func (r *Registry) RecordHealth(healthy bool, now time.Time) (string, error) {
	var cur string
	err := r.withState(func(s *State) error {
		var err error
		if cur, err = r.Current(); err != nil {
			return err
		}
		s.record(cur, healthy, now, r.healthyFor())
		return nil
	})
	return cur, err
}

// RecordHealthOf records an observation of version v made at now, only
// if v is still current (a check that started before a switch must not
// count for the new version); ok reports whether it was recorded.
func (r *Registry) RecordHealthOf(v string, healthy bool, now time.Time) (ok bool, err error) {
	err = r.withState(func(s *State) error {
		cur, err := r.Current()
		if err != nil {
			return err
		}
		if ok = cur == v; ok {
			s.record(cur, healthy, now, r.healthyFor())
		}
		return nil
	})
	return ok, err
}

// LastKnownGood is the last-known-good version; ErrNoLKG when none has
// earned it yet.
func (r *Registry) LastKnownGood() (string, error) {
	s, err := r.State()
	if err != nil {
		return "", err
	}
	if s.LastKnownGood == "" {
		return "", fmt.Errorf("release %s: %w (no version has been current and healthy for %s yet)", r.name, ErrNoLKG, r.healthyFor())
	}
	return s.LastKnownGood, nil
}

// checkVersion fails unless v names a deployed version.
func (r *Registry) checkVersion(v string) error {
	if err := validName(v); err != nil {
		return fmt.Errorf("release %s: version %q: %w", r.name, v, err)
	}
	fi, err := os.Stat(r.VersionDir(v))
	if err != nil || !fi.IsDir() {
		return fmt.Errorf("release %s: %w %q (no directory %s)", r.name, ErrUnknownVersion, v, r.VersionDir(v))
	}
	return nil
}

// swap points `current` at version v atomically: a new symlink under a
// temporary name renamed over the old one, then the directory synced.
func (r *Registry) swap(v string) error {
	tmp := filepath.Join(r.dir, fmt.Sprintf(".current.%d.tmp", os.Getpid()))
	os.Remove(tmp)
	if err := os.Symlink(filepath.Join("versions", v), tmp); err != nil {
		return fmt.Errorf("release %s: %w", r.name, err)
	}
	if err := os.Rename(tmp, r.CurrentPath()); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("release %s: switch current to %s: %w", r.name, v, err)
	}
	return syncDir(r.dir)
}

// validName accepts release and version names: 1-128 characters, no path
// separators, not starting with a dot.
func validName(s string) error {
	switch {
	case s == "":
		return errors.New("empty")
	case len(s) > 128:
		return errors.New("longer than 128 characters")
	case strings.HasPrefix(s, "."):
		return errors.New("starts with a dot")
	case strings.ContainsAny(s, `/\`+"\x00"):
		return errors.New("contains a path separator")
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
