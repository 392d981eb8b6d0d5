//go:build !unix

package release

import (
	"errors"
	"os"
	"time"
)

// lockFile takes a lock by creating path exclusively (no flock here): a
// crash leaves it behind and an operator removes it. With wait set it
// retries for up to 30 s.
func lockFile(path string, wait bool) (func(), error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		f, err := os.OpenFile(path+".excl", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(path + ".excl") }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, err
		}
		if !wait || time.Now().After(deadline) {
			return nil, ErrBusy
		}
		time.Sleep(20 * time.Millisecond)
	}
}
