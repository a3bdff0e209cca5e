package main

import "syscall"

// childProcAttr puts a started server in its own process group, so that a Ctrl-C reaches only
// the harness (which then stops the server in order and reads its peak memory first), and has
// the kernel kill it should the harness die without stopping it.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
