package backup

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// backupTree writes a small tree with one multi-chunk file and backs it up.
func backupTree(t *testing.T, r *Repo, name string, seed uint64, at time.Time) (*Snapshot, string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), name)
	writeFile(t, filepath.Join(src, "blob"), randBytes(seed, 3<<20), 0o644, at)
	writeFile(t, filepath.Join(src, "note"), []byte(name), 0o644, at)
	s, err := r.Backup(context.Background(), Options{Name: name, Paths: []string{src}, Time: at})
	if err != nil {
		t.Fatal(err)
	}
	return s, src
}

func TestVerifyDetectsCorruptAndMissingChunks(t *testing.T) {
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) { testVerifyDamage(t, newRepoWith(t, f.opts)) })
	}
}

func testVerifyDamage(t *testing.T, r *Repo) {
	ctx := context.Background()
	s, _ := backupTree(t, r, "v", 3, time.Unix(1.7e9, 0))
	now := time.Unix(1.8e9, 0)
	rec, err := r.Verify(ctx, s.ID, now)
	if err != nil || !rec.OK || rec.Chunks < 2 || rec.Bytes != s.Size {
		t.Fatalf("clean verify: %+v, %v (size %d)", rec, err, s.Size)
	}
	blob := s.Files[1] // sorted walk: dir, blob, note
	if blob.Type != TypeFile || len(blob.Chunks) < 2 {
		t.Fatalf("unexpected entry %+v", blob)
	}
	bad, gone := blob.Chunks[0], blob.Chunks[1]
	p := r.chunkPath(bad)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(r.chunkPath(gone)); err != nil {
		t.Fatal(err)
	}
	rec, err = r.Verify(ctx, s.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	if rec.OK || len(rec.Corrupt) != 1 || rec.Corrupt[0] != bad || len(rec.Missing) != 1 || rec.Missing[0] != gone {
		t.Fatalf("verify after damage: %+v (corrupted %s, removed %s)", rec, bad[:12], gone[:12])
	}
	got, ok, err := r.Verified(s.ID)
	if err != nil || !ok || got.OK || !got.Time.Equal(now) {
		t.Errorf("recorded verification: %+v %v %v", got, ok, err)
	}
	if _, err := r.Restore(ctx, s.ID, t.TempDir(), RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("restore from a corrupt chunk: %v", err)
	}
}

func TestApplyKeep(t *testing.T) {
	base := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC) // a Monday
	var snaps []*Snapshot
	add := func(id string, at time.Time) {
		snaps = append(snaps, &Snapshot{ID: id, Name: "p", Time: at})
	}
	// Two a day at 06:00 and 18:00 for 15 days, and three in the last hour.
	for d := 0; d < 15; d++ {
		day := base.Add(time.Duration(d) * 24 * time.Hour)
		add(day.Format("0102")+"-06", day.Add(6*time.Hour))
		add(day.Format("0102")+"-18", day.Add(18*time.Hour))
	}
	last := base.Add(14*24*time.Hour + 18*time.Hour)
	add("last-10", last.Add(10*time.Minute))
	add("last-20", last.Add(20*time.Minute))
	snaps = append(snaps, &Snapshot{ID: "other", Name: "q", Time: base})

	keep, remove := ApplyKeep(snaps, Keep{Last: 2, Hourly: 2, Daily: 3, Weekly: 2})
	ids := func(l []*Snapshot) map[string]bool {
		m := map[string]bool{}
		for _, s := range l {
			m[s.ID] = true
		}
		return m
	}
	k := ids(keep)
	// last 2: last-20, last-10. hourly 2: last-20 (18h), 0316-06 (06h).
	// daily 3: last-20 (16th), 0315-18, 0314-18. weekly 2: last-20 (week of
	// the 16th), 0315-18 (week of the 9th). q's only snapshot: kept.
	want := []string{"last-20", "last-10", "0316-06", "0315-18", "0314-18", "other"}
	for _, id := range want {
		if !k[id] {
			t.Errorf("%s removed, want kept", id)
		}
	}
	if len(keep) != len(want) || len(remove) != len(snaps)-len(want) {
		t.Errorf("kept %v, want %v", k, want)
	}
	_, remove = ApplyKeep(snaps, Keep{Last: 100})
	if len(remove) != 0 {
		t.Errorf("keep last 100 removed %d", len(remove))
	}
}

func TestForgetPruneAndCopy(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t)
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var snaps []*Snapshot
	for i := 0; i < 4; i++ {
		s, _ := backupTree(t, r, "app", uint64(10+i), t0.Add(time.Duration(i)*24*time.Hour))
		snaps = append(snaps, s)
	}
	other, _ := backupTree(t, r, "other", 99, t0)

	// Copy everything to a second repository, then again: nothing new.
	r2 := newRepo(t)
	cp, err := r.Copy(ctx, r2, nil)
	if err != nil || len(cp.Snapshots) != 5 || cp.Chunks == 0 {
		t.Fatalf("copy: %+v %v", cp, err)
	}
	cp2, err := r.Copy(ctx, r2, nil)
	if err != nil || len(cp2.Snapshots) != 0 || cp2.Chunks != 0 {
		t.Fatalf("second copy: %+v %v", cp2, err)
	}
	for _, s := range []*Snapshot{snaps[0], other} {
		if rec, err := r2.Verify(ctx, s.ID, t0); err != nil || !rec.OK {
			t.Fatalf("copied %s: %+v %v", s.ID, rec, err)
		}
	}
	target := t.TempDir()
	if _, err := r2.Restore(ctx, snaps[3].ID, target, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}

	res, err := r.Forget(ctx, "app", Keep{Last: 2}, true, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Remove) != 2 || res.Remove[0].ID != snaps[1].ID || res.Remove[1].ID != snaps[0].ID {
		t.Fatalf("forget removed %v", res.Remove)
	}
	if res.PrunedChunks == 0 || res.PrunedBytes < 2*(3<<20) {
		t.Errorf("prune removed %d chunks, %d bytes; want at least two 3 MiB blobs", res.PrunedChunks, res.PrunedBytes)
	}
	left, _ := r.Snapshots()
	if len(left) != 3 {
		t.Fatalf("%d snapshots left, want 3", len(left))
	}
	for _, s := range left {
		if rec, err := r.Verify(ctx, s.ID, t0); err != nil || !rec.OK {
			t.Errorf("after prune %s: %+v %v", s.ID, rec, err)
		}
	}
	if _, err := r.Snapshot(snaps[0].ID); err == nil {
		t.Error("forgotten snapshot still loads")
	}
	if _, err := r.Forget(ctx, "", Keep{}, false, false); err == nil {
		t.Error("forget with an empty policy succeeded")
	}
}

func TestHooks(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), []byte("f"), 0o644, time.Unix(1e9, 0))
	out := filepath.Join(t.TempDir(), "post.out")
	post := &Hook{Program: "sh", Args: []string{"-c", `echo "$VIGIL_BACKUP_STATUS $VIGIL_SNAPSHOT_ID" > "$0"`, out}}
	marker := filepath.Join(t.TempDir(), "pre.ran")
	pre := &Hook{Program: "touch", Args: []string{marker}}
	s, err := r.Backup(ctx, Options{Paths: []string{src}, Pre: pre, Post: post})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("pre hook did not run: %v", err)
	}
	if b, _ := os.ReadFile(out); strings.TrimSpace(string(b)) != "ok "+s.ID {
		t.Errorf("post hook wrote %q, want %q", b, "ok "+s.ID)
	}

	_, err = r.Backup(ctx, Options{Paths: []string{src}, Pre: &Hook{Program: "sh", Args: []string{"-c", "echo db not quiesced; exit 3"}}, Post: post})
	if err == nil || !strings.Contains(err.Error(), "pre hook") || !strings.Contains(err.Error(), "db not quiesced") {
		t.Fatalf("failing pre hook: %v", err)
	}
	if all, _ := r.Snapshots(); len(all) != 1 {
		t.Errorf("%d snapshots after an aborted backup, want 1", len(all))
	}
	slow := &Hook{Program: "sleep", Args: []string{"10"}, Timeout: 100 * time.Millisecond}
	start := time.Now()
	if _, err := r.Backup(ctx, Options{Paths: []string{src}, Pre: slow}); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("slow pre hook: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("hook timeout took %s", d)
	}
	if _, err := r.Backup(ctx, Options{Paths: []string{src}, Pre: &Hook{Program: "/nonexistent/hook"}}); err == nil {
		t.Error("missing hook program accepted")
	}
}
