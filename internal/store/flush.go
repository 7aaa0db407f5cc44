package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
	"github.com/retentiond/retentiond/internal/wal"
)

// flushDone records the outcome of a flush for Health and the backoff, and
// logs once per change of state.
func (s *Store) flushDone(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.flushErr
	s.flushErr = err
	if err == nil {
		s.flushWait, s.flushRetry = 0, time.Time{}
		if was != nil {
			s.log.Info("flush succeeded again after failures")
		}
		return
	}
	s.m.flushErrors.Inc()
	s.flushWait = min(max(2*s.flushWait, flushRetryMin), flushRetryMax)
	s.flushRetry = time.Now().Add(s.flushWait)
	if was == nil {
		s.log.Warn("flush failed; records stay in the WAL and the head, retrying with backoff", "err", err)
	}
}

func (s *Store) kickFlush() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// loop runs flushes and merges in the background.
func (s *Store) loop() {
	defer close(s.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
		case <-tick.C:
		}
		if err := s.quarantineDue(); err != nil {
			s.log.Error("quarantine failed", "err", err)
		}
		if s.flushDue() {
			// flushDone logs failures, once per change of state.
			s.Flush()
		}
		if err := s.mergeDue(); err != nil {
			s.log.Error("merge failed", "err", err)
		}
	}
}

func (s *Store) flushDue() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.headBytes == 0 || s.closed || s.failed != nil || time.Now().Before(s.flushRetry) {
		return false
	}
	return s.headBytes >= s.opts.HeadMaxBytes/2 || s.opts.Now().Sub(s.oldestHead) >= s.opts.FlushInterval
}

// Flush writes every unflushed record into part files, records the
// checkpoint and removes the WAL files it covers. Searches keep seeing the
// records throughout: first in the frozen heads, then in the parts.
//
// A flush that fails (EMFILE, ENOSPC, ...) changes nothing that matters: the
// records stay in the WAL and in the head, Health reports the store degraded,
// and the background loop retries with backoff. Only a failed WAL write or
// fsync fails the store.
func (s *Store) Flush() error {
	s.maintMu.Lock()
	defer s.maintMu.Unlock()
	return s.flushLocked()
}

func (s *Store) flushLocked() error {
	err := s.flushOnce()
	if !errors.Is(err, ErrFailed) {
		s.flushDone(err)
	}
	return err
}

func (s *Store) flushOnce() error {
	start := time.Now()
	s.appendMu.Lock()
	s.mu.Lock()
	if s.failed != nil {
		// The WAL is unusable; the records are safe in its files and the
		// restart replays them.
		err := s.failed
		s.mu.Unlock()
		s.appendMu.Unlock()
		return fmt.Errorf("%w: %w", ErrFailed, err)
	}
	if len(s.heads) == 0 && !s.walDirty {
		s.mu.Unlock()
		s.appendMu.Unlock()
		return nil
	}
	walSeg, err := s.wal.Rotate()
	if err != nil {
		s.mu.Unlock()
		s.appendMu.Unlock()
		if errors.Is(err, wal.ErrFailed) {
			s.fail(err)
			return fmt.Errorf("%w: rotate wal: %w", ErrFailed, err)
		}
		return fmt.Errorf("rotate wal: %w", err)
	}
	s.walDirty = false
	frozen := s.heads
	s.frozen = frozen
	s.frozenBytes = s.headBytes
	s.heads = make(map[int64]*head)
	s.headBytes = 0
	s.oldestHead = time.Time{}
	flushID := s.cp.Flush + 1
	s.mu.Unlock()
	s.appendMu.Unlock()

	written := make(map[int64]*segRef, len(frozen))
	abort := func(err error) error {
		for _, ref := range written {
			ref.r.Close()
			// Best effort: a part left behind has a flush number above the
			// checkpoint, so the next flush (same number) replaces it and
			// start-up recovery removes it.
			s.fs.RemoveFile(ref.r.Path())
		}
		// The frozen records are still in the WAL; put them back in the head
		// so they stay searchable and the next flush retries them.
		s.mu.Lock()
		now := s.opts.Now()
		for k, h := range frozen {
			for r := range h.tail.All() {
				s.insertLocked(r, now)
			}
			if len(h.parts) > 0 {
				s.restorePartsLocked(k, h.parts)
			}
			delete(frozen, k)
		}
		s.frozen = make(map[int64]*head)
		s.frozenBytes = 0
		// Without a new checkpoint the WAL files before the rotation stay,
		// holding records (perhaps only of a day DeleteDay dropped).
		s.walDirty = true
		s.mu.Unlock()
		return err
	}
	var records int64
	for key, h := range frozen {
		d := time.Unix(key, 0).UTC()
		dir := filepath.Join(s.dir, daysDirName, record.DayString(d))
		if err := s.fs.MkdirAll(dir, 0o750); err != nil {
			return abort(fmt.Errorf("flush day %s: %w", record.DayString(d), err))
		}
		// The first file of a day that is already closed (a backfill, a
		// shipper catching up) is the day's final form: written archived
		// now rather than as a part the archive pass re-encodes.
		s.mu.Lock()
		dy := s.days[key]
		archived := (dy == nil || len(dy.segs) == 0 && s.ownRemoteLocked(dy) == nil) && s.dayClosed(d)
		s.mu.Unlock()
		path := filepath.Join(dir, segName(flushID, flushID, archived))
		opts, err := s.segmentOptions(d, nil)
		if err != nil {
			return abort(fmt.Errorf("flush day %s: %w", record.DayString(d), err))
		}
		if archived {
			opts.Level = segment.ArchiveLevel
		}
		if err := writeHead(path, key, h, opts); err != nil {
			return abort(fmt.Errorf("flush day %s: %w", record.DayString(d), err))
		}
		r, err := segment.OpenWith(path, s.openOptions())
		if err != nil {
			return abort(fmt.Errorf("flush day %s: %w", record.DayString(d), err))
		}
		ref := &segRef{r: r, minFlush: flushID, maxFlush: flushID, archived: archived, added: s.opts.Now()}
		ref.refs.Store(1)
		written[key] = ref
		records += h.n
	}
	cp := checkpoint{Version: 1, WAL: walSeg, Flush: flushID}
	b, _ := json.Marshal(cp)
	if err := s.fs.WriteFile(filepath.Join(s.dir, checkpointName), b, 0o640); err != nil {
		return abort(fmt.Errorf("write checkpoint: %w", err))
	}

	s.mu.Lock()
	s.cp = cp
	for key, ref := range written {
		dy := s.days[key]
		if dy == nil {
			dy = s.newDayLocked(key)
			s.days[key] = dy
		}
		dy.segs = append(dy.segs, ref)
		if ref.archived {
			s.kickUpload()
		}
	}
	s.frozen = make(map[int64]*head)
	s.frozenBytes = 0
	s.mu.Unlock()

	if err := s.wal.Truncate(walSeg); err != nil {
		// The checkpoint already says these files are redundant; a later
		// flush or the next start-up removes them.
		s.log.Warn("could not remove flushed wal files", "err", err)
	}
	s.m.flushes.Inc()
	s.m.flushedRecords.Add(float64(records))
	s.m.flushDuration.Observe(time.Since(start).Seconds())
	s.log.Debug("flushed head", "days", len(frozen), "records", records, "duration", time.Since(start))
	return nil
}

// writeHead writes a frozen head as the part file at path: its records
// sorted as they are when it has no sealed parts, else its parts and tail
// merged in time order (the parts are sorted already).
func writeHead(path string, key int64, h *head, opts segment.Options) error {
	if len(h.parts) == 0 {
		_, err := segment.WriteRuns(path, h.tail.Chunks(), h.tail.knownChunks(), opts)
		return err
	}
	srcs, err := partReaders(path, h.space, []Records{h.tail}, h.parts)
	if err != nil {
		return err
	}
	w, err := segment.NewWriter(path, opts)
	if err != nil {
		return err
	}
	if err := mergeInto(context.Background(), w, srcs); err != nil {
		w.Abort()
		return err
	}
	_, err = w.Close()
	return err
}
