package fsutil

import (
	"fmt"
	"io"
	"os"
)

// Map returns the first size bytes of f, read-only, for as long as the caller
// keeps them: after Unmap they must not be touched. The descriptor can be
// closed, and the file removed, right after Map returns; the bytes stay
// readable. Where the system has mmap (every Unix) the bytes are a shared
// read-only mapping of the file, so reading them costs no system call and no
// copy and the page cache holds them once for every process. Elsewhere
// (Windows, Plan 9, js/wasm, wasip1) Map reads the file into memory: correct,
// at the cost of the file's size in heap per open file. Windows could map a
// file too, but a mapped file there cannot be removed until it is unmapped,
// and the purge removes days that open searches still read.
//
// Writing into the returned slice faults (mmap) or corrupts only the copy
// (fallback); callers treat it as read-only in both cases. size must not
// exceed the file's size: mapping past the end would turn a read of the
// missing bytes into SIGBUS.
func Map(f *os.File, size int) ([]byte, error) { return FS{}.Map(f, size) }

// Map is the package-level Map through fsys.
func (fsys FS) Map(f *os.File, size int) ([]byte, error) {
	if err := fsys.inject(OpMap, f.Name()); err != nil {
		return nil, fmt.Errorf("map %s: %w", f.Name(), err)
	}
	if size < 0 {
		return nil, fmt.Errorf("map %s: negative size %d", f.Name(), size)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", f.Name(), err)
	}
	if int64(size) > fi.Size() {
		return nil, fmt.Errorf("map %s: %d bytes asked of a %d-byte file", f.Name(), size, fi.Size())
	}
	if size == 0 {
		return []byte{}, nil
	}
	b, err := mapFile(f, size)
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", f.Name(), err)
	}
	return b, nil
}

// Unmap releases bytes returned by Map. An empty slice (Map of size 0) is a
// no-op.
func Unmap(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if err := unmapFile(b); err != nil {
		return fmt.Errorf("unmap: %w", err)
	}
	return nil
}

// readAll is the fallback for systems without mmap: size bytes of f read
// into memory. It is here, not in the !unix file, so that its tests run
// everywhere.
func readAll(f *os.File, size int) ([]byte, error) {
	b := make([]byte, size)
	if _, err := io.ReadFull(io.NewSectionReader(f, 0, int64(size)), b); err != nil {
		return nil, err
	}
	return b, nil
}
