package search

import (
	"cmp"
	"context"
	"net/netip"
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

// Request is one search: a query over [From, To).
type Request struct {
	Query *Query
	From  time.Time
	To    time.Time
	Desc  bool // newest first
	Limit int  // 0: no limit
}

// Executor runs requests against a Source.
type Executor struct {
	Source      Source
	Concurrency int // days scanned at once; 0 means GOMAXPROCS

	// Unexported knobs for tests: zero means the defaults.
	batchSize, chanBatches int
	stats                  *runStats // nil: not counted
}

// plan is the per-segment evaluation of a query: dictionary ids that match,
// and the blocks that can hold matches.
type plan struct {
	domainOK []bool  // per domain id: do all domain terms hold
	uaOK     []bool  // per user-agent id: do all ua terms hold
	pathTerm []*Term // path terms, tested once per distinct path of a block
	blocks   []int
	cols     segment.Columns
}

func (e *Executor) concurrency() int {
	if e.Concurrency > 0 {
		return e.Concurrency
	}
	return runtime.GOMAXPROCS(0)
}

// planSegment decides which blocks of sr to read. It returns nil when no
// record of the segment can match.
func planSegment(sr *segment.Reader, req *Request) *plan {
	from, to := req.From.UnixMilli(), req.To.UnixMilli()
	p := &plan{cols: segment.ColTime}
	// candidate is meaningful only once restricted: an index that answers
	// "no block" (a nil slice) must prune the segment, not mean "all blocks".
	var candidate []int
	restricted := false
	restrict := func(bs []int) {
		if !restricted {
			candidate, restricted = bs, true
			return
		}
		candidate = intersect(candidate, bs)
	}
	var dTerms, uTerms []*Term
	for i := range req.Query.Terms {
		t := &req.Query.Terms[i]
		switch t.Field {
		case FieldIP:
			p.cols |= segment.ColIP
			if !t.Negate {
				restrict(sr.BlocksForPrefix(t.Prefix))
			}
		case FieldDomain:
			p.cols |= segment.ColDomain
			dTerms = append(dTerms, t)
		case FieldUserAgent:
			p.cols |= segment.ColUserAgent
			uTerms = append(uTerms, t)
		case FieldPath:
			// The path column is read as a dictionary instead (see
			// segCursor.loadBlock), so it is not among p.cols.
			p.pathTerm = append(p.pathTerm, t)
		}
	}
	// Each dictionary entry is tested once, not once per row.
	if len(dTerms) > 0 {
		doms := sr.Domains()
		p.domainOK = make([]bool, len(doms))
		var ids []uint32
		for id, d := range doms {
			ok := true
			for _, t := range dTerms {
				if !t.matchString(d) {
					ok = false
					break
				}
			}
			p.domainOK[id] = ok
			if ok {
				ids = append(ids, uint32(id))
			}
		}
		if len(ids) == 0 {
			return nil
		}
		restrict(sr.BlocksForDomains(ids))
	}
	if len(uTerms) > 0 {
		uas := sr.UserAgents()
		p.uaOK = make([]bool, len(uas))
		any := false
		for id, u := range uas {
			ok := true
			for _, t := range uTerms {
				if !t.matchString(u) {
					ok = false
					break
				}
			}
			p.uaOK[id] = ok
			any = any || ok
		}
		if !any {
			return nil
		}
	}
	if restricted && len(candidate) == 0 {
		return nil
	}
	if !restricted {
		candidate = make([]int, sr.NumBlocks())
		for i := range candidate {
			candidate[i] = i
		}
	}
	for _, b := range candidate {
		m := sr.Block(b)
		if m.MaxTime >= from && m.MinTime < to {
			p.blocks = append(p.blocks, b)
		}
	}
	if len(p.blocks) == 0 {
		return nil
	}
	return p
}

func intersect(a, b []int) []int {
	out := []int{}
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			out = append(out, a[i])
			i++
			j++
		case a[i] < b[j]:
			i++
		default:
			j++
		}
	}
	return out
}

// segCursor yields the matching records of one segment lazily, in the
// requested time order. It holds one decoded block at a time: a segment is
// sorted by time (block i ends no later than block i+1 starts, rows are
// sorted inside a block), so walking the planned blocks in order, or
// backwards for newest first, gives the segment's matches in order.
type segCursor struct {
	ctx         context.Context
	sr          *segment.Reader
	req         *Request
	p           *plan // nil: nothing can match
	first, rest segment.Columns
	doms, uas   []string
	from, to    int64

	bi  int            // next index into p.blocks
	blk *segment.Block // the current block
	// When the query has path terms, the current block's paths as a
	// dictionary and one index per row; blk.Paths stays nil.
	pathDict []string
	pathIdx  []uint32
	pathOK   []bool // per pathDict entry: do all path terms hold
	hits     []int  // matching rows of blk, in output order
	hi       int    // next index into hits
}

// newSegCursor plans sr for req. Only the columns in need (plus those the
// filters read) are filled in the records it yields.
func newSegCursor(ctx context.Context, sr *segment.Reader, req *Request, need segment.Columns) *segCursor {
	c := &segCursor{ctx: ctx, sr: sr, req: req, p: planSegment(sr, req),
		doms: sr.Domains(), uas: sr.UserAgents(), from: req.From.UnixMilli(), to: req.To.UnixMilli()}
	if c.p == nil {
		return c
	}
	// The first pass reads only the filter columns; the output columns of a
	// block are read only when a row of it matched. When a positive IP term
	// chose the blocks, they almost surely match, and one read of all the
	// columns is cheaper than two.
	c.first, c.rest = c.p.cols, need&^c.p.cols
	for _, t := range req.Query.Terms {
		if t.Field == FieldIP && !t.Negate {
			c.first, c.rest = c.p.cols|need, 0
			break
		}
	}
	if c.p.pathTerm != nil {
		// The path dictionary read for the filter also gives the output.
		c.first &^= segment.ColPath
		c.rest &^= segment.ColPath
	}
	return c
}

// next returns the next match; ok is false at the end or on error.
func (c *segCursor) next() (r record.Record, ok bool, err error) {
	for c.p != nil && c.hi >= len(c.hits) {
		if c.bi >= len(c.p.blocks) {
			c.p, c.blk, c.hits = nil, nil, nil
			break
		}
		if err := c.loadBlock(); err != nil {
			c.p = nil
			return r, false, err
		}
	}
	if c.p == nil {
		return r, false, nil
	}
	i := c.hits[c.hi]
	c.hi++
	blk := c.blk
	r.Time = time.UnixMilli(blk.Times[i]).UTC()
	if blk.DomainIDs != nil {
		r.Domain = c.doms[blk.DomainIDs[i]]
	}
	if blk.UserAgentIDs != nil {
		r.UserAgent = c.uas[blk.UserAgentIDs[i]]
	}
	if blk.Paths != nil {
		r.Path = blk.Paths[i]
	} else if c.pathIdx != nil {
		r.Path = c.pathDict[c.pathIdx[i]]
	}
	if blk.IPs != nil {
		r.IP = blk.IPs[i]
	}
	return r, true, nil
}

// loadBlock decodes the next planned block and finds its matching rows.
func (c *segCursor) loadBlock() error {
	// Newest first walks the blocks, and the rows in them, backwards, so
	// that a limited descending search can stop early too.
	b := c.p.blocks[c.bi]
	if c.req.Desc {
		b = c.p.blocks[len(c.p.blocks)-1-c.bi]
	}
	c.bi++
	c.hits, c.hi, c.blk = c.hits[:0], 0, nil
	if err := c.ctx.Err(); err != nil {
		return err
	}
	c.pathDict, c.pathIdx = nil, nil
	if p := c.p; p.pathTerm != nil {
		// Test each distinct path of the block once; rows then look their
		// answer up by index, and no per-row string is built. The path
		// column is read first: when no distinct path matches, which is
		// the usual case for a rare path, the block's other columns are
		// never decoded.
		dict, idx, err := c.sr.ReadBlockPathDict(b)
		if err != nil {
			return err
		}
		c.pathOK = slices.Grow(c.pathOK[:0], len(dict))[:len(dict)]
		any := false
		for j, path := range dict {
			ok := true
			for _, t := range p.pathTerm {
				if !t.matchString(path) {
					ok = false
					break
				}
			}
			c.pathOK[j] = ok
			any = any || ok
		}
		if !any {
			return nil
		}
		c.pathDict, c.pathIdx = dict, idx
	}
	blk, err := c.sr.ReadBlock(b, c.first)
	if err != nil {
		return err
	}
	p, terms := c.p, c.req.Query.Terms
rows:
	for i, ts := range blk.Times {
		if ts < c.from || ts >= c.to {
			continue
		}
		if p.domainOK != nil && !p.domainOK[blk.DomainIDs[i]] {
			continue
		}
		if p.uaOK != nil && !p.uaOK[blk.UserAgentIDs[i]] {
			continue
		}
		if c.pathIdx != nil && !c.pathOK[c.pathIdx[i]] {
			continue
		}
		for k := range terms {
			t := &terms[k]
			if t.Field == FieldIP && !t.matchIP(blk.IPs[i]) {
				continue rows
			}
		}
		c.hits = append(c.hits, i)
	}
	if len(c.hits) == 0 {
		return nil
	}
	if c.rest != 0 {
		more, err := c.sr.ReadBlock(b, c.rest)
		if err != nil {
			return err
		}
		if more.IPs != nil {
			blk.IPs = more.IPs
		}
		if more.DomainIDs != nil {
			blk.DomainIDs = more.DomainIDs
		}
		if more.UserAgentIDs != nil {
			blk.UserAgentIDs = more.UserAgentIDs
		}
		if more.Paths != nil {
			blk.Paths = more.Paths
		}
	}
	if c.req.Desc {
		slices.Reverse(c.hits)
	}
	c.blk = blk
	return nil
}

// scanSegment calls fn for each matching record of sr, in time order, until
// fn returns false. Only the columns in need (plus those the filters read)
// are filled in the records fn receives; count passes none, stats the one it
// groups by.
func scanSegment(ctx context.Context, sr *segment.Reader, req *Request, need segment.Columns, fn func(record.Record) bool) error {
	c := newSegCursor(ctx, sr, req, need)
	for {
		r, ok, err := c.next()
		if !ok {
			return err
		}
		if !fn(r) {
			return nil
		}
	}
}

// Streaming defaults: a day's producer hands records over in batches of
// batchSize, at most chanBatches of them queued, so a running search holds
// O(window × (segments × block + batches × batchSize)) records whatever the
// size of its result.
const (
	defaultBatchSize   = 256
	defaultChanBatches = 4
)

// mergeItem is the head of one source in a day's merge.
type mergeItem struct {
	r   record.Record
	src int // tie-break: equal times come out in source order
}

// streamDay sends the matches of one day to out in batches, in req's time
// order, at most req.Limit of them when a limit is set. It merges the
// day's sources (the filtered and sorted head, and a cursor per segment)
// with a heap, so only one decoded block per segment is held. It returns
// when done, on error, or when ctx is cancelled.
func (e *Executor) streamDay(ctx context.Context, v *store.DayView, req *Request, out chan<- []record.Record) error {
	before := func(a, b *mergeItem) bool {
		c := a.r.Time.Compare(b.r.Time)
		if req.Desc {
			c = -c
		}
		return c < 0 || c == 0 && a.src < b.src
	}
	// The head is unsorted but bounded by configuration: filter it, then
	// sort the indices of its matches.
	var head []int
	for i := range v.Head {
		r := &v.Head[i]
		if !r.Time.Before(req.From) && r.Time.Before(req.To) && req.Query.Match(r) {
			head = append(head, i)
		}
	}
	slices.SortStableFunc(head, func(a, b int) int {
		c := v.Head[a].Time.Compare(v.Head[b].Time)
		if req.Desc {
			c = -c
		}
		return c
	})
	cursors := make([]*segCursor, len(v.Segments))
	for i, sr := range v.Segments {
		cursors[i] = newSegCursor(ctx, sr, req, segment.ColAll)
	}
	// Source 0 is the head, source i+1 the segment i.
	pull := func(src int) (record.Record, bool, error) {
		if src == 0 {
			if len(head) == 0 {
				return record.Record{}, false, nil
			}
			r := v.Head[head[0]]
			head = head[1:]
			return r, true, nil
		}
		return cursors[src-1].next()
	}
	h := make([]mergeItem, 0, len(cursors)+1)
	for src := 0; src <= len(cursors); src++ {
		r, ok, err := pull(src)
		if err != nil {
			return err
		}
		if ok {
			h = append(h, mergeItem{r, src})
		}
	}
	// A binary min-heap by (time, source), reversed in time for newest first.
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= len(h) {
				return
			}
			m := l
			if r := l + 1; r < len(h) && before(&h[r], &h[l]) {
				m = r
			}
			if !before(&h[m], &h[i]) {
				return
			}
			h[i], h[m] = h[m], h[i]
			i = m
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(i)
	}
	batchSize := e.batchSize
	if batchSize <= 0 {
		batchSize = defaultBatchSize
	}
	send := func(b []record.Record) error {
		select {
		case out <- b:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	batch := make([]record.Record, 0, batchSize)
	n := 0
	for len(h) > 0 && (req.Limit <= 0 || n < req.Limit) {
		batch = append(batch, h[0].r)
		e.inflight(1)
		n++
		if len(batch) == batchSize {
			if err := send(batch); err != nil {
				return err
			}
			batch = make([]record.Record, 0, batchSize)
		}
		r, ok, err := pull(h[0].src)
		if err != nil {
			return err
		}
		if ok {
			h[0].r = r
		} else {
			h[0] = h[len(h)-1]
			h = h[:len(h)-1]
		}
		down(0)
	}
	if len(batch) > 0 {
		return send(batch)
	}
	return nil
}

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
// it started has stopped.
func (e *Executor) Run(ctx context.Context, req *Request, emit func(record.Record) error) (int64, error) {
	snap, err := e.Source.Snapshot(req.From, req.To)
	if err != nil {
		return 0, err
	}
	defer snap.Release()
	days := slices.Clone(snap.Days)
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
	}
	streams := make([]*stream, len(days))
	launch := func(i int) {
		s := &stream{ch: make(chan []record.Record, chanBatches)}
		streams[i] = s
		wg.Add(1)
		if e.stats != nil {
			e.stats.producers.Add(1)
		}
		go func() {
			defer wg.Done()
			if e.stats != nil {
				defer e.stats.producers.Add(-1)
			}
			s.err = e.streamDay(ctx, days[i], req, s.ch)
			close(s.ch)
		}()
	}
	window := e.concurrency()
	for i := 0; i < min(window, len(days)); i++ {
		launch(i)
	}
	var n int64
	for i := range days {
		s := streams[i]
		for batch := range s.ch {
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

// Count returns how many records match, scanning days in parallel.
func (e *Executor) Count(ctx context.Context, req *Request) (int64, error) {
	var total atomic.Int64
	err := e.each(ctx, req, 0, func(record.Record) bool {
		total.Add(1)
		return true
	})
	return total.Load(), err
}

// each calls fn (concurrently, from several goroutines) for every match.
func (e *Executor) each(ctx context.Context, req *Request, need segment.Columns, fn func(record.Record) bool) error {
	snap, err := e.Source.Snapshot(req.From, req.To)
	if err != nil {
		return err
	}
	defer snap.Release()
	type job struct {
		v  *store.DayView
		sr *segment.Reader // nil: the head
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	for w := 0; w < e.concurrency(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				var err error
				if j.sr == nil {
					for i := range j.v.Head {
						r := &j.v.Head[i]
						if !r.Time.Before(req.From) && r.Time.Before(req.To) && req.Query.Match(r) {
							fn(*r)
						}
					}
				} else {
					err = scanSegment(ctx, j.sr, req, need, fn)
				}
				if err != nil {
					errOnce.Do(func() { firstErr = err })
				}
			}
		}()
	}
	for _, v := range snap.Days {
		jobs <- job{v: v}
		for _, sr := range v.Segments {
			jobs <- job{v: v, sr: sr}
		}
	}
	close(jobs)
	wg.Wait()
	return cmp.Or(firstErr, ctx.Err())
}

// StatsBy is a field to group statistics by.
type StatsBy string

// Stats groupings.
const (
	ByIP        StatsBy = "ip"
	ByDomain    StatsBy = "domain"
	ByPath      StatsBy = "path"
	ByUserAgent StatsBy = "user_agent"
	ByHour      StatsBy = "hour"
	ByDay       StatsBy = "day"
)

// Bucket is one row of statistics.
type Bucket struct {
	Key   string `json:"key"`
	Count int64  `json:"count"`
}

// Stats counts matches per value of by and returns the top n (by count,
// then key), and the total.
func (e *Executor) Stats(ctx context.Context, req *Request, by StatsBy, n int) ([]Bucket, int64, error) {
	var mu sync.Mutex
	counts := map[string]int64{}
	var total int64
	key := func(r *record.Record) string {
		switch by {
		case ByIP:
			return r.IP.String()
		case ByDomain:
			return r.Domain
		case ByPath:
			return r.Path
		case ByUserAgent:
			return r.UserAgent
		case ByHour:
			return r.Time.Truncate(time.Hour).Format(time.RFC3339)
		default:
			return record.DayString(r.Time)
		}
	}
	need := map[StatsBy]segment.Columns{ByIP: segment.ColIP, ByDomain: segment.ColDomain, ByPath: segment.ColPath,
		ByUserAgent: segment.ColUserAgent}[by]
	err := e.each(ctx, req, need, func(r record.Record) bool {
		k := key(&r)
		mu.Lock()
		counts[k]++
		total++
		mu.Unlock()
		return true
	})
	out := make([]Bucket, 0, len(counts))
	for k, c := range counts {
		out = append(out, Bucket{k, c})
	}
	slices.SortFunc(out, func(a, b Bucket) int {
		if by == ByHour || by == ByDay {
			return cmp.Compare(a.Key, b.Key)
		}
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Key, b.Key))
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out, total, err
}

var _ = netip.Addr{}
