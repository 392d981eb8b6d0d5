package backup

import (
	"context"
	"fmt"
)

// CopyResult is what a copy transferred.
type CopyResult struct {
	Snapshots []string // copied (those already in dst are skipped)
	Chunks    int      // chunks written to dst for them
	Bytes     int64    // their plaintext bytes
}

// Copy replicates snapshots ids (all when empty) into dst, keeping their
// ids. Every chunk is read from r (authenticated and checked against its
// id on the way) and stored in dst's format, so the repositories may
// differ in version, compression and encryption; only chunks dst lacks
// are written, and a manifest is written only after all its chunks.
//
// Chunks go through dst's write pipeline (see pipeline.go): this
// goroutine reads and checks them in order while others compress, seal
// and write them. Memory: the pipeline's slots (two chunk buffers each, 6
// slots on 2 cores) and the two buffers reading from r, so at most 14
// buffers of about maxChunk (4 MiB) on 2 cores, 30 from 8 cores. The first
// error (a source chunk unreadable or corrupt, a failed write, a
// cancelled ctx) stops the copy and names the snapshot and the chunk; the
// snapshots copied before it stay complete, and the one it was copying
// gets no manifest, so a later copy resumes it (chunks already written
// are not written again).
//
// When the two name chunks differently (one is encrypted, or both with
// different keys), each manifest's chunk ids are translated. A chunk's
// id in dst then needs its plaintext, so chunks are read even when dst
// has them, except those already translated: within this call, and for
// files unchanged since the snapshot's parent when that parent is in dst
// already (the usual copy of each new snapshot after a backup).
func (r *Repo) Copy(ctx context.Context, dst *Repo, ids []string) (*CopyResult, error) {
	unlock, err := dst.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock.Close()
	var snaps []*Snapshot
	if len(ids) == 0 {
		if snaps, err = r.Snapshots(); err != nil {
			return nil, err
		}
	}
	for _, id := range ids {
		s, err := r.Snapshot(id)
		if err != nil {
			return nil, err
		}
		snaps = append(snaps, s)
	}
	have, err := dst.ids()
	if err != nil {
		return nil, err
	}
	c := &copier{
		src: r, dst: dst, same: r.sameIDs(dst),
		in:    map[string]bool{},
		idmap: map[string]string{},
		rio:   r.newChunkIO(), wio: dst.newChunkIO(),
		pipe: dst.newPipeline(ctx),
		res:  &CopyResult{},
	}
	for _, id := range have {
		c.in[id] = true
	}
	for _, s := range snaps {
		if err := c.snapshot(s); err != nil {
			c.pipe.fail(err)
			return c.res, c.pipe.close() // the first error of any stage
		}
	}
	c.pipe.close() // nothing is in flight: each snapshot was flushed
	return c.res, nil
}

// copier is one Copy in progress, the producer of dst's write pipeline.
type copier struct {
	src, dst *Repo
	same     bool              // both name chunks alike
	in       map[string]bool   // snapshots dst has
	idmap    map[string]string // src's chunk id -> dst's (when !same)
	rio, wio *chunkIO          // reading src; naming chunks for dst
	pipe     *pipeline
	res      *CopyResult
}

// snapshot copies s unless dst has it: hands every chunk dst lacks to the
// pipeline, waits until they are all written, then writes the manifest.
func (c *copier) snapshot(s *Snapshot) error {
	if c.in[s.ID] {
		return nil
	}
	if !c.same && s.Parent != "" && c.in[s.Parent] {
		c.src.learnIDs(c.dst, s.Parent, c.idmap) // a failure only means reading more
	}
	cp := *s
	cp.Files = make([]File, len(s.Files))
	var chunks int
	var bytes int64
	for i, f := range s.Files {
		if len(f.Chunks) > 0 {
			f.Chunks = append([]string(nil), f.Chunks...)
		}
		what := "copy " + s.ID + " " + f.Path
		for j, id := range f.Chunks {
			if err := c.pipe.err(); err != nil {
				return err // cancelled, or a chunk failed to encode or write
			}
			if !c.same {
				if m, ok := c.idmap[id]; ok && c.pipe.has(m) {
					f.Chunks[j] = m
					continue
				}
			} else if c.pipe.has(id) {
				continue
			}
			data, err := c.src.readChunk(id, c.rio)
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			if !c.same {
				nid := c.wio.id(data)
				c.idmap[id] = nid
				f.Chunks[j] = nid
			}
			added, err := c.pipe.put(what, f.Chunks[j], data)
			if err != nil {
				return err
			}
			if added {
				chunks++
				bytes += int64(len(data))
			}
		}
		cp.Files[i] = f
	}
	// Every chunk is in place before the manifest naming it is written.
	if err := c.pipe.flush(); err != nil {
		return err
	}
	if err := c.dst.saveManifest(&cp); err != nil {
		return fmt.Errorf("copy %s: %w", s.ID, err)
	}
	c.in[s.ID] = true
	c.res.Snapshots = append(c.res.Snapshots, s.ID)
	c.res.Chunks += chunks
	c.res.Bytes += bytes
	return nil
}

// learnIDs adds to idmap the chunk-id translations snapshot id's copies in
// r and dst imply: a file with the same path, SHA-256 and chunk count in
// both has the same chunks in the same order.
func (r *Repo) learnIDs(dst *Repo, id string, idmap map[string]string) {
	a, err := r.load(id)
	if err != nil {
		return
	}
	b, err := dst.load(id)
	if err != nil {
		return
	}
	byPath := make(map[string]*File, len(b.Files))
	for i := range b.Files {
		byPath[b.Files[i].Path] = &b.Files[i]
	}
	for _, f := range a.Files {
		g := byPath[f.Path]
		if g == nil || g.SHA256 != f.SHA256 || len(g.Chunks) != len(f.Chunks) {
			continue
		}
		for j, c := range f.Chunks {
			idmap[c] = g.Chunks[j]
		}
	}
}
