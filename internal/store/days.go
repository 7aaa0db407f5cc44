package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
)

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
	// remote: the reader reads an object in the bucket by ranges.
	remote bool
	// used is when a snapshot last took the file (Unix nanoseconds): the
	// eviction of uploaded local files removes the least recently used.
	used atomic.Int64
	refs atomic.Int32
	// erased: an erasure replaced the file; an upload of it that was in
	// flight destroys its object at once instead of after the grace.
	erased atomic.Bool
}

func (s *segRef) acquire() { s.refs.Add(1) }

func (s *segRef) release() {
	if s.refs.Add(-1) == 0 {
		s.r.Close()
	}
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
	// remote are the day's objects in the bucket, one per node (see
	// remoteObj): other nodes' days, and this node's own whose local copy
	// was evicted. A snapshot reads this node's only where no local file
	// covers it.
	remote map[string]*remoteObj
	// remoteOnly: the day was learnt from a listing of the bucket (no
	// local directory was found for it); it leaves the registry when the
	// bucket no longer holds it and nothing local was added.
	remoteOnly bool
}

// newDayLocked returns a new registry entry for day key, its directory
// named (not created). s.mu must be held.
func (s *Store) newDayLocked(key int64) *day {
	d := time.Unix(key, 0).UTC()
	return &day{start: d, dir: filepath.Join(s.dir, daysDirName, record.DayString(d))}
}

// Snapshot returns a view of every day that overlaps [from, to). Its
// segment readers stay open and its days stay on disk until Release, or
// until a purge that has waited its reader grace destroys one of them (see
// Snapshot.Context). It is SnapshotWith(from, to, SnapshotOptions{}).
func (s *Store) Snapshot(from, to time.Time) (*Snapshot, error) {
	return s.SnapshotWith(from, to, SnapshotOptions{})
}

// SnapshotWith is Snapshot with the cluster's choices (SnapshotOptions):
// only this node's unshared data, or the whole view with the objects of
// the peers that answered taken from their answers.
func (s *Store) SnapshotWith(from, to time.Time, o SnapshotOptions) (*Snapshot, error) {
	lo, hi := record.Day(from).Unix(), to.UTC().Unix()
	if !o.Unshared {
		// The whole view needs the bucket's days; a peer's unshared part
		// does not (it names its objects itself).
		if err := s.ensureListed(context.Background()); err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
	}
	var peers map[int64][]*remoteObj
	if s.opts.Bucket != nil && !o.Unshared && len(o.PeerObjects) > 0 {
		var err error
		if peers, err = s.peerObjects(lo, hi, o.PeerObjects); err != nil {
			return nil, err
		}
	}
	// Remote footers are read outside the lock; a listing may replace an
	// object meanwhile, so the view is built again (a few times at most)
	// until every object it needs is open.
	for attempt := 0; ; attempt++ {
		snap, missing, err := s.snapshotLocked(lo, hi, o, peers)
		if err != nil || len(missing) == 0 {
			if err != nil {
				for _, objs := range peers {
					for _, p := range objs {
						p.release()
					}
				}
			}
			return snap, err
		}
		err = s.openObjects(context.Background(), missing)
		if err == nil && attempt == 3 {
			err = errors.New("the bucket's objects changed under four attempts to open them")
		}
		if err != nil {
			for _, objs := range peers {
				for _, p := range objs {
					p.release()
				}
			}
			return nil, fmt.Errorf("snapshot: %w", err)
		}
	}
}

// snapshotLocked builds the snapshot of [lo, hi) under s.mu, or returns
// the remote objects it needs that are not open yet (then it holds
// nothing). peers are the objects of the peers that answered, per day.
func (s *Store) snapshotLocked(lo, hi int64, o SnapshotOptions, peers map[int64][]*remoteObj) (*Snapshot, []*remoteObj, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, ErrClosed
	}
	keys := make(map[int64]bool)
	for _, m := range []map[int64]*head{s.heads, s.frozen} {
		for k := range m {
			keys[k] = true
		}
	}
	for k := range s.days {
		keys[k] = true
	}
	for k := range peers {
		keys[k] = true
	}
	var sorted []int64
	for k := range keys {
		if k >= lo && k < hi && !s.deleting[k] {
			sorted = append(sorted, k)
		}
	}
	slices.Sort(sorted)

	var missing []*remoteObj
	if !o.Unshared {
		for _, k := range sorted {
			if dy := s.days[k]; dy != nil {
				for _, ro := range s.remoteLocked(dy) {
					if _, answered := o.PeerObjects[ro.node]; answered && ro.node != s.opts.Node {
						continue
					}
					if ro.ref == nil && ro.bad == nil {
						missing = append(missing, ro)
					}
				}
			}
		}
		if len(missing) > 0 {
			return nil, missing, nil
		}
	}

	rd := &reader{s: s, keys: sorted, done: make(chan struct{})}
	snap := &Snapshot{report: s.reportCorrupt, rd: rd}
	var refs []*segRef
	add := func(v *DayView, ref *segRef) {
		ref.acquire()
		refs = append(refs, ref)
		v.Segments = append(v.Segments, ref.r)
	}
	now := time.Now().UnixNano()
	for _, k := range sorted {
		v := &DayView{Day: time.Unix(k, 0).UTC()}
		if dy := s.days[k]; dy != nil {
			for _, ref := range dy.segs {
				if o.Unshared && s.uploadedLocked(k, ref) {
					snap.Shared = append(snap.Shared, s.ledger.Days[record.DayString(v.Day)].info())
					continue
				}
				ref.used.Store(now)
				add(v, ref)
			}
			v.Corrupt = slices.Clone(dy.corrupt)
			if o.Unshared {
				if own := s.ownRemoteLocked(dy); own != nil {
					snap.Shared = append(snap.Shared, own.info)
				}
			} else {
				for _, ro := range s.remoteLocked(dy) {
					if _, answered := o.PeerObjects[ro.node]; answered && ro.node != s.opts.Node {
						continue
					}
					if ro.bad != nil {
						v.Corrupt = append(v.Corrupt, ro.corruptFile())
						continue
					}
					add(v, ro.ref)
				}
			}
		}
		for _, p := range peers[k] {
			if p.bad != nil {
				v.Corrupt = append(v.Corrupt, p.corruptFile())
				continue
			}
			// The snapshot takes over the reference peerObjects took.
			refs = append(refs, p.ref)
			v.Segments = append(v.Segments, p.ref.r)
			p.ref = nil
		}
		f, h := s.frozen[k], s.heads[k]
		for _, hd := range []*head{f, h} {
			if hd != nil {
				for _, p := range hd.parts {
					v.Segments = append(v.Segments, p.r)
				}
			}
		}
		switch {
		case f != nil && h != nil:
			// During a flush: a copy of the frozen head's tail, then the
			// new one's (appending to a view would write into chunks
			// other snapshots read).
			var all Records
			for _, t := range []Records{f.tail, h.tail} {
				for r := range t.All() {
					all.add(r)
				}
			}
			v.Head = all
		case f != nil:
			v.Head = f.tail.view()
		case h != nil:
			v.Head = h.tail.view()
		}
		if o.Unshared && len(v.Segments) == 0 && v.Head.Len() == 0 && len(v.Corrupt) == 0 {
			continue // everything of the day is in the bucket (Shared)
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
	return snap, nil, nil
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
		in.Local = len(dy.segs) > 0 || len(dy.corrupt) > 0 || dy.shredded
		for _, o := range s.remoteLocked(dy) {
			in.Remote = true
			in.Objects++
			in.RemoteBytes += o.info.Size
			switch {
			case o.bad != nil:
				in.CorruptFiles++
			case o.ref != nil:
				si := o.ref.r.Info()
				in.Records += si.Records
				if si.Records > 0 {
					widen(in, si.MinTime, si.MaxTime)
				}
			}
		}
	}
	for _, m := range []map[int64]*head{s.frozen, s.heads} {
		for k, h := range m {
			in := get(k)
			in.Local = true
			in.Records += h.n
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
		releaseRemoteLocked(dy)
		delete(s.days, key)
	}
	s.dropHeadLocked(key)
	delete(s.deleting, key)
	s.deletedAt[key] = time.Now()
	s.mu.Unlock()
	// An upload of the day still in flight sees the day gone and deletes
	// what it put; the ledger forgets the day (the purge deletes its
	// prefix in the bucket).
	if err := s.forgetDay(key); err != nil {
		return info, fmt.Errorf("delete day %s: %w", record.DayString(d), err)
	}
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
