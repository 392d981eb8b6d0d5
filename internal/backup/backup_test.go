package backup

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFullIncrementalDifferentialRestore backs up a changing tree three
// times and restores each snapshot, completely and in part, checking
// every file's bytes, mode and mtime against the tree at that time, in
// every repository format.
func TestFullIncrementalDifferentialRestore(t *testing.T) {
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) { testRoundTrip(t, newRepoWith(t, f.opts)) })
	}
}

func testRoundTrip(t *testing.T, r *Repo) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "data")
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	big := randBytes(1, 6<<20)
	writeFile(t, filepath.Join(src, "big.bin"), big, 0o644, t0)
	writeFile(t, filepath.Join(src, "app.log"), logBytes(1, 3<<20), 0o644, t0)
	writeFile(t, filepath.Join(src, "a.txt"), []byte("alpha"), 0o600, t0)
	writeFile(t, filepath.Join(src, "sub", "b.txt"), []byte("bravo"), 0o640, t0)
	writeFile(t, filepath.Join(src, "sub", "deep", "c.sh"), []byte("#!/bin/sh\necho c\n"), 0o755, t0)
	writeFile(t, filepath.Join(src, "empty"), nil, 0o644, t0)
	if err := os.Symlink("a.txt", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	want1 := treeState(t, src)
	s1, err := r.Backup(ctx, Options{Name: "db", Kind: Full, Paths: []string{src}, Time: t0})
	if err != nil {
		t.Fatal(err)
	}
	if s1.Kind != Full || s1.Stats.FilesNew != 6 || s1.Stats.BytesAdded < int64(len(big))+3<<20 {
		t.Fatalf("full: kind %s stats %+v", s1.Kind, s1.Stats)
	}

	// Step 2: add, modify (same size), delete.
	t1 := t0.Add(time.Hour)
	writeFile(t, filepath.Join(src, "new.txt"), []byte("new file"), 0o644, t1)
	writeFile(t, filepath.Join(src, "a.txt"), []byte("ALPHA"), 0o600, t1)
	if err := os.Remove(filepath.Join(src, "sub", "b.txt")); err != nil {
		t.Fatal(err)
	}
	want2 := treeState(t, src)
	s2, err := r.Backup(ctx, Options{Name: "db", Kind: Incremental, Paths: []string{src}, Time: t1})
	if err != nil {
		t.Fatal(err)
	}
	st := s2.Stats
	if s2.Kind != Incremental || s2.Parent != s1.ID || st.FilesNew != 1 || st.FilesChanged != 1 || st.FilesDeleted != 1 || st.BytesRead != int64(len("new file")+len("ALPHA")) {
		t.Fatalf("incremental: kind %s parent %s (want %s) stats %+v", s2.Kind, s2.Parent, s1.ID, st)
	}

	// Step 3: insert bytes at the front of big.bin (shifts every byte),
	// change c.sh's mode, add a file.
	t2 := t1.Add(time.Hour)
	shifted := append([]byte("inserted at the front"), big...)
	writeFile(t, filepath.Join(src, "big.bin"), shifted, 0o644, t2)
	writeFile(t, filepath.Join(src, "sub", "deep", "c.sh"), []byte("#!/bin/sh\necho c\n"), 0o700, t0)
	writeFile(t, filepath.Join(src, "sub", "z.txt"), []byte("zulu"), 0o644, t2)
	want3 := treeState(t, src)
	s3, err := r.Backup(ctx, Options{Name: "db", Kind: Differential, Paths: []string{src}, Time: t2})
	if err != nil {
		t.Fatal(err)
	}
	st = s3.Stats
	// Since the full: new.txt, z.txt new; a.txt, big.bin, c.sh changed; b.txt deleted.
	if s3.Kind != Differential || s3.Parent != s1.ID || st.FilesNew != 2 || st.FilesChanged != 3 || st.FilesDeleted != 1 {
		t.Fatalf("differential: kind %s parent %s stats %+v", s3.Kind, s3.Parent, st)
	}
	// Content-defined chunks: the shifted 6 MiB costs at most two new chunks.
	if st.BytesAdded > 2*maxChunk || st.BytesAdded >= int64(len(shifted)) {
		t.Errorf("differential stored %d new bytes for a shifted %d-byte file", st.BytesAdded, len(shifted))
	}
	t.Logf("differential after a front insertion: read %d bytes, stored %d (%d chunks)", st.BytesRead, st.BytesAdded, st.ChunksAdded)

	rel := strings.TrimPrefix(filepath.ToSlash(src), "/")
	for _, c := range []struct {
		s    *Snapshot
		want state
	}{{s1, want1}, {s2, want2}, {s3, want3}} {
		target := t.TempDir()
		var last, total int64
		res, err := r.Restore(ctx, c.s.ID, target, RestoreOptions{Progress: func(d, tot int64) { last, total = d, tot }})
		if err != nil {
			t.Fatalf("restore %s: %v", c.s.Kind, err)
		}
		sameState(t, "restore "+string(c.s.Kind), treeState(t, filepath.Join(target, rel)), c.want)
		if res.Bytes != c.s.Size || last != total || total != c.s.Size {
			t.Errorf("restore %s: %d bytes, progress %d/%d, snapshot size %d", c.s.Kind, res.Bytes, last, total, c.s.Size)
		}
	}

	// Partial restore of sub/ from the incremental snapshot.
	target := t.TempDir()
	if _, err := r.Restore(ctx, s2.ID[:16], target, RestoreOptions{Paths: []string{"/" + rel + "/sub"}}); err != nil {
		t.Fatal(err)
	}
	wantSub := state{}
	for k, v := range want2 {
		if strings.HasPrefix(k, "sub") {
			wantSub["sub"+strings.TrimPrefix(k, "sub")] = v
		}
	}
	sameState(t, "partial restore", treeState(t, filepath.Join(target, rel)), wantSub)
	if _, err := os.Stat(filepath.Join(target, rel, "a.txt")); !os.IsNotExist(err) {
		t.Errorf("partial restore wrote a.txt: %v", err)
	}
	if _, err := r.Restore(ctx, s2.ID, t.TempDir(), RestoreOptions{Paths: []string{rel + "/nope"}}); err == nil {
		t.Error("restore of a path not in the snapshot succeeded")
	}

	// Differential again with no change: nothing read.
	s4, err := r.Backup(ctx, Options{Name: "db", Kind: Incremental, Paths: []string{src}, Time: t2.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if s4.Stats.BytesRead != 0 || s4.Stats.FilesUnchanged != 7 || s4.Parent != s3.ID || s4.Stats.ChunksAdded != 0 {
		t.Errorf("unchanged incremental: parent %s stats %+v", s4.Parent, s4.Stats)
	}
}

func TestKindWithoutParentIsFull(t *testing.T) {
	r := newRepo(t)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "x"), []byte("x"), 0o644, time.Unix(1e9, 0))
	s, err := r.Backup(context.Background(), Options{Name: "p", Kind: Differential, Paths: []string{src}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Kind != Full || s.Parent != "" {
		t.Errorf("differential without a full: kind %s parent %q", s.Kind, s.Parent)
	}
	if _, err := r.Backup(context.Background(), Options{Kind: "weekly", Paths: []string{src}}); err == nil {
		t.Error("unknown kind accepted")
	}
	if _, err := Open(t.TempDir()); err == nil {
		t.Error("Open of an empty directory succeeded")
	}
	if _, err := Init(r.Path()); err == nil {
		t.Error("Init of an existing repository succeeded")
	}
}
