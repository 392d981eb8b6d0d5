package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"
)

// Verify re-reads every chunk snapshot id names and checks its SHA-256.
// The outcome is returned and recorded in the repository (Verified); a
// missing or corrupt chunk makes it not OK without stopping the check.
// now is the time recorded.
func (r *Repo) Verify(ctx context.Context, id string, now time.Time) (VerifyRecord, error) {
	snap, err := r.Snapshot(id)
	if err != nil {
		return VerifyRecord{}, err
	}
	rec := VerifyRecord{Time: now.UTC(), OK: true}
	seen := map[string]bool{}
	var buf []byte
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
			b, err := r.readChunk(c, buf)
			var ce *CorruptError
			switch {
			case err == nil:
				buf = b
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
