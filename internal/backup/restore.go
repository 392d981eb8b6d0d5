package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// RestoreOptions select what a restore writes.
type RestoreOptions struct {
	// Paths restricts the restore to these entries and everything below
	// them (manifest paths; a leading "/" is ignored). Empty: everything.
	Paths []string
	// Progress, when set, is called after every chunk written: bytes done
	// and the total to write.
	Progress func(done, total int64)
}

// RestoreResult is what a restore wrote and how fast.
type RestoreResult struct {
	Snapshot string
	Files    int // regular files
	Entries  int // files, directories and symlinks
	Bytes    int64
	Duration time.Duration
}

// MBps is the restore's throughput in MB/s (10^6 bytes).
func (r RestoreResult) MBps() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Bytes) / 1e6 / r.Duration.Seconds()
}

// Restore writes snapshot id, or the entries under opts.Paths, below
// target: entry P goes to target/P with its bytes, mode and mtime. Every
// chunk is authenticated (encrypted repositories) and checked against its
// id, every file against its SHA-256; existing files are replaced. A file
// that fails is removed and the restore stops with an error naming the
// object (chunk or snapshot) that failed.
func (r *Repo) Restore(ctx context.Context, id, target string, opts RestoreOptions) (*RestoreResult, error) {
	start := time.Now()
	snap, err := r.Snapshot(id)
	if err != nil {
		return nil, err
	}
	sel, err := selectEntries(snap.Files, opts.Paths)
	if err != nil {
		return nil, err
	}
	res := &RestoreResult{Snapshot: snap.ID}
	var total int64
	for _, f := range sel {
		total += f.Size
	}
	var dirs []*File
	cio := r.newChunkIO()
	for _, f := range sel {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		dst := filepath.Join(target, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return res, fmt.Errorf("restore: %w", err)
		}
		switch f.Type {
		case TypeDir:
			if err := os.MkdirAll(dst, 0o700); err != nil {
				return res, fmt.Errorf("restore: %w", err)
			}
			dirs = append(dirs, f)
		case TypeSymlink:
			os.Remove(dst)
			if err := os.Symlink(f.Target, dst); err != nil {
				return res, fmt.Errorf("restore: %w", err)
			}
		case TypeFile:
			if err = r.restoreFile(ctx, f, dst, cio, func(n int) {
				res.Bytes += int64(n)
				if opts.Progress != nil {
					opts.Progress(res.Bytes, total)
				}
			}); err != nil {
				return res, err
			}
			res.Files++
		}
		res.Entries++
	}
	// Directories last, deepest first: writing into them changes mtimes.
	sort.Slice(dirs, func(i, j int) bool { return dirs[i].Path > dirs[j].Path })
	for _, d := range dirs {
		dst := filepath.Join(target, filepath.FromSlash(d.Path))
		if err := setMeta(dst, d); err != nil {
			return res, err
		}
	}
	res.Duration = time.Since(start)
	return res, nil
}

func (r *Repo) restoreFile(ctx context.Context, f *File, dst string, cio *chunkIO, wrote func(int)) error {
	os.Remove(dst) // replace, never write through an existing symlink
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	var buf []byte
	whole := sha256.New()
	for _, c := range f.Chunks {
		if err = ctx.Err(); err != nil {
			break
		}
		if buf, err = r.readChunk(c, cio); err != nil {
			err = fmt.Errorf("restore %s: %w", f.Path, err)
			break
		}
		whole.Write(buf)
		if _, err = out.Write(buf); err != nil {
			err = fmt.Errorf("restore: %w", err)
			break
		}
		wrote(len(buf))
	}
	if cerr := out.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("restore: %w", cerr)
	}
	if err == nil {
		if got := hex.EncodeToString(whole.Sum(nil)); got != f.SHA256 {
			err = fmt.Errorf("restore %s: content hashes to %s, manifest says %s", f.Path, got[:12], f.SHA256[:12])
		}
	}
	if err == nil {
		err = setMeta(dst, f)
	} else {
		os.Remove(dst) // no partial or unverified content is left behind
	}
	return err
}

func setMeta(dst string, f *File) error {
	if err := os.Chmod(dst, f.Mode); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := os.Chtimes(dst, f.MTime, f.MTime); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}

// selectEntries returns the entries under paths (all when empty); each
// path must match something, and every entry path must be local.
func selectEntries(files []File, paths []string) ([]*File, error) {
	want := make([]string, 0, len(paths))
	for _, p := range paths {
		p = strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(p)), "/")
		if p == "" {
			return nil, errors.New("restore: empty path")
		}
		want = append(want, p)
	}
	hit := make([]bool, len(want))
	var out []*File
	for i := range files {
		f := &files[i]
		if !filepath.IsLocal(filepath.FromSlash(f.Path)) {
			return nil, fmt.Errorf("restore: manifest entry %q is not a local path", f.Path)
		}
		keep := len(want) == 0
		for j, w := range want {
			if f.Path == w || strings.HasPrefix(f.Path, w+"/") {
				keep, hit[j] = true, true
			}
		}
		if keep {
			out = append(out, f)
		}
	}
	for j, h := range hit {
		if !h {
			return nil, fmt.Errorf("restore: %s is not in the snapshot", want[j])
		}
	}
	return out, nil
}
