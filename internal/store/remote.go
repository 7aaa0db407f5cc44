package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/retentiond/retentiond/internal/keys"
	"github.com/retentiond/retentiond/internal/objstore"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
)

// This file is the bucket's side of the day registry: the objects of every
// node that a listing of the bucket found (and this node's own uploaded
// days whose local copy was evicted), read by ranges through a
// segment.Source. upload.go is the other direction.

// errOpenObjects marks a listing that succeeded but some of whose
// objects could not be opened (ForeignObjects reports those).
var errOpenObjects = errors.New("reading objects of the bucket failed")

// remoteFooterOpens bounds how many footers are fetched at once, so that a
// listing of 730 days of many nodes does not open hundreds of connections.
const remoteFooterOpens = 8

// remoteObj is one node's current object of a day in the bucket: the one
// with the highest flush range (a newer archive of the day supersedes the
// older, which its node deletes after a grace).
type remoteObj struct {
	key      int64 // the day
	node     string
	file     string
	info     objstore.ObjectInfo
	minFlush int64
	maxFlush int64
	// ref is the reader, opened (its footer read) once; nil until then.
	ref *segRef
	// bad is set when the object is damaged (its footer or a block does
	// not verify): it is never read again and snapshots name it. A network
	// error is never damage.
	bad *segment.CorruptionError
	// adhoc: named by a peer for one snapshot (SnapshotOptions.PeerObjects),
	// not in the registry; the snapshot owns its reference.
	adhoc bool
}

// newRemoteObj describes the object info for day key, or returns nil
// when its key is not a segment key or its file is not a name the store
// writes.
func newRemoteObj(info objstore.ObjectInfo) *remoteObj {
	d, node, file, ok := objstore.ParseSegmentKey(info.Key)
	if !ok {
		return nil
	}
	lo, hi, _, ok := parseSegName(file)
	if !ok {
		return nil
	}
	return &remoteObj{key: d.Unix(), node: node, file: file, info: info, minFlush: lo, maxFlush: hi}
}

// newer reports whether o supersedes p as its node's object of the day:
// the higher flush range wins, and of equal ends the wider one.
func (o *remoteObj) newer(p *remoteObj) bool {
	if o.maxFlush != p.maxFlush {
		return o.maxFlush > p.maxFlush
	}
	return o.minFlush < p.minFlush
}

func (o *remoteObj) release() {
	if o.ref != nil {
		o.ref.release()
		o.ref = nil
	}
}

// corruptFile is how a snapshot names a damaged object.
func (o *remoteObj) corruptFile() CorruptFile {
	return CorruptFile{Path: o.bad.File, Bytes: o.info.Size, Err: o.bad}
}

// bucketSource reads an object by range GETs when no RangeCache is set.
type bucketSource struct {
	b    objstore.Bucket
	key  string
	size int64
}

func (b *bucketSource) ReadAt(p []byte, off int64) (int, error) {
	if err := b.b.ReadAt(context.Background(), b.key, p, off); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (b *bucketSource) Size() int64  { return b.size }
func (b *bucketSource) Name() string { return b.b.String() + "/" + b.key }

// source returns how the object key of size bytes is read.
func (s *Store) source(key string, size int64) segment.Source {
	if s.opts.Cache != nil {
		return s.opts.Cache.Source(s.opts.Bucket, key, size)
	}
	return &bucketSource{b: s.opts.Bucket, key: key, size: size}
}

// openObject reads the footer of an object and returns its reader, with
// one reference. A damaged object is a *segment.CorruptionError; any other
// error (the store unreachable) names the store.
func (s *Store) openObject(o *remoteObj) (*segRef, error) {
	r, err := segment.OpenSource(s.source(o.info.Key, o.info.Size), s.openOptions())
	if err != nil {
		return nil, err
	}
	ref := &segRef{r: r, minFlush: o.minFlush, maxFlush: o.maxFlush, archived: true, added: s.opts.Now(), remote: true}
	ref.refs.Store(1)
	return ref, nil
}

// openObjects opens the footers of objs that are not open yet, at most
// remoteFooterOpens at a time, and installs each reader in its object if
// the object is still registered (else it is closed again). A damaged
// object is marked (and counted, once); the other errors are returned,
// joined: the bucket is unreachable, and a search must say so.
func (s *Store) openObjects(ctx context.Context, objs []*remoteObj) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, remoteFooterOpens)
	)
	for _, o := range objs {
		s.mu.Lock()
		todo := o.ref == nil && o.bad == nil
		s.mu.Unlock()
		if !todo {
			continue
		}
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ref, err := s.openObject(o)
			var ce *segment.CorruptionError
			if errors.As(err, &ce) {
				s.mu.Lock()
				first := o.bad == nil
				o.bad = ce
				s.mu.Unlock()
				if first {
					s.noteCorrupt(ce, "bucket")
				}
				return
			}
			if err != nil {
				err = fmt.Errorf("day %s, node %s's object: %w", record.DayString(time.Unix(o.key, 0)), o.node, err)
				if errors.Is(err, keys.ErrNoKey) || errors.Is(err, segment.ErrNoKeys) {
					// Objects are sealed under their uploading node's day
					// keys, which no other node holds (docs/encryption.md).
					err = fmt.Errorf("%w (it is sealed under node %s's day key, which this node does not hold: a cluster with encryption needs shared day keys, which are not built yet)", err, o.node)
				}
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			s.mu.Lock()
			dy := s.days[o.key]
			installed := o.ref == nil && (dy != nil && dy.remote[o.node] == o || o.adhoc)
			if installed {
				o.ref = ref
			}
			s.mu.Unlock()
			if !installed {
				ref.release()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		// One store, one cause: the first error says it, the count says how many.
		return fmt.Errorf("%w: %d object(s): %w", errOpenObjects, len(errs), errs[0])
	}
	return nil
}

// coveredLocked reports whether a local file of dy holds everything the
// object o holds (its flush range lies within the file's): this node's
// own object whose local copy is still there, or which a newer local
// archive of the day supersedes. s.mu must be held.
func coveredLocked(dy *day, o *remoteObj) bool {
	for _, ref := range dy.segs {
		if ref.minFlush <= o.minFlush && o.maxFlush <= ref.maxFlush {
			return true
		}
	}
	return false
}

// ownRemoteLocked returns this node's object of dy that counts: one whose
// local copy was evicted (or never was on this data directory), not
// covered by a local file. s.mu must be held.
func (s *Store) ownRemoteLocked(dy *day) *remoteObj {
	if dy == nil {
		return nil
	}
	o := dy.remote[s.opts.Node]
	if o == nil || coveredLocked(dy, o) {
		return nil
	}
	return o
}

// remoteLocked returns the objects of dy a whole-view snapshot reads: every
// node's current object, this node's only where no local file covers it.
// s.mu must be held.
func (s *Store) remoteLocked(dy *day) []*remoteObj {
	var out []*remoteObj
	for node, o := range dy.remote {
		if node == s.opts.Node && coveredLocked(dy, o) {
			continue
		}
		out = append(out, o)
	}
	return out
}

// listLoop lists the bucket at start (in the background: Open never waits
// for the store) and every Options.ListInterval, so that the registry
// knows every node's days.
func (s *Store) listLoop(ctx context.Context) {
	defer s.remoteWG.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := s.ListBucket(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil && !failing:
			s.log.Warn("listing the bucket failed; other nodes' days are not seen until it succeeds", "err", err)
		case err == nil && failing:
			s.log.Info("listing the bucket succeeded again")
		}
		failing = err != nil
		t.Reset(s.opts.ListInterval)
	}
}

// ListBucket lists every day's objects in the bucket now and updates the
// day registry: other nodes' objects (and this node's own, where no local
// file covers them) become the days' remote segments, and their footers
// are read. The background loop calls it every Options.ListInterval.
func (s *Store) ListBucket(ctx context.Context) error {
	if s.opts.Bucket == nil {
		return nil
	}
	s.listMu.Lock()
	defer s.listMu.Unlock()
	return s.listBucketLocked(ctx)
}

// ensureListed lists the bucket now unless a listing has succeeded since
// Open. Until one has, this node does not know which days the bucket holds
// (other nodes' days, its own evicted ones): a search without them would
// be silently short, so it fails instead, with the store's error. After
// the first listing, the background loop keeps the registry current.
func (s *Store) ensureListed(ctx context.Context) error {
	if s.opts.Bucket == nil || s.listed.Load() {
		return nil
	}
	s.listMu.Lock()
	defer s.listMu.Unlock()
	if s.listed.Load() {
		return nil
	}
	if err := s.listBucketLocked(ctx); err != nil && !s.listed.Load() {
		return fmt.Errorf("the bucket's days are not known (no listing has succeeded since start): %w", err)
	}
	return nil
}

// listBucketLocked is ListBucket; s.listMu must be held.
func (s *Store) listBucketLocked(ctx context.Context) error {
	started := time.Now()
	infos, err := s.opts.Bucket.List(ctx, "days/")
	if err != nil {
		s.m.remote.listErrors.Inc()
		return fmt.Errorf("list bucket: %w", err)
	}
	best := make(map[int64]map[string]*remoteObj)
	for _, info := range infos {
		o := newRemoteObj(info)
		if o == nil {
			continue
		}
		nodes := best[o.key]
		if nodes == nil {
			nodes = make(map[string]*remoteObj)
			best[o.key] = nodes
		}
		if p := nodes[o.node]; p == nil || o.newer(p) {
			nodes[o.node] = o
		}
	}
	var toOpen []*remoteObj
	// gone are the objects the listing no longer holds or that a newer
	// object of their node replaced (an erasure's rewrite among them): their
	// cached pages are dropped, so that erased records do not outlive the
	// object in this node's range cache.
	var gone []string
	s.mu.Lock()
	for key, dy := range s.days {
		for node, o := range dy.remote {
			if n := best[key][node]; n != nil && n.info.Key == o.info.Key {
				continue
			}
			if node == s.opts.Node && s.ledger.Days[record.DayString(dy.start)].Key == o.info.Key {
				continue // uploaded by this node; a listing may lag behind its own upload
			}
			gone = append(gone, o.info.Key)
			o.release()
			delete(dy.remote, node)
		}
	}
	for key, nodes := range best {
		if s.deleting[key] || s.deletedAt[key].After(started) {
			continue // a purge took the day while the listing ran
		}
		dy := s.days[key]
		if dy == nil {
			dy = s.newDayLocked(key)
			dy.remoteOnly = true
			s.days[key] = dy
		}
		if dy.shredded {
			continue
		}
		if dy.remote == nil {
			dy.remote = make(map[string]*remoteObj)
		}
		for node, o := range nodes {
			if p := dy.remote[node]; p != nil {
				if p.info.Key == o.info.Key || node == s.opts.Node && p.newer(o) {
					continue
				}
				gone = append(gone, p.info.Key)
				p.release()
			}
			dy.remote[node] = o
		}
		for _, o := range s.remoteLocked(dy) {
			if o.ref == nil && o.bad == nil {
				toOpen = append(toOpen, o)
			}
		}
	}
	for key, dy := range s.days {
		if dy.remoteOnly && len(dy.segs) == 0 && len(dy.corrupt) == 0 && len(dy.remote) == 0 {
			delete(s.days, key)
		}
	}
	s.mu.Unlock()
	if s.opts.Cache != nil {
		for _, k := range gone {
			s.opts.Cache.Invalidate(s.opts.Bucket, k)
		}
	}
	s.m.remote.lists.Inc()
	// The registry holds the bucket's objects now; footers not read below
	// are read by the snapshot that needs them.
	s.listed.Store(true)
	return s.openObjects(ctx, toOpen)
}

// peerObjects resolves SnapshotOptions.PeerObjects for the days [lo, hi):
// per day, the objects the peers named, each with a reference the snapshot
// owns (shared with the registry where it holds the same object open).
// Objects of this node and keys that are not segment keys are ignored.
func (s *Store) peerObjects(lo, hi int64, peers map[string][]objstore.ObjectInfo) (map[int64][]*remoteObj, error) {
	var objs []*remoteObj
	for node, infos := range peers {
		if node == s.opts.Node {
			continue
		}
		for _, info := range infos {
			o := newRemoteObj(info)
			if o == nil || o.node != node || o.key < lo || o.key >= hi {
				continue
			}
			o.adhoc = true
			objs = append(objs, o)
		}
	}
	if len(objs) == 0 {
		return nil, nil
	}
	// Reuse the registry's open readers of the same objects.
	s.mu.Lock()
	for _, o := range objs {
		if dy := s.days[o.key]; dy != nil {
			if r := dy.remote[o.node]; r != nil && r.info.Key == o.info.Key && r.ref != nil {
				r.ref.acquire()
				o.ref = r.ref
			}
		}
	}
	s.mu.Unlock()
	out := make(map[int64][]*remoteObj)
	release := func() {
		for _, o := range objs {
			o.release()
		}
	}
	if err := s.openObjects(context.Background(), objs); err != nil {
		release()
		return nil, err
	}
	for _, o := range objs {
		out[o.key] = append(out[o.key], o)
	}
	return out, nil
}

// reportRemoteCorrupt marks the object a reader found damaged (by the
// reader's name) so that later snapshots name it instead of reading it.
// It reports whether the file was one of the registry's objects.
func (s *Store) reportRemoteCorrupt(ce *segment.CorruptionError) bool {
	var found *remoteObj
	s.mu.Lock()
	for _, dy := range s.days {
		for _, o := range dy.remote {
			if o.ref != nil && o.ref.r.Path() == ce.File {
				found = o
			}
		}
	}
	if found != nil {
		found.bad = ce
		found.release()
	}
	s.mu.Unlock()
	if found != nil {
		s.noteCorrupt(ce, "read")
	}
	return found != nil
}

// releaseRemoteLocked drops every remote reader of dy. s.mu must be held.
func releaseRemoteLocked(dy *day) {
	for node, o := range dy.remote {
		o.release()
		delete(dy.remote, node)
	}
}
