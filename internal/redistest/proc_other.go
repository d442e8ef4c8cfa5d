//go:build !linux

package redistest

import "os/exec"

// dieWithParent has no equivalent here: a killed test binary may leave
// redis-server running.
func dieWithParent(*exec.Cmd) {}
