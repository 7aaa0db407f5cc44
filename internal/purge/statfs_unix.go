//go:build linux || darwin || freebsd || dragonfly

package purge

import (
	"fmt"
	"syscall"
)

// diskSpace returns the bytes available to an unprivileged process and the
// total size of the file system holding dir. It uses statfs(2), which reads
// file-system counters and touches no data.
func diskSpace(dir string) (free, size uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	// The field types differ between systems (int64, uint64, uint32), so
	// convert each one explicitly.
	bsize := uint64(st.Bsize)
	return uint64(st.Bavail) * bsize, uint64(st.Blocks) * bsize, nil
}
