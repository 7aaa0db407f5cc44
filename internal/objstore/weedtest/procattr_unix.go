//go:build unix

package weedtest

import "syscall"

// ownProcessGroup starts weed in a process group of its own, so that a
// signal to the test's group (Ctrl-C) does not reach it before Stop does.
func ownProcessGroup() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
