// Package backup is Vigil's backup repository: a directory holding
// de-duplicated, content-addressed chunks of file content and one manifest
// per snapshot, compressed and optionally encrypted.
//
// Layout of a repository at path P (format version 2; version 1 in
// brackets where it differs):
//
//	P/config.json             format version, chunking parameters, compression,
//	                          encryption and the wrapped master key
//	P/chunks/ab/<id>          one chunk each, stored once
//	P/snapshots/<id>.snap     one manifest per snapshot, written atomically [<id>.json]
//	P/verified/<id>.rec       the outcome of the last verification of a snapshot [<id>.json]
//	P/lock                    flock taken by every writer (backup, forget, prune, copy)
//
// Objects (chunks, manifests, verification records) of a version-2
// repository are stored as
//
//	unencrypted: enc || payload
//	encrypted:   nonce(12) || AES-256-GCM(encKey, nonce, enc || payload, aad) || tag(16)
//
// where enc is one byte, 0 = payload is the plaintext, 1 = payload is one
// zstd frame of it (a chunk is compressed only when that saves at least
// 1/64 of its size, so random or already-compressed data is stored raw),
// and aad = "vigil-backup/2 <kind> <id>" binds each object to its name
// (kind chunk, snapshot or verified), so swapping two objects fails
// authentication. Version 1 (still read and written) stores chunks as
// their plaintext and manifests as JSON.
//
// Chunk ids: the SHA-256 (hex) of the chunk's plaintext, or in an
// encrypted repository HMAC-SHA256(idKey, plaintext), so the ids do not
// reveal which known content the repository holds. Encryption keys: a
// random 256-bit master key, stored in config.json wrapped (AES-256-GCM)
// by a key derived from the password with scrypt (random salt, parameters
// stored); encKey and idKey are derived from the master key with
// HKDF-SHA256 (key.go). What an encrypted repository still shows: the
// number and sizes of chunks and manifests, snapshot ids (their times),
// and file modification times.
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
	"bytes"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// Format versions of the repository layout: Init writes formatVersion;
// Open also reads and writes formatV1 repositories, in their own format.
const (
	formatV1      = 1
	formatVersion = 2
)

// Compression and encryption names in config.json.
const (
	CompressZstd = "zstd"
	CompressNone = "none"
	encAESGCM    = "aes-256-gcm"
)

// repoConfig is P/config.json.
type repoConfig struct {
	Version  int    `json:"version"`
	Chunker  string `json:"chunker"`
	MinChunk int    `json:"min_chunk"`
	AvgChunk int    `json:"avg_chunk"`
	MaxChunk int    `json:"max_chunk"`
	// Version 2: "zstd" or "none".
	Compression string `json:"compression,omitempty"`
	// Version 2: "" (none) or "aes-256-gcm"; Key is set with it.
	Encryption string     `json:"encryption,omitempty"`
	Key        *keyConfig `json:"key,omitempty"`
}

// Repo is an open repository. Its methods may be called from several
// goroutines; writers serialise on the repository's lock file, so two
// processes never write at once.
type Repo struct {
	path string
	cfg  repoConfig // its Key as read at open (ChangePassword reads config.json again)
	// raw is config.json as read or last written by this Repo.
	rawMu sync.Mutex
	raw   []byte
	// Encrypted repositories only.
	aead  cipher.AEAD
	idKey []byte
}

var (
	// ErrNotRepo is returned by Open for a directory without config.json.
	ErrNotRepo = errors.New("not a backup repository")
	// ErrPasswordRequired: the repository is encrypted and no password was given.
	ErrPasswordRequired = errors.New("the repository is encrypted and no password was given")
	// ErrWrongPassword: the password does not unlock the repository's key.
	ErrWrongPassword = errors.New("wrong password (or config.json was altered)")
)

// InitOptions choose a new repository's format.
type InitOptions struct {
	// Version: 0 or 2 (current), or 1 for the legacy format (uncompressed,
	// unencrypted; only to make repositories older Vigils can read).
	Version int
	// Compression: "zstd" (default) or "none". Version 2 only.
	Compression string
	// Encrypt the repository with a random master key wrapped by a key
	// derived from Password (which must not be empty). Version 2 only.
	Encrypt  bool
	Password []byte

	scryptLogN int // tests: cheaper key derivation (default defaultScryptLogN)
}

// Init creates a version-2 repository, zstd-compressed and not encrypted,
// at path (created if missing; it must be empty or absent) and opens it.
func Init(path string) (*Repo, error) { return InitWith(path, InitOptions{}) }

// InitWith creates a repository with opts at path (created if missing; it
// must be empty or absent) and opens it.
func InitWith(path string, opts InitOptions) (*Repo, error) {
	cfg := repoConfig{Version: opts.Version, Chunker: "gear", MinChunk: minChunk, AvgChunk: avgChunk, MaxChunk: maxChunk}
	var master []byte
	switch opts.Version {
	case 0, formatVersion:
		cfg.Version = formatVersion
		cfg.Compression = opts.Compression
		if cfg.Compression == "" {
			cfg.Compression = CompressZstd
		}
		if cfg.Compression != CompressZstd && cfg.Compression != CompressNone {
			return nil, fmt.Errorf("backup init %s: unknown compression %q (want zstd or none)", path, opts.Compression)
		}
		if opts.Encrypt {
			if len(opts.Password) == 0 {
				return nil, fmt.Errorf("backup init %s: encryption needs a password", path)
			}
			cfg.Encryption = encAESGCM
			var err error
			if cfg.Key, master, err = newKey(&cfg, opts.Password, opts.scryptLogN); err != nil {
				return nil, fmt.Errorf("backup init %s: %w", path, err)
			}
		}
	case formatV1:
		if opts.Encrypt || (opts.Compression != "" && opts.Compression != CompressNone) {
			return nil, fmt.Errorf("backup init %s: format version 1 has neither compression nor encryption", path)
		}
	default:
		return nil, fmt.Errorf("backup init %s: unknown format version %d", path, opts.Version)
	}
	if ents, err := os.ReadDir(path); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("backup init %s: directory is not empty", path)
	}
	for _, d := range []string{"chunks", "snapshots", "verified"} {
		if err := os.MkdirAll(filepath.Join(path, d), 0o700); err != nil {
			return nil, fmt.Errorf("backup init: %w", err)
		}
	}
	data, _ := json.MarshalIndent(cfg, "", "  ")
	data = append(data, '\n')
	if err := writeAtomicDurable(filepath.Join(path, "config.json"), data); err != nil {
		return nil, fmt.Errorf("backup init: %w", err)
	}
	r := &Repo{path: path, cfg: cfg, raw: data}
	if master != nil {
		r.setKeys(master)
	}
	return r, nil
}

// Open opens the unencrypted repository at path (an encrypted one needs
// OpenWith and its password).
func Open(path string) (*Repo, error) { return OpenWith(path, nil) }

// OpenWith opens the repository at path; password unlocks an encrypted
// repository and is not used for an unencrypted one. A wrong password is
// ErrWrongPassword, found before anything is read or written.
func OpenWith(path string, password []byte) (*Repo, error) {
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
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("backup open %s: config.json: %w", path, err)
	}
	r := &Repo{path: path, cfg: cfg, raw: data}
	if cfg.Encryption != "" {
		if len(password) == 0 {
			return nil, fmt.Errorf("backup open %s: %w", path, ErrPasswordRequired)
		}
		master, err := unwrapKey(&cfg, password)
		if err != nil {
			return nil, fmt.Errorf("backup open %s: %w", path, err)
		}
		r.setKeys(master)
	}
	return r, nil
}

// check validates a configuration read from disk.
func (c *repoConfig) check() error {
	switch c.Version {
	case formatV1:
		if c.Compression != "" || c.Encryption != "" || c.Key != nil {
			return errors.New("format version 1 has neither compression nor encryption")
		}
	case formatVersion:
		if c.Compression != CompressZstd && c.Compression != CompressNone {
			return fmt.Errorf("unknown compression %q", c.Compression)
		}
		switch c.Encryption {
		case "":
			if c.Key != nil {
				return errors.New("a key without encryption")
			}
		case encAESGCM:
			if c.Key == nil {
				return errors.New("encryption without a key")
			}
			return c.Key.check()
		default:
			return fmt.Errorf("unknown encryption %q", c.Encryption)
		}
	default:
		return fmt.Errorf("format version %d, want %d or %d", c.Version, formatV1, formatVersion)
	}
	return nil
}

// Path is the repository's directory.
func (r *Repo) Path() string { return r.path }

// Version is the repository's format version (1 or 2).
func (r *Repo) Version() int { return r.cfg.Version }

// Encrypted reports whether the repository is encrypted.
func (r *Repo) Encrypted() bool { return r.cfg.Encryption != "" }

// Compression is "zstd" or "none".
func (r *Repo) Compression() string {
	if r.cfg.Compression == "" {
		return CompressNone
	}
	return r.cfg.Compression
}

// Stale reports whether the repository's config.json no longer is the one
// r was opened with (the repository was removed or initialised anew), so
// a long-lived holder of r should open it again.
func (r *Repo) Stale() bool {
	data, err := os.ReadFile(filepath.Join(r.path, "config.json"))
	r.rawMu.Lock()
	defer r.rawMu.Unlock()
	return err != nil || !bytes.Equal(data, r.raw)
}

func (r *Repo) chunkPath(id string) string {
	return filepath.Join(r.path, "chunks", id[:2], id)
}

// hasChunk reports whether chunk id is stored (not whether it is intact).
func (r *Repo) hasChunk(id string) bool {
	if len(id) != 64 {
		return false
	}
	_, err := os.Stat(r.chunkPath(id))
	return err == nil
}

// readChunk reads chunk id, decodes it and checks its id. The result is
// valid until c's next use.
func (r *Repo) readChunk(id string, c *chunkIO) ([]byte, error) {
	if len(id) != 64 {
		return nil, &CorruptError{Object: kindChunk, ID: id, Reason: "malformed chunk id"}
	}
	var err error
	if c.file, err = readInto(r.chunkPath(id), c.file); err != nil {
		return nil, err
	}
	plain, err := r.decode(c, kindChunk, id, c.file)
	if err != nil {
		return nil, err
	}
	if !c.matches(id, plain) {
		return nil, &CorruptError{Object: kindChunk, ID: id, Reason: "content hashes to " + c.id(plain)[:12]}
	}
	return plain, nil
}

// readInto reads the file at path into buf (grown when needed).
func readInto(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return buf, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return buf, err
	}
	if int64(cap(buf)) < st.Size() {
		buf = make([]byte, st.Size())
	}
	buf = buf[:st.Size()]
	if _, err := io.ReadFull(f, buf); err != nil {
		return buf, err
	}
	return buf, nil
}

// CorruptError is an object (a chunk, snapshot manifest or verification
// record) that failed authentication, cannot be decoded, or whose content
// does not match its name.
type CorruptError struct {
	Object string // "chunk", "snapshot" or "verified"
	ID     string
	Reason string
}

func (e *CorruptError) Error() string {
	id := e.ID
	if e.Object == kindChunk && len(id) > 12 {
		id = id[:12]
	}
	return fmt.Sprintf("%s %s is corrupt: %s", e.Object, id, e.Reason)
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
	werr := atomicFault(path, "write")
	if werr == nil {
		_, werr = f.Write(data)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = atomicFault(path, "rename")
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

// errDirSync: the file is in place, but its directory could not be
// synced, so the rename may not survive a power loss.
var errDirSync = errors.New("syncing the directory failed")

// writeAtomicDurable is writeAtomic followed by a sync of path's
// directory, so the rename itself survives a power loss. A failure of
// that last step wraps errDirSync.
func writeAtomicDurable(path string, data []byte) error {
	if err := writeAtomic(path, data); err != nil {
		return err
	}
	err := atomicFault(path, "syncdir")
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errDirSync, err)
	}
	return nil
}

// atomicFaultHook, when set (by tests), runs at the steps of writeAtomic
// ("write", "rename") and writeAtomicDurable ("syncdir"); its error
// fails that step as a failing disk would.
var atomicFaultHook func(path, step string) error

func atomicFault(path, step string) error {
	if atomicFaultHook == nil {
		return nil
	}
	return atomicFaultHook(path, step)
}
