package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
)

// mergeDue merges the days planMerge finds work for: a closed day (past
// its end plus the grace) not yet in its archived form, late parts of an
// archived day, a day with too many parts.
func (s *Store) mergeDue() error {
	s.mu.Lock()
	var due []int64
	for key, dy := range s.days {
		if !s.deleting[key] && s.planMerge(dy) != nil {
			due = append(due, key)
		}
	}
	s.mu.Unlock()
	slices.Sort(due)
	for _, key := range due {
		if s.stopping() {
			return nil
		}
		if err := s.mergeDay(time.Unix(key, 0).UTC(), s.planMerge); err != nil {
			return err
		}
	}
	return nil
}

// dayClosed reports whether the UTC day starting at d is closed: past its
// end plus the merge grace, so that its files are archived.
func (s *Store) dayClosed(d time.Time) bool {
	return !s.opts.Now().Before(d.AddDate(0, 0, 1).Add(s.opts.MergeGrace))
}

// planMerge returns the files of day dy that the background merge should
// merge now, nil for none; s.mu must be held. The rules (docs/storage.md):
//
//   - An open day is merged, at the flush level, when it has MaxParts files.
//   - A closed day is archived: all of its files, a single one included, are
//     written into one file at segment.ArchiveLevel, named as archived so
//     that it is done once.
//   - Late records of an archived day become parts as usual; those parts are
//     merged among themselves at the flush level, so that they stay one
//     file and the archived file is not rewritten after every flush. The
//     day is archived again (everything into one file) once the oldest late
//     part has waited a merge grace, or once the late parts reach
//     1/lateArchiveShare of the archived file's bytes, or MaxParts files.
func (s *Store) planMerge(dy *day) []*segRef {
	now := s.opts.Now()
	if !s.dayClosed(dy.start) {
		if len(dy.segs) >= s.opts.MaxParts {
			return dy.segs
		}
		return nil
	}
	var (
		archBytes int64
		late      []*segRef
		lateBytes int64
		oldest    time.Time
	)
	nArch := 0
	if o := s.ownRemoteLocked(dy); o != nil {
		// This node's evicted archive of the day counts as its archived
		// file; a merge of all files downloads it first (restoreForMerge).
		nArch, archBytes = 1, o.info.Size
	}
	for _, ref := range dy.segs {
		if ref.archived {
			nArch++
			archBytes = ref.r.Info().Bytes
			continue
		}
		late = append(late, ref)
		lateBytes += ref.r.Info().Bytes
		if oldest.IsZero() || ref.added.Before(oldest) {
			oldest = ref.added
		}
	}
	switch {
	case len(late) == 0 && nArch <= 1:
		return nil // archived, or no file at all
	case nArch != 1:
		return dy.segs // never archived (or, oddly, twice): archive it all
	case lateBytes*lateArchiveShare >= archBytes || !now.Before(oldest.Add(s.opts.MergeGrace)) ||
		len(dy.segs) >= s.opts.MaxParts:
		return dy.segs
	case len(late) >= 2:
		return late
	}
	return nil
}

// mergeJob is the merge in progress: DeleteDay cancels it when it destroys
// the day being merged and waits for done, Close cancels it to stop soon.
type mergeJob struct {
	key    int64
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed once the merge has swapped in or removed its output
}

// MergeDay merges all segment files of a day into one, at the archive
// level (and named as archived) when the day is closed. Searches running on
// the old files keep them open until they finish.
//
// The merge holds maintMu only to choose its inputs and to swap its output
// in, not while it writes: the merge of a big closed day at the archive
// level takes long, and flushes (with them the head's memory and ingest)
// must go on meanwhile. Its inputs cannot change under it in a way that
// matters: a flush only adds parts with higher flush numbers (outside the
// merged file's range, so recovery never takes them for merged sources),
// merges run one at a time (mergeMu), a day being deleted cancels the merge
// and waits for it, and an input set aside as damaged meanwhile makes the
// merge abandon its output instead of swapping it in.
func (s *Store) MergeDay(d time.Time) error {
	return s.mergeDay(d, func(dy *day) []*segRef {
		if len(dy.segs) < 2 {
			return nil
		}
		return dy.segs
	})
}

// mergeDay merges the files of day d that choose returns (called with s.mu
// held; nil: nothing to do). All of a closed day's files are written at
// the archive level under an archived name; any other choice (an open
// day's files, an archived day's late parts) at the flush level.
func (s *Store) mergeDay(d time.Time, choose func(*day) []*segRef) error {
	s.mergeMu.Lock()
	defer s.mergeMu.Unlock()
	start := time.Now()
	key := record.Day(d).Unix()
	if err := s.restoreForMerge(key, choose); err != nil {
		return fmt.Errorf("merge day %s: %w", record.DayString(d), err)
	}
	job, dy, srcs, all, err := s.beginMerge(key, choose)
	if job == nil {
		if err != nil {
			return fmt.Errorf("merge day %s: %w", record.DayString(d), err)
		}
		return nil
	}
	defer func() {
		for _, ref := range srcs {
			ref.release() // the merge's own references
		}
		s.mu.Lock()
		s.merging = nil
		s.mu.Unlock()
		job.cancel()
		close(job.done)
	}()

	lo, hi := srcs[0].minFlush, srcs[0].maxFlush
	added := srcs[0].added
	for _, ref := range srcs[1:] {
		lo, hi = min(lo, ref.minFlush), max(hi, ref.maxFlush)
		if ref.added.Before(added) {
			added = ref.added
		}
	}
	opts, err := s.segmentOptions(d, dy)
	if err != nil {
		return fmt.Errorf("merge day %s: %w", record.DayString(d), err)
	}
	// A merge of all files of a closed day writes the day's final form;
	// segmentOptions gave it the archive level.
	archived := all && s.dayClosed(dy.start)
	if !archived {
		opts.Level = segment.DefaultLevel
	}
	if archived {
		added = s.opts.Now()
	}
	abandoned := func(why string) error {
		s.log.Debug("merge abandoned", "day", record.DayString(d), "reason", why)
		return nil
	}
	if len(srcs) == 1 && (!archived || srcs[0].archived) {
		return abandoned("nothing to gain") // one file, already in the form it would get
	}
	path := filepath.Join(dy.dir, segName(lo, hi, archived))
	w, err := segment.NewWriter(path, opts)
	if err != nil {
		if job.ctx.Err() != nil {
			return abandoned("cancelled")
		}
		return fmt.Errorf("merge day %s: %w", record.DayString(d), err)
	}
	readers := make([]*segment.Reader, len(srcs))
	for i, ref := range srcs {
		readers[i] = ref.r
	}
	if err := mergeInto(job.ctx, w, readers); err != nil {
		w.Abort()
		if job.ctx.Err() != nil {
			return abandoned("cancelled")
		}
		// A damaged source is set aside, so the next merge goes ahead
		// without it instead of failing forever.
		var ce *segment.CorruptionError
		if errors.As(err, &ce) {
			s.reportCorrupt(ce)
		}
		return fmt.Errorf("merge day %s: %w", record.DayString(d), err)
	}
	if _, err := w.Close(); err != nil {
		if job.ctx.Err() != nil {
			return abandoned("cancelled")
		}
		return fmt.Errorf("merge day %s: %w", record.DayString(d), err)
	}
	r, err := segment.OpenWith(path, s.openOptions())
	if err != nil {
		s.fs.RemoveFile(path) // best effort: recovery opens it again and keeps whichever copy reads
		return fmt.Errorf("merge day %s: %w", record.DayString(d), err)
	}
	merged := &segRef{r: r, minFlush: lo, maxFlush: hi, archived: archived, added: added}
	merged.refs.Store(1)

	s.maintMu.Lock()
	defer s.maintMu.Unlock()
	s.mu.Lock()
	current := s.days[key] == dy && !s.deleting[key] && job.ctx.Err() == nil
	for _, ref := range srcs {
		current = current && slices.Contains(dy.segs, ref)
	}
	if current {
		dy.segs = slices.DeleteFunc(dy.segs, func(ref *segRef) bool { return slices.Contains(srcs, ref) })
		dy.segs = append(dy.segs, merged)
	}
	s.mu.Unlock()
	if !current {
		// The day is being destroyed, the store is closing, or an input
		// was set aside as damaged: the output must not stay. (Were it to
		// survive a crash, recovery would treat it as any finished merge.)
		merged.release()
		if err := s.fs.RemoveFile(path); err != nil {
			return fmt.Errorf("merge day %s: remove abandoned output: %w", record.DayString(d), err)
		}
		return abandoned("inputs changed or day deleted")
	}
	for _, ref := range srcs {
		// Unlinking an open file is safe on Unix: a search still holding the
		// reader keeps reading the old bytes until it releases it.
		if err := s.fs.RemoveFile(ref.r.Path()); err != nil {
			s.log.Warn("could not remove merged part", "err", err)
		}
		ref.release() // the registry's reference
	}
	s.m.merges.Inc()
	if archived {
		s.kickUpload()
	}
	s.log.Debug("merged day", "day", record.DayString(d), "parts", len(srcs), "duration", time.Since(start))
	return nil
}

// beginMerge chooses the inputs of a merge of day key under maintMu (with
// choose), takes a reference to each (so that a search reporting one
// damaged cannot close it under the merge) and registers the merge for
// DeleteDay and Close. It returns a nil job when there is nothing to
// merge, and whether the inputs are all of the day's files.
func (s *Store) beginMerge(key int64, choose func(*day) []*segRef) (*mergeJob, *day, []*segRef, bool, error) {
	s.maintMu.Lock()
	defer s.maintMu.Unlock()
	// A file reported damaged is renamed before a merge leaves it out:
	// the merged file's name claims its flush range, and at start-up a
	// plain segment file inside that range is removed as merged.
	if err := s.quarantineReported(); err != nil {
		return nil, nil, nil, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dy := s.days[key]
	if dy == nil || s.deleting[key] || s.stopping() {
		return nil, nil, nil, false, nil
	}
	srcs := slices.Clone(choose(dy))
	if len(srcs) == 0 {
		return nil, nil, nil, false, nil
	}
	for _, ref := range srcs {
		ref.acquire()
	}
	ctx, cancel := context.WithCancel(context.Background())
	job := &mergeJob{key: key, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	s.merging = job
	return job, dy, srcs, len(srcs) == len(dy.segs), nil
}

// cancelMergeLocked cancels the merge in progress if it merges day key (any day
// when key is nil) and returns it, or nil. s.mu must be held.
func (s *Store) cancelMergeLocked(key *int64) *mergeJob {
	job := s.merging
	if job == nil || (key != nil && job.key != *key) {
		return nil
	}
	job.cancel()
	return job
}
