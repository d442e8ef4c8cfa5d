package redistest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill redis-server if the test binary dies
// without running its cleanups (a test timeout, a kill), so no server
// outlives its test.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
