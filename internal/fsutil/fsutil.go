// Package fsutil is the only place in retentiond that knows how to make file
// system changes durable: write to a temporary file, fsync it, rename it into
// place, and fsync the directory; and, for deletion, rename to *.deleting,
// remove, and fsync the parent. Every other package calls these helpers, so the
// discipline is written (and reviewed) once.
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

// SyncDir fsyncs a directory, making the creation, rename or removal of its
// entries durable. Without it a rename can be lost on power failure even
// though the renamed file's contents were synced.
func SyncDir(dir string) error {
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
func MkdirAll(dir string, perm fs.FileMode) error {
	dir = filepath.Clean(dir)
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("mkdir %s: not a directory", dir)
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := MkdirAll(parent, perm); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, perm); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("mkdir: %w", err)
	}
	return SyncDir(parent)
}

// File is a file being written under a temporary name. Commit makes it
// durable under its final name; Abort removes it. Exactly one of them must be
// called.
type File struct {
	*os.File
	final string
	done  bool
}

// Create opens path+TmpSuffix for writing (truncating any leftover from a
// crash). The final name does not exist until Commit.
func Create(path string, perm fs.FileMode) (*File, error) {
	f, err := os.OpenFile(path+TmpSuffix, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return nil, fmt.Errorf("create temp file: %w", err)
	}
	return &File{File: f, final: path}, nil
}

// Commit fsyncs the file, closes it, renames it to its final name and fsyncs
// the directory. After Commit returns nil the file survives a crash.
func (f *File) Commit() error {
	if f.done {
		return errors.New("fsutil: commit of a finished file")
	}
	f.done = true
	tmp := f.File.Name()
	if err := f.File.Sync(); err != nil {
		f.File.Close()
		os.Remove(tmp)
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.File.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, f.final); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rename into place: %w", err)
	}
	return SyncDir(filepath.Dir(f.final))
}

// Abort closes and removes the temporary file. It is safe to call after
// Commit (it then does nothing), so callers can defer it.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.File.Close()
	os.Remove(f.File.Name())
}

// WriteFile writes data to path atomically and durably: readers see either the
// old contents or the new, never a mix, and after it returns nil the new
// contents survive a crash.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	f, err := Create(path, perm)
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
func Rename(oldpath, newpath string) error {
	if err := os.Rename(oldpath, newpath); err != nil {
		return fmt.Errorf("rename: %w", err)
	}
	if err := SyncDir(filepath.Dir(newpath)); err != nil {
		return err
	}
	if od := filepath.Dir(oldpath); od != filepath.Dir(newpath) {
		return SyncDir(od)
	}
	return nil
}

// Remove deletes a file or a whole directory tree crash-safely: it is first
// renamed to path+DeletingSuffix (durably), so that after a crash a
// half-deleted tree is recognisable and is never mistaken for live data, then
// removed, then the parent directory is fsynced. A missing path is not an
// error.
func Remove(path string) error {
	path = filepath.Clean(path)
	doomed := path
	if !strings.HasSuffix(path, DeletingSuffix) {
		doomed = path + DeletingSuffix
		if err := os.Rename(path, doomed); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("mark for deletion: %w", err)
		}
		if err := SyncDir(filepath.Dir(path)); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(doomed); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	return SyncDir(filepath.Dir(path))
}

// RemoveFile removes a single file and fsyncs its directory. It is for files
// whose partial removal cannot be mistaken for data (a WAL file whose records
// are all flushed, a temp file); use Remove for day directories.
func RemoveFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove file: %w", err)
	}
	return SyncDir(filepath.Dir(path))
}

// SweepLeftovers removes every entry directly in dir whose name ends in
// TmpSuffix or DeletingSuffix: the debris of a crash during a write or a
// removal. It returns the names it removed.
func SweepLeftovers(dir string) ([]string, error) {
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
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return removed, fmt.Errorf("sweep %s: %w", name, err)
		}
		removed = append(removed, name)
	}
	if len(removed) > 0 {
		if err := SyncDir(dir); err != nil {
			return removed, err
		}
	}
	return removed, nil
}
