//go:build !unix

package fsutil

import "os"

// mapFile reads the file into memory: this system has no mmap that Map uses
// (see Map for why Windows does not map either).
func mapFile(f *os.File, size int) ([]byte, error) { return readAll(f, size) }

// unmapFile leaves the bytes to the garbage collector.
func unmapFile([]byte) error { return nil }
