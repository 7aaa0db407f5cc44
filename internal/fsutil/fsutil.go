// Package fsutil is the only place in retentiond that knows how to make file
// system changes durable: write to a temporary file, fsync it, rename it into
// place, and fsync the directory; and, for deletion, rename to *.deleting,
// remove, and fsync the parent. Every other package calls these helpers, so the
// discipline is written (and reviewed) once.
//
// Every effect goes through an FS value. The zero FS acts on the real file
// system; tests build one with WithFaults (or an Injector) to make chosen
// operations fail with ENOSPC, EIO, EMFILE, a short write, a failed rename or
// a failed directory fsync, and check that the code above keeps its promises.
// The package-level functions are the zero FS's methods.
package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Suffixes that mark files and directories which are not (or no longer) part
// of the store. Start-up recovery removes anything ending in them.
const (
	TmpSuffix      = ".tmp"
	DeletingSuffix = ".deleting"
)

// FS performs file-system effects. The zero value acts on the real file
// system at the cost of one nil check per call; WithFaults returns one that
// consults a Faults function first. An FS is a small value: pass it by value
// in options.
type FS struct {
	faults Faults
}

// WithFaults returns an FS that asks f before every operation and fails the
// operation with f's error instead of performing it.
func WithFaults(f Faults) FS { return FS{faults: f} }

// inject returns the injected error for op on path, wrapped like the error
// the real call would return, or nil.
func (fsys FS) inject(op Op, path string) error {
	if fsys.faults == nil {
		return nil
	}
	if err := fsys.faults(op, path); err != nil {
		return &fs.PathError{Op: op.String(), Path: path, Err: err}
	}
	return nil
}

// SyncDir fsyncs a directory, making the creation, rename or removal of its
// entries durable. Without it a rename can be lost on power failure even
// though the renamed file's contents were synced.
func SyncDir(dir string) error { return FS{}.SyncDir(dir) }

// SyncDir is the package-level SyncDir through fsys.
func (fsys FS) SyncDir(dir string) error {
	if err := fsys.inject(OpSyncDir, dir); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir for sync: %w", err)
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return d.Close()
}

// MkdirAll creates dir and its parents and fsyncs the parent of every
// directory it created, so a new directory survives a crash.
func MkdirAll(dir string, perm fs.FileMode) error { return FS{}.MkdirAll(dir, perm) }

// MkdirAll is the package-level MkdirAll through fsys.
func (fsys FS) MkdirAll(dir string, perm fs.FileMode) error {
	dir = filepath.Clean(dir)
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("mkdir %s: not a directory", dir)
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := fsys.MkdirAll(parent, perm); err != nil {
			return err
		}
	}
	if err := fsys.inject(OpMkdir, dir); err != nil {
		return fmt.Errorf("mkdir: %w", err)
	}
	if err := os.Mkdir(dir, perm); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("mkdir: %w", err)
	}
	return fsys.SyncDir(parent)
}

// Handle is a file opened for writing through an FS: its writes, fsyncs and
// truncations pass the FS's faults. It deliberately has no way to reach the
// *os.File, so no write can bypass them.
type Handle struct {
	f   *os.File
	fs  FS
	dir string
}

// OpenFile opens path for writing with os.OpenFile's flag and perm. When the
// flag creates a file that did not exist, the caller is responsible for
// fsyncing the directory (SyncDir) before relying on the name.
func (fsys FS) OpenFile(path string, flag int, perm fs.FileMode) (*Handle, error) {
	if err := fsys.inject(OpOpen, path); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, flag, perm)
	if err != nil {
		return nil, err
	}
	return &Handle{f: f, fs: fsys, dir: filepath.Dir(path)}, nil
}

// Name is the path the file was opened with.
func (h *Handle) Name() string { return h.f.Name() }

// Write writes b at the file offset. An injected *ShortWrite writes the first
// half of b and then fails, the way a full disk can end a write.
func (h *Handle) Write(b []byte) (int, error) {
	if err := h.fs.inject(OpWrite, h.f.Name()); err != nil {
		return h.short(err, func(p []byte) (int, error) { return h.f.Write(p) }, b)
	}
	return h.f.Write(b)
}

// WriteAt writes b at offset off.
func (h *Handle) WriteAt(b []byte, off int64) (int, error) {
	if err := h.fs.inject(OpWrite, h.f.Name()); err != nil {
		return h.short(err, func(p []byte) (int, error) { return h.f.WriteAt(p, off) }, b)
	}
	return h.f.WriteAt(b, off)
}

func (h *Handle) short(err error, write func([]byte) (int, error), b []byte) (int, error) {
	var sw *ShortWrite
	if !errors.As(err, &sw) {
		return 0, err
	}
	n, werr := write(b[:len(b)/2])
	if werr != nil {
		return n, werr
	}
	return n, &fs.PathError{Op: OpWrite.String(), Path: h.f.Name(), Err: sw.Err}
}

// Sync fsyncs the file's contents.
func (h *Handle) Sync() error {
	if err := h.fs.inject(OpSync, h.f.Name()); err != nil {
		return err
	}
	return h.f.Sync()
}

// Truncate changes the file's size; the caller fsyncs to make it durable.
func (h *Handle) Truncate(size int64) error {
	if err := h.fs.inject(OpTruncate, h.f.Name()); err != nil {
		return err
	}
	return h.f.Truncate(size)
}

// Close closes the file. Closing does not fsync.
func (h *Handle) Close() error { return h.f.Close() }

// File is a file being written under a temporary name. Commit makes it
// durable under its final name; Abort removes it. Exactly one of them must be
// called.
type File struct {
	*Handle
	final string
	done  bool
}

// Create opens path+TmpSuffix for writing (truncating any leftover from a
// crash). The final name does not exist until Commit.
func Create(path string, perm fs.FileMode) (*File, error) { return FS{}.Create(path, perm) }

// Create is the package-level Create through fsys.
func (fsys FS) Create(path string, perm fs.FileMode) (*File, error) {
	h, err := fsys.OpenFile(path+TmpSuffix, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return nil, fmt.Errorf("create temp file: %w", err)
	}
	return &File{Handle: h, final: path}, nil
}

// Commit fsyncs the file, closes it, renames it to its final name and fsyncs
// the directory. After Commit returns nil the file survives a crash; after
// an error the temporary file is gone and the final name untouched.
func (f *File) Commit() error {
	if f.done {
		return errors.New("fsutil: commit of a finished file")
	}
	f.done = true
	tmp := f.Name()
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := f.fs.inject(OpRename, tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rename into place: %w", err)
	}
	if err := os.Rename(tmp, f.final); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rename into place: %w", err)
	}
	return f.fs.SyncDir(filepath.Dir(f.final))
}

// Abort closes and removes the temporary file. It is safe to call after
// Commit (it then does nothing), so callers can defer it.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.Close()
	os.Remove(f.Name())
}

// WriteFile writes data to path atomically and durably: readers see either the
// old contents or the new, never a mix, and after it returns nil the new
// contents survive a crash.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return FS{}.WriteFile(path, data, perm)
}

// WriteFile is the package-level WriteFile through fsys.
func (fsys FS) WriteFile(path string, data []byte, perm fs.FileMode) error {
	f, err := fsys.Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	return f.Commit()
}

// Rename renames oldpath to newpath and fsyncs both parent directories.
func Rename(oldpath, newpath string) error { return FS{}.Rename(oldpath, newpath) }

// Rename is the package-level Rename through fsys.
func (fsys FS) Rename(oldpath, newpath string) error {
	if err := fsys.inject(OpRename, oldpath); err != nil {
		return fmt.Errorf("rename: %w", err)
	}
	if err := os.Rename(oldpath, newpath); err != nil {
		return fmt.Errorf("rename: %w", err)
	}
	if err := fsys.SyncDir(filepath.Dir(newpath)); err != nil {
		return err
	}
	if od := filepath.Dir(oldpath); od != filepath.Dir(newpath) {
		return fsys.SyncDir(od)
	}
	return nil
}

// Remove deletes a file or a whole directory tree crash-safely: it is first
// renamed to path+DeletingSuffix (durably), so that after a crash a
// half-deleted tree is recognisable and is never mistaken for live data, then
// removed, then the parent directory is fsynced. A missing path is not an
// error, but a path+DeletingSuffix left by an earlier failed Remove is
// finished, so calling Remove again after a failure completes the deletion.
func Remove(path string) error { return FS{}.Remove(path) }

// Remove is the package-level Remove through fsys.
func (fsys FS) Remove(path string) error {
	path = filepath.Clean(path)
	doomed := path
	if !strings.HasSuffix(path, DeletingSuffix) {
		doomed = path + DeletingSuffix
		err := fsys.inject(OpRename, path)
		if err == nil {
			err = os.Rename(path, doomed)
		}
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if _, serr := os.Lstat(doomed); serr != nil {
				return nil
			}
			// An earlier Remove renamed it but did not finish.
		case err != nil:
			return fmt.Errorf("mark for deletion: %w", err)
		default:
			if err := fsys.SyncDir(filepath.Dir(path)); err != nil {
				return err
			}
		}
	}
	if err := fsys.inject(OpRemove, doomed); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	if err := os.RemoveAll(doomed); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	return fsys.SyncDir(filepath.Dir(path))
}

// RemoveFile removes a single file and fsyncs its directory. It is for files
// whose partial removal cannot be mistaken for data (a WAL file whose records
// are all flushed, a temp file); use Remove for day directories.
func RemoveFile(path string) error { return FS{}.RemoveFile(path) }

// RemoveFile is the package-level RemoveFile through fsys.
func (fsys FS) RemoveFile(path string) error {
	if err := fsys.inject(OpRemove, path); err != nil {
		return fmt.Errorf("remove file: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove file: %w", err)
	}
	return fsys.SyncDir(filepath.Dir(path))
}

// SweepLeftovers removes every entry directly in dir whose name ends in
// TmpSuffix or DeletingSuffix: the debris of a crash during a write or a
// removal. It returns the names it removed.
func SweepLeftovers(dir string) ([]string, error) { return FS{}.SweepLeftovers(dir) }

// SweepLeftovers is the package-level SweepLeftovers through fsys.
func (fsys FS) SweepLeftovers(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("sweep %s: %w", dir, err)
	}
	var removed []string
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, TmpSuffix) && !strings.HasSuffix(name, DeletingSuffix) {
			continue
		}
		p := filepath.Join(dir, name)
		err := fsys.inject(OpRemove, p)
		if err == nil {
			err = os.RemoveAll(p)
		}
		if err != nil {
			return removed, fmt.Errorf("sweep %s: %w", name, err)
		}
		removed = append(removed, name)
	}
	if len(removed) > 0 {
		if err := fsys.SyncDir(dir); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// Shred overwrites a small file's bytes in place with zeros, fsyncs them,
// removes the file and fsyncs its directory. It is for secrets (a day's
// wrapped data key): the removal alone leaves the old bytes in free blocks
// of the file system, the overwrite at least reaches the blocks the file
// occupied (on a copy-on-write file system or an SSD that remaps writes,
// not even that is certain, which is why the key is also wrapped by a
// master key kept elsewhere). A missing file is not an error.
func Shred(path string) error { return FS{}.Shred(path) }

// Shred is the package-level Shred through fsys.
func (fsys FS) Shred(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("shred: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("shred %s: not a regular file", path)
	}
	h, err := fsys.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("shred: %w", err)
	}
	_, err = h.WriteAt(make([]byte, fi.Size()), 0)
	if err == nil {
		err = h.Sync()
	}
	if cerr := h.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("shred %s: %w", path, err)
	}
	return fsys.RemoveFile(path)
}
