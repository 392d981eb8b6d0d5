package backup

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Kind of snapshot.
type Kind string

// The snapshot kinds (see the package comment).
const (
	Full         Kind = "full"
	Incremental  Kind = "incremental"
	Differential Kind = "differential"
)

// ParseKind checks s is a snapshot kind.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case Full, Incremental, Differential:
		return k, nil
	}
	return "", fmt.Errorf("unknown backup kind %q (want full, incremental or differential)", s)
}

// Entry types.
const (
	TypeFile    = "file"
	TypeDir     = "dir"
	TypeSymlink = "symlink"
)

// File is one entry of a manifest.
type File struct {
	// Path is the entry's absolute source path without the leading "/",
	// slash-separated (e.g. "var/lib/app/db.sqlite").
	Path string      `json:"path"`
	Type string      `json:"type"`
	Mode fs.FileMode `json:"mode"` // permission bits (and setuid/setgid/sticky)
	Size int64       `json:"size,omitempty"`
	// MTime is the modification time, to the nanosecond.
	MTime  time.Time `json:"mtime"`
	Target string    `json:"target,omitempty"` // symlinks
	// Chunks are the ids of the file's content chunks, in order: their
	// SHA-256 (hex), or HMAC-SHA256 in an encrypted repository.
	Chunks []string `json:"chunks,omitempty"`
	// SHA256 of the whole content (hex).
	SHA256 string `json:"sha256,omitempty"`
}

// Stats are what a backup did.
type Stats struct {
	FilesNew       int   `json:"files_new"`
	FilesChanged   int   `json:"files_changed"`
	FilesUnchanged int   `json:"files_unchanged"`
	FilesDeleted   int   `json:"files_deleted"`
	BytesRead      int64 `json:"bytes_read"`  // content read and hashed
	BytesAdded     int64 `json:"bytes_added"` // new chunks stored (their plaintext)
	// BytesStored: what the new chunks take in the repository (compressed,
	// encrypted).
	BytesStored int64 `json:"bytes_stored"`
	ChunksAdded int   `json:"chunks_added"`
}

// Snapshot is a manifest: the complete file table of its sources at Time.
type Snapshot struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"` // the policy that took it; retention groups by it
	Kind    Kind      `json:"kind"`
	Parent  string    `json:"parent,omitempty"` // the snapshot compared with
	Time    time.Time `json:"time"`             // when the backup started
	Sources []string  `json:"sources"`
	// Origin identifies what asked for the snapshot (e.g. a command id),
	// so a repeated request can find it instead of taking another.
	Origin string `json:"origin,omitempty"`
	// Duration of the backup in seconds.
	Duration float64 `json:"duration_seconds"`
	Size     int64   `json:"size_bytes"` // sum of file sizes
	Stats    Stats   `json:"stats"`
	Files    []File  `json:"files"`
}

// Object file names: version 1 stores JSON, version 2 encoded objects.
func (r *Repo) ext(kind string) string {
	switch {
	case r.cfg.Version == formatV1:
		return ".json"
	case kind == kindSnapshot:
		return ".snap"
	}
	return ".rec"
}

func (r *Repo) manifestPath(id string) string {
	return filepath.Join(r.path, "snapshots", id+r.ext(kindSnapshot))
}

func (r *Repo) verifiedPath(id string) string {
	return filepath.Join(r.path, "verified", id+r.ext(kindVerified))
}

// saveObject writes JSON of v as object kind id at path.
func (r *Repo) saveObject(path, kind, id string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	stored, err := r.encode(r.newChunkIO(), kind, id, data)
	if err != nil {
		return err
	}
	return writeAtomic(path, stored)
}

// loadObject reads object kind id at path into v.
func (r *Repo) loadObject(path, kind, id string, v any) error {
	stored, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	data, err := r.decode(r.newChunkIO(), kind, id, stored)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return &CorruptError{Object: kind, ID: id, Reason: "JSON: " + err.Error()}
	}
	return nil
}

func newSnapshotID(t time.Time) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:]), nil
}

func (r *Repo) saveManifest(s *Snapshot) error {
	if err := r.saveObject(r.manifestPath(s.ID), kindSnapshot, s.ID, s); err != nil {
		return fmt.Errorf("write manifest %s: %w", s.ID, err)
	}
	return nil
}

// Snapshot loads the manifest id (or the only one whose id starts with it).
func (r *Repo) Snapshot(id string) (*Snapshot, error) {
	full, err := r.resolve(id)
	if err != nil {
		return nil, err
	}
	return r.load(full)
}

// load reads manifest id; a manifest that fails authentication or cannot
// be decoded is a *CorruptError naming it.
func (r *Repo) load(id string) (*Snapshot, error) {
	var s Snapshot
	err := r.loadObject(r.manifestPath(id), kindSnapshot, id, &s)
	var ce *CorruptError
	switch {
	case errors.As(err, &ce):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	case s.ID != id:
		return nil, &CorruptError{Object: kindSnapshot, ID: id, Reason: "manifest names snapshot " + s.ID}
	}
	return &s, nil
}

func (r *Repo) resolve(prefix string) (string, error) {
	ids, err := r.ids()
	if err != nil {
		return "", err
	}
	var match []string
	for _, id := range ids {
		if id == prefix {
			return id, nil
		}
		if strings.HasPrefix(id, prefix) {
			match = append(match, id)
		}
	}
	switch {
	case prefix == "" || len(match) == 0:
		return "", fmt.Errorf("snapshot %q: %w", prefix, fs.ErrNotExist)
	case len(match) > 1:
		return "", fmt.Errorf("snapshot %q is ambiguous (%d match)", prefix, len(match))
	}
	return match[0], nil
}

func (r *Repo) ids() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(r.path, "snapshots"))
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var ids []string
	ext := r.ext(kindSnapshot)
	for _, e := range ents {
		if n := e.Name(); strings.HasSuffix(n, ext) && !strings.HasPrefix(n, ".tmp-") {
			ids = append(ids, strings.TrimSuffix(n, ext))
		}
	}
	return ids, nil
}

// SnapshotIDs lists the ids of every snapshot (in no particular order)
// without reading the manifests.
func (r *Repo) SnapshotIDs() ([]string, error) { return r.ids() }

// Snapshots lists every snapshot, oldest first.
func (r *Repo) Snapshots() ([]*Snapshot, error) {
	ids, err := r.ids()
	if err != nil {
		return nil, err
	}
	out := make([]*Snapshot, 0, len(ids))
	for _, id := range ids {
		s, err := r.load(id)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// VerifyRecord is the outcome of a snapshot's last verification.
type VerifyRecord struct {
	Time    time.Time `json:"time"`
	OK      bool      `json:"ok"`
	Chunks  int       `json:"chunks"`
	Bytes   int64     `json:"bytes"`
	Missing []string  `json:"missing,omitempty"`
	Corrupt []string  `json:"corrupt,omitempty"`
	// Manifest: why the snapshot's manifest itself could not be read
	// (failed authentication, undecodable); its chunks were not checked.
	Manifest string `json:"manifest,omitempty"`
}

// Verified returns the last verification of snapshot id; ok is false when
// it was never verified.
func (r *Repo) Verified(id string) (VerifyRecord, bool, error) {
	var v VerifyRecord
	err := r.loadObject(r.verifiedPath(id), kindVerified, id, &v)
	if errors.Is(err, fs.ErrNotExist) {
		return VerifyRecord{}, false, nil
	}
	if err != nil {
		return VerifyRecord{}, false, fmt.Errorf("verification record %s: %w", id, err)
	}
	return v, true, nil
}

func (r *Repo) saveVerified(id string, v VerifyRecord) error {
	return r.saveObject(r.verifiedPath(id), kindVerified, id, v)
}
