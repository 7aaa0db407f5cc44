//go:build unix

package fsutil

import (
	"os"
	"syscall"
)

// mapFile maps size bytes of f shared and read-only: the file is immutable
// once written, and a shared mapping lets every reader use the page cache's
// copy.
func mapFile(f *os.File, size int) ([]byte, error) {
	return syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
}

func unmapFile(b []byte) error { return syscall.Munmap(b) }
