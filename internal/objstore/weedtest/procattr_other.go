//go:build !unix

package weedtest

import "syscall"

// ownProcessGroup has no process groups to set outside Unix; the end-to-end
// tests run on Linux (weed is built for it), other platforms only build.
func ownProcessGroup() *syscall.SysProcAttr { return nil }
