package fsutil

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ErrLockHeld is wrapped by Lock's error when another process holds the lock.
var ErrLockHeld = errors.New("lock held by another process")

// HeldError reports a lock held by another process, with the pid that process
// wrote into the file (only a hint: "unknown" when unreadable).
type HeldError struct {
	Path   string
	Holder string
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("%s: %v (pid %s)", e.Path, ErrLockHeld, e.Holder)
}

// Is makes errors.Is(err, ErrLockHeld) true.
func (e *HeldError) Is(target error) bool { return target == ErrLockHeld }

// Lock is an exclusive advisory lock on a file. The kernel drops it when the
// process dies, so a crash never leaves a stale lock behind. On Unix it is
// flock(2) (lock_unix.go), on Windows LockFileEx (lock_windows.go); systems
// with neither refuse to lock (lock_other.go). The lock belongs to the open
// file, so a second Lock of the same path in the same process contends like
// another process would.
type Lock struct {
	f *os.File
}

// Lock takes an exclusive, non-blocking lock on path (creating it) and
// writes the process id into it as a hint for the error another process
// gets. Contention is a *HeldError.
func (fsys FS) Lock(path string) (*Lock, error) {
	if err := fsys.inject(OpOpen, path); err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640) //nolint:gosec // G302: it holds only a pid, readable by the operators' group like the data directory
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	held := false
	err = fsys.inject(OpLock, path)
	if err == nil {
		held, err = lockFile(f)
	}
	if held {
		f.Close()
		holder, _ := os.ReadFile(path)
		return nil, &HeldError{Path: path, Holder: trimPID(holder)}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// The pid is only a hint; failing to write it is not a reason to refuse.
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &Lock{f: f}, nil
}

// Close releases the lock.
func (l *Lock) Close() error { return l.f.Close() }

func trimPID(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" || len(s) > 12 {
		return "unknown"
	}
	return s
}
