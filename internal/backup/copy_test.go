package backup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// copyPairs are the source and destination formats copy tests run with:
// the same chunk ids on both sides, and ids translated.
var copyPairs = []struct {
	name     string
	src, dst InitOptions
}{
	{"v2-zstd-to-v2-zstd", InitOptions{}, InitOptions{}},
	{"v1-to-v2-encrypted", InitOptions{Version: 1}, InitOptions{Encrypt: true, Password: testPassword, scryptLogN: 10}},
	{"v2-encrypted-to-v2-encrypted", InitOptions{Encrypt: true, Password: testPassword, scryptLogN: 10}, InitOptions{Encrypt: true, Password: testPassword, scryptLogN: 10}},
}

// twoSnapshots backs up a tree into r twice: a full one, then an
// incremental after adding the file "b" with content b. It returns both
// snapshots and the tree's state at the second.
func twoSnapshots(t *testing.T, r *Repo, b []byte) (*Snapshot, *Snapshot, string, state) {
	t.Helper()
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "src")
	t0 := time.Unix(1.7e9, 0)
	writeFile(t, filepath.Join(src, "a"), randBytes(90, 3<<20), 0o644, t0)
	s1, err := r.Backup(ctx, Options{Paths: []string{src}, Time: t0})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(src, "b"), b, 0o600, t0)
	s2, err := r.Backup(ctx, Options{Kind: Incremental, Paths: []string{src}, Time: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return s1, s2, src, treeState(t, src)
}

// consistent fails the test unless every chunk every manifest of r names
// is stored.
func consistent(t *testing.T, r *Repo) {
	t.Helper()
	snaps, err := r.Snapshots()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range snaps {
		for _, f := range s.Files {
			for _, id := range f.Chunks {
				if !r.hasChunk(id) {
					t.Errorf("snapshot %s names chunk %s of %s, which is missing", s.ID, id[:12], f.Path)
				}
			}
		}
	}
}

// restoresAs fails the test unless snapshot id of r restores src as want.
func restoresAs(t *testing.T, r *Repo, id, src string, want state) {
	t.Helper()
	target := t.TempDir()
	if _, err := r.Restore(context.Background(), id, target, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	sameState(t, "restored copy", treeState(t, filepath.Join(target, filepath.FromSlash(entryPath(src)))), want)
}

// TestCopyWriteError: a chunk write that fails in the middle of a copy
// (after the chunks read later were written) stops it with an error
// naming the snapshot and the chunk; the snapshot
// copied before is complete, the one being copied has no manifest, and
// no manifest names a missing chunk. Copying again completes it without
// writing any chunk a second time.
func TestCopyWriteError(t *testing.T) {
	withProcs(t, 2)
	ctx := context.Background()
	b := randBytes(91, 16<<20)
	for _, pair := range copyPairs {
		t.Run(pair.name, func(t *testing.T) {
			src, dst := newRepoWith(t, pair.src), newRepoWith(t, pair.dst)
			s1, s2, tree, want := twoSnapshots(t, src, b)
			ids := chunkIDs(t, dst, b) // b's chunks as dst names them
			if len(ids) < 5 {
				t.Fatalf("b is only %d chunks", len(ids))
			}
			bad := ids[len(ids)/2]
			injected := errors.New("injected: no space left on device")
			// The bad chunk fails only once every other chunk of b is
			// written, so the copy has read its last chunk by then and
			// nothing but the failed write keeps the manifest out.
			// (The wait ends after a minute anyway.)
			others := make(chan struct{})
			var mu sync.Mutex
			fail := true
			writes := map[string]int{}
			setChunkWriteHook(t, func(id string) error {
				mu.Lock()
				if id == bad && fail {
					mu.Unlock()
					select {
					case <-others:
					case <-time.After(time.Minute):
					}
					return injected
				}
				defer mu.Unlock()
				writes[id]++
				n := 0
				for _, b := range ids {
					n += writes[b]
				}
				if n == len(ids)-1 && fail {
					close(others)
				}
				return nil
			})
			res, err := src.Copy(ctx, dst, nil)
			if !errors.Is(err, injected) || !strings.Contains(err.Error(), s2.ID) || !strings.Contains(err.Error(), bad[:12]) {
				t.Fatalf("copy with an unwritable chunk: %v", err)
			}
			if len(res.Snapshots) != 1 || res.Snapshots[0] != s1.ID {
				t.Errorf("copied %v, want only %s", res.Snapshots, s1.ID)
			}
			if got, err := dst.SnapshotIDs(); err != nil || len(got) != 1 || got[0] != s1.ID {
				t.Errorf("snapshots in the copy after the failure: %v, %v; want only %s", got, err, s1.ID)
			}
			consistent(t, dst)
			restoresAs(t, dst, s1.ID, tree, state{"a": want["a"]})

			mu.Lock()
			fail = false
			before := len(writes)
			mu.Unlock()
			res, err = src.Copy(ctx, dst, nil)
			if err != nil || len(res.Snapshots) != 1 || res.Snapshots[0] != s2.ID {
				t.Fatalf("copy again: %+v %v", res, err)
			}
			if res.Chunks != len(writes)-before || res.Chunks == 0 {
				t.Errorf("the second copy reports %d chunks, wrote %d", res.Chunks, len(writes)-before)
			}
			for id, n := range writes {
				if n != 1 {
					t.Errorf("chunk %s written %d times", id[:12], n)
				}
			}
			if writes[bad] != 1 {
				t.Errorf("the chunk that failed was written %d times by the second copy", writes[bad])
			}
			consistent(t, dst)
			restoresAs(t, dst, s2.ID, tree, want)
		})
	}
}

// TestCopyCorruptSource: a tampered chunk in the source stops the copy
// with an error naming it and the snapshot, and no manifest of that
// snapshot, although chunks read before it were in flight; once the
// chunk is repaired, copying again completes.
func TestCopyCorruptSource(t *testing.T) {
	withProcs(t, 2)
	ctx := context.Background()
	b := logBytes(92, 12<<20)
	for _, pair := range copyPairs {
		t.Run(pair.name, func(t *testing.T) {
			src, dst := newRepoWith(t, pair.src), newRepoWith(t, pair.dst)
			s1, s2, tree, want := twoSnapshots(t, src, b)
			ids := chunkIDs(t, src, b)
			if len(ids) < 5 {
				t.Fatalf("b is only %d chunks", len(ids))
			}
			bad := ids[len(ids)/2]
			path := src.chunkPath(bad)
			good, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			tampered := append([]byte(nil), good...)
			tampered[len(tampered)-1] ^= 1
			if err := os.WriteFile(path, tampered, 0o600); err != nil {
				t.Fatal(err)
			}
			res, err := src.Copy(ctx, dst, nil)
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.ID != bad || !strings.Contains(err.Error(), s2.ID) || !strings.Contains(err.Error(), bad[:12]) {
				t.Fatalf("copy of a tampered chunk: %v", err)
			}
			if len(res.Snapshots) != 1 || res.Snapshots[0] != s1.ID {
				t.Errorf("copied %v, want only %s", res.Snapshots, s1.ID)
			}
			if got, err := dst.SnapshotIDs(); err != nil || len(got) != 1 {
				t.Errorf("snapshots in the copy after the failure: %v, %v; want only %s", got, err, s1.ID)
			}
			consistent(t, dst)

			if err := os.WriteFile(path, good, 0o600); err != nil {
				t.Fatal(err)
			}
			if res, err := src.Copy(ctx, dst, nil); err != nil || len(res.Snapshots) != 1 {
				t.Fatalf("copy again: %+v %v", res, err)
			}
			consistent(t, dst)
			restoresAs(t, dst, s2.ID, tree, want)
		})
	}
}

// TestCopyWritesInParallel: a copy writes chunks on more than one writer
// at once (two on two cores): the first write waits for a second one to
// start, which a copy writing one chunk at a time never does.
func TestCopyWritesInParallel(t *testing.T) {
	withProcs(t, 2)
	ctx := context.Background()
	for _, pair := range copyPairs {
		t.Run(pair.name, func(t *testing.T) {
			src, dst := newRepoWith(t, pair.src), newRepoWith(t, pair.dst)
			_, s2, tree, want := twoSnapshots(t, src, randBytes(93, 6<<20))
			second := make(chan struct{})
			var mu sync.Mutex
			n := 0
			setChunkWriteHook(t, func(id string) error {
				mu.Lock()
				n++
				first := n == 1
				if n == 2 {
					close(second)
				}
				mu.Unlock()
				if !first {
					return nil
				}
				select {
				case <-second:
					return nil
				case <-time.After(time.Minute):
					return errors.New("no second chunk was written while the first was")
				}
			})
			if _, err := src.Copy(ctx, dst, nil); err != nil {
				t.Fatal(err)
			}
			restoresAs(t, dst, s2.ID, tree, want)
		})
	}
}
