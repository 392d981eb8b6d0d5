package agent

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-sre/vigil/internal/backup"
	"github.com/vigil-sre/vigil/internal/wire"
)

// BackupConfig is the agent's `backup:` section: one repository on a local
// path (a mounted remote file system works) and the policies the host
// actions "backup" and "restore" may run. The "backup" collector
// (backup_collector.go) publishes each policy's state every tick.
type BackupConfig struct {
	// Repository path; created (initialised) by the first backup when it
	// does not exist: format 2, zstd-compressed, and encrypted when
	// password_file is set.
	Repository string `yaml:"repository"`
	// PasswordFile: a file (keep it mode 0600, owned by the agent's user) holding
	// the password of the encrypted repository (its content without one
	// trailing newline). Read at load, to check it, and whenever the
	// repository is opened. Also used for copy_to repositories. An
	// existing unencrypted repository ignores it and stays unencrypted.
	// Default none: the repository is not encrypted.
	PasswordFile string `yaml:"password_file"`
	// Verify each snapshot (re-read every chunk) right after taking it.
	// Default true: age_seconds counts from the last verified snapshot.
	Verify *bool `yaml:"verify"`
	// RestoreRoots: a restore's target must be one of these directories or
	// below one. Default none: the restore action refuses every target.
	RestoreRoots []string `yaml:"restore_roots"`
	// Policies, each a named set of paths.
	Policies []BackupPolicy `yaml:"policies"`
}

// BackupPolicy is one named backup of a set of paths.
type BackupPolicy struct {
	// Name: the snapshot name and the service tag of the backup
	// measurement. Required, unique.
	Name  string   `yaml:"name"`
	Paths []string `yaml:"paths"`
	// Kind when the command does not say: full (default), incremental or
	// differential.
	Kind string `yaml:"kind"`
	// Keep: retention applied after every successful backup of this
	// policy, then unused chunks are pruned. Default: keep everything.
	Keep backup.Keep `yaml:"keep"`
	// CopyTo: a second repository every new snapshot is copied to
	// (de-duplicated). Default none.
	CopyTo   string      `yaml:"copy_to"`
	PreHook  *HookConfig `yaml:"pre_hook"`
	PostHook *HookConfig `yaml:"post_hook"`
}

// HookConfig is a program with arguments, run without a shell. A failing
// pre_hook aborts the backup.
type HookConfig struct {
	Program string   `yaml:"program"`
	Args    []string `yaml:"args"`
	// Timeout: default 5m.
	Timeout time.Duration `yaml:"timeout"`
}

func (h *HookConfig) hook() *backup.Hook {
	if h == nil {
		return nil
	}
	return &backup.Hook{Program: h.Program, Args: h.Args, Timeout: h.Timeout}
}

func (c *BackupConfig) withDefaults() {
	if c.Verify == nil {
		t := true
		c.Verify = &t
	}
	for i := range c.Policies {
		if c.Policies[i].Kind == "" {
			c.Policies[i].Kind = string(backup.Full)
		}
	}
}

func (c *BackupConfig) validate(bad badFunc) {
	if c.Repository == "" {
		bad("backup.repository", "backup.repository must be set")
	}
	if c.PasswordFile != "" {
		if !filepath.IsAbs(c.PasswordFile) {
			bad("backup.password_file", "backup.password_file: %q is not an absolute path", c.PasswordFile)
		} else if _, err := backup.ReadPasswordFile(c.PasswordFile); err != nil {
			bad("backup.password_file", "backup.password_file: %v", err)
		}
	}
	for i, r := range c.RestoreRoots {
		if !filepath.IsAbs(r) {
			bad(fmt.Sprintf("backup.restore_roots[%d]", i), "backup.restore_roots: %q is not an absolute path", r)
		}
	}
	if len(c.Policies) == 0 {
		bad("backup.policies", "backup.policies: at least one policy is needed")
	}
	seen := map[string]bool{}
	for i, p := range c.Policies {
		at := fmt.Sprintf("backup.policies[%d]", i)
		switch {
		case p.Name == "" || strings.ContainsAny(p.Name, " ,=\"\\/"):
			bad(at+".name", "%s.name %q: want a name without spaces, commas, quotes, slashes or '='", at, p.Name)
		case seen[p.Name]:
			bad(at+".name", "%s.name %q is listed twice", at, p.Name)
		}
		seen[p.Name] = true
		if len(p.Paths) == 0 {
			bad(at+".paths", "%s.paths: at least one path is needed", at)
		}
		for _, path := range p.Paths {
			if !filepath.IsAbs(path) {
				bad(at+".paths", "%s.paths: %q is not an absolute path", at, path)
			}
		}
		if _, err := backup.ParseKind(p.Kind); err != nil {
			bad(at+".kind", "%s.kind: %v", at, err)
		}
		k := p.Keep
		if k.Last < 0 || k.Hourly < 0 || k.Daily < 0 || k.Weekly < 0 || k.Monthly < 0 {
			bad(at+".keep", "%s.keep: counts must not be negative", at)
		}
		for key, h := range map[string]*HookConfig{"pre_hook": p.PreHook, "post_hook": p.PostHook} {
			if h != nil && (h.Program == "" || h.Timeout < 0) {
				bad(at+"."+key, "%s.%s: program must be set and timeout not negative", at, key)
			}
		}
	}
}

// Backups is the agent's side of backups: the "backup" and "restore" host
// actions and the "backup" collector, over one repository.
//
// Host action "backup", params policy (optional with one policy) and kind
// (default the policy's): runs the pre hook (its failure aborts), takes
// the snapshot, runs the post hook, verifies it (backup.verify), applies
// the policy's keep and prunes, copies to copy_to. A command whose id
// already made a snapshot returns that snapshot again (idempotent per
// command id). Result: snapshot, kind, parent, files, size_bytes,
// bytes_read, bytes_added, duration_seconds, mb_per_s, verified, forgot.
//
// Host action "restore", params snapshot (an id or "latest", default
// latest), policy (picks "latest" among that policy's snapshots), paths
// (comma-separated; default everything) and target (required, under one
// of backup.restore_roots). Result: snapshot, files, bytes,
// duration_seconds, mb_per_s.
type Backups struct {
	cfg BackupConfig
	log *slog.Logger
	col *backupCollector

	mu     sync.Mutex
	repos  map[string]*backup.Repo // open repositories by path (key derivation is slow on purpose)
	failed map[string]openFailure  // the last password failure by path
}

// openFailure is a repository that would not open with the configured
// password; memo hashes its config.json and that password.
type openFailure struct {
	memo [32]byte
	err  error
}

// NewBackups builds the backup actions and collector for cfg.
func NewBackups(cfg BackupConfig, log *slog.Logger) *Backups {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.withDefaults()
	b := &Backups{cfg: cfg, log: log}
	b.col = &backupCollector{b: b, cache: map[string]snapSummary{}}
	return b
}

// Actions are the "backup" and "restore" host actions.
func (b *Backups) Actions() []HostAction { return []HostAction{backupAction{b}, restoreAction{b}} }

// Collector is the "backup" collector.
func (b *Backups) Collector() Collector { return b.col }

func (b *Backups) policy(name string) (*BackupPolicy, error) {
	var names []string
	for i := range b.cfg.Policies {
		p := &b.cfg.Policies[i]
		if p.Name == name || (name == "" && len(b.cfg.Policies) == 1) {
			return p, nil
		}
		names = append(names, p.Name)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("backup: unknown policy %q (configured: %s)", name, strings.Join(names, ", "))
}

// open opens the repository at path with the configured password,
// initialising it when create is set and it does not exist yet (encrypted
// when a password is configured). An opened repository is kept while its
// config.json stays the same, so the password's key derivation (scrypt,
// about 0.1 s) does not run on every collector tick.
func (b *Backups) open(path string, create bool) (*backup.Repo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if r := b.repos[path]; r != nil && !r.Stale() {
		return r, nil
	}
	var pw []byte
	if b.cfg.PasswordFile != "" {
		var err error
		if pw, err = backup.ReadPasswordFile(b.cfg.PasswordFile); err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
	}
	// A wrong or missing password fails the same way until the password file
	// or the repository's config.json changes: do not pay the key derivation
	// again on every tick.
	conf, _ := os.ReadFile(filepath.Join(path, "config.json"))
	memo := sha256.Sum256(append(append(append([]byte(nil), conf...), 0), pw...))
	if f, ok := b.failed[path]; ok && f.memo == memo {
		return nil, f.err
	}
	r, err := backup.OpenWith(path, pw)
	if create && errors.Is(err, backup.ErrNotRepo) {
		r, err = backup.InitWith(path, backup.InitOptions{Encrypt: pw != nil, Password: pw})
	}
	if errors.Is(err, backup.ErrPasswordRequired) {
		err = fmt.Errorf("%w (set backup.password_file)", err)
	}
	if errors.Is(err, backup.ErrPasswordRequired) || errors.Is(err, backup.ErrWrongPassword) {
		if b.failed == nil {
			b.failed = map[string]openFailure{}
		}
		b.failed[path] = openFailure{memo: memo, err: err}
	}
	if err != nil {
		return nil, err
	}
	delete(b.failed, path)
	if b.repos == nil {
		b.repos = map[string]*backup.Repo{}
	}
	b.repos[path] = r
	return r, nil
}

type backupAction struct{ b *Backups }

func (backupAction) Name() string     { return "backup" }
func (backupAction) Params() []string { return []string{"policy", "kind"} }

func (a backupAction) Run(ctx context.Context, cmd *wire.Command, progress func(float64, string)) (map[string]string, error) {
	b := a.b
	p, err := b.policy(cmd.Params["policy"])
	if err != nil {
		return nil, err
	}
	kind, err := backup.ParseKind(firstNonEmpty(cmd.Params["kind"], p.Kind))
	if err != nil {
		return nil, err
	}
	repo, err := b.open(b.cfg.Repository, true)
	if err != nil {
		return nil, err
	}
	snap, err := findOrigin(repo, cmd.ID)
	if err != nil {
		return nil, err
	}
	if snap == nil {
		progress(0, "backup "+p.Name+" ("+string(kind)+")")
		snap, err = repo.Backup(ctx, backup.Options{
			Name: p.Name, Kind: kind, Paths: p.Paths, Origin: cmd.ID,
			Pre: p.PreHook.hook(), Post: p.PostHook.hook(),
			Progress: func(done, total int64) {
				if total > 0 {
					progress(0.8*float64(done)/float64(total), "reading")
				}
			},
		})
		if err != nil {
			return nil, err
		}
	}
	res := map[string]string{
		"snapshot": snap.ID, "kind": string(snap.Kind), "parent": snap.Parent,
		"snapshot_time": snap.Time.UTC().Format(time.RFC3339Nano),
		"files":         strconv.Itoa(snap.Stats.FilesNew + snap.Stats.FilesChanged + snap.Stats.FilesUnchanged),
		"size_bytes":    strconv.FormatInt(snap.Size, 10), "bytes_read": strconv.FormatInt(snap.Stats.BytesRead, 10),
		"bytes_added": strconv.FormatInt(snap.Stats.BytesAdded, 10), "duration_seconds": fmt.Sprintf("%.3f", snap.Duration),
		"mb_per_s": fmt.Sprintf("%.1f", float64(snap.Stats.BytesRead)/1e6/max(snap.Duration, 1e-6)),
	}
	if *b.cfg.Verify {
		progress(0.85, "verifying")
		rec, err := repo.Verify(ctx, snap.ID, time.Now())
		if err != nil {
			return res, err
		}
		res["verified"] = strconv.FormatBool(rec.OK)
		if !rec.OK {
			return res, fmt.Errorf("backup %s: verification failed: %d missing, %d corrupt chunks", snap.ID, len(rec.Missing), len(rec.Corrupt))
		}
	}
	if !p.Keep.IsZero() {
		progress(0.9, "retention")
		fr, err := repo.Forget(ctx, p.Name, p.Keep, true, false)
		if err != nil {
			return res, err
		}
		res["forgot"] = strconv.Itoa(len(fr.Remove))
	}
	if p.CopyTo != "" {
		progress(0.95, "copy to "+p.CopyTo)
		dst, err := b.open(p.CopyTo, true)
		if err == nil {
			_, err = repo.Copy(ctx, dst, []string{snap.ID})
		}
		if err != nil {
			return res, fmt.Errorf("backup %s: copy: %w", snap.ID, err)
		}
	}
	progress(1, "done")
	return res, nil
}

// findOrigin returns the snapshot made for command id, if any.
func findOrigin(repo *backup.Repo, id string) (*backup.Snapshot, error) {
	if id == "" {
		return nil, nil
	}
	all, err := repo.Snapshots()
	if err != nil {
		return nil, err
	}
	for _, s := range all {
		if s.Origin == id {
			return s, nil
		}
	}
	return nil, nil
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

type restoreAction struct{ b *Backups }

func (restoreAction) Name() string     { return "restore" }
func (restoreAction) Params() []string { return []string{"snapshot", "policy", "paths", "target"} }

func (a restoreAction) Run(ctx context.Context, cmd *wire.Command, progress func(float64, string)) (map[string]string, error) {
	b := a.b
	target, err := b.checkTarget(cmd.Params["target"])
	if err != nil {
		return nil, err
	}
	repo, err := b.open(b.cfg.Repository, false)
	if err != nil {
		return nil, err
	}
	id := firstNonEmpty(cmd.Params["snapshot"], "latest")
	if id == "latest" {
		if id, err = latest(repo, cmd.Params["policy"]); err != nil {
			return nil, err
		}
	}
	var paths []string
	for _, p := range strings.Split(cmd.Params["paths"], ",") {
		if p = strings.TrimSpace(p); p != "" {
			paths = append(paths, p)
		}
	}
	progress(0, "restore "+id)
	res, err := repo.Restore(ctx, id, target, backup.RestoreOptions{Paths: paths, Progress: func(done, total int64) {
		if total > 0 {
			progress(float64(done)/float64(total), "writing")
		}
	}})
	if err != nil {
		return nil, err
	}
	out := map[string]string{
		"snapshot": res.Snapshot, "files": strconv.Itoa(res.Files), "bytes": strconv.FormatInt(res.Bytes, 10),
		"duration_seconds": fmt.Sprintf("%.3f", res.Duration.Seconds()), "mb_per_s": fmt.Sprintf("%.1f", res.MBps()),
	}
	if snap, err := repo.Snapshot(res.Snapshot); err == nil {
		out["snapshot_time"] = snap.Time.UTC().Format(time.RFC3339Nano)
	}
	return out, nil
}

// checkTarget accepts an absolute target under one of the restore roots.
func (b *Backups) checkTarget(t string) (string, error) {
	if t == "" || !filepath.IsAbs(t) {
		return "", fmt.Errorf("restore: param target must be an absolute path, got %q", t)
	}
	t = filepath.Clean(t)
	for _, root := range b.cfg.RestoreRoots {
		if rel, err := filepath.Rel(filepath.Clean(root), t); err == nil && filepath.IsLocal(rel) {
			return t, nil
		}
	}
	return "", fmt.Errorf("restore: target %s is not under backup.restore_roots (%s)", t, strings.Join(b.cfg.RestoreRoots, ", "))
}

// latest is the id of the newest snapshot (of policy, when set).
func latest(repo *backup.Repo, policy string) (string, error) {
	all, err := repo.Snapshots()
	if err != nil {
		return "", err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if policy == "" || all[i].Name == policy {
			return all[i].ID, nil
		}
	}
	return "", fmt.Errorf("restore: no snapshot of policy %q", policy)
}

// addBackup adds the backup collector and host actions when backup: is set.
func (a *Agent) addBackup() error {
	if a.cfg.Backup == nil {
		return nil
	}
	b := NewBackups(*a.cfg.Backup, a.log.With("component", "backup"))
	for _, act := range b.Actions() {
		if err := a.actions.Add(act); err != nil {
			return err
		}
	}
	a.addRunner(b.Collector(), min(a.cfg.Interval/2, 5*time.Second))
	return nil
}

var (
	_ HostAction = backupAction{}
	_ HostAction = restoreAction{}
)
