package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Options of a backup.
type Options struct {
	// Name groups snapshots (a policy's name): parents are looked for and
	// retention applies within one name. Default "default".
	Name string
	// Kind: full (default), incremental or differential.
	Kind Kind
	// Paths to back up: files or directories, recursively.
	Paths []string
	// Origin is recorded in the manifest (see Snapshot.Origin).
	Origin string
	// Time of the snapshot. Default time.Now().
	Time time.Time
	// Pre runs before anything is read; its failure aborts the backup.
	// Post runs after the backup, also after a failed one
	// (VIGIL_BACKUP_STATUS=ok|failed); its failure is returned with the
	// snapshot, which is kept.
	Pre, Post *Hook
	// Progress, when set, is called as content is read: bytes done and the
	// total to read.
	Progress func(done, total int64)
}

// Backup takes a snapshot of opts.Paths and writes its manifest.
func (r *Repo) Backup(ctx context.Context, opts Options) (*Snapshot, error) {
	if opts.Name == "" {
		opts.Name = "default"
	}
	if opts.Kind == "" {
		opts.Kind = Full
	}
	if _, err := ParseKind(string(opts.Kind)); err != nil {
		return nil, err
	}
	if len(opts.Paths) == 0 {
		return nil, errors.New("backup: no paths")
	}
	if opts.Time.IsZero() {
		opts.Time = time.Now()
	}
	if err := opts.Pre.Run(ctx, map[string]string{"VIGIL_BACKUP_NAME": opts.Name, "VIGIL_BACKUP_KIND": string(opts.Kind)}); err != nil {
		return nil, fmt.Errorf("backup aborted: pre hook: %w", err)
	}
	snap, err := r.backup(ctx, opts)
	env := map[string]string{"VIGIL_BACKUP_NAME": opts.Name, "VIGIL_BACKUP_KIND": string(opts.Kind), "VIGIL_BACKUP_STATUS": "ok"}
	if err != nil {
		env["VIGIL_BACKUP_STATUS"] = "failed"
	} else {
		env["VIGIL_SNAPSHOT_ID"] = snap.ID
	}
	if herr := opts.Post.Run(ctx, env); herr != nil {
		err = errors.Join(err, fmt.Errorf("post hook: %w", herr))
	}
	return snap, err
}

func (r *Repo) backup(ctx context.Context, opts Options) (*Snapshot, error) {
	start := time.Now()
	unlock, err := r.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock.Close()
	parent, err := r.parentFor(opts.Name, opts.Kind)
	if err != nil {
		return nil, err
	}
	id, err := newSnapshotID(opts.Time)
	if err != nil {
		return nil, err
	}
	snap := &Snapshot{ID: id, Name: opts.Name, Kind: opts.Kind, Time: opts.Time.UTC(), Origin: opts.Origin}
	prev := map[string]*File{}
	if parent != nil {
		snap.Parent = parent.ID
		for i := range parent.Files {
			prev[parent.Files[i].Path] = &parent.Files[i]
		}
	} else {
		snap.Kind = Full
	}
	files, err := scan(opts.Paths, &snap.Sources)
	if err != nil {
		return nil, err
	}
	var total int64
	for i := range files {
		if f := &files[i]; f.Type == TypeFile && !reuse(f, prev[f.Path]) {
			total += f.Size
		}
	}
	w := &writer{repo: r, total: total, progress: opts.Progress, cio: r.newChunkIO(), pipe: r.newPipeline(ctx)}
	seen := make(map[string]bool, len(files))
	for i := range files {
		f := &files[i]
		seen[f.Path] = true
		p := prev[f.Path]
		if err := w.file(f, p, &snap.Stats); err != nil {
			w.pipe.fail(err)
			return nil, w.pipe.close() // the first error of any stage
		}
		snap.Size += f.Size
	}
	// Every chunk is in place before the manifest naming it is written.
	if err := w.pipe.close(); err != nil {
		return nil, err
	}
	snap.Stats.BytesStored = w.pipe.stored.Load()
	for path := range prev {
		if !seen[path] {
			snap.Stats.FilesDeleted++
		}
	}
	snap.Stats.BytesRead = w.done
	snap.Files = files
	snap.Duration = time.Since(start).Seconds()
	if err := r.saveManifest(snap); err != nil {
		return nil, err
	}
	return snap, nil
}

// parentFor is the snapshot a new one of kind compares with.
func (r *Repo) parentFor(name string, kind Kind) (*Snapshot, error) {
	if kind == Full {
		return nil, nil
	}
	all, err := r.Snapshots()
	if err != nil {
		return nil, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		s := all[i]
		if s.Name == name && (kind == Incremental || s.Kind == Full) {
			return s, nil
		}
	}
	return nil, nil
}

// reuse reports whether f is unchanged since p (same type, size, mtime and
// mode), so p's chunks can stand for it without reading it.
func reuse(f, p *File) bool {
	return p != nil && p.Type == f.Type && p.Size == f.Size && p.MTime.Equal(f.MTime) && p.Mode == f.Mode && p.SHA256 != ""
}

// scan lists the entries under paths, sorted within each path.
func scan(paths []string, sources *[]string) ([]File, error) {
	var files []File
	seen := map[string]bool{}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("backup %s: %w", p, err)
		}
		*sources = append(*sources, abs)
		err = filepath.WalkDir(abs, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			info, err := d.Info()
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			f := File{Path: entryPath(path), Mode: info.Mode().Perm() | info.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky), MTime: info.ModTime().UTC()}
			switch {
			case info.Mode().IsRegular():
				f.Type, f.Size = TypeFile, info.Size()
			case info.IsDir():
				f.Type = TypeDir
			case info.Mode()&fs.ModeSymlink != 0:
				f.Type = TypeSymlink
				if f.Target, err = os.Readlink(path); err != nil {
					return fmt.Errorf("backup: %w", err)
				}
			default:
				return nil // devices, sockets, pipes are not backed up
			}
			if f.Path == "" || seen[f.Path] {
				return nil
			}
			seen[f.Path] = true
			files = append(files, f)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

// entryPath turns an absolute OS path into a manifest path.
func entryPath(abs string) string {
	p := filepath.ToSlash(abs)
	if v := filepath.VolumeName(abs); v != "" {
		p = strings.TrimPrefix(p, filepath.ToSlash(v))
	}
	return strings.TrimPrefix(p, "/")
}

// writer reads files into chunks, the producer of the write pipeline.
type writer struct {
	repo        *Repo
	done, total int64
	progress    func(done, total int64)
	chunker     *chunker // reused across files
	cio         *chunkIO // chunk ids
	pipe        *pipeline
}

// file fills f's chunks and hash, from p when f is unchanged.
func (w *writer) file(f, p *File, st *Stats) error {
	if f.Type != TypeFile {
		return nil
	}
	if reuse(f, p) {
		f.Chunks, f.SHA256 = p.Chunks, p.SHA256
		st.FilesUnchanged++
		return nil
	}
	if p == nil {
		st.FilesNew++
	} else {
		st.FilesChanged++
	}
	src, err := os.Open(filepath.FromSlash("/" + f.Path))
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer src.Close()
	whole := sha256.New()
	if w.chunker == nil {
		w.chunker = newChunker(src)
	}
	c := w.chunker
	c.reset(src)
	f.Size = 0
	what := "backup " + f.Path
	for {
		if err := w.pipe.err(); err != nil {
			return err // cancelled, or a chunk failed to encode or write
		}
		data, err := c.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("backup read %s: %w", f.Path, err)
		}
		whole.Write(data)
		id := w.cio.id(data)
		added, err := w.pipe.put(what, id, data)
		if err != nil {
			return err
		}
		if added {
			st.BytesAdded += int64(len(data))
			st.ChunksAdded++
		}
		f.Chunks = append(f.Chunks, id)
		f.Size += int64(len(data))
		w.done += int64(len(data))
		if w.progress != nil {
			w.progress(w.done, max(w.total, w.done))
		}
	}
	f.SHA256 = hex.EncodeToString(whole.Sum(nil))
	return nil
}
