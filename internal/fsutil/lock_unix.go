//go:build unix && !(aix || solaris || illumos)

package fsutil

import (
	"errors"
	"os"
	"syscall"
)

// lockFile takes an exclusive, non-blocking flock(2) on f. held reports
// that another open file holds it. flock, unlike fcntl locks, belongs to
// the open file description: closing some other descriptor of the same
// file does not drop it.
func lockFile(f *os.File) (held bool, err error) {
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	return false, err
}
