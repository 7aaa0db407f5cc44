package search

import (
	"cmp"
	"context"
	"errors"
	"net/url"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
	"github.com/retentiond/retentiond/internal/store"
)

// Source gives a consistent view of the stored days; *store.Store
// satisfies it.
type Source interface {
	Snapshot(from, to time.Time) (*store.Snapshot, error)
}

// ClusterSource is a Source that can also take the snapshots of a cluster
// search (docs/scale-out.md, "Fresh data across nodes"): a peer's, of only
// its data not yet in the bucket, and the asker's, with the objects its
// peers answered with in place of the bucket listing's. *store.Store
// satisfies it.
type ClusterSource interface {
	Source
	SnapshotWith(from, to time.Time, o store.SnapshotOptions) (*store.Snapshot, error)
	// Node is this node's name, sent to peers and named in their audit
	// lines.
	Node() string
}

// Request is one search: a query over [From, To).
type Request struct {
	Query *Query
	From  time.Time
	To    time.Time
	Desc  bool // newest first
	Limit int  // 0: no limit
	// Skipped, when set, makes damaged segment files be left out of the
	// answer and named here; when nil, damage fails the search.
	Skipped *Skipped
	// Days, when set, decides which UTC days of the range are read; the
	// others are treated as destroyed. It is how a day past the retention
	// that a legal hold keeps is read only under the holding case (see
	// Options.Held).
	Days func(day time.Time) bool

	// snap is how the search's snapshot is taken: Unshared on a peer,
	// PeerObjects on the node that asked its peers (see ClusterSource).
	snap store.SnapshotOptions
	// forward are the parameters of the guard layer (case, reason) a peer
	// is sent, so that its audit line names the case.
	forward url.Values
	// onSnapshot, when set, is told of the snapshot before anything is
	// read from it: a peer's first answer line names its shared objects.
	onSnapshot func(*store.Snapshot)
}

// Executor runs requests against a Source.
type Executor struct {
	Source      Source
	Concurrency int // days scanned at once; 0 means GOMAXPROCS
	// StatsMaxGroups and StatsMaxKeyBytes bound the distinct values one
	// stats request counts exactly (see Stats); 0 means the defaults.
	StatsMaxGroups, StatsMaxKeyBytes int

	// Peers, when it lists any, makes Run, Count, Stats and Histogram ask
	// the other nodes of the cluster for their data not yet in the bucket
	// and merge it with this node's answer; Source must then be a
	// ClusterSource.
	Peers *Peers

	// Unexported knobs for tests: zero means the defaults.
	batchSize, chanBatches int
	stats                  *runStats // nil: not counted
}

func (e *Executor) concurrency() int {
	if e.Concurrency > 0 {
		return e.Concurrency
	}
	return runtime.GOMAXPROCS(0)
}

// jobPool recycles block buffers across cursors and searches: a decoded
// block's buffers take a few hundred KiB, and allocating them afresh for
// every cursor cost more than a tenth of a search's CPU.
var jobPool = sync.Pool{New: func() any { return &blockJob{} }}

// Streaming defaults: a day's producer hands records over in batches of
// batchSize, at most chanBatches of them queued, so a running search holds
// O(window × (segments × block + batches × batchSize)) records whatever the
// size of its result.
const (
	defaultBatchSize   = 256
	defaultChanBatches = 4
)

// inflight tracks the records materialised by producers and not yet
// emitted, and their peak; tests use it to prove memory stays bounded.
func (e *Executor) inflight(d int64) {
	if e.stats == nil {
		return
	}
	v := e.stats.inflight.Add(d)
	for {
		p := e.stats.peak.Load()
		if v <= p || e.stats.peak.CompareAndSwap(p, v) {
			return
		}
	}
}

// runStats are the counters behind Executor.inflight.
type runStats struct {
	inflight, peak atomic.Int64
	producers      atomic.Int64 // day producers running
}

// Run streams the matches to emit in time order, stopping at the limit, at
// an emit error or when ctx is cancelled. Days are scanned in parallel, a
// bounded window ahead of the one being emitted; each day's producer
// streams through a bounded channel. Run returns only after every producer
// it started has stopped. A purge that destroys a day of the search's
// snapshot after its reader grace ends it with a store.DayDestroyedError.
//
// With Peers, the peers' answers are merged in (see runCluster).
func (e *Executor) Run(ctx context.Context, req *Request, emit func(record.Record) error) (int64, error) {
	if e.fansOut(req) {
		return e.runCluster(ctx, req, emit)
	}
	return e.runLocal(ctx, req, emit)
}

// snapshot takes the snapshot req reads, as req.snap asks.
func (e *Executor) snapshot(req *Request) (*store.Snapshot, error) {
	var snap *store.Snapshot
	var err error
	if req.snap.Unshared || req.snap.PeerObjects != nil {
		cs, ok := e.Source.(ClusterSource)
		if !ok {
			return nil, errors.New("cluster search: the source cannot take cluster snapshots")
		}
		snap, err = cs.SnapshotWith(req.From, req.To, req.snap)
	} else {
		snap, err = e.Source.Snapshot(req.From, req.To)
	}
	if err == nil && req.onSnapshot != nil {
		req.onSnapshot(snap)
	}
	return snap, err
}

// runLocal is Run over this node's snapshot only.
func (e *Executor) runLocal(ctx context.Context, req *Request, emit func(record.Record) error) (_ int64, err error) {
	snap, err := e.snapshot(req)
	if err != nil {
		return 0, err
	}
	defer snap.Release()
	ctx, stop := snap.Context(ctx)
	defer stop()
	defer func() { err = destroyedCause(ctx, err) }()
	if err := req.begin(snap); err != nil {
		return 0, err
	}
	// Days that certainly hold no match are dropped before any producer
	// starts: an exact address over two years then costs a filter test per
	// day, not a goroutine, a plan and a hand-over.
	days := slices.DeleteFunc(slices.Clone(snap.Days), func(v *store.DayView) bool { return !dayMayMatch(v, req) })
	if req.Desc {
		slices.Reverse(days)
	}
	// Deferred calls run last first: cancel the producers, wait for them,
	// and only then release the snapshot they read.
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chanBatches := e.chanBatches
	if chanBatches <= 0 {
		chanBatches = defaultChanBatches
	}
	type stream struct {
		ch  chan []record.Record
		err error // set before ch is closed
		// planned is closed once the day is planned; sure is then the
		// number of matches the days up to this one certainly hold.
		planned   chan struct{}
		sure      int
		closePlan sync.Once
	}
	streams := make([]*stream, len(days))
	// Producers of the window's days plan concurrently, and their blocks
	// are filtered on at most window goroutines at once, the earliest
	// day's first (see prioSem); each cursor keeps 2×window blocks in
	// flight, so the day being emitted always has one waiting for a core.
	window := e.concurrency()
	sem := newPrioSem(window)
	launch := func(i int) {
		s := &stream{ch: make(chan []record.Record, chanBatches), planned: make(chan struct{})}
		streams[i] = s
		// With a limit, a day waits for the days before it to be planned:
		// when their index row counts already guarantee the limit, it
		// does not decode a block, and otherwise it needs only the rest.
		var gate func(int) (int, bool)
		if req.Limit > 0 {
			gate = func(lower int) (int, bool) {
				prev := 0
				if i > 0 {
					select {
					case <-streams[i-1].planned:
						prev = streams[i-1].sure
					case <-ctx.Done():
					}
				}
				s.sure = prev + lower
				s.closePlan.Do(func() { close(s.planned) })
				return req.Limit - prev, prev >= req.Limit
			}
		}
		wg.Add(1)
		if e.stats != nil {
			e.stats.producers.Add(1)
		}
		go func() {
			defer wg.Done()
			if e.stats != nil {
				defer e.stats.producers.Add(-1)
			}
			// A day that fails before planning must not hold up the next.
			defer s.closePlan.Do(func() { close(s.planned) })
			s.err = e.streamDay(ctx, days[i], req, cursorOpts{sem: sem, rank: uint64(i), depth: 2 * window}, gate, s.ch)
			close(s.ch)
		}()
	}
	for i := 0; i < min(window, len(days)); i++ {
		launch(i)
	}
	var n int64
	for i := range days {
		s := streams[i]
		for batch := range s.ch {
			// Batches already made are not emitted once the search is
			// cancelled: a purge may have destroyed their day.
			if err := ctx.Err(); err != nil {
				e.inflight(-int64(len(batch)))
				return n, err
			}
			for j, r := range batch {
				if err := emit(r); err != nil {
					e.inflight(-int64(len(batch) - j))
					return n, err
				}
				e.inflight(-1)
				n++
				if req.Limit > 0 && n >= int64(req.Limit) {
					e.inflight(-int64(len(batch) - j - 1))
					return n, nil
				}
			}
		}
		if s.err != nil {
			return n, s.err
		}
		if next := i + window; next < len(days) {
			launch(next)
		}
	}
	return n, ctx.Err()
}

// Count returns how many records match, scanning days in parallel. No
// record is built: segments count candidate rows per block, or answer from
// their footer (see segCursor.count).
// With Peers, the peers' counts are added (see countCluster).
func (e *Executor) Count(ctx context.Context, req *Request) (int64, error) {
	if e.fansOut(req) {
		return e.countCluster(ctx, req)
	}
	return e.countLocal(ctx, req)
}

// countLocal is Count over this node's snapshot only.
func (e *Executor) countLocal(ctx context.Context, req *Request) (int64, error) {
	var total atomic.Int64
	err := e.forEachSource(ctx, req, func(ctx context.Context, v *store.DayView, sr *segment.Reader) error {
		if sr == nil {
			total.Add(int64(len(matchHead(v, req))))
			return nil
		}
		if n, ok := exactDomainCount(sr, req); ok {
			total.Add(n)
			return nil
		}
		c := newSegCursor(ctx, sr, req, 0, cursorOpts{footer: true})
		defer c.close()
		n, err := c.count()
		total.Add(n)
		return err
	})
	return total.Load(), err
}

// CountIfCheap returns the number of matches of req when the indexes give
// it without filtering more than the blocks that straddle the range: ok is
// false as soon as a segment would need its blocks read (a path term, an
// OR of addresses, a mix of fields), and the count is then not computed.
// A search that stopped at its limit uses it to say how many matched.
// A cluster search (Peers) is never cheap: the peers would have to count.
func (e *Executor) CountIfCheap(ctx context.Context, req *Request) (n int64, ok bool, err error) {
	if e.fansOut(req) {
		return 0, false, nil
	}
	var total atomic.Int64
	var dear atomic.Bool
	err = e.forEachSource(ctx, req, func(ctx context.Context, v *store.DayView, sr *segment.Reader) error {
		if dear.Load() {
			return nil
		}
		if sr == nil {
			total.Add(int64(len(matchHead(v, req))))
			return nil
		}
		if n, ok := exactDomainCount(sr, req); ok {
			total.Add(n)
			return nil
		}
		c := newSegCursor(ctx, sr, req, 0, cursorOpts{footer: true})
		defer c.close()
		if c.p != nil && !c.p.counts {
			if _, ok := c.footerCount(); !ok {
				dear.Store(true)
				return nil
			}
		}
		n, err := c.count()
		total.Add(n)
		return err
	})
	if err != nil || dear.Load() {
		return 0, false, err
	}
	return total.Load(), true, nil
}

// each calls fn (concurrently, from several goroutines) for every match.
func (e *Executor) each(ctx context.Context, req *Request, need segment.Columns, fn func(record.Record) bool) error {
	return e.forEachSource(ctx, req, func(ctx context.Context, v *store.DayView, sr *segment.Reader) error {
		if sr == nil {
			for _, i := range matchHead(v, req) {
				fn(*v.Head.At(i))
			}
			return nil
		}
		return scanSegment(ctx, sr, req, need, fn)
	})
}

// forEachSource calls fn for every day's head (sr nil) and every segment
// of the snapshot, from Concurrency goroutines, and returns the first error.
// fn must stop when the ctx it is given ends: a purge that destroys a day of
// the snapshot cancels it (see Run).
func (e *Executor) forEachSource(ctx context.Context, req *Request, fn func(ctx context.Context, v *store.DayView, sr *segment.Reader) error) error {
	snap, err := e.snapshot(req)
	if err != nil {
		return err
	}
	defer snap.Release()
	ctx, stop := snap.Context(ctx)
	defer stop()
	if err := req.begin(snap); err != nil {
		return err
	}
	type job struct {
		v  *store.DayView
		sr *segment.Reader // nil: the head
	}
	// The jobs are listed first and queued in a channel that holds them
	// all: handing each over to a waiting worker instead cost a goroutine
	// switch per source, which for a day whose head is sealed into many
	// small parts was most of an indexed count (BenchmarkFreshData).
	var list []job
	for _, v := range snap.Days {
		if !dayMayMatch(v, req) {
			continue
		}
		list = append(list, job{v: v})
		for _, sr := range v.Segments {
			list = append(list, job{v: v, sr: sr})
		}
	}
	jobs := make(chan job, len(list))
	for _, j := range list {
		jobs <- j
	}
	close(jobs)
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	work := func() {
		for j := range jobs {
			if ctx.Err() != nil {
				continue
			}
			if err := fn(ctx, j.v, j.sr); err != nil {
				errOnce.Do(func() { firstErr = err })
			}
		}
	}
	// This goroutine works too: a search of one source starts none.
	for w := 1; w < min(e.concurrency(), len(list)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
	return destroyedCause(ctx, cmp.Or(firstErr, ctx.Err()))
}

// destroyedCause returns, in place of err, the error of a purge that
// cancelled ctx because it destroyed a day the search read, so that the
// client learns why its answer is incomplete rather than a bare
// "context canceled".
func destroyedCause(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	if c := context.Cause(ctx); errors.Is(c, store.ErrDayDestroyed) {
		return c
	}
	return err
}
