package agent

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// spool is the on-disk FIFO of telemetry batches that JetStream has not
// acknowledged: the publisher spills batches here while NATS is away (or
// the in-memory backlog is full, or at shutdown) and re-sends them, oldest
// first, with their original run, seq, Nats-Msg-Id and timestamps. It
// survives restarts: a new agent re-sends the previous run's batches under
// that run's headers before its own.
//
// Layout: dir/seg-<ordinal, 16 hex digits>.vsp, oldest first; each holds
// framed records (spool_record.go) appended with one write each and
// fsynced after every spill. A new run always starts a new segment; older
// segments are only read. A segment is deleted once all its records are
// acknowledged (or dropped). dir/LOCK is flock'ed so that two agents never
// share a spool.
//
// Size: the segment files together stay within maxBytes; making room drops
// the oldest segment whole, and its unacknowledged batches are counted as
// dropped. Segments are maxBytes/16, between 64 KiB and 1 MiB (a single
// larger batch gets a segment of its own), so a drop loses at most 1/16
// of the spool. Memory: the index (offset and size of every record, 12
// bytes each) and the head record while it is being published.
//
// Damage: records are checked (length, CRC-32C) when the spool is opened
// and when read; a damaged stretch or a record cut short by a crash is
// skipped and counted as corrupt (and dropped). Safe for concurrent use.
type spool struct {
	dir       string
	maxBytes  int64
	segMax    int64
	log       *slog.Logger
	run, host string // this run's, for batches without their own

	mu      sync.Mutex
	lock    io.Closer
	segs    []*segment
	w       *os.File // appends to the last segment; nil: the next put starts one
	nextOrd uint64
	bytes   int64 // file bytes of all segments
	n       int   // records not yet acknowledged or dropped
	head    *batch
	headRef spoolRef
	enc     []byte
	dirty   bool

	dropped, corrupt, errs uint64
}

type segment struct {
	ord  uint64
	path string
	size int64
	recs []recSpan
	pos  int      // first record not yet acknowledged
	r    *os.File // reader, opened on first read
}

// spoolRef names one record: segment ordinal and index.
type spoolRef struct {
	ord uint64
	idx int
}

// SpoolStats are the spool's counters.
type SpoolStats struct {
	// Batches and Bytes (of segment files) waiting in the spool.
	Batches int
	Bytes   int64
	// Dropped batches: oldest dropped to make room, damaged or unreadable.
	Dropped uint64
	// Corrupt damaged stretches and records cut short, skipped.
	Corrupt uint64
	// Errors: failed writes and reads of spool files.
	Errors uint64
}

const segPrefix, segSuffix = "seg-", ".vsp"

// openSpool opens (creating) the spool in dir and indexes what an earlier
// run left there.
func openSpool(dir string, maxBytes int64, run, host string, log *slog.Logger) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, "LOCK"))
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	s := &spool{
		dir: dir, maxBytes: maxBytes, segMax: min(max(maxBytes/16, 64<<10), 1<<20),
		log: log, run: run, host: host, lock: lock, nextOrd: 1,
	}
	if err := s.load(); err != nil {
		lock.Close()
		return nil, err
	}
	if s.n > 0 || s.corrupt > 0 {
		log.Info("spool: batches of earlier runs to re-send", "dir", dir, "batches", s.n, "bytes", s.bytes, "corrupt", s.corrupt)
	}
	return s, nil
}

// load indexes the segment files of dir.
func (s *spool) load() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	var ords []uint64
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			_ = os.Remove(filepath.Join(s.dir, name)) // an interrupted compaction
			continue
		}
		hex, ok := strings.CutPrefix(name, segPrefix)
		if hex, ok2 := strings.CutSuffix(hex, segSuffix); ok && ok2 {
			if ord, err := strconv.ParseUint(hex, 16, 64); err == nil {
				ords = append(ords, ord)
			}
		}
	}
	sort.Slice(ords, func(i, j int) bool { return ords[i] < ords[j] })
	for _, ord := range ords {
		path := s.segPath(ord)
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		spans, corrupt := scanRecords(data)
		s.corrupt += uint64(corrupt)
		s.dropped += uint64(corrupt)
		s.nextOrd = ord + 1
		if len(spans) == 0 {
			_ = os.Remove(path)
			continue
		}
		s.segs = append(s.segs, &segment{ord: ord, path: path, size: int64(len(data)), recs: spans})
		s.bytes += int64(len(data))
		s.n += len(spans)
	}
	if s.corrupt > 0 {
		s.log.Warn("spool: damaged or cut-short records skipped", "dir", s.dir, "corrupt", s.corrupt)
	}
	return nil
}

func (s *spool) segPath(ord uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%s%016x%s", segPrefix, ord, segSuffix))
}

// put appends b. It drops the oldest segments when the spool would
// exceed maxBytes (and b itself if it can never fit). An error means b is
// not in the spool.
func (s *spool) put(b *batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	run, host := b.run, b.host
	if run == "" {
		run = s.run
	}
	if host == "" {
		host = s.host
	}
	if len(run) > 255 || len(host) > 65535 {
		return fmt.Errorf("spool: run or host name too long")
	}
	size := int64(recordSize(b, run, host))
	if size > s.maxBytes {
		s.dropped++
		s.log.Error("spool: batch larger than spool.max_bytes: dropped", "seq", b.seq, "bytes", size)
		return nil
	}
	for s.bytes+size > s.maxBytes && len(s.segs) > 0 {
		s.dropOldest()
	}
	if err := s.ensureWriter(size); err != nil {
		s.errs++
		return err
	}
	seg := s.segs[len(s.segs)-1]
	s.enc = appendRecord(s.enc[:0], b, run, host)
	if _, err := s.w.Write(s.enc); err != nil {
		s.errs++
		_ = s.w.Truncate(seg.size) // best effort: no half record
		s.closeWriter()
		return fmt.Errorf("spool write: %w", err)
	}
	seg.recs = append(seg.recs, recSpan{off: seg.size, size: int32(size)})
	seg.size += size
	s.bytes += size
	s.n++
	s.dirty = true
	if cap(s.enc) > 1<<20 {
		s.enc = nil // keep no large buffer after a large batch
	}
	return nil
}

// ensureWriter makes sure a segment with room for size bytes is open.
func (s *spool) ensureWriter(size int64) error {
	if s.w != nil {
		if seg := s.segs[len(s.segs)-1]; seg.size+size <= s.segMax || len(seg.recs) == 0 {
			return nil
		}
		if err := s.syncLocked(); err != nil {
			return err
		}
		s.closeWriter()
	}
	ord := s.nextOrd
	path := s.segPath(ord)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.nextOrd++
	syncDir(s.dir)
	s.w = f
	s.segs = append(s.segs, &segment{ord: ord, path: path})
	return nil
}

// sync makes what put wrote durable.
func (s *spool) sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncLocked()
}

func (s *spool) syncLocked() error {
	if !s.dirty || s.w == nil {
		return nil
	}
	s.dirty = false
	if err := s.w.Sync(); err != nil {
		s.errs++
		return fmt.Errorf("spool sync: %w", err)
	}
	return nil
}

func (s *spool) closeWriter() {
	if s.w != nil {
		_ = s.w.Close()
		s.w = nil
		s.dirty = false
	}
}

// dropOldest removes the oldest segment and counts its unacknowledged
// batches as dropped.
func (s *spool) dropOldest() {
	seg := s.segs[0]
	lost := len(seg.recs) - seg.pos
	s.dropped += uint64(lost)
	s.log.Warn("spool full: dropped the oldest batches", "dir", s.dir, "batches", lost,
		"max_bytes", s.maxBytes, "dropped_total", s.dropped)
	if s.head != nil && s.headRef.ord == seg.ord {
		s.head = nil
	}
	s.n -= lost
	s.removeHead()
}

// removeHead deletes the first segment's file and forgets it.
func (s *spool) removeHead() {
	seg := s.segs[0]
	if len(s.segs) == 1 {
		s.closeWriter()
	}
	if seg.r != nil {
		_ = seg.r.Close()
	}
	if err := os.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.errs++
		s.log.Warn("spool: cannot remove segment", "err", err)
	}
	s.bytes -= seg.size
	s.segs[0] = nil
	s.segs = s.segs[1:]
}

// peek returns the oldest batch not yet acknowledged (read from disk; its
// data is its own). ok is false when the spool is empty. Damaged records
// are skipped and counted.
func (s *spool) peek() (b batch, ref spoolRef, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.head == nil {
		if len(s.segs) == 0 {
			return batch{}, spoolRef{}, false
		}
		seg := s.segs[0]
		if seg.pos == len(seg.recs) {
			if len(s.segs) == 1 && s.w != nil {
				return batch{}, spoolRef{}, false // the writer's, still empty
			}
			s.removeHead()
			continue
		}
		rb, err := s.read(seg, seg.recs[seg.pos])
		if err != nil {
			s.corrupt++
			s.dropped++
			s.log.Warn("spool: unreadable record skipped", "segment", seg.path, "err", err)
			seg.pos++
			s.n--
			continue
		}
		s.head, s.headRef = &rb, spoolRef{ord: seg.ord, idx: seg.pos}
	}
	return *s.head, s.headRef, true
}

// attempt counts a publication of the head and returns the attempts so
// far (in this run).
func (s *spool) attempt() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head == nil {
		return 1
	}
	s.head.attempts++
	return s.head.attempts
}

// read reads and checks one record.
func (s *spool) read(seg *segment, sp recSpan) (batch, error) {
	if seg.r == nil {
		f, err := os.Open(seg.path)
		if err != nil {
			s.errs++
			return batch{}, err
		}
		seg.r = f
	}
	buf := make([]byte, sp.size)
	if _, err := seg.r.ReadAt(buf, sp.off); err != nil {
		s.errs++
		return batch{}, err
	}
	b, _, err := decodeRecord(buf)
	return b, err
}

// ack removes the record ref once JetStream acknowledged it (nothing if
// it was dropped meanwhile).
func (s *spool) ack(ref spoolRef) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.segs) == 0 || s.segs[0].ord != ref.ord || s.segs[0].pos != ref.idx {
		return
	}
	seg := s.segs[0]
	seg.pos++
	s.n--
	s.head = nil
	if seg.pos == len(seg.recs) {
		s.removeHead()
	}
}

// Stats returns the depth and counters.
func (s *spool) Stats() SpoolStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SpoolStats{Batches: s.n, Bytes: s.bytes, Dropped: s.dropped, Corrupt: s.corrupt, Errors: s.errs}
}

// depth returns the number of batches waiting.
func (s *spool) depth() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// close syncs, rewrites a partly acknowledged first segment without its
// acknowledged records (so a restart does not re-send them), and releases
// the directory.
func (s *spool) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.syncLocked()
	s.closeWriter()
	if len(s.segs) > 0 && s.segs[0].pos > 0 {
		err = errors.Join(err, s.compactHead())
	}
	for _, seg := range s.segs {
		if seg.r != nil {
			_ = seg.r.Close()
			seg.r = nil
		}
	}
	return errors.Join(err, s.lock.Close())
}

// compactHead replaces the first segment by its unacknowledged records
// (write to a temporary file, fsync, rename).
func (s *spool) compactHead() error {
	seg := s.segs[0]
	tmp := seg.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("spool compact: %w", err)
	}
	var size int64
	var recs []recSpan
	for _, sp := range seg.recs[seg.pos:] {
		b, err := s.read(seg, sp)
		if err != nil {
			continue // counted again when the next run reads it
		}
		s.enc = appendRecord(s.enc[:0], &b, b.run, b.host)
		if _, err := f.Write(s.enc); err != nil {
			f.Close()
			os.Remove(tmp)
			return fmt.Errorf("spool compact: %w", err)
		}
		recs = append(recs, recSpan{off: size, size: int32(len(s.enc))})
		size += int64(len(s.enc))
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("spool compact: %w", err)
	}
	if seg.r != nil {
		_ = seg.r.Close()
		seg.r = nil
	}
	if err := os.Rename(tmp, seg.path); err != nil {
		return fmt.Errorf("spool compact: %w", err)
	}
	syncDir(s.dir)
	s.bytes += size - seg.size
	seg.size, seg.recs, seg.pos = size, recs, 0
	return nil
}

// syncDir makes file creations and renames in dir durable (best effort).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
