package search

import (
	"cmp"
	"context"
	"errors"
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
	// Skipped, when set, makes damaged segment files be left out of the
	// answer and named here; when nil, damage fails the search.
	Skipped *Skipped
	// Days, when set, decides which UTC days of the range are read; the
	// others are treated as destroyed. It is how a day past the retention
	// that a legal hold keeps is read only under the holding case (see
	// Options.Held).
	Days func(day time.Time) bool
}

// Executor runs requests against a Source.
type Executor struct {
	Source      Source
	Concurrency int // days scanned at once; 0 means GOMAXPROCS
	// StatsMaxGroups and StatsMaxKeyBytes bound the distinct values one
	// stats request counts exactly (see Stats); 0 means the defaults.
	StatsMaxGroups, StatsMaxKeyBytes int

	// Unexported knobs for tests: zero means the defaults.
	batchSize, chanBatches int
	stats                  *runStats // nil: not counted
}

// plan is the per-segment evaluation of a query: for each alternative of
// the query (see Query.Alts) that can match in the segment, its dictionary
// answers and blocks, and the union of those blocks.
type plan struct {
	alts   []*altPlan
	blocks []int
	// exact holds, per planned block, a number of rows that certainly
	// match (the index's row counts of single positive IP alternatives,
	// their largest for an OR), or -1 when none is known (a block that
	// straddles the time range). When counts is set, that number is the
	// block's exact count of matches (the query is one positive IP term).
	exact  []int
	counts bool
	cols   segment.Columns
}

// altPlan is one alternative's plan: every one of its terms must hold.
type altPlan struct {
	domainOK []bool  // per domain id: do all domain terms hold
	uaOK     []bool  // per user-agent id: do all ua terms hold
	pathTerm []*Term // path terms, tested once per distinct path of a block
	needles  [][]byte
	ipTerms  []*Term
	// blocks are the candidate blocks of the alternative, sorted; all is
	// set when its indexes do not narrow them.
	blocks []int
	all    bool
	rowsOf map[int]int // block -> matching rows, for a single positive ip: term
}

// has reports whether block b is a candidate of the alternative.
func (a *altPlan) has(b int) bool {
	if a.all {
		return true
	}
	_, ok := slices.BinarySearch(a.blocks, b)
	return ok
}

func (e *Executor) concurrency() int {
	if e.Concurrency > 0 {
		return e.Concurrency
	}
	return runtime.GOMAXPROCS(0)
}

// planSegment decides which blocks of sr to read: the union of the blocks
// each alternative of the query can match in. It returns nil when no
// record of the segment can match.
func planSegment(sr *segment.Reader, req *Request) *plan {
	from, to := req.From.UnixMilli(), req.To.UnixMilli()
	p := &plan{cols: segment.ColTime}
	var union []int
	all := false
	for _, alt := range req.Query.Alts {
		a := planAlt(sr, alt, p)
		if a == nil {
			continue
		}
		p.alts = append(p.alts, a)
		if a.all {
			all = true
		} else if !all {
			union = mergeRows(nil, union, a.blocks)
		}
	}
	if len(p.alts) == 0 {
		return nil
	}
	p.counts = len(req.Query.Alts) == 1 && p.alts[0].rowsOf != nil
	if all {
		union = make([]int, sr.NumBlocks())
		for i := range union {
			union[i] = i
		}
	}
	// Lower bounds from the index's row counts are known only when
	// some alternative is a single positive ip: term.
	withRows := false
	for _, a := range p.alts {
		withRows = withRows || a.rowsOf != nil
	}
	for _, b := range union {
		m := sr.Block(b)
		if m.MaxTime >= from && m.MinTime < to {
			p.blocks = append(p.blocks, b)
			if withRows {
				n := -1
				if m.MinTime >= from && m.MaxTime < to {
					n = 0
					for _, a := range p.alts {
						n = max(n, a.rowsOf[b])
					}
				}
				p.exact = append(p.exact, n)
			}
		}
	}
	if len(p.blocks) == 0 {
		return nil
	}
	return p
}

// planAlt plans one alternative of a query over sr, adding the columns its
// filters read to p.cols. It returns nil when the alternative cannot match
// in the segment.
func planAlt(sr *segment.Reader, terms []Term, p *plan) *altPlan {
	a := &altPlan{all: true}
	// blocks is meaningful only once restricted: an index that answers
	// "no block" (a nil slice) must prune the alternative, not mean "all
	// blocks".
	restrict := func(bs []int) {
		if a.all {
			a.blocks, a.all = bs, false
			return
		}
		a.blocks = intersect(a.blocks, bs)
	}
	var dTerms, uTerms []*Term
	for i := range terms {
		t := &terms[i]
		switch t.Field {
		case FieldIP:
			p.cols |= segment.ColIP
			a.ipTerms = append(a.ipTerms, t)
			if !t.Negate {
				// Row counts mean "matches" only when this is the
				// alternative's one term.
				single := len(terms) == 1
				blocks, rows := sr.BlockRowsForPrefix(t.Prefix, single)
				restrict(blocks)
				if single && rows != nil {
					a.rowsOf = make(map[int]int, len(blocks))
					for i, b := range blocks {
						a.rowsOf[b] = rows[i]
					}
				}
			}
		case FieldDomain:
			p.cols |= segment.ColDomain
			dTerms = append(dTerms, t)
		case FieldUserAgent:
			p.cols |= segment.ColUserAgent
			uTerms = append(uTerms, t)
		case FieldPath:
			// The path column is read as a dictionary instead (see
			// segCursor.filterBlock), so it is not among p.cols.
			a.pathTerm = append(a.pathTerm, t)
			a.needles = append(a.needles, []byte(t.Value))
		}
	}
	// Each dictionary entry is tested once, not once per row.
	if len(dTerms) > 0 {
		doms := sr.Domains()
		var any bool
		a.domainOK, any = markEntries(nil, len(doms), func(id int) bool {
			return allHold(dTerms, func(t *Term) bool { return t.matchString(doms[id]) })
		})
		if !any {
			return nil
		}
		var ids []uint32
		for id, ok := range a.domainOK {
			if ok {
				ids = append(ids, uint32(id))
			}
		}
		restrict(sr.BlocksForDomains(ids))
	}
	if len(uTerms) > 0 {
		uas := sr.UserAgents()
		var any bool
		a.uaOK, any = markEntries(nil, len(uas), func(id int) bool {
			return allHold(uTerms, func(t *Term) bool { return t.matchString(uas[id]) })
		})
		if !any {
			return nil
		}
	}
	if !a.all && len(a.blocks) == 0 {
		return nil
	}
	return a
}

// markEntries sets ok[k] (ok is reused when large enough) to match(k) for
// each of n dictionary entries and reports whether any holds: a term is
// evaluated once per distinct value, and rows then look their answer up.
func markEntries(ok []bool, n int, match func(k int) bool) ([]bool, bool) {
	ok = slices.Grow(ok[:0], n)[:n]
	any := false
	for k := range ok {
		ok[k] = match(k)
		any = any || ok[k]
	}
	return ok, any
}

// allHold reports whether match holds for every term.
func allHold(terms []*Term, match func(t *Term) bool) bool {
	for _, t := range terms {
		if !match(t) {
			return false
		}
	}
	return true
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
// requested time order. A segment is sorted by time (block i ends no later
// than block i+1 starts, rows are sorted inside a block), so walking the
// planned blocks in order, or backwards for newest first, gives the
// segment's matches in order.
//
// A block is filtered one column at a time, most selective first (IP, path,
// domain, user agent, then time only when the block straddles the range),
// in the block's dictionary form: each distinct address or path is tested
// once and rows are looked up by index. A column is decoded only while some
// row is still a candidate, and the output columns only for blocks with a
// match; no per-row value is built except for the rows returned.
//
// With a semaphore (see cursorOpts) the cursor filters up to depth blocks
// ahead on other goroutines, so one segment's blocks use every core; it
// then holds depth+1 decoded blocks. close must be called before the
// segment's snapshot is released.
type segCursor struct {
	ctx       context.Context
	sr        *segment.Reader
	req       *Request
	p         *plan // nil: nothing more to plan
	need      segment.Columns
	doms, uas []string
	from, to  int64
	opts      cursorOpts

	bi      int         // next index into p.blocks to schedule
	queue   []*blockJob // scheduled blocks, in output order
	free    []*blockJob // finished jobs whose buffers can be reused
	cur     *blockJob   // the block being emitted
	hi      int         // next index into cur.hits
	pending sync.WaitGroup
	err     error
	skipped bool // the file was found damaged and is left out
	// budget, when above zero, is how many matches the consumer can still
	// use; the cursor stops scheduling blocks once the exact row counts of
	// those scheduled (plan.exact) guarantee that many.
	budget, sure int
}

// cursorOpts choose how a cursor uses the cores: without a semaphore it
// filters each block on the caller's goroutine when it is needed.
type cursorOpts struct {
	sem   *prioSem
	rank  uint64 // priority of this cursor's blocks; lower goes first
	depth int    // blocks filtered ahead
}

// blockJob is one block filtered by a cursor, with its own buffers.
type blockJob struct {
	b      int
	v      segment.BlockView
	ipOK   []bool   // per IP dictionary entry
	pathOK []bool   // per path dictionary entry
	hits   []int    // matching rows, in output order
	union  []int    // with several alternatives: the rows matched so far
	merged []int    // scratch for the union
	paths  []string // per hit: its path, when the output needs paths
	doms   []uint32 // per hit: its domain id, when the output needs domains
	uas    []uint32 // per hit: its user-agent id, when the output needs them
	rows   int
	err    error
	done   chan struct{} // closed when the job has run (nil: run inline)
}

// newSegCursor plans sr for req. Only the columns in need (plus those the
// filters read) are filled in the records it yields.
func newSegCursor(ctx context.Context, sr *segment.Reader, req *Request, need segment.Columns, opts cursorOpts) *segCursor {
	c := &segCursor{ctx: ctx, sr: sr, req: req, p: planSegment(sr, req), need: need,
		doms: sr.Domains(), uas: sr.UserAgents(), from: req.From.UnixMilli(), to: req.To.UnixMilli(), opts: opts}
	return c
}

// next returns the next match; ok is false at the end or on error.
func (c *segCursor) next() (r record.Record, ok bool, err error) {
	if c.cur == nil || c.hi >= len(c.cur.hits) {
		if ok, err := c.advance(); !ok {
			return r, false, err
		}
	}
	k := c.hi
	i := c.cur.hits[k]
	c.hi++
	v := &c.cur.v
	if v.Have&segment.ColTime != 0 {
		r.Time = time.UnixMilli(v.Times[i]).UTC()
	}
	if c.need&segment.ColDomain != 0 {
		r.Domain = c.doms[c.cur.doms[k]]
	}
	if c.need&segment.ColUserAgent != 0 {
		r.UserAgent = c.uas[c.cur.uas[k]]
	}
	if c.need&segment.ColPath != 0 {
		r.Path = c.cur.paths[k]
	}
	if c.need&segment.ColIP != 0 {
		r.IP = v.IP(i)
	}
	return r, true, nil
}

// advance moves to the next planned block with a match; ok is false at the
// end or on error.
func (c *segCursor) advance() (ok bool, err error) {
	for {
		if c.cur != nil {
			c.free = append(c.free, c.cur) // its records were all built
			c.cur = nil
		}
		if c.err != nil {
			return false, c.err
		}
		c.schedule()
		if len(c.queue) == 0 {
			return false, nil
		}
		j := c.queue[0]
		c.queue = c.queue[1:]
		if j.done != nil {
			<-j.done
		}
		c.cur, c.hi = j, 0
		if j.err != nil {
			if c.req.Skipped.skip(j.err) {
				// The rest of the file is left out (see Skipped). Jobs
				// in flight still read c.p; close waits for them.
				c.skipped, c.queue, c.free = true, nil, append(c.free, c.queue...)
				return false, nil
			}
			c.err = j.err
			return false, j.err
		}
		if len(j.hits) > 0 {
			return true, nil
		}
	}
}

// schedule starts jobs for the next planned blocks until depth of them are
// queued (one, run inline, without a semaphore).
func (c *segCursor) schedule() {
	depth := max(c.opts.depth, 1)
	for c.p != nil && !c.skipped && len(c.queue) < depth && c.bi < len(c.p.blocks) {
		if c.budget > 0 && c.sure >= c.budget {
			break // the blocks scheduled already give every match needed
		}
		// Newest first walks the blocks, and the rows in them, backwards,
		// so that a limited descending search can stop early too.
		idx := c.bi
		if c.req.Desc {
			idx = len(c.p.blocks) - 1 - c.bi
		}
		b := c.p.blocks[idx]
		if c.p.exact != nil {
			c.sure += max(c.p.exact[idx], 0)
		}
		seq := uint64(c.bi)
		c.bi++
		var j *blockJob
		if n := len(c.free); n > 0 {
			j, c.free = c.free[n-1], c.free[:n-1]
		} else {
			j = jobPool.Get().(*blockJob)
		}
		j.b, j.err, j.done = b, nil, nil
		c.queue = append(c.queue, j)
		if c.opts.sem == nil {
			j.err = c.filterBlock(j)
			continue
		}
		j.done = make(chan struct{})
		c.pending.Add(1)
		go func() {
			defer c.pending.Done()
			defer close(j.done)
			if err := c.opts.sem.acquire(c.ctx, c.opts.rank<<32|seq); err != nil {
				j.err = err
				return
			}
			defer c.opts.sem.release()
			j.err = c.filterBlock(j)
		}()
	}
}

// lowerBound returns how many matches the segment certainly holds, from
// the index's exact row counts (0 when it has none).
func (c *segCursor) lowerBound() int {
	n := 0
	if c.p != nil {
		for _, e := range c.p.exact {
			n += max(e, 0)
		}
	}
	return n
}

// close waits for the cursor's jobs in flight and returns their buffers
// to the pool; after it the segment may be released.
func (c *segCursor) close() {
	c.pending.Wait()
	for _, j := range c.queue {
		jobPool.Put(j)
	}
	for _, j := range c.free {
		jobPool.Put(j)
	}
	if c.cur != nil {
		jobPool.Put(c.cur)
	}
	c.queue, c.free, c.cur = nil, nil, nil
}

// jobPool recycles block buffers across cursors and searches: a decoded
// block's buffers take a few hundred KiB, and allocating them afresh for
// every cursor cost more than a tenth of a search's CPU.
var jobPool = sync.Pool{New: func() any { return &blockJob{} }}

// narrowBy keeps the candidate rows whose dictionary entry ok[idx[row]]
// holds: the same as narrow with that test, without a call per row.
func (j *blockJob) narrowBy(all bool, ok []bool, idx []uint32) {
	if all {
		j.hits = j.hits[:0]
		for i, k := range idx[:j.rows] {
			if ok[k] {
				j.hits = append(j.hits, i)
			}
		}
		return
	}
	n := 0
	for _, i := range j.hits {
		if ok[idx[i]] {
			j.hits[n] = i
			n++
		}
	}
	j.hits = j.hits[:n]
}

// narrowRange keeps the candidate rows whose dictionary index idx[row]
// lies in [lo, hi).
func (j *blockJob) narrowRange(all bool, lo, hi uint32, idx []uint32) {
	width := hi - lo
	if all {
		j.hits = j.hits[:0]
		for i, k := range idx[:j.rows] {
			if k-lo < width { // unsigned: also false below lo
				j.hits = append(j.hits, i)
			}
		}
		return
	}
	n := 0
	for _, i := range j.hits {
		if idx[i]-lo < width {
			j.hits[n] = i
			n++
		}
	}
	j.hits = j.hits[:n]
}

// narrow keeps the candidate rows for which keep holds. all says that every
// row of the block is still a candidate (j.hits is then not yet built).
func (j *blockJob) narrow(all bool, keep func(i int) bool) {
	if all {
		j.hits = j.hits[:0]
		for i := range j.rows {
			if keep(i) {
				j.hits = append(j.hits, i)
			}
		}
		return
	}
	n := 0
	for _, i := range j.hits {
		if keep(i) {
			j.hits[n] = i
			n++
		}
	}
	j.hits = j.hits[:n]
}

// filterBlock decodes block j.b and finds its matching rows. It reads only
// the cursor's immutable state, so jobs of one cursor run concurrently.
func (c *segCursor) filterBlock(j *blockJob) error {
	j.hits = j.hits[:0]
	if err := c.ctx.Err(); err != nil {
		return err
	}
	b, v, p := j.b, &j.v, c.p
	v.Have = 0 // a recycled view may hold another block
	m := c.sr.Block(b)
	j.rows = m.Rows
	decode := func(col segment.Columns) error { return c.sr.DecodeBlock(b, col, v) }
	var all bool // every row is a candidate (each branch below sets it)
	if len(p.alts) == 1 {
		var err error
		if all, err = c.filterAlt(j, p.alts[0]); err != nil || !all && len(j.hits) == 0 {
			return err
		}
	} else {
		// A row matches when any alternative holds: each alternative is
		// filtered in the blocks its indexes allow, and the (ascending)
		// row lists are united.
		j.union = j.union[:0]
		for _, a := range p.alts {
			if !a.has(b) {
				continue
			}
			j.hits = j.hits[:0]
			altAll, err := c.filterAlt(j, a)
			if err != nil {
				return err
			}
			if altAll {
				j.narrow(true, func(int) bool { return true })
			}
			j.merged = mergeRows(j.merged[:0], j.union, j.hits)
			j.union, j.merged = j.merged, j.union
		}
		j.hits = append(j.hits[:0], j.union...)
		all = false
		if len(j.hits) == 0 {
			return nil
		}
	}
	// The time column is a filter only for a block that straddles the
	// range; otherwise it is read only when the output needs it.
	if m.MinTime < c.from || m.MaxTime >= c.to {
		if err := decode(segment.ColTime); err != nil {
			return err
		}
		j.narrow(all, func(i int) bool { return v.Times[i] >= c.from && v.Times[i] < c.to })
		all = false
		if len(j.hits) == 0 {
			return nil
		}
	}
	if all {
		j.narrow(true, func(int) bool { return true })
	}
	if err := decode(c.need); err != nil {
		return err
	}
	if c.req.Desc {
		slices.Reverse(j.hits)
	}
	// Only the matching rows' values are read, not whole columns.
	var err error
	if c.need&segment.ColPath != 0 {
		if j.paths, err = v.PathsOfRows(j.hits); err != nil {
			return err
		}
	}
	for _, col := range []struct {
		c   segment.Columns
		at  func(int) (uint32, error)
		out *[]uint32
	}{{segment.ColDomain, v.DomainID, &j.doms}, {segment.ColUserAgent, v.UserAgentID, &j.uas}} {
		if c.need&col.c == 0 {
			continue
		}
		*col.out = (*col.out)[:0]
		for _, i := range j.hits {
			id, err := col.at(i)
			if err != nil {
				return err
			}
			*col.out = append(*col.out, id)
		}
	}
	return nil
}

// filterAlt narrows j.hits (empty on entry) to the rows of block j.b where
// every term of alternative a holds, one column at a time, most selective
// first. all reports that no term narrowed the rows (every row of the
// block is then a candidate and j.hits is not built); otherwise j.hits
// holds the matching rows in ascending order.
func (c *segCursor) filterAlt(j *blockJob, a *altPlan) (all bool, err error) {
	v := &j.v
	decode := func(col segment.Columns) error { return c.sr.DecodeBlock(j.b, col, v) }
	all = true
	if len(a.ipTerms) > 0 {
		if err := decode(segment.ColIP); err != nil {
			return false, err
		}
		if t := a.ipTerms[0]; len(a.ipTerms) == 1 && !t.Negate {
			// One prefix: its addresses are one run of the sorted
			// dictionary, found by binary search without building any.
			lo, hi := v.IPRange(t.Prefix)
			if lo == hi {
				return false, nil
			}
			j.narrowRange(all, uint32(lo), uint32(hi), v.IPIdx)
		} else {
			var any bool
			j.ipOK, any = markEntries(j.ipOK, v.NumIPs(), func(k int) bool {
				addr := v.IPAt(k)
				return allHold(a.ipTerms, func(t *Term) bool { return t.matchIP(addr) })
			})
			if !any {
				return false, nil
			}
			j.narrowBy(all, j.ipOK, v.IPIdx)
		}
		all = false
		if len(j.hits) == 0 {
			return false, nil
		}
	}
	if a.pathTerm != nil {
		// Each distinct path of the block is tested once. When none
		// matches, which is the usual case for a rare path, the block's
		// other columns are never decoded.
		if err := decode(segment.ColPath); err != nil {
			return false, err
		}
		n := v.NumPaths()
		j.pathOK = slices.Grow(j.pathOK[:0], n)[:n]
		any := false
		v.EachPath(func(k int, path []byte) {
			ok := true
			for ti, t := range a.pathTerm {
				if !t.matchBytes(path, a.needles[ti]) {
					ok = false
					break
				}
			}
			j.pathOK[k] = ok
			any = any || ok
		})
		if !any {
			j.hits = j.hits[:0]
			return false, nil
		}
		idx, err := v.PathIdx()
		if err != nil {
			return false, err
		}
		j.narrowBy(all, j.pathOK, idx)
		all = false
		if len(j.hits) == 0 {
			return false, nil
		}
	}
	// Domain and user-agent terms were evaluated per dictionary entry when
	// the segment was planned; rows look their answer up by id.
	for _, f := range []struct {
		ok  []bool
		col segment.Columns
		ids func() ([]uint32, error)
	}{{a.domainOK, segment.ColDomain, v.DomainIDs}, {a.uaOK, segment.ColUserAgent, v.UserAgentIDs}} {
		if f.ok == nil {
			continue
		}
		if err := decode(f.col); err != nil {
			return false, err
		}
		ids, err := f.ids()
		if err != nil {
			return false, err
		}
		j.narrowBy(all, f.ok, ids)
		all = false
		if len(j.hits) == 0 {
			return false, nil
		}
	}
	return all, nil
}

// mergeRows appends to dst the ascending union, without duplicates, of the
// ascending lists a and b (rows of a block, or blocks of a segment).
func mergeRows(dst, a, b []int) []int {
	i, k := 0, 0
	for i < len(a) || k < len(b) {
		switch {
		case k >= len(b) || i < len(a) && a[i] < b[k]:
			dst = append(dst, a[i])
			i++
		case i >= len(a) || b[k] < a[i]:
			dst = append(dst, b[k])
			k++
		default:
			dst = append(dst, a[i])
			i++
			k++
		}
	}
	return dst
}

// count returns the number of matches of the cursor's segment without
// building any record. A segment that lies wholly inside the time range is
// answered from its footer when the query's terms are all on one dictionary
// field (domain or user agent) and the segment stores row counts (format
// 2); otherwise its blocks are filtered as for a search.
func (c *segCursor) count() (int64, error) {
	if c.p == nil {
		return 0, nil
	}
	if n, ok := c.footerCount(); ok {
		return n, nil
	}
	var n int64
	if p := c.p; p.counts {
		// Blocks wholly inside the range count from the index; only the
		// ones that straddle it are filtered.
		var partial []int
		for i, e := range p.exact {
			if e >= 0 {
				n += int64(e)
			} else {
				partial = append(partial, p.blocks[i])
			}
		}
		p.blocks, p.exact, p.counts = partial, nil, false
	}
	for {
		ok, err := c.advance()
		if !ok {
			return n, err
		}
		n += int64(len(c.cur.hits))
		c.hi = len(c.cur.hits)
	}
}

// footerCount answers a count from the segment's row counts, if it can.
func (c *segCursor) footerCount() (int64, bool) {
	info := c.sr.Info()
	if info.Records == 0 || info.MinTime.UnixMilli() < c.from || info.MaxTime.UnixMilli() >= c.to {
		return 0, false
	}
	// Each row has one domain and one user agent: when every alternative
	// tests only the domain (or only the user agent), a row matches when
	// its id is marked by any of them, and the footer's row counts per id
	// add up to the count.
	var rows []uint64
	var field Field
	for _, a := range c.p.alts {
		f := Field("")
		switch {
		case a.ipTerms != nil || a.pathTerm != nil || a.domainOK != nil && a.uaOK != nil:
			return 0, false
		case a.domainOK != nil:
			f = FieldDomain
		case a.uaOK != nil:
			f = FieldUserAgent
		default:
			return info.Records, true // an alternative without terms
		}
		if field != "" && f != field {
			return 0, false
		}
		field = f
	}
	if field == FieldDomain {
		rows = c.sr.DomainRows()
	} else {
		rows = c.sr.UserAgentRows()
	}
	if rows == nil {
		return 0, false // format 1: no row counts
	}
	ok := make([]bool, len(rows))
	for _, a := range c.p.alts {
		marks := a.domainOK
		if field == FieldUserAgent {
			marks = a.uaOK
		}
		for id, hit := range marks {
			ok[id] = ok[id] || hit
		}
	}
	var n int64
	for id, hit := range ok {
		if hit {
			n += int64(rows[id])
		}
	}
	return n, true
}

// scanSegment calls fn for each matching record of sr, in time order, until
// fn returns false. Only the columns in need (plus those the filters read)
// are filled in the records fn receives; stats passes the one it groups by.
func scanSegment(ctx context.Context, sr *segment.Reader, req *Request, need segment.Columns, fn func(record.Record) bool) error {
	c := newSegCursor(ctx, sr, req, need, cursorOpts{})
	defer c.close()
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
//
// gate, when not nil, is called once the day is planned with the number of
// matches its segments certainly hold; it returns how many matches the
// search can still use from this day on (0: no limit), or skip when the
// days before it already give the whole limit.
func (e *Executor) streamDay(ctx context.Context, v *store.DayView, req *Request, opts cursorOpts,
	gate func(lower int) (budget int, skip bool), out chan<- []record.Record) error {
	before := func(a, b *mergeItem) bool {
		c := a.r.Time.Compare(b.r.Time)
		if req.Desc {
			c = -c
		}
		return c < 0 || c == 0 && a.src < b.src
	}
	// The head is unsorted but bounded by configuration: filter it, then
	// sort the indices of its matches.
	head := matchHead(v, req)
	slices.SortStableFunc(head, func(a, b int) int {
		c := v.Head[a].Time.Compare(v.Head[b].Time)
		if req.Desc {
			c = -c
		}
		return c
	})
	cursors := make([]*segCursor, len(v.Segments))
	for i, sr := range v.Segments {
		cursors[i] = newSegCursor(ctx, sr, req, segment.ColAll, opts)
	}
	// Jobs still filtering blocks ahead must stop before the segments can
	// be released; cancel (by the caller, on return) makes them quick.
	defer func() {
		for _, c := range cursors {
			c.close()
		}
	}()
	if gate != nil {
		lower := 0
		for _, c := range cursors {
			lower += c.lowerBound()
		}
		budget, skip := gate(lower)
		if skip {
			return nil
		}
		// Each source gives at most budget of the day's first matches, so
		// each may stop once it surely holds that many.
		for _, c := range cursors {
			c.budget = budget
		}
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
// it started has stopped. A purge that destroys a day of the search's
// snapshot after its reader grace ends it with a store.DayDestroyedError.
func (e *Executor) Run(ctx context.Context, req *Request, emit func(record.Record) error) (_ int64, err error) {
	snap, err := e.Source.Snapshot(req.From, req.To)
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
func (e *Executor) Count(ctx context.Context, req *Request) (int64, error) {
	var total atomic.Int64
	err := e.forEachSource(ctx, req, func(ctx context.Context, v *store.DayView, sr *segment.Reader) error {
		if sr == nil {
			total.Add(int64(len(matchHead(v, req))))
			return nil
		}
		c := newSegCursor(ctx, sr, req, 0, cursorOpts{})
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
func (e *Executor) CountIfCheap(ctx context.Context, req *Request) (n int64, ok bool, err error) {
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
		c := newSegCursor(ctx, sr, req, 0, cursorOpts{})
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

// dayMayMatch reports whether day v may hold a match of req: false when
// the day has no head and every alternative of the query has an ip: term
// naming an address or network that every segment's address filter rules
// out (see
// segment.Reader.MayHoldPrefix). It is a cheap pre-check; the planner still
// decides what to read.
func dayMayMatch(v *store.DayView, req *Request) bool {
	if len(v.Head) > 0 {
		return true // the head is filtered as it is
	}
	for _, alt := range req.Query.Alts {
		if altMayMatch(v, alt) {
			return true
		}
	}
	return false
}

// altMayMatch reports whether the day's segments may hold a record where
// every term of one alternative holds: false when one of its positive ip:
// terms is ruled out by every segment's address filter.
func altMayMatch(v *store.DayView, terms []Term) bool {
	for i := range terms {
		t := &terms[i]
		if t.Field != FieldIP || t.Negate {
			continue
		}
		may := false
		for _, sr := range v.Segments {
			if sr.MayHoldPrefix(t.Prefix) {
				may = true
				break
			}
		}
		if !may {
			return false
		}
	}
	return true
}

// matchHead returns the indexes of the matching records of a day's head.
func matchHead(v *store.DayView, req *Request) []int {
	var out []int
	for i := range v.Head {
		r := &v.Head[i]
		if !r.Time.Before(req.From) && r.Time.Before(req.To) && req.Query.Match(r) {
			out = append(out, i)
		}
	}
	return out
}

// each calls fn (concurrently, from several goroutines) for every match.
func (e *Executor) each(ctx context.Context, req *Request, need segment.Columns, fn func(record.Record) bool) error {
	return e.forEachSource(ctx, req, func(ctx context.Context, v *store.DayView, sr *segment.Reader) error {
		if sr == nil {
			for _, i := range matchHead(v, req) {
				fn(v.Head[i])
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
	snap, err := e.Source.Snapshot(req.From, req.To)
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
	jobs := make(chan job)
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	for w := 0; w < e.concurrency(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if ctx.Err() != nil {
					continue
				}
				if err := fn(ctx, j.v, j.sr); err != nil {
					errOnce.Do(func() { firstErr = err })
				}
			}
		}()
	}
	for _, v := range snap.Days {
		if !dayMayMatch(v, req) {
			continue
		}
		jobs <- job{v: v}
		for _, sr := range v.Segments {
			jobs <- job{v: v, sr: sr}
		}
	}
	close(jobs)
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
