package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/retentiond/retentiond/internal/record"
)

// Admission control: a caller that is about to parse records (an HTTP body,
// one chunk at a time) first reserves head memory for them, so that what is
// parsed and not yet stored counts against HeadMaxBytes like the head itself.
// Reservations share the reserved counter with Append, which keeps the one
// invariant in one place:
//
//	headBytes + frozenBytes + reserved <= HeadMaxBytes
//
// Reserve waits for room instead of failing, so a long request never has to
// be refused in the middle (which a shipper would retry whole, duplicating
// what was already stored).

// reservePoll is how often a waiting Reserve looks for room. Room appears when
// a flush finishes or another caller releases memory; polling keeps this file
// free of hooks in the flush path, and waiters are few (bounded by the
// ingest concurrency).
const reservePoll = 10 * time.Millisecond

// reserveShare bounds one reservation to HeadMaxBytes/reserveShare. With every
// reservation that small, a waiter always gets room eventually: the head is
// flushed at half the bound, and other reservations are released as soon as
// their records are stored.
const reserveShare = 8

// ErrReserveTooLarge is returned by Reserve for more memory than ReserveLimit.
var ErrReserveTooLarge = errors.New("reservation larger than a share of storage.head_max_bytes")

// ReserveFor is an upper bound of the memory that n records parsed from
// textBytes of input need on their way into the head: the records (estimate's
// figure; their strings are never longer than the text they came from) and
// their WAL encoding, which exists while they are appended. A reservation of
// this size covers both until Release. It is a method, though it depends on
// no store, so that a *Store is an ingest.Reserver: ingest asks it rather
// than importing store.
func (*Store) ReserveFor(n int, textBytes int64) int64 {
	return 2 * (int64(n)*(recordOverhead+96) + textBytes)
}

// Reservation is head memory set aside by Reserve. Its methods are not safe
// for concurrent use; each caller holds its own.
type Reservation struct {
	s *Store
	n int64
}

// ReserveLimit is the most one Reserve call may ask for.
func (s *Store) ReserveLimit() int64 { return s.opts.HeadMaxBytes / reserveShare }

// Reserve sets aside n bytes of head memory for records the caller is about
// to parse and store, waiting while the head, the head being flushed and
// other reservations leave no room. It returns ctx's error if ctx ends
// first, ErrClosed if the store is closed, an error wrapping ErrFailed if it
// has failed, and ErrReserveTooLarge if n exceeds ReserveLimit.
func (s *Store) Reserve(ctx context.Context, n int64) (*Reservation, error) {
	if n > s.ReserveLimit() {
		return nil, fmt.Errorf("reserve %d bytes (limit %d): %w", n, s.ReserveLimit(), ErrReserveTooLarge)
	}
	if err := s.take(ctx, n); err != nil {
		return nil, err
	}
	return &Reservation{s: s, n: n}, nil
}

// take waits until n more bytes fit under the bound and adds them to
// s.reserved.
func (s *Store) take(ctx context.Context, n int64) error {
	var timer *time.Timer
	for {
		s.mu.Lock()
		switch {
		case s.closed:
			s.mu.Unlock()
			return ErrClosed
		case s.failed != nil:
			err := s.failed
			s.mu.Unlock()
			return fmt.Errorf("%w: %w", ErrFailed, err)
		case s.headBytes+s.frozenBytes+s.reserved+n <= s.opts.HeadMaxBytes:
			s.reserved += n
			s.mu.Unlock()
			return nil
		}
		s.mu.Unlock()
		// A flush may be all that frees room; make sure one is considered.
		s.kickFlush()
		if timer == nil {
			timer = time.NewTimer(reservePoll)
			defer timer.Stop()
		} else {
			timer.Reset(reservePoll)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
	}
}

// Append stores recs durably, as Store.Append does, out of the reservation:
// the memory they take is moved from the reservation into the head, so the
// bound is never crossed and the call does not fail with ErrBusy. If recs
// need more than is left (the caller's reservation was an estimate), Append
// waits for the difference. What the records do not use stays reserved until
// Release.
func (r *Reservation) Append(ctx context.Context, recs []record.Record) error {
	return r.append(ctx, recs, true)
}

// AppendNoSync is Append through Store.AppendNoSync: the records are
// durable once a later Store.Sync returns without error.
func (r *Reservation) AppendNoSync(ctx context.Context, recs []record.Record) error {
	return r.append(ctx, recs, false)
}

func (r *Reservation) append(ctx context.Context, recs []record.Record, sync bool) error {
	if len(recs) == 0 {
		return nil
	}
	est := estimate(recs)
	for {
		if est > r.n {
			if err := r.s.take(ctx, est-r.n); err != nil {
				return err
			}
			r.n = est
		}
		// Hand the bytes over: Store.Append reserves est again under the same
		// bound, which the bytes just given back guarantee to fit unless
		// another caller takes them in between.
		r.s.mu.Lock()
		r.s.reserved -= est
		r.n -= est
		r.s.mu.Unlock()
		err := r.s.append(ctx, recs, sync)
		if !errors.Is(err, ErrBusy) {
			return err
		}
		// Another caller took the room in that gap; ErrBusy stored nothing,
		// so wait for room again and retry.
	}
}

// Release gives back what is left of the reservation. It may be called more
// than once.
func (r *Reservation) Release() {
	if r.n == 0 {
		return
	}
	r.s.mu.Lock()
	r.s.reserved -= r.n
	r.s.mu.Unlock()
	r.n = 0
}

// MemoryInUse is what the head bound counts now: unflushed records (sealed
// parts and tails, frozen heads included) and reservations of records on
// their way in. The daemon sizes the Go runtime's soft memory limit by it.
func (s *Store) MemoryInUse() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.headBytes + s.frozenBytes + s.reserved
}
