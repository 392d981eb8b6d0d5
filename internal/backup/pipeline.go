package backup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
)

// The write pipeline of a backup or a copy. Three stages overlap:
//
//	producer  the caller's own goroutine. A backup reads each file in
//	          order, cuts it into chunks, hashes the file and each chunk's
//	          id and appends the id to the file's chunk list, so the
//	          manifest lists chunks in read order whatever order they are
//	          written in; a copy reads and checks each chunk of a snapshot
//	          from the source repository (and names it anew when the two
//	          name chunks differently). A chunk that is stored already, or
//	          is in flight, goes no further (de-duplication within and
//	          across backups and copies); any other is copied into a free
//	          slot and handed to
//	encoders  GOMAXPROCS goroutines (at most 8): compress and seal the
//	          slot's chunk (the zstd encoder states are shared and reused,
//	          see object.go), and hand it to
//	writers   write the encoded chunk atomically with fsync, in any order,
//	          and free the slot.
//
// Memory is bounded by the fixed number of slots (each a plaintext and an
// encoded buffer, of at most maxChunk bytes and a little more): the
// producer waits for a free one, so no more chunks are in flight than
// there are slots (see pipeSizes). The first error of any stage (naming
// what the chunk came from: the file, or the snapshot and file copied)
// cancels the pipeline: the producer stops reading, the other stages drop
// what they hold, and the backup or copy fails without a manifest (chunks
// already written are unreferenced until the next backup or copy uses
// them or prune removes them). A manifest is written only after close (a
// backup) or flush (each snapshot of a copy) found every chunk it names in
// place.

// pipeSizes are the numbers of encoders, writers and slots for n =
// GOMAXPROCS. Encoders: n, at most 8 (more would wait for the producer:
// one core, which chunks and hashes about 500 MB/s here). Writers spend most of their time waiting
// for fsync: at least 2 even on one core, at most 4. Slots: one for each
// goroutine and two queued, e.g. 6 (about 48 MiB at most) on 2 cores and 14
// (112 MiB) from 8 cores on.
func pipeSizes(n int) (encoders, writers, slots int) {
	encoders = min(max(n, 1), 8)
	writers = min(max(n, 2), 4)
	return encoders, writers, encoders + writers + 2
}

// encBound is the largest stored size of an n-byte chunk: nonce, encoding
// byte, a zstd frame of incompressible data (the data plus 1/128 and a
// few headers; it is dropped for the raw form, but written first) and tag.
func encBound(n int) int { return nonceSize + 1 + n + n/128 + 1024 + tagSize }

// reserve returns b emptied with room for n bytes. Buffers of chunks of
// large files (of at least minChunk bytes) are made large enough for any
// chunk at once, so a slot allocates at most once per buffer.
func reserve(b []byte, n, largest int) []byte {
	if cap(b) >= n {
		return b[:0]
	}
	if n >= minChunk {
		n = largest
	}
	return make([]byte, 0, n)
}

// slot is one chunk in flight.
type slot struct {
	cio    *chunkIO // its enc buffer holds the encoded chunk
	plain  []byte
	stored []byte // the chunk as written, aliasing plain or cio.enc
	id     string
	what   string // where it came from, for errors: "backup <path>" or "copy <snapshot> <path>"
}

// pipeline runs the encoders and writers of one backup or copy.
type pipeline struct {
	r      *Repo
	ctx    context.Context
	cancel context.CancelCauseFunc
	free   chan *slot
	encode chan *slot
	write  chan *slot
	encWG  sync.WaitGroup
	wrWG   sync.WaitGroup

	mu       sync.Mutex
	inflight map[string]bool // ids handed on and not yet written

	stored atomic.Int64 // bytes written (encoded)
}

func (r *Repo) newPipeline(ctx context.Context) *pipeline {
	encoders, writers, slots := pipeSizes(runtime.GOMAXPROCS(0))
	p := &pipeline{
		r:        r,
		free:     make(chan *slot, slots),
		encode:   make(chan *slot, slots),
		write:    make(chan *slot, slots),
		inflight: make(map[string]bool, slots),
	}
	p.ctx, p.cancel = context.WithCancelCause(ctx)
	for range slots {
		p.free <- &slot{cio: r.newChunkIO()}
	}
	p.encWG.Add(encoders)
	for range encoders {
		go p.encoder()
	}
	p.wrWG.Add(writers)
	for range writers {
		go p.writer()
	}
	return p
}

// fail stops the pipeline with err (the first error wins).
func (p *pipeline) fail(err error) { p.cancel(err) }

// err is the error that stopped the pipeline, or nil.
func (p *pipeline) err() error {
	if p.ctx.Err() == nil {
		return nil
	}
	return context.Cause(p.ctx)
}

// has reports whether chunk id is stored or in flight.
func (p *pipeline) has(id string) bool {
	p.mu.Lock()
	busy := p.inflight[id]
	p.mu.Unlock()
	// Only put adds to inflight, and a writer removes an id after its
	// chunk is in place, so an id that is not in flight is either stored
	// (found here) or not written at all.
	return busy || p.r.hasChunk(id)
}

// put hands on chunk data with id unless it is stored or in flight; it
// reports whether it did. what says where the chunk came from (errors
// about it start with it). data may be reused as soon as put returns.
func (p *pipeline) put(what, id string, data []byte) (bool, error) {
	if p.has(id) {
		return false, nil
	}
	var s *slot
	select {
	case s = <-p.free:
	case <-p.ctx.Done():
		return false, p.err()
	}
	s.plain = append(reserve(s.plain, len(data), maxChunk), data...)
	s.id, s.what = id, what
	p.mu.Lock()
	p.inflight[id] = true
	p.mu.Unlock()
	p.encode <- s // never blocks: the channel holds every slot
	return true, nil
}

func (p *pipeline) encoder() {
	defer p.encWG.Done()
	for s := range p.encode {
		if p.ctx.Err() != nil {
			p.free <- s
			continue
		}
		if p.r.cfg.Version != formatV1 {
			s.cio.enc = reserve(s.cio.enc, encBound(len(s.plain)), encBound(maxChunk))
		}
		stored, err := p.r.encode(s.cio, kindChunk, s.id, s.plain)
		if err != nil {
			p.fail(fmt.Errorf("%s: chunk %s: %w", s.what, s.id[:12], err))
			p.free <- s
			continue
		}
		s.stored = stored
		p.write <- s
	}
}

func (p *pipeline) writer() {
	defer p.wrWG.Done()
	for s := range p.write {
		if p.ctx.Err() == nil {
			if err := p.r.writeChunk(s.id, s.stored); err != nil {
				p.fail(fmt.Errorf("%s: chunk %s: %w", s.what, s.id[:12], err))
			} else {
				p.stored.Add(int64(len(s.stored)))
			}
		}
		p.mu.Lock()
		delete(p.inflight, s.id)
		p.mu.Unlock()
		s.stored = nil
		p.free <- s
	}
}

// flush waits for every chunk handed on so far to be written (or dropped
// after an error), by holding every slot at once, and returns the
// pipeline's error: nil only when all of them are in place. The pipeline
// keeps running. Only the producer calls it (not while it calls put).
func (p *pipeline) flush() error {
	held := make([]*slot, 0, cap(p.free))
	for range cap(p.free) {
		held = append(held, <-p.free)
	}
	for _, s := range held {
		p.free <- s
	}
	return p.err()
}

// close waits for every chunk handed on to be written (or dropped after
// an error) and stops the goroutines. It returns the pipeline's error:
// nil only when every chunk put handed on is in place.
func (p *pipeline) close() error {
	close(p.encode)
	p.encWG.Wait()
	close(p.write)
	p.wrWG.Wait()
	err := p.err()
	p.cancel(nil)
	return err
}

// writeChunk stores an encoded chunk under id.
func (r *Repo) writeChunk(id string, stored []byte) error {
	if chunkWriteHook != nil {
		if err := chunkWriteHook(id); err != nil {
			return err
		}
	}
	p := r.chunkPath(id)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return writeAtomic(p, stored)
}

// chunkWriteHook, when set (by tests), runs before every chunk is
// written; an error fails the write.
var chunkWriteHook func(id string) error
