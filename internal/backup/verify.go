package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"
)

// Verify re-reads every chunk snapshot id names, authenticates it
// (encrypted repositories) and checks it against its id. The outcome is
// returned and recorded in the repository (Verified); a missing or
// corrupt chunk makes it not OK without stopping the check, and so does a
// manifest that fails authentication (Manifest says why; no chunk is
// checked then). now is the time recorded.
func (r *Repo) Verify(ctx context.Context, id string, now time.Time) (VerifyRecord, error) {
	full, err := r.resolve(id)
	if err != nil {
		return VerifyRecord{}, err
	}
	rec := VerifyRecord{Time: now.UTC(), OK: true}
	snap, err := r.load(full)
	var ce *CorruptError
	switch {
	case errors.As(err, &ce):
		rec.OK, rec.Manifest = false, ce.Error()
		if serr := r.saveVerified(full, rec); serr != nil {
			return rec, fmt.Errorf("verify %s: record: %w", full, serr)
		}
		return rec, nil
	case err != nil:
		return VerifyRecord{}, err
	}
	seen := map[string]bool{}
	cio := r.newChunkIO()
	for _, f := range snap.Files {
		for _, c := range f.Chunks {
			if seen[c] {
				continue
			}
			seen[c] = true
			if err := ctx.Err(); err != nil {
				return rec, err
			}
			rec.Chunks++
			b, err := r.readChunk(c, cio)
			switch {
			case err == nil:
				rec.Bytes += int64(len(b))
			case errors.Is(err, fs.ErrNotExist):
				rec.OK, rec.Missing = false, append(rec.Missing, c)
			case errors.As(err, &ce):
				rec.OK, rec.Corrupt = false, append(rec.Corrupt, c)
			default:
				return rec, fmt.Errorf("verify %s: %w", snap.ID, err)
			}
		}
	}
	if err := r.saveVerified(snap.ID, rec); err != nil {
		return rec, fmt.Errorf("verify %s: record: %w", snap.ID, err)
	}
	return rec, nil
}
