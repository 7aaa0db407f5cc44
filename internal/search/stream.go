package search

import (
	"context"
	"math"
	"slices"

	"github.com/retentiond/retentiond/internal/kmerge"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
	"github.com/retentiond/retentiond/internal/store"
)

// streamDay sends the matches of one day to out in batches, in req's time
// order, at most req.Limit of them when a limit is set. It merges the
// day's sources (the filtered and sorted head, and a cursor per segment)
// with the one k-way merge (internal/kmerge), so only one decoded block
// per segment is held. It returns when done, on error, or when ctx is
// cancelled.
//
// gate, when not nil, is called once the day is planned with the number of
// matches its segments certainly hold; it returns how many matches the
// search can still use from this day on (0: no limit), or skip when the
// days before it already give the whole limit.
func (e *Executor) streamDay(ctx context.Context, v *store.DayView, req *Request, opts cursorOpts,
	gate func(lower int) (budget int, skip bool), out chan<- []record.Record) error {
	// The head is unsorted but bounded by configuration: filter it, then
	// sort the indices of its matches.
	head := matchHead(v, req)
	slices.SortStableFunc(head, func(a, b int) int { return req.compareTime(v.Head.At(a), v.Head.At(b)) })
	// A segment's cursor is made (and the segment planned: its
	// dictionaries matched against the terms) when first needed: a
	// limited search of a run of segments (chains) often never needs the
	// later ones, and planning a sealed part costs a scan of its
	// user-agent or domain dictionary for such terms.
	cursors := make([]*segCursor, len(v.Segments))
	budget := 0
	if len(v.Segments) > 1 {
		opts.memo = newTermMemo(req) // one segment would only pay for it
	}
	open := func(i int) *segCursor {
		if cursors[i] == nil {
			cursors[i] = newSegCursor(ctx, v.Segments[i], req, segment.ColAll, opts)
			cursors[i].budget = budget
		}
		return cursors[i]
	}
	// Jobs still filtering blocks ahead must stop before the segments can
	// be released; cancel (by the caller, on return) makes them quick.
	defer func() {
		for _, c := range cursors {
			if c != nil {
				c.close()
			}
		}
	}()
	if gate != nil {
		// Lower bounds come from the index's row counts of ip: terms
		// only (plan.exact); other queries need no plan to give 0.
		lower := 0
		if hasIPTerm(req.Query) {
			for i := range cursors {
				lower += open(i).lowerBound()
			}
		}
		b, skip := gate(lower)
		if skip {
			return nil
		}
		// Each source gives at most budget of the day's first matches, so
		// each may stop once it surely holds that many.
		budget = b
		for _, c := range cursors {
			if c != nil {
				c.budget = budget
			}
		}
	}
	// Source 0 is the head, source i+1 the segment i: equal times come
	// out in that order.
	srcs := make([]kmerge.Source[record.Record], 0, len(cursors)+1)
	srcs = append(srcs, func() (*record.Record, bool, error) {
		if len(head) == 0 {
			return nil, false, nil
		}
		r := v.Head.At(head[0]) // the view's records do not change
		head = head[1:]
		return r, true, nil
	})
	for _, g := range chains(v.Segments) {
		srcs = append(srcs, chain(g[0], g[1], open, req.Desc))
	}
	m := kmerge.New(req.compareTime, srcs...)
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
	for req.Limit <= 0 || n < req.Limit {
		r, ok, err := m.Next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		batch = append(batch, *r)
		e.inflight(1)
		n++
		if len(batch) == batchSize {
			if err := send(batch); err != nil {
				return err
			}
			batch = make([]record.Record, 0, batchSize)
		}
	}
	if len(batch) > 0 {
		return send(batch)
	}
	return nil
}

// chains splits a day's segments into runs of consecutive segments whose
// times follow one another without overlap (each ends before the next
// begins), as [start, end) index pairs. The parts a head is sealed into,
// and the files its flushes write, are such runs: a run is read as one
// source, one segment after the other, where merging its segments would
// start every one of them (its cursor decodes its first blocks to offer
// its first record), so that a limited search of fresh data stops in the
// first segments as it does in a single file (BenchmarkFreshData). Equal
// times never span two segments of a run, so the order of equal times,
// by segment, is kept.
func chains(segs []*segment.Reader) [][2]int {
	var out [][2]int
	start := 0
	last := int64(math.MinInt64) // the run's latest time so far
	for i, sr := range segs {
		n := sr.NumBlocks()
		if n == 0 { // an empty segment joins any run
			continue
		}
		if i > start && sr.Block(0).MinTime <= last {
			out = append(out, [2]int{start, i})
			start = i
		}
		last = sr.Block(n - 1).MaxTime
	}
	if len(segs) > 0 {
		out = append(out, [2]int{start, len(segs)})
	}
	return out
}

// chain returns a source that yields the matches of segments lo to hi-1,
// in time order (chains), one cursor after the other (newest first from
// the last), opening each only when the one before it is exhausted.
func chain(lo, hi int, open func(int) *segCursor, desc bool) kmerge.Source[record.Record] {
	i, step := lo, 1
	if desc {
		i, step = hi-1, -1
	}
	var r record.Record // the current match, until the next call
	return func() (*record.Record, bool, error) {
		for ; i >= lo && i < hi; i += step {
			var ok bool
			var err error
			if r, ok, err = open(i).next(); ok || err != nil {
				return &r, ok, err
			}
		}
		return nil, false, nil
	}
}

// hasIPTerm reports whether some alternative of q has an ip: term, the
// only terms whose index row counts give a search a lower bound.
func hasIPTerm(q *Query) bool {
	for _, alt := range q.Alts {
		for _, t := range alt {
			if t.Field == FieldIP {
				return true
			}
		}
	}
	return false
}

// matchHead returns the indexes of the matching records of a day's head.
func matchHead(v *store.DayView, req *Request) []int {
	var out []int
	i := -1
	for _, c := range v.Head.Chunks() {
		for k := range c {
			i++
			r := &c[k]
			if !r.Time.Before(req.From) && r.Time.Before(req.To) && req.Query.Match(r) {
				out = append(out, i)
			}
		}
	}
	return out
}

// compareTime orders records in req's time order: oldest first, or newest
// first for Desc.
func (req *Request) compareTime(a, b *record.Record) int {
	if req.Desc {
		return b.Time.Compare(a.Time)
	}
	return a.Time.Compare(b.Time)
}
