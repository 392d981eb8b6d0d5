package backup

import (
	"context"
	"fmt"
)

// CopyResult is what a copy transferred.
type CopyResult struct {
	Snapshots []string // copied (those already in dst are skipped)
	Chunks    int      // chunks written to dst
	Bytes     int64
}

// Copy replicates snapshots ids (all when empty) into dst, keeping their
// ids: only chunks dst lacks are transferred, each checked against its
// SHA-256 on the way, and a manifest is written only after all its chunks.
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
	res := &CopyResult{}
	var buf []byte
	for _, s := range snaps {
		if in[s.ID] {
			continue
		}
		for _, f := range s.Files {
			for _, c := range f.Chunks {
				if err := ctx.Err(); err != nil {
					return res, err
				}
				if dst.hasChunk(c) {
					continue
				}
				if buf, err = r.readChunk(c, buf); err != nil {
					return res, fmt.Errorf("copy %s: %w", s.ID, err)
				}
				wrote, err := dst.putChunk(c, buf)
				if err != nil {
					return res, fmt.Errorf("copy %s: %w", s.ID, err)
				}
				if wrote {
					res.Chunks++
					res.Bytes += int64(len(buf))
				}
			}
		}
		if err := dst.saveManifest(s); err != nil {
			return res, err
		}
		in[s.ID] = true
		res.Snapshots = append(res.Snapshots, s.ID)
	}
	return res, nil
}
