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
	slices.SortStableFunc(head, func(a, b int) int { return req.compareTime(*v.Head.At(a), *v.Head.At(b)) })
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
	// Source 0 is the head, source i+1 the segment i: equal times come
	// out in that order.
	srcs := make([]kmerge.Source[record.Record], 0, len(cursors)+1)
	srcs = append(srcs, func() (record.Record, bool, error) {
		if len(head) == 0 {
			return record.Record{}, false, nil
		}
		r := *v.Head.At(head[0])
		head = head[1:]
		return r, true, nil
	})
	for _, g := range chains(v.Segments) {
		srcs = append(srcs, chain(cursors[g[0]:g[1]], req.Desc))
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
		batch = append(batch, r)
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

// chain returns a source that yields the matches of cs, segments in time
// order (chains), one cursor after the other: newest first from the last.
func chain(cs []*segCursor, desc bool) kmerge.Source[record.Record] {
	if len(cs) == 1 {
		return cs[0].next
	}
	i, step := 0, 1
	if desc {
		i, step = len(cs)-1, -1
	}
	return func() (record.Record, bool, error) {
		for ; i >= 0 && i < len(cs); i += step {
			if r, ok, err := cs[i].next(); ok || err != nil {
				return r, ok, err
			}
		}
		return record.Record{}, false, nil
	}
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
func (req *Request) compareTime(a, b record.Record) int {
	if req.Desc {
		return b.Time.Compare(a.Time)
	}
	return a.Time.Compare(b.Time)
}
