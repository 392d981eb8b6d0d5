package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// chunkIDs cuts data as a backup does and names each chunk, one after
// the other: the chunk list a manifest must hold for it.
func chunkIDs(t *testing.T, r *Repo, data []byte) []string {
	t.Helper()
	c, cio := newChunker(bytes.NewReader(data)), r.newChunkIO()
	var ids []string
	for {
		chunk, err := c.next()
		if err == io.EOF {
			return ids
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, cio.id(chunk))
	}
}

// withProcs runs the test with GOMAXPROCS n (so the pipeline's sizes do
// not depend on the machine).
func withProcs(t *testing.T, n int) {
	old := runtime.GOMAXPROCS(n)
	t.Cleanup(func() { runtime.GOMAXPROCS(old) })
}

// setChunkWriteHook sets chunkWriteHook for the test.
func setChunkWriteHook(t *testing.T, h func(id string) error) {
	chunkWriteHook = h
	t.Cleanup(func() { chunkWriteHook = nil })
}

// TestPipelineChunkOrder: whatever order the encoders and writers finish
// in, every file's chunk list is its chunks in file order (as a
// sequential cut names them), two backups of the same tree list the same
// chunks, every listed chunk is stored, and the tree restores exactly; in
// every format, with many chunks of varied size in flight.
func TestPipelineChunkOrder(t *testing.T) {
	ctx := context.Background()
	at := time.Unix(1.7e9, 0)
	src := filepath.Join(t.TempDir(), "tree")
	content := map[string][]byte{}
	for i, n := range []int{5 << 20, 3 << 20, 100, 700 << 10, 0, 2 << 20} {
		data := randBytes(uint64(40+i), n)
		if i%2 == 1 {
			data = logBytes(uint64(40+i), n)
		}
		name := fmt.Sprintf("d%d/f%d", i%3, i)
		content[name] = data
		writeFile(t, filepath.Join(src, name), data, 0o644, at)
	}
	for _, procs := range []int{1, 4} {
		for _, f := range formats {
			t.Run(fmt.Sprintf("procs%d/%s", procs, f.name), func(t *testing.T) {
				withProcs(t, procs)
				r := newRepoWith(t, f.opts)
				s1, err := r.Backup(ctx, Options{Paths: []string{src}, Time: at})
				if err != nil {
					t.Fatal(err)
				}
				s2, err := r.Backup(ctx, Options{Paths: []string{src}, Time: at.Add(time.Second)})
				if err != nil {
					t.Fatal(err)
				}
				files := 0
				for i, e := range s1.Files {
					if e.Type != TypeFile {
						continue
					}
					files++
					rel := strings.TrimPrefix(e.Path, entryPath(src)+"/")
					want := chunkIDs(t, r, content[rel])
					if strings.Join(e.Chunks, ",") != strings.Join(want, ",") {
						t.Errorf("%s: chunks %v, want %v", rel, e.Chunks, want)
					}
					if strings.Join(s2.Files[i].Chunks, ",") != strings.Join(e.Chunks, ",") {
						t.Errorf("%s: the second backup lists %v", rel, s2.Files[i].Chunks)
					}
					for _, id := range e.Chunks {
						if !r.hasChunk(id) {
							t.Errorf("%s: chunk %s not stored", rel, id[:12])
						}
					}
				}
				if files != len(content) {
					t.Errorf("%d files in the manifest, want %d", files, len(content))
				}
				target := t.TempDir()
				if _, err := r.Restore(ctx, s1.ID, target, RestoreOptions{}); err != nil {
					t.Fatal(err)
				}
				sameState(t, "restored", treeState(t, filepath.Join(target, filepath.FromSlash(entryPath(src)))), treeState(t, src))
			})
		}
	}
}

// TestPipelineDedupInFlight: a chunk is written once even when its twin
// is read while the first copy is still in flight (every write is held
// back until the whole tree has been read), and a second backup writes
// nothing. The statistics count each new chunk once.
func TestPipelineDedupInFlight(t *testing.T) {
	ctx := context.Background()
	at := time.Unix(1.7e9, 0)
	src := filepath.Join(t.TempDir(), "twins")
	same := randBytes(60, 200<<10) // one chunk (below minChunk)
	writeFile(t, filepath.Join(src, "a"), same, 0o644, at)
	writeFile(t, filepath.Join(src, "b"), same, 0o644, at)
	writeFile(t, filepath.Join(src, "c"), []byte("other"), 0o644, at)
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			withProcs(t, 2)
			r := newRepoWith(t, f.opts)
			if n := len(chunkIDs(t, r, same)); n != 1 {
				t.Fatalf("the shared content is %d chunks, want 1", n)
			}
			read := make(chan struct{})
			var once sync.Once
			var mu sync.Mutex
			writes := map[string]int{}
			setChunkWriteHook(t, func(id string) error {
				select {
				case <-read:
				case <-time.After(time.Minute):
					return errors.New("the tree was never read to its end")
				}
				mu.Lock()
				writes[id]++
				mu.Unlock()
				return nil
			})
			progress := func(done, total int64) {
				if done == total {
					once.Do(func() { close(read) })
				}
			}
			s, err := r.Backup(ctx, Options{Paths: []string{src}, Time: at, Progress: progress})
			if err != nil {
				t.Fatal(err)
			}
			if len(writes) != 2 {
				t.Errorf("%d chunks written, want 2", len(writes))
			}
			for id, n := range writes {
				if n != 1 {
					t.Errorf("chunk %s written %d times", id[:12], n)
				}
			}
			if s.Stats.ChunksAdded != 2 || s.Stats.BytesAdded != int64(len(same)+len("other")) {
				t.Errorf("stats %+v, want 2 chunks of %d bytes", s.Stats, len(same)+len("other"))
			}
			if s.Stats.BytesStored <= 0 {
				t.Errorf("stored %d bytes", s.Stats.BytesStored)
			}
			clear(writes)
			s2, err := r.Backup(ctx, Options{Paths: []string{src}, Time: at.Add(time.Second), Progress: progress})
			if err != nil {
				t.Fatal(err)
			}
			if len(writes) != 0 || s2.Stats.ChunksAdded != 0 || s2.Stats.BytesStored != 0 {
				t.Errorf("second backup wrote %d chunks, stats %+v", len(writes), s2.Stats)
			}
		})
	}
}

// TestPipelineWriteError: a chunk that cannot be written fails the backup
// with an error naming the file it came from, stops the reading (the tree
// is not read to its end), and leaves no manifest; the repository then
// backs up and restores normally.
func TestPipelineWriteError(t *testing.T) {
	withProcs(t, 2)
	ctx := context.Background()
	at := time.Unix(1.7e9, 0)
	src := filepath.Join(t.TempDir(), "tree")
	writeFile(t, filepath.Join(src, "1-first"), logBytes(70, 300<<10), 0o644, at)
	bad := randBytes(71, 500<<10)
	writeFile(t, filepath.Join(src, "2-unwritable"), bad, 0o644, at)
	big := randBytes(72, 16<<20)
	writeFile(t, filepath.Join(src, "3-big"), big, 0o644, at)
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			r := newRepoWith(t, f.opts)
			_, _, slots := pipeSizes(2)
			if n := len(chunkIDs(t, r, big)); n < slots+3 {
				t.Fatalf("the big file is only %d chunks", n)
			}
			badID := chunkIDs(t, r, bad)[0]
			injected := errors.New("injected: input/output error")
			failed := make(chan struct{})
			// The bad chunk fails; every other write waits for that, so the
			// reader cannot get further ahead than the free slots allow. A
			// wait ends after 2 s anyway: when the encoders hand the writers
			// other chunks first, every writer can be waiting while the bad
			// chunk is queued behind them (the reader stays blocked on the
			// slots meanwhile).
			setChunkWriteHook(t, func(id string) error {
				if id == badID {
					close(failed)
					return injected
				}
				select {
				case <-failed:
				case <-time.After(2 * time.Second):
				}
				return nil
			})
			var done, total int64
			_, err := r.Backup(ctx, Options{Paths: []string{src}, Time: at, Progress: func(d, t int64) { done, total = d, t }})
			if !errors.Is(err, injected) || !strings.Contains(err.Error(), "2-unwritable") {
				t.Fatalf("backup with an unwritable chunk: %v", err)
			}
			if done >= total {
				t.Errorf("read %d of %d bytes after the failure: the reader did not stop", done, total)
			}
			if ids, err := r.SnapshotIDs(); err != nil || len(ids) != 0 {
				t.Errorf("snapshots after the failed backup: %v, %v", ids, err)
			}
			chunkWriteHook = nil
			s, err := r.Backup(ctx, Options{Paths: []string{src}, Time: at.Add(time.Second)})
			if err != nil {
				t.Fatal(err)
			}
			target := t.TempDir()
			if _, err := r.Restore(ctx, s.ID, target, RestoreOptions{}); err != nil {
				t.Fatal(err)
			}
			sameState(t, "restored", treeState(t, filepath.Join(target, filepath.FromSlash(entryPath(src)))), treeState(t, src))
		})
	}
}

// TestPipelineCancel: cancelling the context during a backup stops it
// with the context's error and no manifest.
func TestPipelineCancel(t *testing.T) {
	at := time.Unix(1.7e9, 0)
	src := filepath.Join(t.TempDir(), "tree")
	writeFile(t, filepath.Join(src, "big"), randBytes(80, 12<<20), 0o644, at)
	r := newRepo(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var done, total int64
	_, err := r.Backup(ctx, Options{Paths: []string{src}, Time: at, Progress: func(d, t int64) {
		done, total = d, t
		cancel()
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled backup: %v", err)
	}
	if done >= total {
		t.Errorf("read %d of %d bytes after the cancel", done, total)
	}
	if ids, _ := r.SnapshotIDs(); len(ids) != 0 {
		t.Errorf("snapshots after the cancelled backup: %v", ids)
	}
	if _, err := os.Stat(r.Path()); err != nil {
		t.Fatal(err)
	}
}
