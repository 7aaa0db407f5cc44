//go:build !(linux || darwin || freebsd || dragonfly || openbsd)

package purge

import (
	"errors"
	"runtime"
)

// diskSpace is not implemented on this system; the free-space gauges then
// report an error at scrape time instead of a wrong value.
func diskSpace(dir string) (free, size uint64, err error) {
	return 0, 0, errors.New("free space of the data directory is not measured on " + runtime.GOOS)
}
