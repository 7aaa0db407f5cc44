package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/fsutil"
	"github.com/retentiond/retentiond/internal/keys"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
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
}

func (o *Options) withDefaults() {
	o.HeadMaxBytes = cmp.Or(o.HeadMaxBytes, 256<<20)
	o.FlushInterval = cmp.Or(o.FlushInterval, 5*time.Minute)
	o.MergeGrace = cmp.Or(o.MergeGrace, time.Hour)
	o.MaxParts = cmp.Or(o.MaxParts, 16)
	o.WALSegmentBytes = cmp.Or(o.WALSegmentBytes, 64<<20)
	o.ReaderGrace = cmp.Or(o.ReaderGrace, 30*time.Second)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// checkpoint is the durable statement "every record in WAL files before WAL
// is in segment files written by flushes up to Flush". It is rewritten
// atomically after each flush.
type checkpoint struct {
	Version int   `json:"version"`
	WAL     int   `json:"wal"`
	Flush   int64 `json:"flush"`
}

// segRef is a segment reader shared by the day registry and any number of
// snapshots; the reader is closed when the last of them lets go, so a merge
// can replace files under a running search.
type segRef struct {
	r        *segment.Reader
	minFlush int64
	maxFlush int64
	// archived: the file was written at segment.ArchiveLevel for a closed
	// day (its name ends in archiveSuffix), so the archive pass leaves it.
	archived bool
	// added is when the file joined the day (or the store was opened): the
	// age of a day's late parts decides when it is archived again.
	added time.Time
	refs  atomic.Int32
}

func (s *segRef) acquire() { s.refs.Add(1) }

func (s *segRef) release() {
	if s.refs.Add(-1) == 0 {
		s.r.Close()
	}
}

// head holds one day's unflushed records in arrival order. Its slice is only
// ever appended to, so a snapshot may keep reading a prefix of it while new
// records arrive.
type head struct {
	recs    []record.Record
	intern  map[string]string // shares domain and user-agent strings
	bytes   int64
	minTime int64
	maxTime int64
}

func newHead() *head { return &head{intern: make(map[string]string)} }

// recordOverhead is what a record takes in the head besides its strings'
// bytes: the 96-byte struct (string headers included) in a slice that keeps
// up to a quarter of its capacity unused after it grows, and the rounding of
// the path's allocation to a size class. Measured against the Go heap it
// keeps the head's real memory within a few percent of headBytes, so that
// storage.head_max_bytes bounds memory, not an optimistic figure.
const recordOverhead = 128

func (h *head) add(r record.Record) int64 {
	n := int64(recordOverhead + len(r.Path))
	if s, ok := h.intern[r.Domain]; ok {
		r.Domain = s
	} else {
		h.intern[r.Domain] = r.Domain
		n += int64(len(r.Domain)) + 48
	}
	if s, ok := h.intern[r.UserAgent]; ok {
		r.UserAgent = s
	} else {
		h.intern[r.UserAgent] = r.UserAgent
		n += int64(len(r.UserAgent)) + 48
	}
	ms := r.Time.UnixMilli()
	if len(h.recs) == 0 || ms < h.minTime {
		h.minTime = ms
	}
	if len(h.recs) == 0 || ms > h.maxTime {
		h.maxTime = ms
	}
	h.recs = append(h.recs, r)
	h.bytes += n
	return n
}

// day is the registry entry of one UTC day.
type day struct {
	start   time.Time
	dir     string
	segs    []*segRef
	corrupt []CorruptFile // damaged files, not in segs (see CorruptFile)
	// shredded is set for a day whose key a purge destroyed before a crash
	// kept it from removing the files: they are unreadable, listed (Days)
	// so that the next purge removes them, never opened. shreddedBytes
	// is their size.
	shredded      bool
	shreddedBytes int64
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

	mu          sync.Mutex // guards everything below
	days        map[int64]*day
	heads       map[int64]*head
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
	// merging is the merge in progress, or nil.
	merging    *mergeJob
	cp         checkpoint
	closed     bool
	failed     error         // the WAL write or fsync error that failed the store, for good
	failedCh   chan struct{} // closed when failed is set
	flushErr   error         // why the last flush failed; nil after one succeeds
	flushRetry time.Time     // no background flush before this (backoff after failures)
	flushWait  time.Duration // the current backoff

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

// Open opens (creating if needed) the data directory dir: it takes the lock,
// sweeps debris of earlier crashes, opens every day's segments, replays the
// WAL into the head, and starts background flushing and merging.
func Open(dir string, opts Options) (*Store, error) {
	opts.withDefaults()
	s := &Store{
		dir:      dir,
		opts:     opts,
		fs:       opts.FS,
		log:      opts.Logger,
		days:     make(map[int64]*day),
		heads:    make(map[int64]*head),
		frozen:   make(map[int64]*head),
		kick:     make(chan struct{}, 1),
		failedCh: make(chan struct{}),
		deleting: make(map[int64]bool),
		readers:  make(map[*reader]struct{}),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
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
	go s.loop()
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
		for _, r := range recs {
			s.insertLocked(r)
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

// parseSegName returns the flush range of a segment file name and whether
// it is an archived file.
func parseSegName(name string) (lo, hi int64, archived, ok bool) {
	plain := name
	if b, ok := strings.CutSuffix(name, archiveSuffix); ok {
		plain, archived = b+".seg", true
	}
	if _, err := fmt.Sscanf(plain, "seg-%d-%d.seg", &lo, &hi); err != nil || name != segName(lo, hi, archived) {
		return 0, 0, false, false
	}
	return lo, hi, archived, true
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

func segName(minFlush, maxFlush int64, archived bool) string {
	if archived {
		return fmt.Sprintf("seg-%08d-%08d%s", minFlush, maxFlush, archiveSuffix)
	}
	return fmt.Sprintf("seg-%08d-%08d.seg", minFlush, maxFlush)
}

// archiveSuffix ends the name of a segment file written at
// segment.ArchiveLevel for a closed day (seg-A-B.archive.seg): the day's
// final form, which the archive pass does not rewrite. The name, not the
// file format, carries the mark, so that the store knows it from a
// directory listing at start-up, and a crash between writing the archived
// copy of a single part and removing the part leaves two names that
// recovery tells apart (same flush range, the archived one wins).
const archiveSuffix = ".archive.seg"

// insertLocked adds a record to its day's head. s.mu must be held.
func (s *Store) insertLocked(r record.Record) {
	key := record.Day(r.Time).Unix()
	h := s.heads[key]
	if h == nil {
		h = newHead()
		s.heads[key] = h
	}
	if s.headBytes == 0 && s.oldestHead.IsZero() {
		s.oldestHead = s.opts.Now()
	}
	s.headBytes += h.add(r)
	s.walDirty = true
}

// Append stores recs durably: it returns nil only after their WAL record is
// fsynced, so the caller may acknowledge them. Records must already be
// normalised (record.Normalize). Having stored nothing, it returns ErrBusy
// when unflushed records exceed their memory bound, ErrTooLarge when the
// batch alone exceeds it, and an error wrapping ErrFailed if the WAL write or
// fsync failed (that batch is not replayed later either; see docs/wal.md).
// A batch of any size is accepted: one larger than a WAL frame is written as
// several frames in one write and one fsync.
func (s *Store) Append(ctx context.Context, recs []record.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	est := estimate(recs)
	if est > s.opts.HeadMaxBytes {
		return fmt.Errorf("%w: %d records need about %d bytes, the bound is %d", ErrTooLarge, len(recs), est, s.opts.HeadMaxBytes)
	}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return ErrClosed
	case s.failed != nil:
		err := s.failed
		s.mu.Unlock()
		return fmt.Errorf("%w: %w", ErrFailed, err)
	}
	if s.headBytes+s.frozenBytes+s.reserved+est > s.opts.HeadMaxBytes {
		s.mu.Unlock()
		s.m.busy.Inc()
		s.kickFlush()
		return ErrBusy
	}
	s.reserved += est
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.reserved -= est
		s.mu.Unlock()
	}()

	frames, err := s.frames(recs)
	if err != nil {
		return err
	}
	s.appendMu.RLock()
	defer s.appendMu.RUnlock()
	if _, err := s.wal.AppendAll(frames); err != nil {
		// Only a real write or fsync failure fails the store; anything else
		// (the WAL closing under a shutdown) is this request's error.
		if errors.Is(err, wal.ErrFailed) {
			s.fail(err)
			return fmt.Errorf("%w: append to wal: %w", ErrFailed, err)
		}
		return fmt.Errorf("append to wal: %w", err)
	}
	s.mu.Lock()
	// The records move from the reservation into the head in one step, so
	// they are never counted twice against the bound (the deferred release
	// then gives back nothing).
	s.reserved -= est
	est = 0
	for _, r := range recs {
		s.insertLocked(r)
	}
	over := s.headBytes >= s.opts.HeadMaxBytes/2
	s.mu.Unlock()
	s.m.appended.Add(float64(len(recs)))
	if over {
		s.kickFlush()
	}
	return nil
}

// frames encodes recs as WAL payloads. With encryption, a frame holds
// records of one day only, sealed under that day's key (created here for
// a new day, durably, before any of its records is written), so that
// destroying the key also makes the day's WAL records unreadable.
func (s *Store) frames(recs []record.Record) ([][]byte, error) {
	if s.opts.Keys == nil {
		return encodeFrames(recs, wal.MaxPayload, 0, 0), nil
	}
	// Almost every batch holds records of one day; only one that spans
	// midnight (or a backfill) is split, which costs a copy.
	first := record.Day(recs[0].Time)
	byDay := map[int64][]record.Record{first.Unix(): recs}
	order := []int64{first.Unix()}
	for i := range recs {
		if !record.Day(recs[i].Time).Equal(first) {
			byDay, order = map[int64][]record.Record{}, nil
			for _, r := range recs {
				k := record.Day(r.Time).Unix()
				if _, ok := byDay[k]; !ok {
					order = append(order, k)
				}
				byDay[k] = append(byDay[k], r)
			}
			break
		}
	}
	var frames [][]byte
	for _, k := range order {
		key, err := s.opts.Keys.KeyFor(time.Unix(k, 0))
		if err != nil {
			return nil, fmt.Errorf("append: %w", err)
		}
		for _, f := range encodeFrames(byDay[k], wal.MaxPayload-keys.FrameOverhead, keys.FrameHeaderSize, keys.Overhead) {
			sealed, err := key.SealFrameInPlace(f)
			if err != nil {
				return nil, fmt.Errorf("append: %w", err)
			}
			frames = append(frames, sealed)
		}
	}
	return frames, nil
}

// encodeFrames encodes recs as WAL payloads of at most max bytes each, in
// order. A record's encoding is far below a frame (its fields are bounded by
// record's limits), so every payload holds at least one record. Each
// payload starts after head bytes of room and has the capacity for tail
// more bytes (a sealed frame's header and tag, keys.SealFrameInPlace).
func encodeFrames(recs []record.Record, max, head, tail int) [][]byte {
	// The upper bound of one record's encoding: uvarint time, IP, and three
	// uvarint lengths.
	bound := func(r *record.Record) int {
		return binary.MaxVarintLen64 + 17 + 3*binary.MaxVarintLen32 + len(r.Domain) + len(r.Path) + len(r.UserAgent)
	}
	var frames [][]byte
	start, size := 0, binary.MaxVarintLen64
	for i := range recs {
		n := bound(&recs[i])
		if i > start && size+n > max {
			frames = append(frames, record.AppendBatch(make([]byte, head, head+size+tail), recs[start:i]))
			start, size = i, binary.MaxVarintLen64
		}
		size += n
	}
	return append(frames, record.AppendBatch(make([]byte, head, head+size+tail), recs[start:]))
}

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

func (s *Store) flushDue() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.headBytes == 0 || s.closed || s.failed != nil || time.Now().Before(s.flushRetry) {
		return false
	}
	return s.headBytes >= s.opts.HeadMaxBytes/2 || s.opts.Now().Sub(s.oldestHead) >= s.opts.FlushInterval
}

// estimate is an upper bound of what recs add to the head (interning of
// domains and user agents only makes the real figure smaller).
func estimate(recs []record.Record) int64 {
	var n int64
	for i := range recs {
		n += int64(recordOverhead + 96 + len(recs[i].Path) + len(recs[i].Domain) + len(recs[i].UserAgent))
	}
	return n
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
		for k, h := range frozen {
			for _, r := range h.recs {
				s.insertLocked(r)
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
		archived := (dy == nil || len(dy.segs) == 0) && s.dayClosed(d)
		s.mu.Unlock()
		path := filepath.Join(dir, segName(flushID, flushID, archived))
		opts, err := s.segmentOptions(d, nil)
		if err != nil {
			return abort(fmt.Errorf("flush day %s: %w", record.DayString(d), err))
		}
		if archived {
			opts.Level = segment.ArchiveLevel
		}
		if _, err := segment.Write(path, h.recs, opts); err != nil {
			return abort(fmt.Errorf("flush day %s: %w", record.DayString(d), err))
		}
		r, err := segment.OpenWith(path, s.openOptions())
		if err != nil {
			return abort(fmt.Errorf("flush day %s: %w", record.DayString(d), err))
		}
		ref := &segRef{r: r, minFlush: flushID, maxFlush: flushID, archived: archived, added: s.opts.Now()}
		ref.refs.Store(1)
		written[key] = ref
		records += int64(len(h.recs))
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
			d := time.Unix(key, 0).UTC()
			dy = &day{start: d, dir: filepath.Join(s.dir, daysDirName, record.DayString(d))}
			s.days[key] = dy
		}
		dy.segs = append(dy.segs, ref)
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

// lateArchiveShare: late parts of an archived day that reach this fraction
// (1/16) of the archived file's bytes make the day archived again at once
// instead of a merge grace after the first of them arrived.
const lateArchiveShare = 16

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
		arch      []*segRef
		late      []*segRef
		lateBytes int64
		oldest    time.Time
	)
	for _, ref := range dy.segs {
		if ref.archived {
			arch = append(arch, ref)
			continue
		}
		late = append(late, ref)
		lateBytes += ref.r.Info().Bytes
		if oldest.IsZero() || ref.added.Before(oldest) {
			oldest = ref.added
		}
	}
	switch {
	case len(late) == 0 && len(arch) <= 1:
		return nil // archived, or no file at all
	case len(arch) != 1:
		return dy.segs // never archived (or, oddly, twice): archive it all
	case lateBytes*lateArchiveShare >= arch[0].r.Info().Bytes || !now.Before(oldest.Add(s.opts.MergeGrace)) ||
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
	if !all {
		opts.Level = segment.DefaultLevel
	}
	archived := opts.Level == segment.ArchiveLevel
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

// stopping reports whether Close has begun.
func (s *Store) stopping() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
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

// Snapshot returns a view of every day that overlaps [from, to). Its
// segment readers stay open and its days stay on disk until Release, or
// until a purge that has waited its reader grace destroys one of them (see
// Snapshot.Context).
func (s *Store) Snapshot(from, to time.Time) (*Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	lo, hi := record.Day(from).Unix(), to.UTC().Unix()
	keys := make(map[int64]bool)
	for _, m := range []map[int64]*head{s.heads, s.frozen} {
		for k := range m {
			keys[k] = true
		}
	}
	for k := range s.days {
		keys[k] = true
	}
	var sorted []int64
	for k := range keys {
		if k >= lo && k < hi && !s.deleting[k] {
			sorted = append(sorted, k)
		}
	}
	slices.Sort(sorted)

	rd := &reader{s: s, keys: sorted, done: make(chan struct{})}
	snap := &Snapshot{report: s.reportCorrupt, rd: rd}
	var refs []*segRef
	for _, k := range sorted {
		v := &DayView{Day: time.Unix(k, 0).UTC()}
		if dy := s.days[k]; dy != nil {
			for _, ref := range dy.segs {
				ref.acquire()
				refs = append(refs, ref)
				v.Segments = append(v.Segments, ref.r)
			}
			v.Corrupt = slices.Clone(dy.corrupt)
		}
		f, h := s.frozen[k], s.heads[k]
		switch {
		case f != nil && h != nil:
			v.Head = make([]record.Record, 0, len(f.recs)+len(h.recs))
			v.Head = append(append(v.Head, f.recs...), h.recs...)
		case f != nil:
			v.Head = f.recs[:len(f.recs):len(f.recs)]
		case h != nil:
			v.Head = h.recs[:len(h.recs):len(h.recs)]
		}
		snap.Days = append(snap.Days, v)
	}
	s.readers[rd] = struct{}{}
	snap.release = func() {
		for _, ref := range refs {
			ref.release()
		}
		s.mu.Lock()
		delete(s.readers, rd)
		s.mu.Unlock()
		close(rd.done)
	}
	return snap, nil
}

// Days lists the stored days, oldest first, with their sizes.
func (s *Store) Days() []DayInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	infos := make(map[int64]*DayInfo)
	get := func(k int64) *DayInfo {
		if in := infos[k]; in != nil {
			return in
		}
		in := &DayInfo{Day: time.Unix(k, 0).UTC()}
		infos[k] = in
		return in
	}
	widen := func(in *DayInfo, lo, hi time.Time) {
		if in.MinTime.IsZero() || lo.Before(in.MinTime) {
			in.MinTime = lo
		}
		if hi.After(in.MaxTime) {
			in.MaxTime = hi
		}
	}
	// A day whose deletion began but failed (or is waiting for searches) is
	// still on disk: it is listed, so that the next purge run finishes it
	// instead of forgetting it until a restart. Searches no longer see it.
	for k, dy := range s.days {
		in := get(k)
		for _, ref := range dy.segs {
			si := ref.r.Info()
			in.Records += si.Records
			in.Bytes += si.Bytes
			in.Files++
			if si.Records > 0 {
				widen(in, si.MinTime, si.MaxTime)
			}
		}
		for _, c := range dy.corrupt {
			in.CorruptFiles++
			in.Files++
			in.Bytes += c.Bytes
		}
		in.Bytes += dy.shreddedBytes
	}
	for _, m := range []map[int64]*head{s.frozen, s.heads} {
		for k, h := range m {
			in := get(k)
			in.Records += int64(len(h.recs))
			widen(in, time.UnixMilli(h.minTime).UTC(), time.UnixMilli(h.maxTime).UTC())
		}
	}
	out := make([]DayInfo, 0, len(infos))
	for _, in := range infos {
		out = append(out, *in)
	}
	slices.SortFunc(out, func(a, b DayInfo) int { return a.Day.Compare(b.Day) })
	return out
}

// DeleteDay destroys every copy of a day: it hides the day from new
// searches, waits for running searches to release it (at most
// Options.ReaderGrace, then it cancels them, see awaitReaders), removes its
// directory crash-safely (rename to *.deleting, remove, fsync), drops its
// unflushed records from memory, and then flushes and checkpoints, even when
// no other record is unflushed, so that the WAL files that held them are
// removed too. It returns what was deleted. Deleting a day that does not
// exist returns a zero DayInfo and no error.
func (s *Store) DeleteDay(ctx context.Context, d time.Time) (DayInfo, error) {
	d = record.Day(d)
	key := d.Unix()
	var info DayInfo
	for _, in := range s.Days() {
		if in.Day.Equal(d) {
			info = in
		}
	}
	s.mu.Lock()
	s.deleting[key] = true
	s.dropHeadLocked(key)
	// No merge of the day starts from now on; one in progress stops, and
	// removes its output, before the directory goes.
	merge := s.cancelMergeLocked(&key)
	s.mu.Unlock()

	// The waits happen before taking maintMu, so that flushes (and with
	// them ingest) go on while a search finishes with the day, and so that
	// a cancelled merge can take maintMu to remove its output.
	if err := s.awaitReaders(ctx, d); err != nil {
		// The day stays hidden; the next run finishes it.
		return DayInfo{}, fmt.Errorf("delete day %s: waiting for searches: %w", record.DayString(d), err)
	}
	if merge != nil {
		select {
		case <-merge.done:
		case <-ctx.Done():
			return DayInfo{}, fmt.Errorf("delete day %s: waiting for its merge to stop: %w", record.DayString(d), ctx.Err())
		}
	}

	s.maintMu.Lock()
	defer s.maintMu.Unlock()
	if s.opts.Keys != nil {
		// The key goes first: from here on every copy of the day, these
		// files included if their removal fails, is unreadable.
		id, err := s.opts.Keys.Destroy(d)
		if err != nil {
			return DayInfo{}, fmt.Errorf("delete day %s: %w", record.DayString(d), err)
		}
		if id.IsZero() {
			id, _ = s.opts.Keys.Destroyed(d) // destroyed by a run a crash interrupted
		}
		if !id.IsZero() {
			info.KeyID = id.String()
			s.m.keysDestroyed.Inc()
		}
	}
	dir := filepath.Join(s.dir, daysDirName, record.DayString(d))
	if err := s.fs.Remove(dir); err != nil {
		// The day stays listed; the next run removes the files and names
		// the destroyed key again (from its tombstone).
		return DayInfo{}, fmt.Errorf("delete day %s: %w", record.DayString(d), err)
	}
	s.mu.Lock()
	// A flush that ran during the wait may have added parts to the day.
	if dy := s.days[key]; dy != nil {
		for _, ref := range dy.segs {
			ref.release()
		}
		delete(s.days, key)
	}
	s.dropHeadLocked(key)
	delete(s.deleting, key)
	s.mu.Unlock()
	// Records of the day may still sit in WAL files; a flush moves every
	// other unflushed record into parts, checkpoints and removes those
	// files. The flush only warns when the removal fails; the purge must
	// know, so it is repeated here (a no-op when the files are gone).
	if err := s.flushLocked(); err != nil {
		return info, fmt.Errorf("delete day %s: flush wal: %w", record.DayString(d), err)
	}
	s.mu.Lock()
	walFrom := s.cp.WAL
	s.mu.Unlock()
	if err := s.wal.Truncate(walFrom); err != nil {
		return info, fmt.Errorf("delete day %s: remove wal files: %w", record.DayString(d), err)
	}
	if s.opts.Keys != nil {
		if _, destroyed := s.opts.Keys.Destroyed(d); destroyed {
			if err := s.opts.Keys.Forget(d); err != nil {
				return info, fmt.Errorf("delete day %s: %w", record.DayString(d), err)
			}
		}
	}
	s.m.deletedDays.Inc()
	return info, nil
}

// dropHeadLocked forgets the unflushed records of day key. They stay in the
// WAL until the next flush, which walDirty forces. s.mu must be held.
func (s *Store) dropHeadLocked(key int64) {
	if h := s.heads[key]; h != nil {
		s.headBytes -= h.bytes
		delete(s.heads, key)
	}
}

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
	s.cancelMergeLocked(nil)
	s.mu.Unlock()
	<-s.done
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
	}
	s.days = map[int64]*day{}
	s.mu.Unlock()
	if s.lockFile != nil {
		errs = append(errs, s.lockFile.Close())
	}
	return errors.Join(errs...)
}
