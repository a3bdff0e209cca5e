//go:build !linux

package main

import "syscall"

// childProcAttr returns nil: started servers share the harness's process group.
func childProcAttr() *syscall.SysProcAttr { return nil }
