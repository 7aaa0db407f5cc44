package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/retentiond/retentiond/internal/objstore"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
)

// This file moves closed days into the bucket: the upload of a day's
// archived file, the ledger that records it, the deletion of superseded
// objects, the eviction of uploaded local files (a cache entry once
// uploaded) and the download that brings an evicted day back when late
// records must be merged into it. docs/storage.md ("Uploads") describes the
// lifecycle and the ledger's format.

// ledgerName is the upload ledger in the data directory.
const ledgerName = "uploaded.json"

// ledger is the durable record of what this node has in the bucket. It is
// written (atomically, fsynced) after the bucket confirmed an upload, so a
// crash before that leaves no entry and the day is uploaded again: PUTs
// are atomic and a day's key is the same each time, so that is harmless.
type ledger struct {
	Version int `json:"version"`
	// Days maps a day (YYYY-MM-DD) to its uploaded object: the day's
	// current archived file of this node.
	Days map[string]ledgerEntry `json:"days"`
	// Superseded are this node's objects a newer archive of their day
	// replaced: deleted once After has passed, so that a search that
	// listed one moments ago can still read it.
	Superseded []supersededObj `json:"superseded,omitempty"`
}

// ledgerEntry is one uploaded object.
type ledgerEntry struct {
	File     string    `json:"file"` // the local file name (seg-A-B.archive.seg)
	Key      string    `json:"key"`  // its key in the bucket, without the prefix
	Size     int64     `json:"size"`
	ETag     string    `json:"etag,omitempty"`
	Uploaded time.Time `json:"uploaded"`
}

// supersededObj is an object waiting for its deletion.
type supersededObj struct {
	Key   string    `json:"key"`
	Day   string    `json:"day"`
	After time.Time `json:"after"`
	// Erase: an erasure replaced the object; it is destroyed at once with
	// every version (destroyErased), not after a grace.
	Erase bool `json:"erase,omitempty"`
}

func (e ledgerEntry) info() objstore.ObjectInfo {
	return objstore.ObjectInfo{Key: e.Key, Size: e.Size, ETag: e.ETag, LastModified: e.Uploaded}
}

// loadLedger reads the ledger and registers this node's uploaded days
// whose local file is gone (evicted, or a data directory restored without
// them) as remote objects; their footers are read when first needed.
func (s *Store) loadLedger() error {
	s.ledger = ledger{Version: 1, Days: map[string]ledgerEntry{}}
	b, err := os.ReadFile(filepath.Join(s.dir, ledgerName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", ledgerName, err)
	}
	if err := json.Unmarshal(b, &s.ledger); err != nil {
		return fmt.Errorf("read %s: %w", ledgerName, err)
	}
	if s.ledger.Days == nil {
		s.ledger.Days = map[string]ledgerEntry{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for ds, e := range s.ledger.Days {
		d, err := record.ParseDay(ds)
		o := newRemoteObj(e.info())
		if err != nil || o == nil || o.node != s.opts.Node {
			s.log.Warn("ignoring an upload ledger entry that is not this node's", "day", ds)
			delete(s.ledger.Days, ds)
			continue
		}
		dy := s.days[d.Unix()]
		if dy == nil {
			dy = s.newDayLocked(d.Unix())
			s.days[d.Unix()] = dy
		}
		if dy.shredded || coveredLocked(dy, o) {
			continue
		}
		if dy.remote == nil {
			dy.remote = make(map[string]*remoteObj)
		}
		dy.remote[s.opts.Node] = o
	}
	return nil
}

// ledgerBytesLocked is the ledger as written. s.mu must be held.
func (s *Store) ledgerBytesLocked() []byte {
	b, _ := json.MarshalIndent(&s.ledger, "", "  ")
	return append(b, '\n')
}

// writeLedger writes b as the ledger. upMu must be held, so that writes
// land in the order their contents were taken.
func (s *Store) writeLedger(b []byte) error {
	if err := s.fs.WriteFile(filepath.Join(s.dir, ledgerName), b, 0o640); err != nil {
		return fmt.Errorf("write upload ledger: %w", err)
	}
	return nil
}

// uploadedLocked reports whether ref is the uploaded form of day key: its
// file is the one the ledger names. s.mu must be held.
func (s *Store) uploadedLocked(key int64, ref *segRef) bool {
	if ref.remote || !ref.archived {
		return false
	}
	e, ok := s.ledger.Days[record.DayString(time.Unix(key, 0))]
	return ok && e.File == filepath.Base(ref.r.Path())
}

// upload is a day's archived file waiting to be uploaded.
type upload struct {
	key  int64
	ref  *segRef
	size int64
}

// pendingLocked lists the uploads due: per closed day not being deleted,
// its archived local file unless the ledger has it. s.mu must be held.
func (s *Store) pendingLocked() []upload {
	var out []upload
	for key, dy := range s.days {
		if s.deleting[key] || dy.shredded || !s.dayClosed(dy.start) {
			continue
		}
		for _, ref := range dy.segs {
			if ref.archived && !s.uploadedLocked(key, ref) {
				out = append(out, upload{key: key, ref: ref, size: ref.r.Info().Bytes})
			}
		}
	}
	slices.SortFunc(out, func(a, b upload) int { return int(a.key - b.key) })
	return out
}

// backlog is what is waiting for the bucket: days and bytes.
func (s *Store) backlog() (days int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[int64]bool{}
	for _, u := range s.pendingLocked() {
		seen[u.key] = true
		bytes += u.size
	}
	return len(seen), bytes
}

// uploadLoop uploads closed days, deletes superseded objects and evicts
// uploaded local files beyond the cache bound, in the background. A
// failing store is retried with exponential backoff (Options.UploadRetryMin
// to UploadRetryMax); it never fails the store or ingest: the local disk
// holds the days meanwhile and the backlog metrics show it.
func (s *Store) uploadLoop(ctx context.Context) {
	defer s.remoteWG.Done()
	wait := time.Duration(0)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.upKick:
		case <-t.C:
		}
		err := s.UploadPending(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if wait == 0 {
				s.log.Warn("uploading closed days failed; the local disk keeps them, retrying with backoff", "err", err)
			}
			wait = min(max(2*wait, s.opts.UploadRetryMin), s.opts.UploadRetryMax)
		} else {
			if wait != 0 {
				s.log.Info("uploads to the bucket succeed again")
			}
			wait = 0
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		// Superseded objects and evictions are due with time, not only
		// after an archive: look again at least every listing interval.
		t.Reset(cmp.Or(wait, s.opts.ListInterval))
	}
}

// kickUpload wakes the upload loop (after an archive was written).
func (s *Store) kickUpload() {
	if s.upKick == nil {
		return
	}
	select {
	case s.upKick <- struct{}{}:
	default:
	}
}

// UploadPending does one round of the upload loop now: it uploads every
// closed day's archived file the ledger does not have, deletes superseded
// objects whose grace has passed, and evicts uploaded local files beyond
// Options.LocalCacheBytes. It stops at the first failing upload.
func (s *Store) UploadPending(ctx context.Context) error {
	if s.opts.Bucket == nil {
		return nil
	}
	s.mu.Lock()
	todo := s.pendingLocked()
	for _, u := range todo {
		u.ref.acquire()
	}
	s.mu.Unlock()
	var err error
	for i, u := range todo {
		if err == nil && ctx.Err() == nil {
			err = s.uploadOne(ctx, u)
		}
		todo[i].ref.release()
	}
	var perr error
	if _, pending := s.destroyErased(ctx, ""); len(pending) > 0 {
		perr = fmt.Errorf("destroy %d erased object(s): %w", len(pending), pending[0].Err)
	}
	return errors.Join(err, perr, s.deleteSuperseded(ctx), s.evict())
}

// uploadOne puts a day's archived file into the bucket, verified (Put
// reads the object's size and checksum back), and then records it in the
// ledger. When the file is no longer current once the PUT returns (the day
// was deleted, or a newer archive replaced the file), the object is
// deleted (at once for a deleted day, after the grace otherwise).
func (s *Store) uploadOne(ctx context.Context, u upload) error {
	d := time.Unix(u.key, 0).UTC()
	name := filepath.Base(u.ref.r.Path())
	f, err := os.Open(u.ref.r.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return nil // merged away or evicted meanwhile: the next round sees the new state
	}
	if err != nil {
		return fmt.Errorf("upload day %s: %w", record.DayString(d), err)
	}
	defer f.Close()
	key := objstore.SegmentKey(d, s.opts.Node, name)
	start := time.Now()
	info, err := s.opts.Bucket.Put(ctx, key, f, u.size)
	if err == nil && info.Size != u.size {
		err = fmt.Errorf("the bucket holds %d bytes, %d were sent", info.Size, u.size)
	}
	if err != nil {
		s.m.remote.uploads.WithLabelValues("error").Inc()
		return fmt.Errorf("upload day %s: %w", record.DayString(d), err)
	}
	s.m.remote.uploads.WithLabelValues("ok").Inc()
	s.m.remote.uploadedBytes.Add(float64(u.size))
	s.m.remote.uploadDuration.Observe(time.Since(start).Seconds())

	s.upMu.Lock()
	defer s.upMu.Unlock()
	ds := record.DayString(d)
	s.mu.Lock()
	dy := s.days[u.key]
	gone := dy == nil || s.deleting[u.key]
	current := !gone && slices.Contains(dy.segs, u.ref)
	if !current {
		s.mu.Unlock()
		if u.ref.erased.Load() {
			// An erasure replaced the file while the PUT ran: the object
			// holds the erased records and goes now, every version.
			if _, err := s.opts.Bucket.DeleteAll(ctx, key); err != nil {
				s.mu.Lock()
				s.ledger.Superseded = append(s.ledger.Superseded, supersededObj{Key: key, Day: ds, After: s.opts.Now().UTC(), Erase: true})
				b := s.ledgerBytesLocked()
				s.mu.Unlock()
				return errors.Join(fmt.Errorf("destroy the upload of an erased file of day %s: %w", ds, err), s.writeLedger(b))
			}
			if s.opts.Cache != nil {
				s.opts.Cache.Invalidate(s.opts.Bucket, key)
			}
			return nil
		}
		if gone {
			// DeleteDay ran while the PUT did: the object must not outlive it.
			if err := s.opts.Bucket.Delete(ctx, key); err != nil && !errors.Is(err, objstore.ErrNotFound) {
				return fmt.Errorf("delete the upload of deleted day %s: %w", ds, err)
			}
			return nil
		}
		return s.supersede(key, ds)
	}
	prev, had := s.ledger.Days[ds]
	entry := ledgerEntry{File: name, Key: key, Size: info.Size, ETag: info.ETag, Uploaded: s.opts.Now().UTC()}
	s.ledger.Days[ds] = entry
	nsup := len(s.ledger.Superseded)
	if had && prev.Key != key {
		s.ledger.Superseded = append(s.ledger.Superseded,
			supersededObj{Key: prev.Key, Day: ds, After: s.opts.Now().Add(s.opts.SupersededGrace).UTC()})
	}
	if o := dy.remote[s.opts.Node]; o != nil && o.info.Key != key && coveredLocked(dy, o) {
		o.release()
		delete(dy.remote, s.opts.Node)
	}
	b := s.ledgerBytesLocked()
	s.mu.Unlock()
	if err := s.writeLedger(b); err != nil {
		s.mu.Lock()
		if had {
			s.ledger.Days[ds] = prev
		} else {
			delete(s.ledger.Days, ds)
		}
		s.ledger.Superseded = s.ledger.Superseded[:nsup]
		s.mu.Unlock()
		return err
	}
	s.log.Debug("uploaded day", "day", ds, "bytes", info.Size, "duration", time.Since(start))
	return nil
}

// supersede records this node's object key of day ds for deletion after
// the grace. upMu must be held.
func (s *Store) supersede(key, ds string) error {
	s.mu.Lock()
	s.ledger.Superseded = append(s.ledger.Superseded,
		supersededObj{Key: key, Day: ds, After: s.opts.Now().Add(s.opts.SupersededGrace).UTC()})
	b := s.ledgerBytesLocked()
	s.mu.Unlock()
	return s.writeLedger(b)
}

// deleteSuperseded deletes the superseded objects whose grace has passed.
func (s *Store) deleteSuperseded(ctx context.Context) error {
	s.upMu.Lock()
	defer s.upMu.Unlock()
	s.mu.Lock()
	now := s.opts.Now()
	var due []string
	for _, o := range s.ledger.Superseded {
		if !o.Erase && !now.Before(o.After) {
			due = append(due, o.Key)
		}
	}
	s.mu.Unlock()
	if len(due) == 0 {
		return nil
	}
	var errs []error
	var done []string
	for _, key := range due {
		err := s.opts.Bucket.Delete(ctx, key)
		if err != nil && !errors.Is(err, objstore.ErrNotFound) {
			errs = append(errs, fmt.Errorf("delete superseded object: %w", err))
			continue
		}
		done = append(done, key)
		s.m.remote.supersededDeleted.Inc()
	}
	s.mu.Lock()
	s.ledger.Superseded = slices.DeleteFunc(s.ledger.Superseded, func(o supersededObj) bool {
		return !o.Erase && slices.Contains(done, o.Key)
	})
	b := s.ledgerBytesLocked()
	s.mu.Unlock()
	if len(done) > 0 {
		errs = append(errs, s.writeLedger(b))
	}
	return errors.Join(errs...)
}

// forgetDay drops day key from the ledger (DeleteDay): its objects are the
// purge's to delete, with the day's whole prefix.
func (s *Store) forgetDay(key int64) error {
	if s.opts.Bucket == nil {
		return nil
	}
	ds := record.DayString(time.Unix(key, 0))
	s.upMu.Lock()
	defer s.upMu.Unlock()
	s.mu.Lock()
	_, had := s.ledger.Days[ds]
	delete(s.ledger.Days, ds)
	n := len(s.ledger.Superseded)
	s.ledger.Superseded = slices.DeleteFunc(s.ledger.Superseded, func(o supersededObj) bool { return o.Day == ds })
	changed := had || n != len(s.ledger.Superseded)
	b := s.ledgerBytesLocked()
	s.mu.Unlock()
	if !changed {
		return nil
	}
	return s.writeLedger(b)
}

// evict removes uploaded local files, least recently read first, while
// they exceed Options.LocalCacheBytes: each becomes its day's remote
// object, read by ranges. A day being merged keeps its file.
func (s *Store) evict() error {
	type cand struct {
		key  int64
		ref  *segRef
		size int64
		used int64
	}
	s.mu.Lock()
	var cands []cand
	var total int64
	for key, dy := range s.days {
		if s.deleting[key] || s.merging != nil && s.merging.key == key {
			continue
		}
		for _, ref := range dy.segs {
			if s.uploadedLocked(key, ref) {
				size := ref.r.Info().Bytes
				cands = append(cands, cand{key: key, ref: ref, size: size, used: ref.used.Load()})
				total += size
			}
		}
	}
	s.mu.Unlock()
	if total <= s.opts.LocalCacheBytes {
		return nil
	}
	slices.SortFunc(cands, func(a, b cand) int { return int(a.used - b.used) })
	var errs []error
	for _, c := range cands {
		if total <= s.opts.LocalCacheBytes {
			break
		}
		ok, err := s.evictOne(c.key, c.ref)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			total -= c.size
		}
	}
	return errors.Join(errs...)
}

// evictOne turns the uploaded local file ref of day key into its remote
// object and removes the file. Searches holding the file keep reading it
// (an unlinked file stays readable while open).
func (s *Store) evictOne(key int64, ref *segRef) (bool, error) {
	s.maintMu.Lock()
	defer s.maintMu.Unlock()
	s.mu.Lock()
	dy := s.days[key]
	if dy == nil || s.deleting[key] || !slices.Contains(dy.segs, ref) || !s.uploadedLocked(key, ref) ||
		s.merging != nil && s.merging.key == key {
		s.mu.Unlock()
		return false, nil
	}
	e := s.ledger.Days[record.DayString(dy.start)]
	o := newRemoteObj(e.info())
	if o == nil {
		s.mu.Unlock()
		return false, nil
	}
	dy.segs = slices.DeleteFunc(dy.segs, func(r *segRef) bool { return r == ref })
	if dy.remote == nil {
		dy.remote = make(map[string]*remoteObj)
	}
	if p := dy.remote[s.opts.Node]; p != nil && p.info.Key == o.info.Key {
		o = p // listed already (perhaps open)
	} else if p != nil {
		p.release()
	}
	dy.remote[s.opts.Node] = o
	s.mu.Unlock()
	path := ref.r.Path()
	ref.release() // the registry's reference
	if err := s.fs.RemoveFile(path); err != nil {
		// The file stays on disk; at restart it is the day's local copy again.
		return true, fmt.Errorf("evict day %s: %w", record.DayString(dy.start), err)
	}
	s.m.remote.evictions.Inc()
	return true, nil
}

// restoreForMerge downloads this node's evicted object of day key into the
// day's directory before a merge that rewrites all of the day's files
// (late records arrived for an evicted day): the merged archive must hold
// the uploaded records too, or superseding the old object would lose them.
func (s *Store) restoreForMerge(key int64, choose func(*day) []*segRef) error {
	if s.opts.Bucket == nil {
		return nil
	}
	s.mu.Lock()
	dy := s.days[key]
	o := s.ownRemoteLocked(dy)
	need := o != nil && !s.deleting[key] && len(dy.segs) > 0 && len(choose(dy)) == len(dy.segs)
	cp := s.cp.Flush
	s.mu.Unlock()
	if !need {
		return nil
	}
	if o.maxFlush > cp {
		// Not written by this data directory (the node's name was reused
		// on a new one): its flush numbers mean nothing here.
		return fmt.Errorf("day %s: this node's object %s has flush numbers beyond this data directory's; refusing to merge the day (is cluster.node reused?)",
			record.DayString(dy.start), o.file)
	}
	path := filepath.Join(dy.dir, o.file)
	if err := s.fs.MkdirAll(dy.dir, 0o750); err != nil {
		return err
	}
	f, err := s.fs.Create(path, 0o640)
	if err != nil {
		return err
	}
	defer f.Abort()
	ctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(s.remoteCtx, cancel)
	defer stop()
	defer cancel()
	n, err := s.opts.Bucket.Get(ctx, o.info.Key, f)
	if err == nil && n != o.info.Size {
		err = fmt.Errorf("got %d bytes of %d", n, o.info.Size)
	}
	if err != nil {
		return fmt.Errorf("download day %s for a merge: %w", record.DayString(dy.start), err)
	}
	if err := f.Commit(); err != nil {
		return err
	}
	r, err := segment.OpenWith(path, s.openOptions())
	if err != nil {
		s.fs.RemoveFile(path)
		return fmt.Errorf("download day %s for a merge: %w", record.DayString(dy.start), err)
	}
	ref := &segRef{r: r, minFlush: o.minFlush, maxFlush: o.maxFlush, archived: true, added: s.opts.Now()}
	ref.refs.Store(1)
	ref.used.Store(time.Now().UnixNano())
	s.maintMu.Lock()
	defer s.maintMu.Unlock()
	s.mu.Lock()
	ok := s.days[key] == dy && !s.deleting[key] && dy.remote[s.opts.Node] == o
	if ok {
		dy.segs = append(dy.segs, ref)
		o.release()
		delete(dy.remote, s.opts.Node)
	}
	s.mu.Unlock()
	if !ok {
		ref.release()
		return s.fs.RemoveFile(path)
	}
	s.m.remote.downloads.Inc()
	return nil
}

// startRemote starts the listing and upload loops (Options.Bucket set).
func (s *Store) startRemote() {
	s.remoteCtx, s.remoteCancel = context.WithCancel(context.Background())
	if s.opts.Bucket == nil || s.opts.manual {
		return
	}
	s.upKick = make(chan struct{}, 1)
	s.remoteWG.Add(2)
	go s.listLoop(s.remoteCtx)
	go s.uploadLoop(s.remoteCtx)
}

// stopRemote stops them and waits (Close).
func (s *Store) stopRemote() {
	if s.remoteCancel != nil {
		s.remoteCancel()
	}
	s.remoteWG.Wait()
}
