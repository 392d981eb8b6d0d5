package influxtest

import "syscall"

// sysProcAttr kills influxd when the process that started it dies, so a
// crashed or interrupted test run leaves no server behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
