package search

import (
	"context"
	"sync"
	"time"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
)

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
	// dictOnly says p holds the dictionary answers only (see
	// planSegment); schedule plans the blocks before it reads any.
	dictOnly bool
	// field and fieldOK are footerField's answer once asked (fieldDone):
	// a count asks it up to three times per segment.
	field              Field
	fieldOK, fieldDone bool

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
	// memo, when set, is shared by the cursors of one day's segments,
	// planned one after the other on one goroutine (termMemo).
	memo *termMemo
	// footer says the caller asks the footer first (footerCount,
	// footerRows): a segment whose footer can answer is planned without
	// its blocks, which are planned only if they are read after all.
	footer bool
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
	c := &segCursor{ctx: ctx, sr: sr, req: req, need: need,
		doms: sr.Domains(), uas: sr.UserAgents(), from: req.From.UnixMilli(), to: req.To.UnixMilli(), opts: opts}
	if opts.footer {
		_, c.dictOnly = c.footerField()
	}
	c.p = planSegment(sr, req, opts.memo, c.dictOnly)
	return c
}

// planBlocks completes a dictionary-only plan with the blocks to read.
func (c *segCursor) planBlocks() {
	if c.dictOnly {
		c.p, c.dictOnly = planSegment(c.sr, c.req, c.opts.memo, false), false
	}
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
	c.planBlocks()
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
	c.planBlocks()
	if c.p == nil {
		return 0, nil
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
	// Each row has one domain and one user agent: when every alternative
	// tests only the domain (or only the user agent), a row matches when
	// its id is marked by any of them, and the footer's row counts per id
	// add up to the count.
	field, ok := c.footerField()
	if !ok {
		return 0, false
	}
	if field == "" {
		return c.sr.Info().Records, true
	}
	// Summed in place: a count over a head sealed into many parts built
	// a slice of every entry's rows per part only to add it up.
	var n int64
	if field == FieldDomain && c.p != nil && len(c.p.alts) == 1 {
		rows, _, ok := c.footerTable(field)
		if !ok {
			return 0, false
		}
		for _, id := range c.p.alts[0].domainIDs {
			n += int64(rows[id])
		}
		return n, true
	}
	rows, marks, ok := c.footerMarks(field)
	if !ok {
		return 0, false
	}
	for id, r := range rows {
		if marks == nil || anyMarks(marks, id) {
			n += int64(r)
		}
	}
	return n, true
}

// anyMarks reports whether any of marks holds id.
func anyMarks(marks [][]bool, id int) bool {
	for _, m := range marks {
		if m[id] {
			return true
		}
	}
	return false
}

// footerField says whether the footer's row counts can answer for this
// segment: it lies wholly inside the range, and every alternative of the
// query tests only the domain or only the user agent, the same one for
// all (field), or nothing ("": every row matches). It reads the query,
// not the plan, so that newSegCursor can ask it before planning.
func (c *segCursor) footerField() (Field, bool) {
	if !c.fieldDone {
		c.field, c.fieldOK = c.askFooterField()
		c.fieldDone = true
	}
	return c.field, c.fieldOK
}

// askFooterField is footerField without the memo.
func (c *segCursor) askFooterField() (field Field, ok bool) {
	if !wholeInside(c.sr, c.from, c.to) {
		return "", false
	}
	for _, alt := range c.req.Query.Alts {
		if len(alt) == 0 {
			return "", true // an alternative without terms: every row
		}
		f := alt[0].Field
		for _, t := range alt {
			if t.Field != f {
				return "", false
			}
		}
		if f != FieldDomain && f != FieldUserAgent || field != "" && f != field {
			return "", false
		}
		field = f
	}
	return field, true
}

// wholeInside reports whether sr holds records and every one of them lies
// in [from, to) (Unix milliseconds): only then can its footer's counts,
// which cover the whole segment, answer a count.
func wholeInside(sr *segment.Reader, from, to int64) bool {
	info := sr.Info()
	return info.Records > 0 && info.MinTime.UnixMilli() >= from && info.MaxTime.UnixMilli() < to
}

// exactDomainCount answers a count of one exact domain (the query "domain:
// NAME" alone) over a segment that lies wholly inside the range from its
// footer, without a cursor or a plan: ok is false for any other query or
// segment, which the caller then counts the general way (segCursor.count
// gives the same answer). A day's head is sealed into many in-memory
// parts, and building a cursor and a plan for each was most of such a
// count over unflushed records (BenchmarkFreshData's domain count).
func exactDomainCount(sr *segment.Reader, req *Request) (n int64, ok bool) {
	if len(req.Query.Alts) != 1 || len(req.Query.Alts[0]) != 1 {
		return 0, false
	}
	t := &req.Query.Alts[0][0]
	if !lookedUpDomain(sr, []*Term{t}) || !wholeInside(sr, req.From.UnixMilli(), req.To.UnixMilli()) {
		return 0, false
	}
	rows := sr.DomainRows()
	if rows == nil {
		return 0, false // format 1: no row counts
	}
	if id, found := sr.DomainID(t.Value); found {
		return int64(rows[id]), true
	}
	return 0, true
}

// footerRows returns the matching rows per dictionary entry of field
// (FieldDomain or FieldUserAgent), from the footer alone: stats by domain
// or user agent over whole days then read no block. ok is false when the
// footer cannot answer (footerField), when the query tests the other
// field, or for a format-1 segment.
func (c *segCursor) footerRows(field Field) ([]uint64, bool) {
	rows, marks, ok := c.footerMarks(field)
	if !ok || marks == nil {
		return rows, ok
	}
	out := make([]uint64, len(rows))
	for id := range rows {
		if anyMarks(marks, id) {
			out[id] = rows[id]
		}
	}
	return out, true
}

// footerTable returns the footer's rows per entry of field when they can
// answer the query for this segment (ok), and whether every row matches
// (all). For a segment the plan found cannot match, rows is nil and ok
// true: nothing matches.
func (c *segCursor) footerTable(field Field) (rows []uint64, all, ok bool) {
	if c.p == nil {
		return nil, false, true // the plan found that nothing matches
	}
	tested, ok := c.footerField()
	if !ok || tested != "" && tested != field {
		return nil, false, false
	}
	rows = c.sr.DomainRows()
	if field == FieldUserAgent {
		rows = c.sr.UserAgentRows()
	}
	if rows == nil {
		return nil, false, false // format 1: no row counts
	}
	return rows, tested == "", true
}

// footerMarks returns the footer's rows per field entry and, unless every
// row matches (nil), each alternative's marks of the entries that match:
// footerRows' answer before it is put together.
func (c *segCursor) footerMarks(field Field) (rows []uint64, marks [][]bool, ok bool) {
	rows, all, ok := c.footerTable(field)
	if !ok || all || c.p == nil {
		return rows, nil, ok
	}
	for _, a := range c.p.alts {
		m := a.uaOK
		if field == FieldDomain {
			m = a.domainMarks(len(rows))
		}
		marks = append(marks, m)
	}
	return rows, marks, true
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
