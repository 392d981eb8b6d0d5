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
