// Package store owns retentiond's data directory: the lock, start-up recovery,
// the write-ahead log, the in-memory head of each UTC day, flushes of the head
// into immutable part files, the merge of a closed day's parts into one
// segment, the registry of days, and the reference counting that keeps a day
// from being deleted under a running search.
package store

import (
	"errors"
	"fmt"
	"time"

	"github.com/retentiond/retentiond/internal/objstore"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
)

// Errors callers distinguish.
var (
	// ErrBusy means the write path is saturated (the head is over its memory
	// bound and a flush is behind). Nothing was written; the caller should ask
	// its client to retry later (HTTP 429/503 with Retry-After). It has a
	// RetryAfter method, so that callers (ingest, importer) recognise it by
	// that behaviour without importing store.
	ErrBusy error = &busyError{}
	// ErrClosed means the store is shutting down or has failed.
	ErrClosed = errors.New("store closed")
	// ErrDayDestroyed is the cause a search's context carries when a purge
	// destroyed a day it was reading; test for it with errors.Is. The error
	// itself is a *DayDestroyedError naming the day.
	ErrDayDestroyed = errors.New("day destroyed by the retention purge")
	// ErrLocked means another process holds the data directory.
	ErrLocked = errors.New("data directory is locked by another process")
)

// CorruptSuffix is appended to the name of a segment file found damaged
// (quarantine). The file stays in its day directory, so the damage stays
// visible (metrics, retentiond verify) across restarts and a purge of the
// day destroys it with the rest, but it is never read again.
const CorruptSuffix = ".corrupt"

// CorruptFile is a damaged segment file of a day: found at start-up (its
// footer does not verify) or by a reader (a block does not). Its records are
// not searchable, and since the WAL checkpoint already covered them they
// exist nowhere else in the data directory: they are lost unless the file
// is restored from a backup.
type CorruptFile struct {
	// Path is where the file is now: its name ends in CorruptSuffix once
	// it has been quarantined (at once at start-up, within a second at run
	// time).
	Path  string
	Bytes int64
	// Err is what was found, with the file's original name and the offset
	// of the damage.
	Err *segment.CorruptionError
}

// DayInfo describes one stored UTC day.
type DayInfo struct {
	Day     time.Time // midnight UTC
	Records int64     // records in segments and head
	Bytes   int64     // bytes on disk (segment files, damaged ones included)
	Files   int       // segment files on disk, damaged ones included
	MinTime time.Time // oldest record; zero if the day holds none
	MaxTime time.Time // newest record; zero if the day holds none
	// CorruptFiles counts the day's damaged segment files, whose records
	// are not in Records (see CorruptFile). A day holding only damaged
	// files is still listed, so that a purge destroys it.
	CorruptFiles int
	// KeyID is the id of the day key DeleteDay destroyed (encrypted data
	// directories only; empty otherwise). It is not key material.
	KeyID string `json:",omitempty"`
	// Local says the day has data on this node's disk (files or records
	// not yet flushed); Remote that it has objects in the bucket (any
	// node's, this node's own where its local copy was evicted). A day
	// with only remote data is listed too, so that the purge sees it.
	Local, Remote bool
	// Objects and RemoteBytes are the day's current objects in the bucket
	// and their size. Records includes the objects whose footer was read.
	Objects     int
	RemoteBytes int64
}

// DayView is what a search sees of one day: its immutable segment files and a
// frozen copy of the records not yet flushed. A DayView stays valid (its
// files open, its day undeleted) until the Snapshot it came from is released.
type DayView struct {
	Day time.Time
	// Segments are the day's part and merged segment files. Each is sorted by
	// time on its own; they may overlap in time with each other.
	Segments []*segment.Reader
	// Head holds the day's records that are only in the WAL and in memory. It
	// is read-only and in arrival order, not sorted by time.
	Head Records
	// Corrupt are the day's damaged segment files, known when the snapshot
	// was taken: their records are missing from Segments, and a search must
	// say so.
	Corrupt []CorruptFile
}

// DayDestroyedError ends a search that still held a day when the purge
// destroyed it after its reader grace (Options.ReaderGrace).
type DayDestroyedError struct {
	Day time.Time
}

func (e *DayDestroyedError) Error() string {
	return fmt.Sprintf("day %s was destroyed by the retention purge while this search read it", record.DayString(e.Day))
}

// Is makes errors.Is(err, ErrDayDestroyed) true.
func (e *DayDestroyedError) Is(target error) bool { return target == ErrDayDestroyed }

// Snapshot is a consistent, reference-counted view over a range of days.
// Release must be called exactly once; a purge waits for it, at most for
// its reader grace, and then cancels the contexts made by Context.
type Snapshot struct {
	// Days are the days that overlap the requested range, oldest first.
	Days []*DayView
	// Shared, for a snapshot taken with SnapshotOptions.Unshared, are this
	// node's current uploaded objects overlapping the range: the data the
	// snapshot leaves out because any node can read it from the bucket.
	// It is taken under the same lock as Days, so that every record of this
	// node is in exactly one of the two. Empty for other snapshots.
	Shared  []objstore.ObjectInfo
	release func()
	report  func(*segment.CorruptionError)
	rd      *reader // nil for a snapshot not made by a Store
}

// SnapshotOptions select what a snapshot holds in a cluster
// (docs/scale-out.md). The zero value is the whole view of this node:
// its local data and every node's objects in the bucket.
type SnapshotOptions struct {
	// Unshared: only this node's data that is not (yet) in the bucket:
	// heads, local parts, days not uploaded. A peer asking this node for
	// its fresh data gets exactly this, and Snapshot.Shared lists what was
	// left out because it is in the bucket.
	Unshared bool
	// PeerObjects, per peer node that answered, the objects that node said
	// are current (Snapshot.Shared of its unshared snapshot); they replace
	// what this node's listing holds for that node, so that the asking node
	// reads every object exactly once even if its listing is stale.
	PeerObjects map[string][]objstore.ObjectInfo
}

// ReportCorrupt tells the store that a reader of this snapshot found damage
// in one of its segment files: the store logs and counts it, keeps the file
// out of later snapshots and quarantines it. The snapshot's own view is not
// changed. Reporting a file twice, or a file the store no longer holds, is
// harmless.
func (s *Snapshot) ReportCorrupt(err *segment.CorruptionError) {
	if s.report != nil && err != nil {
		s.report(err)
	}
}

// Release gives the snapshot's days back; a day deleted meanwhile is removed
// from disk once its last snapshot is released.
func (s *Snapshot) Release() {
	if s.release != nil {
		s.release()
		s.release = nil
	}
}

// Errors of the failure states (see docs/storage.md).
var (
	// ErrTooLarge means one batch is larger than the store can ever hold at
	// once (its estimate exceeds head_max_bytes). It is the request's error:
	// nothing was written and retrying the same batch cannot succeed (HTTP
	// 413); smaller batches can. It has a TooLarge method, so that callers
	// recognise it by that behaviour without importing store.
	ErrTooLarge error = &tooLargeError{}
	// ErrFailed means a write or fsync of the WAL failed. The store refuses
	// every write until the daemon restarts and replays the WAL from disk.
	ErrFailed = errors.New("store failed")
	// ErrDegraded, from Health, means a WAL rotation or a flush failed
	// (EMFILE, ENOSPC, ...) and is being retried. Appends are still
	// acknowledged, until the head reaches its bound (then ErrBusy).
	ErrDegraded = errors.New("store degraded")
)

// busyError is ErrBusy.
type busyError struct{}

func (*busyError) Error() string { return "store busy: write path saturated" }

// RetryAfter is how long a client should wait before it retries: a flush
// frees head memory within about a second.
func (*busyError) RetryAfter() time.Duration { return time.Second }

// tooLargeError is ErrTooLarge.
type tooLargeError struct{}

func (*tooLargeError) Error() string { return "batch larger than the head memory bound" }

// TooLarge says that retrying the same batch cannot succeed.
func (*tooLargeError) TooLarge() bool { return true }
