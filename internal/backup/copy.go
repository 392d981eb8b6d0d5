package backup

import (
	"context"
	"fmt"
)

// CopyResult is what a copy transferred.
type CopyResult struct {
	Snapshots []string // copied (those already in dst are skipped)
	Chunks    int      // chunks written to dst
	Bytes     int64    // their plaintext bytes
}

// Copy replicates snapshots ids (all when empty) into dst, keeping their
// ids. Every chunk is read from r (authenticated and checked against its
// id on the way) and stored in dst's format, so the repositories may
// differ in version, compression and encryption; only chunks dst lacks
// are written, and a manifest is written only after all its chunks.
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
	in := map[string]bool{}
	for _, id := range have {
		in[id] = true
	}
	same := r.sameIDs(dst)
	idmap := map[string]string{} // r's chunk id -> dst's (when !same)
	res := &CopyResult{}
	src, out := r.newChunkIO(), dst.newChunkIO()
	for _, s := range snaps {
		if in[s.ID] {
			continue
		}
		if !same && s.Parent != "" && in[s.Parent] {
			r.learnIDs(dst, s.Parent, idmap) // a failure only means reading more
		}
		cp := *s
		cp.Files = make([]File, len(s.Files))
		for i, f := range s.Files {
			if len(f.Chunks) > 0 {
				f.Chunks = append([]string(nil), f.Chunks...)
			}
			for j, c := range f.Chunks {
				if err := ctx.Err(); err != nil {
					return res, err
				}
				nid := c
				if !same {
					if m, ok := idmap[c]; ok && dst.hasChunk(m) {
						f.Chunks[j] = m
						continue
					}
				} else if dst.hasChunk(c) {
					continue
				}
				data, err := r.readChunk(c, src)
				if err != nil {
					return res, fmt.Errorf("copy %s: %w", s.ID, err)
				}
				if !same {
					nid = out.id(data)
					idmap[c] = nid
					f.Chunks[j] = nid
				}
				wrote, _, err := dst.putChunk(nid, data, out)
				if err != nil {
					return res, fmt.Errorf("copy %s: %w", s.ID, err)
				}
				if wrote {
					res.Chunks++
					res.Bytes += int64(len(data))
				}
			}
			cp.Files[i] = f
		}
		if err := dst.saveManifest(&cp); err != nil {
			return res, err
		}
		in[s.ID] = true
		res.Snapshots = append(res.Snapshots, s.ID)
	}
	return res, nil
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
