package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/retentiond/retentiond/internal/keys"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
	"github.com/retentiond/retentiond/internal/wal"
)

// checkpoint is the durable statement "every record in WAL files before WAL
// is in segment files written by flushes up to Flush". It is rewritten
// atomically after each flush.
type checkpoint struct {
	Version int   `json:"version"`
	WAL     int   `json:"wal"`
	Flush   int64 `json:"flush"`
}

// recover brings the directory to a consistent state after any crash.
func (s *Store) recover() error {
	start := time.Now()
	if swept, err := s.fs.SweepLeftovers(s.dir); err != nil {
		return err
	} else if len(swept) > 0 {
		s.log.Info("removed leftovers of an interrupted write", "count", len(swept))
	}
	daysDir := filepath.Join(s.dir, daysDirName)
	swept, err := s.fs.SweepLeftovers(daysDir)
	if err != nil {
		return err
	}
	if len(swept) > 0 {
		s.log.Info("finished interrupted day deletions", "count", len(swept))
		s.m.recoveryRemoved.Add(float64(len(swept)))
	}

	if b, err := os.ReadFile(filepath.Join(s.dir, checkpointName)); err == nil {
		if err := json.Unmarshal(b, &s.cp); err != nil {
			return fmt.Errorf("read %s: %w", checkpointName, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read checkpoint: %w", err)
	}

	entries, err := os.ReadDir(daysDir)
	if err != nil {
		return fmt.Errorf("list days: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		d, err := record.ParseDay(e.Name())
		if err != nil {
			s.log.Warn("ignoring unexpected entry in days directory", "name", e.Name())
			continue
		}
		if err := s.openDay(d); err != nil {
			return err
		}
	}

	w, err := wal.Open(filepath.Join(s.dir, walDirName), wal.Options{
		SegmentSize: s.opts.WALSegmentBytes,
		Logger:      s.log,
		Registerer:  s.opts.Registerer,
		FS:          s.fs,
	})
	if err != nil {
		return fmt.Errorf("open wal: %w", err)
	}
	s.wal = w
	if err := w.Truncate(s.cp.WAL); err != nil {
		return fmt.Errorf("remove flushed wal files: %w", err)
	}
	var replayed int64
	var shreddedFrames int
	err = w.Replay(s.cp.WAL, func(seg int, payload []byte) error {
		payload, err := s.openFrame(payload)
		if errors.Is(err, keys.ErrDestroyed) {
			// Records of a day a purge destroyed before a crash kept it
			// from removing these WAL files: gone by design.
			shreddedFrames++
			return nil
		}
		if err != nil {
			return fmt.Errorf("wal file %d: %w", seg, err)
		}
		recs, err := record.DecodeBatch(payload)
		if err != nil {
			return fmt.Errorf("wal file %d: %w", seg, err)
		}
		s.mu.Lock()
		now := s.opts.Now()
		for _, r := range recs {
			s.insertLocked(r, now)
		}
		s.mu.Unlock()
		replayed += int64(len(recs))
		return nil
	})
	if err != nil {
		return fmt.Errorf("replay wal: %w", err)
	}
	s.m.replayed.Add(float64(replayed))
	if shreddedFrames > 0 {
		s.walDirty = true // the next flush checkpoints past them
		s.log.Info("skipped wal frames of days whose key was destroyed", "frames", shreddedFrames)
	}
	s.log.Info("store recovered", "days", len(s.days), "replayed_records", replayed,
		"duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// openDay registers a day directory found at start-up: it removes part files
// of a flush that never reached its checkpoint (their records are still in the
// WAL) and files made redundant by a merge that finished writing but not
// removing its sources, quarantines damaged files, and opens the rest.
//
// A damaged file (its header, trailer or footer does not verify) does not
// stop the start: it is renamed to CorruptSuffix, logged with its offset,
// counted, and kept in the day's registry, so the day stays listed for
// purge and searches name the file they cannot read. Files are opened
// before redundant ones are removed, so a damaged merge output never costs
// the good parts it would have replaced.
func (s *Store) openDay(d time.Time) (err error) {
	dir := filepath.Join(s.dir, daysDirName, record.DayString(d))
	if _, err := s.fs.SweepLeftovers(dir); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("open day %s: %w", record.DayString(d), err)
	}
	type file struct {
		name     string
		min, max int64
		archived bool
		r        *segment.Reader          // nil when damaged or removed
		bad      *segment.CorruptionError // why it could not be opened
	}
	var files []*file
	defer func() {
		if err != nil {
			for _, f := range files {
				if f.r != nil {
					f.r.Close()
				}
			}
		}
	}()
	dy := &day{start: d, dir: dir}
	if s.opts.Keys != nil {
		if _, destroyed := s.opts.Keys.Destroyed(d); destroyed {
			// A purge destroyed the key and crashed before it removed the
			// files: they are ciphertext nobody can open. List the day so
			// the next purge removes them; never open them.
			for _, e := range entries {
				dy.shreddedBytes += fileSize(filepath.Join(dir, e.Name()))
			}
			dy.shredded = true
			s.days[d.Unix()] = dy
			return nil
		}
	}
	for _, e := range entries {
		name := e.Name()
		if orig, ok := strings.CutSuffix(name, CorruptSuffix); ok {
			if _, _, _, ok := parseSegName(orig); ok {
				dy.corrupt = append(dy.corrupt, quarantinedEarlier(filepath.Join(dir, name), s.openOptions()))
				continue
			}
		}
		lo, hi, archived, ok := parseSegName(name)
		if !ok {
			s.log.Warn("ignoring unexpected file in day directory", "day", record.DayString(d), "name", name)
			continue
		}
		if hi > s.cp.Flush {
			// Written by a flush that crashed before its checkpoint.
			if err := s.fs.RemoveFile(filepath.Join(dir, name)); err != nil {
				return err
			}
			s.m.recoveryRemoved.Inc()
			continue
		}
		f := &file{name: name, min: lo, max: hi, archived: archived}
		r, err := segment.OpenWith(filepath.Join(dir, name), s.openOptions())
		if err != nil && !errors.As(err, &f.bad) {
			// Not damage but an I/O or resource error: retrying later
			// may work, so the start fails instead of setting data aside.
			return fmt.Errorf("open day %s: %w", record.DayString(d), err)
		}
		f.r = r
		files = append(files, f)
	}
	// A file is redundant when a readable file's flush range strictly
	// contains its own, or is the same range in its archived form: a merge
	// or the archive pass wrote that file from it (merges leave damaged
	// files out only once they are quarantined, so the name is never a
	// false claim about a plain .seg file).
	for _, f := range files {
		covered := false
		for _, g := range files {
			if g != f && g.r != nil && g.min <= f.min && f.max <= g.max &&
				(g.min != f.min || g.max != f.max || g.archived && !f.archived) {
				covered = true
				break
			}
		}
		if covered {
			if f.r != nil {
				f.r.Close()
				f.r = nil
			}
			if err := s.fs.RemoveFile(filepath.Join(dir, f.name)); err != nil {
				return err
			}
			s.m.recoveryRemoved.Inc()
		}
	}
	for _, f := range files {
		switch {
		case f.bad != nil:
			path := filepath.Join(dir, f.name)
			s.noteCorrupt(f.bad, "start-up")
			dst, err := s.quarantine(path)
			if err != nil {
				return err
			}
			dy.corrupt = append(dy.corrupt, CorruptFile{Path: dst, Bytes: fileSize(dst), Err: f.bad})
		case f.r != nil:
			ref := &segRef{r: f.r, minFlush: f.min, maxFlush: f.max, archived: f.archived, added: s.opts.Now()}
			ref.refs.Store(1)
			dy.segs = append(dy.segs, ref)
		}
	}
	s.days[d.Unix()] = dy
	return nil
}

// quarantine renames the damaged segment file path to path+CorruptSuffix,
// durably (both names' directory is fsynced), and returns the new name. It
// goes through the store's FS so that fault-injection tests reach it too.
func (s *Store) quarantine(path string) (string, error) {
	dst := path + CorruptSuffix
	if err := s.fs.Rename(path, dst); err != nil {
		return path, fmt.Errorf("quarantine damaged segment %s: %w", path, err)
	}
	return dst, nil
}

// quarantinedEarlier describes a file quarantined by an earlier run. Opening
// it again names the damage when it is in the footer; damage in a block is
// not searched for again (that reads the whole file): retentiond verify
// names its offset.
func quarantinedEarlier(path string, opts segment.OpenOptions) CorruptFile {
	orig := strings.TrimSuffix(path, CorruptSuffix)
	cf := CorruptFile{Path: path, Bytes: fileSize(path)}
	r, err := segment.OpenWith(path, opts)
	if err == nil {
		r.Close()
	}
	if errors.As(err, &cf.Err) {
		cf.Err.File = orig
		return cf
	}
	cf.Err = &segment.CorruptionError{File: orig, Offset: -1,
		Err: errors.New("quarantined by an earlier run (retentiond verify names the offset)")}
	return cf
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// noteCorrupt logs and counts a damaged segment file. The log names the
// file and the offset of the damage, never record contents.
func (s *Store) noteCorrupt(ce *segment.CorruptionError, foundBy string) {
	s.m.corruptFound.Inc()
	s.log.Error("segment file damaged: quarantined, its records are left out of searches until it is restored from a backup or its day is purged",
		"file", ce.File, "offset", ce.Offset, "err", ce.Err, "found_by", foundBy)
}

// reportCorrupt takes a segment file that a reader found damaged out of
// its day's readable files: later snapshots skip it and name it, merges
// leave it out, and the background loop quarantines it.
func (s *Store) reportCorrupt(ce *segment.CorruptionError) {
	if s.reportRemoteCorrupt(ce) {
		return // an object in the bucket: marked, never quarantined (it is not ours to rename)
	}
	var found *segRef
	s.mu.Lock()
	for key, dy := range s.days {
		if s.deleting[key] {
			continue
		}
		for _, ref := range dy.segs {
			if ref.r.Path() == ce.File {
				found = ref
				break
			}
		}
		if found != nil {
			dy.segs = slices.DeleteFunc(dy.segs, func(ref *segRef) bool { return ref == found })
			dy.corrupt = append(dy.corrupt, CorruptFile{Path: ce.File, Bytes: found.r.Info().Bytes, Err: ce})
			break
		}
	}
	s.mu.Unlock()
	if found == nil {
		return // already reported, merged away or deleted
	}
	s.noteCorrupt(ce, "read")
	found.release() // the registry's reference; snapshots keep theirs
	s.kickFlush()   // the loop quarantines it
}

// quarantineReported renames the files reported damaged since the last
// call (see reportCorrupt). It runs under maintMu, so it never races a
// merge or a day deletion.
func (s *Store) quarantineReported() error {
	var todo []string
	s.mu.Lock()
	for _, dy := range s.days {
		for _, c := range dy.corrupt {
			if !strings.HasSuffix(c.Path, CorruptSuffix) {
				todo = append(todo, c.Path)
			}
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, path := range todo {
		dst, err := s.quarantine(path)
		gone := errors.Is(err, fs.ErrNotExist) // removed by hand meanwhile
		if err != nil && !gone {
			errs = append(errs, err)
			continue
		}
		s.mu.Lock()
		for _, dy := range s.days {
			dy.corrupt = slices.DeleteFunc(dy.corrupt, func(c CorruptFile) bool { return gone && c.Path == path })
			for i := range dy.corrupt {
				if dy.corrupt[i].Path == path {
					dy.corrupt[i].Path = dst
				}
			}
		}
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

// openOptions are the options every segment file of the store is opened
// with: the key ring, when the directory is encrypted.
func (s *Store) openOptions() segment.OpenOptions {
	if s.opts.Keys == nil {
		return segment.OpenOptions{}
	}
	return segment.OpenOptions{Keys: s.opts.Keys}
}

// dayKey returns the key a new file of day d is sealed under: nil when
// the store writes plain files.
func (s *Store) dayKey(d time.Time) (*keys.DayKey, error) {
	if s.opts.Keys == nil {
		return nil, nil
	}
	return s.opts.Keys.KeyFor(d)
}

// openFrame returns the record batch of a WAL payload: a plain batch as
// it is, a sealed envelope opened with its day's key.
func (s *Store) openFrame(payload []byte) ([]byte, error) {
	if !keys.IsSealedFrame(payload) {
		return payload, nil
	}
	if s.opts.Keys == nil {
		return nil, errors.New("the wal holds encrypted records and encryption is not configured (encryption.enabled, encryption.master_key_file)")
	}
	_, plain, err := s.opts.Keys.OpenFrame(payload)
	return plain, err
}

// quarantineDue renames files reported damaged, if there are any.
func (s *Store) quarantineDue() error {
	s.mu.Lock()
	due := false
	for _, dy := range s.days {
		for _, c := range dy.corrupt {
			due = due || !strings.HasSuffix(c.Path, CorruptSuffix)
		}
	}
	s.mu.Unlock()
	if !due {
		return nil
	}
	s.maintMu.Lock()
	defer s.maintMu.Unlock()
	return s.quarantineReported()
}
