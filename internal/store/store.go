package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/fsutil"
	"github.com/retentiond/retentiond/internal/keys"
	"github.com/retentiond/retentiond/internal/objstore"
	"github.com/retentiond/retentiond/internal/wal"
)

// Names inside the data directory.
const (
	lockName       = "LOCK"
	checkpointName = "checkpoint.json"
	walDirName     = "wal"
	daysDirName    = "days"
)

// Options tune the store. The zero value of each field selects its default.
type Options struct {
	// HeadMaxBytes bounds the memory of unflushed records (an estimate of
	// their size), including records being flushed. Half of it triggers a
	// flush; an Append that would cross it returns ErrBusy instead.
	HeadMaxBytes int64
	// FlushInterval is the longest a record stays only in the WAL and the
	// head; it bounds WAL size and replay time. Default 5 minutes.
	FlushInterval time.Duration
	// MergeGrace is how long after a UTC day ends its parts are merged into
	// one segment; late records within the grace still become parts cheaply.
	// Default 1 hour.
	MergeGrace time.Duration
	// MaxParts is how many segment files an open day may have before they are
	// merged anyway, which keeps searches of today fast. Default 16.
	MaxParts int
	// WALSegmentBytes is the size at which a WAL file is rotated. Default 64 MiB.
	WALSegmentBytes int64
	// BlockRows is the number of records per segment block (0: segment default).
	BlockRows int
	// SealRows is the size at which a head's tail is sealed into an indexed
	// in-memory part (seal.go); a tail of a sixteenth of it is sealed once it
	// is two seconds old. Default 65536; tests lower it.
	SealRows int
	// ReaderGrace is how long DeleteDay lets running searches finish with a
	// day it is destroying; after it, it cancels them (their error says the
	// day was destroyed) and waits at most one more grace for them to let
	// go, so a stuck search can never hold an expired day. Default 30s.
	ReaderGrace time.Duration
	// Now is the clock (tests inject one). Default time.Now.
	Now func() time.Time
	// Logger receives the store's logs; never record contents.
	Logger *slog.Logger
	// Registerer receives the store's and the WAL's metrics; nil means none.
	Registerer prometheus.Registerer
	// FS performs every file-system effect of the store, its WAL and its
	// segment writers; the zero value is the real file system, tests inject
	// faults through it.
	FS fsutil.FS
	// Keys, when set, encrypts the data directory: every segment file and
	// WAL frame written from then on is sealed under its day's key from
	// this ring, and DeleteDay destroys the key (crypto-shredding, see
	// docs/security.md). Plain files written before keep being read. nil
	// writes plain files, and a sealed file or frame is then an error.
	Keys *keys.Ring

	// Bucket, when set, is the object store closed days are uploaded to
	// and the days of every node are read from (docs/scale-out.md, "Closed
	// days in the bucket"). nil keeps every day on local disk only.
	Bucket objstore.Bucket
	// Node is this node's name in the bucket's keys (cluster.node): it
	// must pass objstore.ValidNode when Bucket is set, and be unique in the
	// cluster.
	Node string
	// Cache keeps the ranges searches read from remote segments (footers,
	// index pages, blocks) on local disk within its bound; nil reads every
	// range from the bucket.
	Cache *objstore.Cache
	// LocalCacheBytes bounds the uploaded day files kept on local disk: an
	// uploaded file is a cache entry, and beyond the bound the least
	// recently read are removed (their days are then read from the
	// bucket). Default 5 GiB. Files not yet uploaded are never evicted.
	LocalCacheBytes int64
	// UploadRetryMin and UploadRetryMax bound the backoff between upload
	// rounds while the bucket fails. Defaults 1s and 5m.
	UploadRetryMin, UploadRetryMax time.Duration
	// ListInterval is how often the bucket is listed to learn the days of
	// the other nodes. Default 1m.
	ListInterval time.Duration
	// SupersededGrace is how long an object replaced by a newer archive of
	// its day stays in the bucket before this node deletes it, so that a
	// search that listed it moments ago can still read it. Default 10m.
	SupersededGrace time.Duration

	// manual (tests of this package only): no background listing and
	// upload loops; the test calls ListBucket and UploadPending.
	manual bool
}

func (o *Options) withDefaults() {
	o.HeadMaxBytes = cmp.Or(o.HeadMaxBytes, 256<<20)
	o.FlushInterval = cmp.Or(o.FlushInterval, 5*time.Minute)
	o.MergeGrace = cmp.Or(o.MergeGrace, time.Hour)
	o.MaxParts = cmp.Or(o.MaxParts, 16)
	o.SealRows = cmp.Or(o.SealRows, defaultSealRows)
	o.WALSegmentBytes = cmp.Or(o.WALSegmentBytes, 64<<20)
	o.ReaderGrace = cmp.Or(o.ReaderGrace, 30*time.Second)
	o.LocalCacheBytes = cmp.Or(o.LocalCacheBytes, 5<<30)
	o.UploadRetryMin = cmp.Or(o.UploadRetryMin, time.Second)
	o.UploadRetryMax = cmp.Or(o.UploadRetryMax, 5*time.Minute)
	o.ListInterval = cmp.Or(o.ListInterval, time.Minute)
	o.SupersededGrace = cmp.Or(o.SupersededGrace, 10*time.Minute)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Store is an open data directory. All methods are safe for concurrent use.
type Store struct {
	dir  string
	opts Options
	log  *slog.Logger
	m    *metrics

	fs       fsutil.FS
	lockFile *fsutil.Lock
	wal      *wal.WAL

	// appendMu orders WAL appends against flushes: appenders hold it shared
	// from WAL append to head insertion, a flush holds it exclusively while it
	// freezes the heads and rotates the WAL, so every record is either in the
	// frozen heads and a WAL file before the rotation, or in neither.
	appendMu sync.RWMutex
	// maintMu serialises flush, day deletion and the moments a merge
	// chooses its inputs and swaps its output in, which all change the
	// files of the days directory. A merge does not hold it while it writes
	// (see MergeDay).
	maintMu sync.Mutex
	// mergeMu lets one merge run at a time. Lock order: mergeMu, maintMu, mu.
	mergeMu sync.Mutex
	// sealMu lets one sealing of heads run at a time (seal.go); it is taken
	// before mu and never with maintMu.
	sealMu sync.Mutex

	mu    sync.Mutex // guards everything below
	days  map[int64]*day
	heads map[int64]*head
	// shares is the heads' cache of string numbers by address (see
	// shareCache); each head points to it.
	shares      shareCache
	frozen      map[int64]*head
	headBytes   int64
	frozenBytes int64
	reserved    int64     // admitted by Append, not yet in the head
	oldestHead  time.Time // arrival time of the oldest unflushed record
	// walDirty says that WAL files after the checkpoint hold records, even
	// if DeleteDay has dropped them from the head: the next flush must
	// then rotate and checkpoint so that those files are removed.
	walDirty bool
	// deleting are the days DeleteDay has hidden from new snapshots.
	deleting map[int64]bool
	// readers are the unreleased snapshots (see readers.go).
	readers map[*reader]struct{}
	// recycledChunks counts the tail chunks seals gave back for reuse
	// (Records.recycle), which tests read.
	recycledChunks int
	// merging is the merge in progress, or nil.
	merging    *mergeJob
	cp         checkpoint
	closed     bool
	failed     error         // the WAL write or fsync error that failed the store, for good
	failedCh   chan struct{} // closed when failed is set
	flushErr   error         // why the last flush failed; nil after one succeeds
	flushRetry time.Time     // no background flush before this (backoff after failures)
	flushWait  time.Duration // the current backoff

	// The bucket's side (remote.go, upload.go). ledger is guarded by mu
	// for reading; changing it also takes upMu, which orders the ledger's
	// writes and an upload's commit against DeleteDay.
	ledger ledger
	upMu   sync.Mutex
	// deletedAt says when DeleteDay removed a day, so that a listing that
	// began before does not bring it back.
	deletedAt map[int64]time.Time
	upKick    chan struct{}
	// listMu orders listings of the bucket (each applies what it found in
	// full before the next begins, so an older listing never undoes a
	// newer one); listed is set once a listing has succeeded since Open.
	listMu       sync.Mutex
	listed       atomic.Bool
	remoteCtx    context.Context
	remoteCancel context.CancelFunc
	remoteWG     sync.WaitGroup

	kick chan struct{}
	// sealKick wakes the sealing loop (seal.go); sealDone is closed when
	// it has stopped.
	sealKick chan struct{}
	sealDone chan struct{}
	stop     chan struct{}
	done     chan struct{}
}

// Open opens (creating if needed) the data directory dir: it takes the lock,
// sweeps debris of earlier crashes, opens every day's segments, replays the
// WAL into the head, and starts background flushing and merging.
func Open(dir string, opts Options) (*Store, error) {
	opts.withDefaults()
	s := &Store{
		dir:       dir,
		opts:      opts,
		fs:        opts.FS,
		log:       opts.Logger,
		days:      make(map[int64]*day),
		heads:     make(map[int64]*head),
		frozen:    make(map[int64]*head),
		kick:      make(chan struct{}, 1),
		sealKick:  make(chan struct{}, 1),
		sealDone:  make(chan struct{}),
		failedCh:  make(chan struct{}),
		deleting:  make(map[int64]bool),
		readers:   make(map[*reader]struct{}),
		deletedAt: make(map[int64]time.Time),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if opts.Bucket != nil {
		if err := objstore.ValidNode(opts.Node); err != nil {
			return nil, fmt.Errorf("store: cluster.node: %w", err)
		}
	}
	var err error
	if s.m, err = newMetrics(opts.Registerer, s); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := s.fs.MkdirAll(filepath.Join(dir, daysDirName), 0o750); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	if err := s.lock(); err != nil {
		return nil, err
	}
	if err := s.recover(); err != nil {
		s.closeFiles()
		return nil, err
	}
	if opts.Bucket != nil {
		if err := s.loadLedger(); err != nil {
			s.closeFiles()
			return nil, err
		}
	}
	s.startRemote()
	go s.loop()
	go s.sealLoop()
	return s, nil
}

// lock takes an exclusive advisory lock on dir/LOCK. The lock dies with the
// process, so a crash never leaves a stale lock behind.
func (s *Store) lock() error {
	l, err := s.fs.Lock(filepath.Join(s.dir, lockName))
	var held *fsutil.HeldError
	if errors.As(err, &held) {
		return fmt.Errorf("%w (%s, held by pid %s): stop the other retentiond first", ErrLocked, s.dir, held.Holder)
	}
	if err != nil {
		return err
	}
	s.lockFile = l
	return nil
}

// archiveSuffix ends the name of a segment file written at
// segment.ArchiveLevel for a closed day (seg-A-B.archive.seg): the day's
// final form, which the archive pass does not rewrite. The name, not the
// file format, carries the mark, so that the store knows it from a
// directory listing at start-up, and a crash between writing the archived
// copy of a single part and removing the part leaves two names that
// recovery tells apart (same flush range, the archived one wins).
const archiveSuffix = ".archive.seg"

// fail records a fatal write error: the WAL can no longer promise
// durability, so the store refuses further writes instead of acknowledging
// records it may lose. Health then reports it, and the daemon restarts so
// that the WAL is recovered from disk (docs/storage.md).
func (s *Store) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed == nil {
		s.failed = err
		close(s.failedCh)
		s.log.Error("write path failed; refusing further writes until restart", "err", err)
	}
}

// Failed is closed when the store enters its failed state (a WAL write or
// fsync failed). The daemon watches it to exit and be restarted.
func (s *Store) Failed() <-chan struct{} { return s.failedCh }

// Health says whether ingest can be stored: nil when it can; an error
// wrapping ErrFailed when a WAL write or fsync failed (permanent until
// restart); an error wrapping ErrDegraded while a flush or WAL rotation fails
// and is retried (appends still succeed until the head is full). /readyz
// reports it.
func (s *Store) Health() error {
	s.mu.Lock()
	failed, flushErr := s.failed, s.flushErr
	s.mu.Unlock()
	switch {
	case failed != nil:
		return fmt.Errorf("%w: %w", ErrFailed, failed)
	case flushErr != nil:
		return fmt.Errorf("%w: flush: %w", ErrDegraded, flushErr)
	}
	if s.wal != nil {
		if err := s.wal.Degraded(); err != nil {
			return fmt.Errorf("%w: wal rotation: %w", ErrDegraded, err)
		}
	}
	return nil
}

// Flush backoff after a failed flush: from flushRetryMin, doubling up to
// flushRetryMax. The data is safe in the WAL meanwhile; the backoff only
// keeps a full disk from being hammered with part writes.
const (
	flushRetryMin = time.Second
	flushRetryMax = 30 * time.Second
)

// lateArchiveShare: late parts of an archived day that reach this fraction
// (1/16) of the archived file's bytes make the day archived again at once
// instead of a merge grace after the first of them arrived.
const lateArchiveShare = 16

// stopping reports whether Close has begun.
func (s *Store) stopping() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// Node returns this node's name in the cluster (Options.Node): the path
// element of its objects in the bucket, and what a cluster search names a
// peer by.
func (s *Store) Node() string { return s.opts.Node }

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

// Close flushes unflushed records, stops background work, closes every file
// and releases the lock. A running merge is cancelled (its output removed;
// the next start merges again).
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed || s.stopping() {
		s.mu.Unlock()
		return nil
	}
	close(s.stop)
	s.remoteCancel() // uploads and downloads in flight stop; the next start repeats them
	s.cancelMergeLocked(nil)
	s.mu.Unlock()
	<-s.done
	<-s.sealDone
	s.stopRemote()
	// A merge called by someone else than the loop: cancelled above if it
	// had begun, refused by beginMerge (stopping) if not.
	s.mergeMu.Lock()
	s.mergeMu.Unlock() //nolint:staticcheck // SA2001: the empty section is the point, a barrier behind a running merge
	err := s.Flush()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	// Wait for in-flight appends before closing the WAL under them.
	s.appendMu.Lock()
	s.appendMu.Unlock() //nolint:staticcheck // SA2001: the empty section is the point, a barrier behind in-flight appends
	return errors.Join(err, s.closeFiles())
}

func (s *Store) closeFiles() error {
	var errs []error
	if s.wal != nil {
		errs = append(errs, s.wal.Close())
	}
	s.mu.Lock()
	for _, dy := range s.days {
		for _, ref := range dy.segs {
			ref.release()
		}
		releaseRemoteLocked(dy)
	}
	s.days = map[int64]*day{}
	s.mu.Unlock()
	if s.lockFile != nil {
		errs = append(errs, s.lockFile.Close())
	}
	return errors.Join(errs...)
}
