package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync/atomic"
	"syscall"
)

// Tailer follows one file by path across rotation (rename/remove + create)
// and truncation, like `tail -F`, delivering complete lines.
//
// Identity is the file's device and inode. Each Poll:
//
//  1. opens the path if no file is open (a missing file is not an error);
//  2. reads every complete line appended since the last Poll (at most
//     maxPollBytes per Poll; the rest comes with the next Poll);
//  3. notices truncation (the open file is now shorter than what was read:
//     copytruncate, `> file`) and starts again at its beginning;
//  4. notices rotation (the path now names another file): it drains what is
//     left of the old file, delivers a last unterminated line of it, and
//     switches to the new file, read from its start. While the path is
//     missing (renamed, not yet re-created) the old file stays open and is
//     still read, since the writer may still append to it.
//
// Lines are delivered without their "\n" (and without a "\r" before it).
// A line longer than maxLine is delivered cut to maxLine bytes once and
// counted in LongLines; the rest of it is skipped. An unterminated last
// line waits for its newline.
//
// Starting point: with fromStart false, NewTailer remembers the file's
// current size, and the first Poll starts there (lines written between
// NewTailer and the first Poll are read); a file that does not exist yet,
// or a different file by then, is read from the start. With fromStart true
// everything is read.
//
// Limits: a truncation followed by writes that make the file as long as
// before between two Polls is not noticed (as with every tailer that polls);
// lines the writer appends to a rotated file after the Tailer switched to
// the new one are lost. Memory: one read buffer (32 KiB) plus at most
// maxLine bytes of pending partial line.
//
// Poll and Close must be called from one goroutine at a time; Stats may be
// called from any goroutine.
type Tailer struct {
	path      string
	maxLine   int
	f         *os.File
	dev, ino  uint64
	off       int64 // bytes of f consumed
	startIno  uint64
	startDev  uint64
	startOff  int64 // for the first open only (fromStart false)
	opened    bool  // a file was opened at least once
	buf       []byte
	pending   []byte // partial line
	skipping  bool   // discarding the rest of a long line
	rotations atomic.Uint64
	truncs    atomic.Uint64
	lines     atomic.Uint64
	long      atomic.Uint64
	bytesRead atomic.Uint64
}

// TailStats counts what a Tailer saw since it was made.
type TailStats struct {
	Rotations   uint64 // switches to a new file at the path
	Truncations uint64 // the file got shorter than what was read
	Lines       uint64 // lines delivered
	LongLines   uint64 // lines cut to maxLine
	Bytes       uint64 // bytes read
}

// Defaults of the Tailer.
const (
	DefaultMaxLine = 64 << 10 // longest line kept whole
	tailBufSize    = 32 << 10
	maxPollBytes   = 8 << 20 // per Poll; the rest waits for the next
)

// NewTailer follows path. fromStart=false starts at the file's current end;
// maxLine <= 0 means DefaultMaxLine. It does not fail: a file that cannot
// be read yet is retried by every Poll.
func NewTailer(path string, fromStart bool, maxLine int) *Tailer {
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	t := &Tailer{path: path, maxLine: maxLine}
	if !fromStart {
		if st, err := os.Stat(path); err == nil {
			t.startDev, t.startIno = fileID(st)
			t.startOff = st.Size()
		}
	}
	return t
}

// Poll reads every complete new line since the last Poll and calls fn for
// each, in order; line is only valid during the call. It returns the
// number of lines delivered. A missing file is not an error (0 lines until
// it appears); other open, stat and read errors are returned, after the
// lines read before them were delivered.
func (t *Tailer) Poll(fn func(line []byte)) (int, error) {
	n := 0
	if t.f == nil {
		ok, err := t.open()
		if !ok {
			return 0, err
		}
	}
	// Truncated in place?
	st, err := t.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("tail %s: %w", t.path, err)
	}
	if st.Size() < t.off {
		t.truncs.Add(1)
		t.off = 0
		t.pending, t.skipping = t.pending[:0], false
	}
	got, err := t.read(fn)
	n += got
	if err != nil {
		return n, err
	}
	// Rotated? The path names another file (or none, for now).
	pst, err := os.Stat(t.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return n, nil // keep reading the old file until a new one appears
	case err != nil:
		return n, fmt.Errorf("tail %s: %w", t.path, err)
	}
	if dev, ino := fileID(pst); dev == t.dev && ino == t.ino {
		return n, nil
	}
	got, err = t.read(fn) // what the writer added before it switched
	n += got
	if err != nil {
		return n, err
	}
	if len(t.pending) > 0 && !t.skipping {
		n += t.deliver(fn, t.pending)
	}
	t.pending, t.skipping = t.pending[:0], false
	t.f.Close()
	t.f = nil
	t.rotations.Add(1)
	if ok, err := t.open(); !ok {
		return n, err
	}
	got, err = t.read(fn)
	return n + got, err
}

// open opens the path; ok is false when there is no file (err nil) or it
// cannot be opened (err set).
func (t *Tailer) open() (bool, error) {
	f, err := os.Open(t.path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("tail: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return false, fmt.Errorf("tail %s: %w", t.path, err)
	}
	t.f = f
	t.dev, t.ino = fileID(st)
	t.off = 0
	if !t.opened && t.startOff > 0 && t.dev == t.startDev && t.ino == t.startIno && st.Size() >= t.startOff {
		t.off = t.startOff
	}
	t.opened = true
	return true, nil
}

// read delivers the complete lines from t.off to the end of the file (at
// most maxPollBytes).
func (t *Tailer) read(fn func([]byte)) (int, error) {
	if t.buf == nil {
		t.buf = make([]byte, tailBufSize)
	}
	n, total := 0, 0
	for total < maxPollBytes {
		k, err := t.f.ReadAt(t.buf, t.off)
		if k > 0 {
			t.off += int64(k)
			total += k
			t.bytesRead.Add(uint64(k))
			n += t.split(fn, t.buf[:k])
		}
		if err == io.EOF || k == 0 {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("tail %s: %w", t.path, err)
		}
	}
	return n, nil
}

// split delivers the complete lines of chunk, keeping a partial one.
func (t *Tailer) split(fn func([]byte), chunk []byte) int {
	n := 0
	for len(chunk) > 0 {
		i := bytes.IndexByte(chunk, '\n')
		if i < 0 {
			return n + t.keep(fn, chunk)
		}
		part := chunk[:i]
		chunk = chunk[i+1:]
		switch {
		case t.skipping:
			t.skipping = false
		case len(t.pending) > 0:
			n += t.keep(fn, part)
			if !t.skipping {
				n += t.deliver(fn, t.pending)
			}
			t.pending, t.skipping = t.pending[:0], false
		case len(part) > t.maxLine:
			t.long.Add(1)
			n += t.deliver(fn, part[:t.maxLine])
		default:
			n += t.deliver(fn, part)
		}
	}
	return n
}

// keep appends part of an unfinished line; one that grows past maxLine is
// delivered cut (returning 1), and the rest of it skipped.
func (t *Tailer) keep(fn func([]byte), part []byte) int {
	if t.skipping {
		return 0
	}
	if room := t.maxLine - len(t.pending); len(part) > room {
		t.pending = append(t.pending, part[:room]...)
		t.long.Add(1)
		t.deliver(fn, t.pending)
		t.pending, t.skipping = t.pending[:0], true
		return 1
	}
	t.pending = append(t.pending, part...)
	return 0
}

// deliver calls fn with line minus a trailing "\r".
func (t *Tailer) deliver(fn func([]byte), line []byte) int {
	if k := len(line); k > 0 && line[k-1] == '\r' {
		line = line[:k-1]
	}
	t.lines.Add(1)
	fn(line)
	return 1
}

// Stats returns the counters. Safe from any goroutine.
func (t *Tailer) Stats() TailStats {
	return TailStats{
		Rotations:   t.rotations.Load(),
		Truncations: t.truncs.Load(),
		Lines:       t.lines.Load(),
		LongLines:   t.long.Load(),
		Bytes:       t.bytesRead.Load(),
	}
}

// Close closes the open file, if any.
func (t *Tailer) Close() error {
	if t.f == nil {
		return nil
	}
	err := t.f.Close()
	t.f = nil
	return err
}

// fileID is a file's device and inode (zeros where unknown).
func fileID(st os.FileInfo) (dev, ino uint64) {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Dev), s.Ino //nolint:unconvert // Dev is uint32 on some platforms
	}
	return 0, 0
}
