package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestBackupCLI drives vigil backup and vigil restore on real directories.
func TestBackupCLI(t *testing.T) {
	dir := t.TempDir()
	repo, repo2, src := filepath.Join(dir, "repo"), filepath.Join(dir, "repo2"), filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	write("a.txt", "one")
	write("sub/b.txt", "two")
	vigil := func(want int, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != want {
			t.Fatalf("vigil %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out.String(), errb.String())
		}
		return out.String()
	}
	vigil(0, "backup", "init", repo)
	idRe := regexp.MustCompile(`snapshot (\S+) \((\w+)`)
	out := vigil(0, "backup", "run", "--repo", repo, "--kind", "full", "--verify", src)
	m := idRe.FindStringSubmatch(out)
	if m == nil || m[2] != "full" || !strings.Contains(out, ": ok,") {
		t.Fatalf("backup run printed %q", out)
	}
	full := m[1]
	write("a.txt", "one, changed")
	out = vigil(0, "backup", "run", "--repo", repo, "--kind", "incremental", "--quiet", src)
	if m = idRe.FindStringSubmatch(out); m == nil || m[2] != "incremental" || !strings.Contains(out, "changed 1, unchanged 1") {
		t.Fatalf("incremental printed %q", out)
	}
	if out = vigil(0, "backup", "list", "--repo", repo); strings.Count(out, "\n") != 3 || !strings.Contains(out, full) {
		t.Errorf("list:\n%s", out)
	}
	vigil(2, "backup", "run", "--repo", repo, "--kind", "weekly", src)

	target := filepath.Join(dir, "restored")
	out = vigil(0, "restore", "--repo", repo, "--snapshot", full, "--target", target, "--path", filepath.Join(src, "a.txt"))
	if !strings.Contains(out, "1 files") || !strings.Contains(out, "MB/s") {
		t.Errorf("restore printed %q", out)
	}
	got, err := os.ReadFile(filepath.Join(target, src, "a.txt"))
	if err != nil || string(got) != "one" {
		t.Errorf("restored a.txt = %q, %v; want the full snapshot's content", got, err)
	}
	if _, err := os.Stat(filepath.Join(target, src, "sub")); !os.IsNotExist(err) {
		t.Errorf("partial restore wrote sub: %v", err)
	}

	if out = vigil(0, "backup", "copy", "--repo", repo, "--to", repo2); !strings.Contains(out, "copied 2 snapshots") {
		t.Errorf("copy printed %q", out)
	}
	vigil(0, "backup", "verify", "--repo", repo2)
	out = vigil(0, "backup", "forget", "--repo", repo, "--keep-last", "1", "--prune")
	if !strings.Contains(out, "removed  "+full) || !strings.Contains(out, "pruned 1 chunks") {
		t.Errorf("forget printed %q", out)
	}

	// Damage a chunk in the copy: verify fails with exit 1 and names it.
	var chunk string
	filepath.WalkDir(filepath.Join(repo2, "chunks"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && chunk == "" {
			chunk = p
		}
		return nil
	})
	if err := os.WriteFile(chunk, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out = vigil(1, "backup", "verify", "--repo", repo2); !strings.Contains(out, "corrupt chunk "+filepath.Base(chunk)) {
		t.Errorf("verify of a damaged repository printed %q", out)
	}
}

// TestBackupCLIEncrypted: init --encrypt, the password from the
// environment or a file, wrong and missing passwords, copy to a new
// repository (encrypted like the source), and a damaged manifest.
func TestBackupCLIEncrypted(t *testing.T) {
	dir := t.TempDir()
	repo, repo2, src := filepath.Join(dir, "repo"), filepath.Join(dir, "repo2"), filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "secret.txt"), []byte(strings.Repeat("top secret line\n", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VIGIL_BACKUP_PASSWORD", "")
	t.Setenv("VIGIL_BACKUP_PASSWORD_FILE", "")
	vigil := func(want int, args ...string) (string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != want {
			t.Fatalf("vigil %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out.String(), errb.String())
		}
		return out.String(), errb.String()
	}
	if _, e := vigil(2, "backup", "init", "--encrypt", repo); !strings.Contains(e, "needs a password") {
		t.Errorf("init --encrypt without a password: %q", e)
	}
	if out, _ := vigil(0, "backup", "init", "--encrypt", "--password-file", pwFile, repo); !strings.Contains(out, "encrypted") {
		t.Errorf("init printed %q", out)
	}
	if _, e := vigil(1, "backup", "run", "--repo", repo, src); !strings.Contains(e, "no password") || !strings.Contains(e, repo) {
		t.Errorf("run without a password: %q", e)
	}
	t.Setenv("VIGIL_BACKUP_PASSWORD", "wrong")
	if _, e := vigil(1, "backup", "run", "--repo", repo, src); !strings.Contains(e, "wrong password") || !strings.Contains(e, repo) {
		t.Errorf("run with a wrong password: %q", e)
	}
	if ents, _ := os.ReadDir(filepath.Join(repo, "snapshots")); len(ents) != 0 {
		t.Errorf("a wrong password wrote %d manifests", len(ents))
	}
	t.Setenv("VIGIL_BACKUP_PASSWORD", "s3cret passphrase") // the file's content without its newline
	out, _ := vigil(0, "backup", "run", "--repo", repo, "--verify", src)
	m := regexp.MustCompile(`snapshot (\S+) \(full`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, ": ok,") {
		t.Fatalf("backup run printed %q", out)
	}
	id := m[1]
	if out, _ = vigil(0, "backup", "copy", "--repo", repo, "--to", repo2); !strings.Contains(out, "copied 1 snapshots") {
		t.Errorf("copy printed %q", out)
	}
	t.Setenv("VIGIL_BACKUP_PASSWORD", "")
	if _, e := vigil(1, "backup", "list", "--repo", repo2); !strings.Contains(e, "no password") {
		t.Errorf("the copy is not encrypted: %q", e)
	}
	target := filepath.Join(dir, "restored")
	vigil(0, "restore", "--repo", repo2, "--password-file", pwFile, "--snapshot", id, "--target", target)
	if got, err := os.ReadFile(filepath.Join(target, src, "secret.txt")); err != nil || !strings.HasPrefix(string(got), "top secret line\n") || len(got) != 16000 {
		t.Errorf("restored %d bytes, %v", len(got), err)
	}
	// A damaged manifest: verify names the snapshot, exit 1.
	mp := filepath.Join(repo2, "snapshots", id+".snap")
	b, err := os.ReadFile(mp)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1
	if err := os.WriteFile(mp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, _ = vigil(1, "backup", "verify", "--repo", repo2, "--password-file", pwFile); !strings.Contains(out, "snapshot "+id+" is corrupt: failed authentication") {
		t.Errorf("verify of a damaged manifest printed %q", out)
	}
	// A password without --encrypt is refused, not ignored; an unencrypted
	// repository copied to a new one with --to-password-file is encrypted.
	plain, enc := filepath.Join(dir, "plain"), filepath.Join(dir, "plain-enc")
	if _, e := vigil(2, "backup", "init", "--password-file", pwFile, plain); !strings.Contains(e, "without --encrypt") {
		t.Errorf("init --password-file without --encrypt: %q", e)
	}
	vigil(0, "backup", "init", plain)
	vigil(0, "backup", "run", "--repo", plain, src)
	vigil(0, "backup", "copy", "--repo", plain, "--to", enc, "--to-password-file", pwFile)
	if _, e := vigil(1, "backup", "list", "--repo", enc); !strings.Contains(e, "no password") {
		t.Errorf("the copy of an unencrypted repository with --to-password-file is not encrypted: %q", e)
	}
	if out, _ = vigil(0, "backup", "list", "--repo", enc, "--password-file", pwFile); !strings.Contains(out, "full") {
		t.Errorf("list of the encrypted copy printed %q", out)
	}
}

// TestBackupCLIKeyPasswd: key passwd takes the current password as every
// command does and the new one from --new-password-file or the
// environment, never as an argument; afterwards only the new password
// opens the repository and the snapshot restores; unencrypted
// repositories and a missing new password are refused.
func TestBackupCLIKeyPasswd(t *testing.T) {
	dir := t.TempDir()
	repo, plain, src := filepath.Join(dir, "repo"), filepath.Join(dir, "plain"), filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	content := strings.Repeat("rotate me\n", 5000)
	if err := os.WriteFile(filepath.Join(src, "f.txt"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	oldFile, newFile := filepath.Join(dir, "old.pw"), filepath.Join(dir, "new.pw")
	os.WriteFile(oldFile, []byte("old passphrase\n"), 0o600)
	os.WriteFile(newFile, []byte("new passphrase\n"), 0o600)
	for _, k := range []string{"VIGIL_BACKUP_PASSWORD", "VIGIL_BACKUP_PASSWORD_FILE", "VIGIL_BACKUP_NEW_PASSWORD", "VIGIL_BACKUP_NEW_PASSWORD_FILE", "VIGIL_BACKUP_REPO"} {
		t.Setenv(k, "")
	}
	vigil := func(want int, args ...string) (string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != want {
			t.Fatalf("vigil %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out.String(), errb.String())
		}
		return out.String(), errb.String()
	}
	vigil(0, "backup", "init", "--encrypt", "--password-file", oldFile, repo)
	out, _ := vigil(0, "backup", "run", "--repo", repo, "--password-file", oldFile, "--quiet", src)
	m := regexp.MustCompile(`snapshot (\S+) \(full`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("backup run printed %q", out)
	}
	if _, e := vigil(2, "backup", "key", "passwd", "--repo", repo, "--password-file", oldFile); !strings.Contains(e, "no new password") {
		t.Errorf("no new password: %q", e)
	}
	vigil(2, "backup", "key", "passwd", "--repo", repo, "--password-file", oldFile, "new passphrase")
	vigil(2, "backup", "key", "rotate", "--repo", repo)
	if _, e := vigil(1, "backup", "key", "passwd", "--repo", repo, "--password-file", newFile, "--new-password-file", newFile); !strings.Contains(e, "wrong password") || !strings.Contains(e, repo) {
		t.Errorf("wrong current password: %q", e)
	}
	if out, _ = vigil(0, "backup", "key", "passwd", "--repo", repo, "--password-file", oldFile, "--new-password-file", newFile); !strings.Contains(out, "changed the password of "+repo) {
		t.Errorf("key passwd printed %q", out)
	}
	if _, e := vigil(1, "backup", "list", "--repo", repo, "--password-file", oldFile); !strings.Contains(e, "wrong password") || !strings.Contains(e, repo) {
		t.Errorf("old password after the change: %q", e)
	}
	target := filepath.Join(dir, "restored")
	vigil(0, "restore", "--repo", repo, "--password-file", newFile, "--snapshot", m[1], "--target", target, "--quiet")
	if got, err := os.ReadFile(filepath.Join(target, src, "f.txt")); err != nil || string(got) != content {
		t.Errorf("restored %d bytes, %v", len(got), err)
	}
	// From the environment: current from VIGIL_BACKUP_PASSWORD_FILE, new
	// from VIGIL_BACKUP_NEW_PASSWORD.
	t.Setenv("VIGIL_BACKUP_PASSWORD_FILE", newFile)
	t.Setenv("VIGIL_BACKUP_NEW_PASSWORD", "third passphrase")
	vigil(0, "backup", "key", "passwd", "--repo", repo)
	t.Setenv("VIGIL_BACKUP_PASSWORD_FILE", "")
	t.Setenv("VIGIL_BACKUP_PASSWORD", "third passphrase")
	vigil(0, "backup", "verify", "--repo", repo)

	vigil(0, "backup", "init", plain)
	if _, e := vigil(1, "backup", "key", "passwd", "--repo", plain); !strings.Contains(e, "not encrypted") {
		t.Errorf("unencrypted repository: %q", e)
	}
}
