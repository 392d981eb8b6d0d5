// Package backup is Vigil's backup repository: a directory holding
// de-duplicated, SHA-256-addressed chunks of file content and one JSON
// manifest per snapshot.
//
// Layout of a repository at path P:
//
//	P/config.json            format version and chunking parameters
//	P/chunks/ab/<sha256>     one chunk each, stored once (uncompressed)
//	P/snapshots/<id>.json    one manifest per snapshot, written atomically
//	P/verified/<id>.json     the outcome of the last verification of a snapshot
//	P/lock                   flock taken by every writer (backup, forget, prune, copy)
//
// Content is split by content-defined chunking (a gear rolling hash, see
// chunker.go): an insertion shifts only the chunks around it, so shifted
// data is still de-duplicated.
//
// Snapshot model. Every manifest lists the complete file table of its
// sources at its point in time (path, mode, size, mtime, chunk list,
// SHA-256), so each snapshot restores from its own manifest and the
// chunks it names; no chain has to be replayed and forgetting any
// snapshot never breaks another. The kinds differ in the parent they are
// compared with and in what counts as their new data:
//
//   - full: no parent; every file is read and hashed.
//   - incremental: parent = the newest snapshot of any kind (of the same
//     name); files whose size, mtime and mode equal the parent's entry
//     reuse its chunk list without being read, the others are read.
//   - differential: parent = the newest full snapshot (of the same name);
//     changed means changed since that full.
//
// An incremental or differential without a parent becomes a full one (its
// manifest says full). Chunks are written before the manifest that names
// them; a crash leaves unreferenced chunks that prune removes.
package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// formatVersion of the repository layout.
const formatVersion = 1

// repoConfig is P/config.json.
type repoConfig struct {
	Version  int    `json:"version"`
	Chunker  string `json:"chunker"`
	MinChunk int    `json:"min_chunk"`
	AvgChunk int    `json:"avg_chunk"`
	MaxChunk int    `json:"max_chunk"`
}

// Repo is an open repository. Its methods may be called from several
// goroutines; writers serialise on the repository's lock file, so two
// processes never write at once.
type Repo struct {
	path string
	cfg  repoConfig
}

// ErrNotRepo is returned by Open for a directory without config.json.
var ErrNotRepo = errors.New("not a backup repository")

// Init creates a repository at path (created if missing; it must be empty
// or absent) and opens it.
func Init(path string) (*Repo, error) {
	if ents, err := os.ReadDir(path); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("backup init %s: directory is not empty", path)
	}
	for _, d := range []string{"chunks", "snapshots", "verified"} {
		if err := os.MkdirAll(filepath.Join(path, d), 0o700); err != nil {
			return nil, fmt.Errorf("backup init: %w", err)
		}
	}
	cfg := repoConfig{Version: formatVersion, Chunker: "gear", MinChunk: minChunk, AvgChunk: avgChunk, MaxChunk: maxChunk}
	data, _ := json.MarshalIndent(cfg, "", "  ")
	if err := writeAtomic(filepath.Join(path, "config.json"), data); err != nil {
		return nil, fmt.Errorf("backup init: %w", err)
	}
	return Open(path)
}

// Open opens the repository at path.
func Open(path string) (*Repo, error) {
	data, err := os.ReadFile(filepath.Join(path, "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("backup open %s: %w (run vigil backup init)", path, ErrNotRepo)
	}
	if err != nil {
		return nil, fmt.Errorf("backup open: %w", err)
	}
	var cfg repoConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("backup open %s: config.json: %w", path, err)
	}
	if cfg.Version != formatVersion {
		return nil, fmt.Errorf("backup open %s: format version %d, want %d", path, cfg.Version, formatVersion)
	}
	return &Repo{path: path, cfg: cfg}, nil
}

// Path is the repository's directory.
func (r *Repo) Path() string { return r.path }

func (r *Repo) chunkPath(id string) string {
	return filepath.Join(r.path, "chunks", id[:2], id)
}

// hasChunk reports whether chunk id is stored (not whether it is intact).
func (r *Repo) hasChunk(id string) bool {
	_, err := os.Stat(r.chunkPath(id))
	return err == nil
}

// putChunk stores data under id (its SHA-256 in hex) unless it is there
// already; it reports whether it wrote it.
func (r *Repo) putChunk(id string, data []byte) (bool, error) {
	p := r.chunkPath(id)
	if _, err := os.Stat(p); err == nil {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return false, err
	}
	if err := writeAtomic(p, data); err != nil {
		return false, fmt.Errorf("chunk %s: %w", id[:12], err)
	}
	return true, nil
}

// readChunk reads chunk id and checks its SHA-256.
func (r *Repo) readChunk(id string, buf []byte) ([]byte, error) {
	f, err := os.Open(r.chunkPath(id))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if int64(cap(buf)) < st.Size() {
		buf = make([]byte, st.Size())
	}
	buf = buf[:st.Size()]
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, err
	}
	if got := hashHex(buf); got != id {
		return nil, &CorruptError{Chunk: id, Got: got}
	}
	return buf, nil
}

// CorruptError is a chunk whose content does not match its name.
type CorruptError struct{ Chunk, Got string }

func (e *CorruptError) Error() string {
	return fmt.Sprintf("chunk %s is corrupt (content hashes to %s)", e.Chunk[:12], e.Got[:12])
}

// writeAtomic writes data to path through a synced temporary file renamed
// into place, so readers see the old file or the new one, never a part.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return werr
	}
	return nil
}
