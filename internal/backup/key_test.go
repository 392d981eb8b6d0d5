package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var newPassword = []byte("a new and longer passphrase")

// dataFiles is repoFiles without config.json and the lock file: what a
// password change must leave alone.
func dataFiles(t *testing.T, root string) map[string][]byte {
	m := repoFiles(t, root)
	delete(m, "/config.json")
	delete(m, "/lock")
	return m
}

func sameFiles(t *testing.T, what string, got, want map[string][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d files, want %d", what, len(got), len(want))
	}
	for k, v := range want {
		if !bytes.Equal(got[k], v) {
			t.Errorf("%s: %s changed", what, k)
		}
	}
}

func readConfig(t *testing.T, r *Repo) (raw []byte, c repoConfig) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(r.Path(), "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return raw, c
}

// restoresExactly restores s from the repository at path opened with pw
// and compares the result with src.
func restoresExactly(t *testing.T, path string, pw []byte, s *Snapshot, src string) {
	t.Helper()
	r, err := OpenWith(path, pw)
	if err != nil {
		t.Fatalf("open with %q: %v", pw, err)
	}
	target := t.TempDir()
	if _, err := r.Restore(context.Background(), s.ID, target, RestoreOptions{}); err != nil {
		t.Fatalf("restore with %q: %v", pw, err)
	}
	sameState(t, "restored", treeState(t, filepath.Join(target, filepath.FromSlash(entryPath(src)))), treeState(t, src))
}

// TestChangePassword: after a change the old password fails with
// ErrWrongPassword naming the repository, the new one restores exactly,
// nothing but config.json changed (same chunk ids: a new full backup
// stores nothing), the salt and wrapping are new, the scrypt parameters
// kept, and the Repo that made the change stays current and usable.
func TestChangePassword(t *testing.T) {
	ctx := context.Background()
	at := time.Unix(1.7e9, 0)
	r := newRepoWith(t, InitOptions{Encrypt: true, Password: testPassword, scryptLogN: 10})
	s, src := backupTree(t, r, "p", 4, at)
	before := dataFiles(t, r.Path())
	_, oldCfg := readConfig(t, r)

	if err := r.ChangePassword(ctx, []byte("not the password"), newPassword); !errors.Is(err, ErrWrongPassword) || !strings.Contains(err.Error(), r.Path()) {
		t.Errorf("change with a wrong current password: %v", err)
	}
	if err := r.ChangePassword(ctx, testPassword, newPassword); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, "after the change", dataFiles(t, r.Path()), before)
	_, cfg := readConfig(t, r)
	if bytes.Equal(cfg.Key.Salt, oldCfg.Key.Salt) || bytes.Equal(cfg.Key.Wrapped[:nonceSize], oldCfg.Key.Wrapped[:nonceSize]) {
		t.Error("the new wrapping reuses the old salt or nonce")
	}
	if cfg.Key.LogN != oldCfg.Key.LogN || cfg.Key.R != oldCfg.Key.R || cfg.Key.P != oldCfg.Key.P || cfg.Compression != oldCfg.Compression {
		t.Errorf("settings changed: %+v, was %+v", cfg, oldCfg)
	}
	_, err := OpenWith(r.Path(), testPassword)
	if !errors.Is(err, ErrWrongPassword) || !strings.Contains(err.Error(), r.Path()) {
		t.Errorf("old password after the change: %v", err)
	}
	restoresExactly(t, r.Path(), newPassword, s, src)

	if r.Stale() {
		t.Error("the Repo that changed the password reports itself stale")
	}
	s2, err := r.Backup(ctx, Options{Kind: Full, Paths: []string{src}, Time: at.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if s2.Stats.ChunksAdded != 0 || s2.Stats.BytesRead != s.Size {
		t.Errorf("full backup of the same data after the change: %+v (chunk ids changed?)", s2.Stats)
	}
	restoresExactly(t, r.Path(), newPassword, s2, src)

	// And back: the new password is now the current one.
	if err := r.ChangePassword(ctx, newPassword, testPassword); err != nil {
		t.Fatal(err)
	}
	restoresExactly(t, r.Path(), testPassword, s, src)
	if _, err := OpenWith(r.Path(), newPassword); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("the replaced password still opens: %v", err)
	}
}

// TestChangePasswordFailureKeepsOldConfig: a write of the new config.json
// that fails before its rename (the disk failing at the write or before
// the rename, or a directory that cannot be written) leaves the old
// config.json byte for byte and no temporary file; the old password still
// opens and restores, the new one does not, and the Repo stays usable. A
// failure to sync the directory after the rename is reported, with the
// new password in effect.
func TestChangePasswordFailureKeepsOldConfig(t *testing.T) {
	ctx := context.Background()
	at := time.Unix(1.7e9, 0)
	r := newRepoWith(t, InitOptions{Encrypt: true, Password: testPassword, scryptLogN: 10})
	s, src := backupTree(t, r, "f", 5, at)
	orig, _ := readConfig(t, r)
	injected := errors.New("injected: no space left on device")
	failAt := func(step string) {
		atomicFaultHook = func(path, st string) error {
			if filepath.Base(path) == "config.json" && st == step {
				return injected
			}
			return nil
		}
	}
	t.Cleanup(func() { atomicFaultHook = nil })
	unchanged := func(t *testing.T) {
		t.Helper()
		if raw, _ := readConfig(t, r); !bytes.Equal(raw, orig) {
			t.Error("config.json changed")
		}
		ents, _ := os.ReadDir(r.Path())
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".tmp-") {
				t.Errorf("left %s behind", e.Name())
			}
		}
		if _, err := OpenWith(r.Path(), newPassword); !errors.Is(err, ErrWrongPassword) {
			t.Errorf("the new password opens after a failed change: %v", err)
		}
		restoresExactly(t, r.Path(), testPassword, s, src)
		if r.Stale() {
			t.Error("Repo stale after a failed change")
		}
	}
	for _, step := range []string{"write", "rename"} {
		t.Run(step, func(t *testing.T) {
			failAt(step)
			err := r.ChangePassword(ctx, testPassword, newPassword)
			atomicFaultHook = nil
			if !errors.Is(err, injected) || !strings.Contains(err.Error(), "old password still holds") {
				t.Fatalf("change with a failing %s: %v", step, err)
			}
			unchanged(t)
		})
	}
	t.Run("read-only directory", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root writes into read-only directories")
		}
		if err := os.Chmod(r.Path(), 0o500); err != nil {
			t.Fatal(err)
		}
		err := r.ChangePassword(ctx, testPassword, newPassword)
		os.Chmod(r.Path(), 0o700)
		if err == nil {
			t.Fatal("changed the password in a read-only directory")
		}
		unchanged(t)
	})
	// The Repo still backs up after the failures.
	if _, err := r.Backup(ctx, Options{Kind: Incremental, Paths: []string{src}, Time: at.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	t.Run("syncdir", func(t *testing.T) {
		failAt("syncdir")
		err := r.ChangePassword(ctx, testPassword, newPassword)
		atomicFaultHook = nil
		if !errors.Is(err, injected) || !strings.Contains(err.Error(), "new password is in effect") {
			t.Fatalf("change with a failing directory sync: %v", err)
		}
		restoresExactly(t, r.Path(), newPassword, s, src)
		if r.Stale() {
			t.Error("Repo stale after the change")
		}
	})
}

// TestChangePasswordRefused: an unencrypted repository (either format),
// an empty new password, and a repository initialised anew since the Repo
// was opened are refused, and config.json stays as it was.
func TestChangePasswordRefused(t *testing.T) {
	ctx := context.Background()
	for _, f := range formats {
		if f.opts.Encrypt {
			continue
		}
		r := newRepoWith(t, f.opts)
		raw, _ := readConfig(t, r)
		if err := r.ChangePassword(ctx, testPassword, newPassword); !errors.Is(err, ErrNotEncrypted) || !strings.Contains(err.Error(), r.Path()) {
			t.Errorf("%s: %v", f.name, err)
		}
		if now, _ := readConfig(t, r); !bytes.Equal(now, raw) {
			t.Errorf("%s: config.json changed", f.name)
		}
	}
	opts := InitOptions{Encrypt: true, Password: testPassword, scryptLogN: 10}
	r := newRepoWith(t, opts)
	if err := r.ChangePassword(ctx, testPassword, nil); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty new password: %v", err)
	}
	// Initialised anew (same password, another master key) behind r's back.
	if err := os.RemoveAll(r.Path()); err != nil {
		t.Fatal(err)
	}
	if _, err := InitWith(r.Path(), opts); err != nil {
		t.Fatal(err)
	}
	raw, _ := readConfig(t, r)
	if err := r.ChangePassword(ctx, testPassword, newPassword); err == nil || !strings.Contains(err.Error(), "another key") {
		t.Errorf("repository initialised anew: %v", err)
	}
	if now, _ := readConfig(t, r); !bytes.Equal(now, raw) {
		t.Error("config.json changed")
	}
}
