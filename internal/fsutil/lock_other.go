//go:build !windows && (!unix || aix || solaris || illumos)

package fsutil

import (
	"errors"
	"os"
	"runtime"
)

// lockFile refuses: this system has no lock that a crash releases (flock or
// LockFileEx). Without one, two processes could write one data directory
// and corrupt it; and a lock made of an exclusively created file would stay
// behind after a crash and keep the daemon from starting. Refusing keeps
// the store safe on such systems.
func lockFile(*os.File) (held bool, err error) {
	return false, errors.New("file locks are not supported on " + runtime.GOOS)
}
