package purge

import (
	"fmt"
	"syscall"
)

// diskSpace is statfs_unix.go's for OpenBSD, whose statfs fields carry an
// F_ prefix.
func diskSpace(dir string) (free, size uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	bsize := uint64(st.F_bsize)
	return uint64(st.F_bavail) * bsize, st.F_blocks * bsize, nil
}
