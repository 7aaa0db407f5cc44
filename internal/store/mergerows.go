package store

import (
	"container/heap"
	"context"
	"iter"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
)

// mergeInto streams the records of several time-sorted segments into w in
// time order. Memory stays at one decoded block per source, whatever the
// size of the day. It stops with ctx's error once ctx is done (a purge of
// the day, or Close), checking every mergeCheckEvery records.
func mergeInto(ctx context.Context, w *segment.Writer, srcs []*segment.Reader) error {
	h := make(mergeHeap, 0, len(srcs))
	defer func() {
		for _, c := range h {
			c.stop()
		}
	}()
	for _, r := range srcs {
		next, stop := iter.Pull2(r.Iter())
		c := &cursor{next: next, stop: stop}
		ok, err := c.advance()
		if err != nil {
			stop()
			return err
		}
		if ok {
			h = append(h, c)
		} else {
			stop()
		}
	}
	heap.Init(&h)
	for n := 0; len(h) > 0; n++ {
		if n%mergeCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		c := h[0]
		if err := w.Add(&c.cur); err != nil {
			return err
		}
		ok, err := c.advance()
		if err != nil {
			return err
		}
		if ok {
			heap.Fix(&h, 0)
		} else {
			c.stop()
			heap.Pop(&h)
		}
	}
	return nil
}

// mergeCheckEvery is how many records a merge writes between two looks at
// its context: often enough to stop within milliseconds, rarely enough to
// cost nothing.
const mergeCheckEvery = 4096

type cursor struct {
	next func() (record.Record, error, bool)
	stop func()
	cur  record.Record
}

func (c *cursor) advance() (bool, error) {
	r, err, ok := c.next()
	if !ok {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	c.cur = r
	return true, nil
}

type mergeHeap []*cursor

func (h mergeHeap) Len() int           { return len(h) }
func (h mergeHeap) Less(i, j int) bool { return h[i].cur.Time.Before(h[j].cur.Time) }
func (h mergeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)        { *h = append(*h, x.(*cursor)) }
func (h *mergeHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}
