package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/retentiond/retentiond/internal/objstore"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
)

// This file is the bucket's side of an erasure (erase.go is the local
// side): a day this node has put into the bucket (uploaded, evicted, or
// with an archived file that may be uploading now) is erased by writing
// all of its files, and its evicted object, into one new archived file
// without the subject, whose name supersedes every object of the day this
// node wrote; the new file is uploaded and every older object of this
// node's day is destroyed at once with every version (DeleteAll of its
// exact key), not after the superseded grace: an erasure must not leave
// the records readable. docs/security.md ("Erasure with object storage")
// describes it.
//
// The new file's flush range is [lowest of the day's files, a new flush
// number]. The new number is above every flush range this node ever wrote,
// so the listing's supersede rule (remoteObj.newer) ranks the new object
// above the old ones on every node, and start-up recovery's rule (a file
// whose range strictly contains another's replaces it) removes the old
// local files if a crash comes between the new file and their removal. As
// the new file holds every file of the day, that rule never removes a file
// whose records it lacks.

// ErasedObject is an object of this node that an erasure destroyed (every
// version) or could not.
type ErasedObject struct {
	Day time.Time
	Key string // relative to the bucket's prefix
	// Err is why it is not destroyed yet (the store unreachable): the
	// upload loop retries, and the erasure is not complete until it did.
	Err error
}

// bucketDayLocked reports whether day dy of key is erased by the bucket
// path: a bucket is configured and this node has, or may be about to
// have, an object of the day. s.mu must be held.
func (s *Store) bucketDayLocked(key int64, dy *day) bool {
	if s.opts.Bucket == nil {
		return false
	}
	ds := record.DayString(dy.start)
	if _, ok := s.ledger.Days[ds]; ok || dy.remote[s.opts.Node] != nil {
		return true
	}
	for _, o := range s.ledger.Superseded {
		if o.Day == ds {
			return true
		}
	}
	return slices.ContainsFunc(dy.segs, func(r *segRef) bool { return r.archived })
}

// mayHold reports whether r may hold records of p: its address filter and
// index say so (they are exact about which blocks, not which rows).
func mayHold(r *segment.Reader, p netip.Prefix) bool {
	return r.MayHoldPrefix(p) && len(r.BlocksForPrefix(p)) > 0
}

// allocFlush takes a new flush number for a file that is not a flush (an
// erasure's rewrite) by writing it into the checkpoint first, so that
// start-up recovery keeps the file (it removes files numbered beyond the
// checkpoint as left by a crashed flush). maintMu must be held.
func (s *Store) allocFlush() (int64, error) {
	s.mu.Lock()
	cp := s.cp
	s.mu.Unlock()
	cp.Flush++
	b, _ := json.Marshal(cp)
	if err := s.fs.WriteFile(filepath.Join(s.dir, checkpointName), b, 0o640); err != nil {
		return 0, fmt.Errorf("write checkpoint: %w", err)
	}
	s.mu.Lock()
	s.cp = cp
	s.mu.Unlock()
	return cp.Flush, nil
}

// eraseBucketDay erases drop's records from day dy (key) whose objects are
// in the bucket. The caller holds mergeMu and maintMu. Failures to reach
// the bucket after the local files are rewritten are not errors: they are
// in res.Pending, and the upload loop retries them.
func (s *Store) eraseBucketDay(ctx context.Context, key int64, dy *day, p netip.Prefix, drop func(*record.Record) bool,
	ed *ErasedDay, res *ErasureResult) error {
	ds := record.DayString(dy.start)
	s.mu.Lock()
	segs := slices.Clone(dy.segs)
	own := s.ownRemoteLocked(dy)
	var ownRef *segRef
	if own != nil && own.ref != nil {
		ownRef = own.ref
		ownRef.acquire()
	}
	s.mu.Unlock()
	if own != nil && ownRef == nil {
		r, err := s.openObject(own)
		if err != nil {
			return fmt.Errorf("this node's object of the day in the bucket cannot be read: %w", err)
		}
		ownRef = r
	}
	if ownRef != nil {
		defer ownRef.release()
	}
	holds := ownRef != nil && mayHold(ownRef.r, p)
	for _, ref := range segs {
		holds = holds || mayHold(ref.r, p)
	}
	if !holds {
		return nil
	}

	// One file from all of the day's files (and the evicted object).
	srcs := make([]*segment.Reader, 0, len(segs)+1)
	lo := int64(-1)
	for _, ref := range segs {
		srcs = append(srcs, ref.r)
		if lo < 0 || ref.minFlush < lo {
			lo = ref.minFlush
		}
		ed.BytesBefore += fileSize(ref.r.Path())
	}
	if ownRef != nil {
		srcs = append(srcs, ownRef.r)
		if lo < 0 || own.minFlush < lo {
			lo = own.minFlush
		}
		ed.BytesBefore += own.info.Size
	}
	hi, err := s.allocFlush()
	if err != nil {
		return err
	}
	if err := s.fs.MkdirAll(dy.dir, 0o750); err != nil {
		return err
	}
	path := filepath.Join(dy.dir, segName(lo, hi, true))
	opts, err := s.segmentOptions(dy.start, dy)
	if err != nil {
		return err
	}
	opts.Level = segment.ArchiveLevel
	w, err := segment.NewWriter(path, opts)
	if err != nil {
		return err
	}
	kept, removed, err := mergeWithout(ctx, w, srcs, drop)
	if err != nil {
		w.Abort()
		return fmt.Errorf("rewrite: %w", err)
	}
	if removed == 0 {
		// The index named blocks, but no record in them matched the
		// erasure's time range: nothing to do.
		w.Abort()
		return nil
	}
	var repl *segRef
	if kept == 0 {
		w.Abort()
	} else {
		if _, err := w.Close(); err != nil {
			return err
		}
		r, err := segment.OpenWith(path, s.openOptions())
		if err != nil {
			return err
		}
		repl = &segRef{r: r, minFlush: lo, maxFlush: hi, archived: true, added: s.opts.Now()}
		repl.refs.Store(1)
		repl.used.Store(time.Now().UnixNano())
		ed.FilesRewritten++
		ed.BytesAfter += fileSize(path)
	}

	// Every object of this node's day is now superseded by the new file:
	// record them for destruction before anything else, so that a crash
	// or an unreachable store leaves them in the ledger, destroyed by the
	// upload loop's next round. upMu is held until the new file is in
	// the registry and the old ones are marked erased, so that an upload
	// of an old file whose PUT is finishing now destroys its object (see
	// uploadOne) instead of recording it as the day's upload.
	s.upMu.Lock()
	victims, err := s.ownObjects(ctx, dy.start, own)
	if err != nil {
		// The listing failed: the ledger's keys are recorded all the
		// same; the erasure is not complete, and says so.
		res.Pending = append(res.Pending, ErasedObject{Day: dy.start, Key: objstore.DayPrefix(dy.start) + s.opts.Node + "/", Err: err})
	}
	s.mu.Lock()
	prevLedger, hadLedger := s.ledger.Days[ds]
	prevSup := slices.Clone(s.ledger.Superseded)
	if hadLedger {
		victims = appendKey(victims, prevLedger.Key)
		delete(s.ledger.Days, ds)
	}
	for _, o := range s.ledger.Superseded {
		if o.Day == ds {
			victims = appendKey(victims, o.Key)
		}
	}
	s.ledger.Superseded = slices.DeleteFunc(s.ledger.Superseded, func(o supersededObj) bool { return slices.Contains(victims, o.Key) })
	now := s.opts.Now().UTC()
	for _, k := range victims {
		s.ledger.Superseded = append(s.ledger.Superseded, supersededObj{Key: k, Day: ds, After: now, Erase: true})
	}
	b := s.ledgerBytesLocked()
	s.mu.Unlock()
	if err := s.writeLedger(b); err != nil {
		s.mu.Lock()
		if hadLedger {
			s.ledger.Days[ds] = prevLedger
		}
		s.ledger.Superseded = prevSup
		s.mu.Unlock()
		s.upMu.Unlock()
		if repl != nil {
			repl.release()
			s.fs.RemoveFile(path)
		}
		return err
	}
	// Swap the new file in; the old files go (a crash before their
	// removal: recovery removes them, the new range contains theirs).
	s.mu.Lock()
	dy.segs = slices.DeleteFunc(dy.segs, func(r *segRef) bool { return slices.Contains(segs, r) })
	if repl != nil {
		dy.segs = append(dy.segs, repl)
	}
	if o := dy.remote[s.opts.Node]; o != nil {
		o.release()
		delete(dy.remote, s.opts.Node)
	}
	for _, ref := range segs {
		ref.erased.Store(true)
	}
	s.mu.Unlock()
	s.upMu.Unlock()
	for _, ref := range segs {
		old := ref.r.Path()
		ref.release()
		if err := s.fs.RemoveFile(old); err != nil {
			return err
		}
	}
	if repl == nil {
		// Nothing else was in the day's files (and object): all go.
		ed.FilesRemoved += len(segs)
		if own != nil {
			ed.FilesRemoved++
		}
	}
	ed.Records += removed
	ed.Kept += kept

	// Upload the new file (it supersedes the old objects on every node
	// that lists the bucket), then destroy the old ones whatever the
	// upload did: the new file is local, served to the cluster through
	// the peers until the upload loop succeeds.
	if repl != nil {
		repl.acquire()
		if err := s.uploadOne(ctx, upload{key: key, ref: repl, size: repl.r.Info().Bytes}); err != nil {
			res.UploadPending = append(res.UploadPending, dy.start)
		}
		repl.release()
	}
	destroyed, pending := s.destroyErased(ctx, ds)
	res.Destroyed = append(res.Destroyed, destroyed...)
	res.Pending = mergePending(res.Pending, pending)
	return nil
}

func appendKey(keys []string, k string) []string {
	if slices.Contains(keys, k) {
		return keys
	}
	return append(keys, k)
}

// ownObjects lists this node's objects of day d in the bucket: besides the
// ledger's (which the caller adds), one whose PUT finished but whose
// ledger entry did not (a crash between them), and own, the evicted
// object the registry holds.
func (s *Store) ownObjects(ctx context.Context, d time.Time, own *remoteObj) ([]string, error) {
	var keys []string
	if own != nil {
		keys = append(keys, own.info.Key)
	}
	infos, err := s.opts.Bucket.List(ctx, objstore.DayPrefix(d)+s.opts.Node+"/")
	if err != nil {
		return keys, err
	}
	for _, info := range infos {
		if o := newRemoteObj(info); o != nil && o.node == s.opts.Node {
			keys = appendKey(keys, info.Key)
		}
	}
	return keys, nil
}

// destroyErased destroys the objects an erasure recorded for destruction
// (supersededObj.Erase) of day ds, or of every day when ds is empty: every
// version of each exact key, proved gone by DeleteAll's listing, and the
// range cache's pages of it wiped. Destroyed keys leave the ledger; the
// others stay for the next round.
func (s *Store) destroyErased(ctx context.Context, ds string) (destroyed []ErasedObject, pending []ErasedObject) {
	s.upMu.Lock()
	defer s.upMu.Unlock()
	s.mu.Lock()
	var todo []supersededObj
	for _, o := range s.ledger.Superseded {
		if o.Erase && (ds == "" || o.Day == ds) {
			todo = append(todo, o)
		}
	}
	s.mu.Unlock()
	if len(todo) == 0 {
		return nil, nil
	}
	var done []string
	for _, o := range todo {
		d, _ := record.ParseDay(o.Day)
		res, err := s.opts.Bucket.DeleteAll(ctx, o.Key)
		if err == nil && !res.Verified {
			err = errors.New("the key was not listed empty afterwards")
		}
		if s.opts.Cache != nil {
			s.opts.Cache.Invalidate(s.opts.Bucket, o.Key)
		}
		if err != nil {
			pending = append(pending, ErasedObject{Day: d, Key: o.Key, Err: err})
			continue
		}
		s.m.remote.supersededDeleted.Inc()
		done = append(done, o.Key)
		destroyed = append(destroyed, ErasedObject{Day: d, Key: o.Key})
	}
	if len(done) == 0 {
		return destroyed, pending
	}
	s.mu.Lock()
	s.ledger.Superseded = slices.DeleteFunc(s.ledger.Superseded, func(o supersededObj) bool {
		return o.Erase && slices.Contains(done, o.Key)
	})
	b := s.ledgerBytesLocked()
	s.mu.Unlock()
	if err := s.writeLedger(b); err != nil {
		// The objects are gone; the entries are destroyed again (a no-op)
		// at the next round.
		s.log.Warn("upload ledger not written after destroying erased objects", "err", err)
	}
	return destroyed, pending
}

// ForeignObject is another node's object of a day that may hold an
// erased prefix: its node must erase it (erasure's fan-out), or, for a
// node no longer in the cluster, the erasure report names it as not
// erased.
type ForeignObject struct {
	Day  time.Time
	Node string
	Key  string
	// Unreadable: the object could not be checked (sealed under another
	// node's key, or unreachable); it may hold the prefix.
	Unreadable bool
}

// ForeignObjects lists the bucket now and returns the objects of nodes
// other than this one and those in except, in [from, to) (zero: unbounded,
// skip: days left alone), whose address filter and index may hold p, or
// which cannot be read to tell. An erasure calls it after its peers have
// erased their own objects: what remains belongs to nodes that did not.
func (s *Store) ForeignObjects(ctx context.Context, p netip.Prefix, from, to time.Time, skip func(time.Time) bool, except []string) ([]ForeignObject, error) {
	if s.opts.Bucket == nil {
		return nil, nil
	}
	// A failure to open some footers is not a failure of the listing:
	// those objects are reported unreadable below.
	if err := s.ListBucket(ctx); err != nil && !errors.Is(err, errOpenObjects) {
		return nil, err
	}
	p = p.Masked()
	var out []ForeignObject
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, dy := range s.days {
		end := dy.start.AddDate(0, 0, 1)
		if (!from.IsZero() && !end.After(from)) || (!to.IsZero() && !dy.start.Before(to)) || skip != nil && skip(dy.start) {
			continue
		}
		for node, o := range dy.remote {
			if node == s.opts.Node || slices.Contains(except, node) {
				continue
			}
			if o.ref != nil && !mayHold(o.ref.r, p) {
				continue
			}
			out = append(out, ForeignObject{Day: dy.start, Node: node, Key: o.info.Key, Unreadable: o.ref == nil})
		}
	}
	slices.SortFunc(out, func(a, b ForeignObject) int {
		if c := a.Day.Compare(b.Day); c != 0 {
			return c
		}
		return strings.Compare(a.Node, b.Node)
	})
	return out, nil
}
