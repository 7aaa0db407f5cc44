package store

import (
	"context"
	"slices"
	"time"

	"github.com/retentiond/retentiond/internal/record"
)

// reader is the registry entry of one unreleased snapshot: the days it
// holds and how to stop the search that reads them. A purge waits for the
// readers of the day it destroys, and after its grace cancels them; a search
// that its client stopped reading can then never hold an expired day.
type reader struct {
	s    *Store
	keys []int64       // the days held (Unix seconds of midnight), sorted; immutable
	done chan struct{} // closed by Release
	// Guarded by s.mu:
	cancels []context.CancelCauseFunc // of the contexts made by Snapshot.Context
	cause   error                     // set once a purge revoked the snapshot
}

// Context returns a context derived from parent that a purge cancels, with
// a *DayDestroyedError as its cause (context.Cause), when it destroys a day
// of this snapshot that the search still holds after the reader grace. A
// search runs under it so that it stops reading the day and releases the
// snapshot. Call the returned cancel when the search is done.
func (s *Snapshot) Context(parent context.Context) (context.Context, context.CancelFunc) {
	if s.rd == nil {
		return context.WithCancel(parent)
	}
	ctx, cancel := context.WithCancelCause(parent)
	st := s.rd.s
	st.mu.Lock()
	if s.rd.cause != nil {
		cancel(s.rd.cause)
	} else {
		s.rd.cancels = append(s.rd.cancels, cancel)
	}
	st.mu.Unlock()
	return ctx, func() { cancel(nil) }
}

// holders returns the unreleased snapshots that hold day key and have not
// been revoked yet.
func (s *Store) holders(key int64) []*reader {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*reader
	for rd := range s.readers {
		if rd.cause == nil {
			if _, ok := slices.BinarySearch(rd.keys, key); ok {
				out = append(out, rd)
			}
		}
	}
	return out
}

// awaitReaders waits until no search holds day d, at most the reader
// grace; then it cancels the searches still holding it, with an error
// saying the day was destroyed, and waits at most one more grace for them
// to let go (a cancelled search stops at its next batch, or when its
// stalled client's write deadline passes). Either way it then returns, so
// that the caller destroys the day: unlinking files a cancelled search
// still maps is safe, and the search returns nothing more from them. It
// returns an error only when ctx ends first.
func (s *Store) awaitReaders(ctx context.Context, d time.Time) error {
	grace := s.opts.ReaderGrace
	if done, err := waitReleased(ctx, s.holders(d.Unix()), grace); done || err != nil {
		return err
	}
	revoked := s.revoke(d)
	if len(revoked) == 0 {
		return nil
	}
	s.m.cancelledSearches.Add(float64(len(revoked)))
	s.log.Warn("purge cancelled searches still reading an expired day after the reader grace",
		"day", record.DayString(d), "searches", len(revoked), "grace", grace)
	done, err := waitReleased(ctx, revoked, grace)
	if err == nil && !done {
		s.log.Warn("removing an expired day that cancelled searches have not released yet",
			"day", record.DayString(d), "grace", grace)
	}
	return err
}

// revoke cancels every search still holding day d and returns them.
func (s *Store) revoke(d time.Time) []*reader {
	rs := s.holders(d.Unix())
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*reader
	for _, rd := range rs {
		if _, live := s.readers[rd]; !live || rd.cause != nil {
			continue
		}
		rd.cause = &DayDestroyedError{Day: d}
		for _, cancel := range rd.cancels {
			cancel(rd.cause)
		}
		rd.cancels = nil
		out = append(out, rd)
	}
	return out
}

// waitReleased waits until every reader in rs is released (true), timeout
// passes (false) or ctx ends (its error).
func waitReleased(ctx context.Context, rs []*reader, timeout time.Duration) (bool, error) {
	if len(rs) == 0 {
		return true, nil
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for _, rd := range rs {
		select {
		case <-rd.done:
		case <-t.C:
			return false, nil
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	return true, nil
}
