package search

import (
	"context"
	"slices"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
	"github.com/retentiond/retentiond/internal/store"
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
