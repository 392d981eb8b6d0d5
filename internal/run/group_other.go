//go:build !unix

package run

import (
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
)

// ownGroup: without process groups only the program itself is killed at
// the context's end.
func ownGroup(cmd *exec.Cmd, killed *atomic.Bool) {
	cmd.Cancel = func() error {
		killed.Store(true)
		return cmd.Process.Kill()
	}
}

// signalOf: no signals here.
func signalOf(*os.ProcessState) syscall.Signal { return 0 }
