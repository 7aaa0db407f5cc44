//go:build windows

package fsutil

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// lockOffsetHigh places the locked byte: far past the pid the holder
// writes at the start of the file. A Windows byte-range lock is mandatory,
// so locking the pid itself would stop the contender from reading it.
const lockOffsetHigh = 0x40000000 // offset 1<<62

// lockFile takes an exclusive, non-blocking LockFileEx on one byte of f.
// held reports that another handle holds it. Windows releases the lock when
// the handle is closed or the process ends.
func lockFile(f *os.File) (held bool, err error) {
	ol := windows.Overlapped{OffsetHigh: lockOffsetHigh}
	err = windows.LockFileEx(windows.Handle(f.Fd()),
		windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		return true, nil
	}
	return false, err
}
