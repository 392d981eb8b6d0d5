//go:build !unix

package agent

import (
	"io"
	"os"
)

// lockDir only creates path: there is no flock here, so nothing stops two
// agents from sharing a spool directory.
func lockDir(path string) (io.Closer, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
}
