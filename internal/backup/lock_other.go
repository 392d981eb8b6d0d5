//go:build !unix

package backup

import (
	"context"
	"io"
	"os"
	"path/filepath"
)

// lock only creates the lock file: without flock nothing stops two
// writers.
func (r *Repo) lock(_ context.Context) (io.Closer, error) {
	return os.OpenFile(filepath.Join(r.path, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
}

// syncDir does nothing: directories cannot be synced here.
func syncDir(string) error { return nil }
