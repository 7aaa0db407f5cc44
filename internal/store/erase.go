package store

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
)

// Erasure asks Erase to remove the records of one address or network.
type Erasure struct {
	// Prefix is the address (a /32 or /128) or network whose records go.
	Prefix netip.Prefix
	// From and To bound the records' times, [From, To); zero: unbounded.
	From, To time.Time
	// Skip, when set, keeps the days it returns true for untouched (the
	// days a legal hold keeps); they are listed in ErasureResult.Skipped.
	Skip func(day time.Time) bool
}

// ErasedDay is what Erase removed from one UTC day.
type ErasedDay struct {
	Day            time.Time
	Records        int64 // records removed
	Kept           int64 // records of the rewritten files that stay
	FilesRewritten int   // segment files written again without the records
	FilesRemoved   int   // segment files that held nothing else, removed
	BytesBefore    int64 // size of the affected files before
	BytesAfter     int64 // and after
}

// ErasureResult is what Erase did.
type ErasureResult struct {
	Days    []ErasedDay // days that held records of the prefix, oldest first
	Records int64
	Skipped []time.Time // days left untouched by Erasure.Skip
	// Unchecked are damaged (quarantined) segment files in the range: they
	// cannot be read, so whether they hold the address is unknown; a purge
	// or an operator removing them is the only way to be sure.
	Unchecked []string
	// Destroyed are this node's objects in the bucket the erasure
	// replaced and destroyed, every version.
	Destroyed []ErasedObject
	// Pending are this node's objects that still hold (or may hold) the
	// erased records because the bucket could not be reached: the upload
	// loop keeps trying, and the erasure is not complete until they are
	// gone (run it again to check).
	Pending []ErasedObject
	// UploadPending are days whose rewritten file is not in the bucket
	// yet (the upload loop retries; until then the cluster reads it
	// through this node).
	UploadPending []time.Time
}

// Erase removes every record of e.Prefix in [e.From, e.To) from the data
// directory and from search: it first flushes, so that the records only in
// the WAL and the head move into part files and the WAL files that held
// them are removed (as DeleteDay does), then writes each segment file that
// holds such records again without them (temp file, fsync, rename over the
// old name, directory fsync), or removes it when nothing else remains. New
// searches see the rewritten files at once; a search already running keeps
// the old file open until it ends, after which its blocks are freed.
// Records that arrive while Erase runs are not erased: run it again.
func (s *Store) Erase(ctx context.Context, e Erasure) (ErasureResult, error) {
	var res ErasureResult
	p := e.Prefix.Masked()
	if !p.IsValid() {
		return res, fmt.Errorf("erase: invalid prefix %v", e.Prefix)
	}
	// A merge writes outside maintMu, from its own references to the old
	// files: it would write the erased records into a new file. The merge
	// in progress is cancelled (it removes its output) and no other starts
	// until Erase is done.
	s.mu.Lock()
	s.cancelMergeLocked(nil)
	s.mu.Unlock()
	s.mergeMu.Lock()
	defer s.mergeMu.Unlock()
	s.maintMu.Lock()
	defer s.maintMu.Unlock()
	if err := s.flushLocked(); err != nil {
		return res, fmt.Errorf("erase: flush wal: %w", err)
	}
	s.mu.Lock()
	walFrom := s.cp.WAL
	s.mu.Unlock()
	if err := s.wal.Truncate(walFrom); err != nil {
		return res, fmt.Errorf("erase: remove wal files: %w", err)
	}
	inTime := func(t time.Time) bool {
		return (e.From.IsZero() || !t.Before(e.From)) && (e.To.IsZero() || t.Before(e.To))
	}

	type dayWork struct {
		key    int64
		dy     *day
		segs   []*segRef
		bucket bool // this node's objects of the day are in the bucket (erasebucket.go)
	}
	var work []dayWork
	s.mu.Lock()
	for key, dy := range s.days {
		end := dy.start.AddDate(0, 0, 1)
		if s.deleting[key] || (!e.From.IsZero() && !end.After(e.From)) || (!e.To.IsZero() && !dy.start.Before(e.To)) {
			continue
		}
		if e.Skip != nil && e.Skip(dy.start) {
			res.Skipped = append(res.Skipped, dy.start)
			continue
		}
		for _, c := range dy.corrupt {
			res.Unchecked = append(res.Unchecked, c.Path)
		}
		work = append(work, dayWork{key, dy, slices.Clone(dy.segs), s.bucketDayLocked(key, dy)})
	}
	s.mu.Unlock()
	slices.SortFunc(work, func(a, b dayWork) int { return a.dy.start.Compare(b.dy.start) })
	slices.SortFunc(res.Skipped, func(a, b time.Time) int { return a.Compare(b) })

	drop := func(r *record.Record) bool { return p.Contains(r.IP) && inTime(r.Time) }
	for _, w := range work {
		ed := ErasedDay{Day: w.dy.start}
		if w.bucket {
			if err := s.eraseBucketDay(ctx, w.key, w.dy, p, drop, &ed, &res); err != nil {
				res.addDay(ed)
				return res, fmt.Errorf("erase: day %s: %w", record.DayString(w.dy.start), err)
			}
			res.addDay(ed)
			continue
		}
		for _, ref := range w.segs {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			if !ref.r.MayHoldPrefix(p) || len(ref.r.BlocksForPrefix(p)) == 0 {
				continue
			}
			if err := s.rewriteWithout(w.dy, ref, drop, &ed); err != nil {
				res.addDay(ed)
				return res, fmt.Errorf("erase: day %s: %w", record.DayString(w.dy.start), err)
			}
		}
		res.addDay(ed)
	}
	s.m.erasures.Inc()
	s.m.erasedRecords.Add(float64(res.Records))
	if s.opts.Bucket != nil {
		// Erased objects of earlier runs that are still waiting (the
		// store was unreachable then) are destroyed now, or named.
		destroyed, pending := s.destroyErased(ctx, "")
		res.Destroyed = append(res.Destroyed, destroyed...)
		res.Pending = mergePending(res.Pending, pending)
	}
	s.log.Info("erasure done", "days", len(res.Days), "records", res.Records, "skipped_days", len(res.Skipped),
		"unchecked_files", len(res.Unchecked), "objects_destroyed", len(res.Destroyed), "objects_pending", len(res.Pending))
	return res, nil
}

func (r *ErasureResult) addDay(ed ErasedDay) {
	if ed.Records == 0 && ed.FilesRewritten == 0 && ed.FilesRemoved == 0 {
		return
	}
	r.Days = append(r.Days, ed)
	r.Records += ed.Records
}

// rewriteWithout writes ref's file again without the records drop matches,
// swaps it into the day's registry, and counts what it did into ed. The
// caller holds mergeMu and maintMu, so no flush, merge or deletion changes
// the day meanwhile.
func (s *Store) rewriteWithout(dy *day, ref *segRef, drop func(*record.Record) bool, ed *ErasedDay) error {
	path := ref.r.Path()
	before := fileSize(path)
	opts, err := s.segmentOptions(dy.start, dy)
	if err != nil {
		return err
	}
	w, err := segment.NewWriter(path, opts)
	if err != nil {
		return err
	}
	var removed, kept int64
	for rec, err := range ref.r.Iter() {
		if err != nil {
			w.Abort()
			return fmt.Errorf("read %s: %w", path, err)
		}
		if drop(&rec) {
			removed++
			continue
		}
		kept++
		if err := w.Add(&rec); err != nil {
			w.Abort()
			return err
		}
	}
	if removed == 0 {
		// The index named a block, but no record in it matched the time
		// range: nothing to do.
		w.Abort()
		return nil
	}
	var repl *segRef
	if kept == 0 {
		w.Abort()
		if err := s.fs.RemoveFile(path); err != nil {
			return err
		}
		ed.FilesRemoved++
	} else {
		if _, err := w.Close(); err != nil {
			return err
		}
		r, err := segment.OpenWith(path, s.openOptions())
		if err != nil {
			return err
		}
		repl = &segRef{r: r, minFlush: ref.minFlush, maxFlush: ref.maxFlush, archived: ref.archived, added: ref.added}
		repl.refs.Store(1)
		ed.FilesRewritten++
		ed.BytesAfter += fileSize(path)
	}
	s.mu.Lock()
	if i := slices.Index(dy.segs, ref); i >= 0 {
		if repl != nil {
			dy.segs[i] = repl
		} else {
			dy.segs = slices.Delete(dy.segs, i, i+1)
		}
	}
	s.mu.Unlock()
	// The old file's name now holds the new file (or nothing); a search
	// still reading the old one keeps its open file until it releases it.
	ref.release()
	ed.Records += removed
	ed.Kept += kept
	ed.BytesBefore += before
	return nil
}

// segmentOptions are the options every segment file of day d (registry
// entry dy) is written with, by a flush (dy nil: the default level, since
// flushed parts are merged again; the flush raises it for the first file of
// a closed day), a merge or an erasure. A closed day's
// file is, unless late records arrive, the file the day is searched in for
// the rest of its retention: it is worth the slower encoder that makes it
// smaller and faster to decode. With encryption the file is sealed under
// the day's key (created if the day has none yet). Options that apply to
// every file belong here, so that no writer of the store can leave them
// out.
func (s *Store) segmentOptions(d time.Time, dy *day) (segment.Options, error) {
	level := 0
	if dy != nil && s.dayClosed(dy.start) {
		level = segment.ArchiveLevel
	}
	dk, err := s.dayKey(d)
	if err != nil {
		return segment.Options{}, err
	}
	return segment.Options{BlockRows: s.opts.BlockRows, Level: level, FS: s.fs, Key: dk}, nil
}

// mergePending adds the pending objects of b not already in a (by key).
func mergePending(a, b []ErasedObject) []ErasedObject {
	for _, o := range b {
		if !slices.ContainsFunc(a, func(x ErasedObject) bool { return x.Key == o.Key }) {
			a = append(a, o)
		}
	}
	return a
}
