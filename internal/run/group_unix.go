//go:build unix

package run

import (
	"errors"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
)

// ownGroup starts cmd in a process group of its own and makes the
// context's end kill the whole group.
func ownGroup(cmd *exec.Cmd, killed *atomic.Bool) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		killed.Store(true)
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
}

// signalOf is the signal that ended the process, or 0.
func signalOf(ps *os.ProcessState) syscall.Signal {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return ws.Signal()
	}
	return 0
}
