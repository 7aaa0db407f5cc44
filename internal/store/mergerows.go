package store

import (
	"context"

	"github.com/retentiond/retentiond/internal/kmerge"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
)

// mergeInto streams the records of several time-sorted segments into w in
// time order (the one k-way merge, internal/kmerge; equal times in source
// order). Memory stays at one decoded block per source, whatever the size
// of the day. It stops with ctx's error once ctx is done (a purge of the
// day, or Close), checking every mergeCheckEvery records.
func mergeInto(ctx context.Context, w *segment.Writer, srcs []*segment.Reader) error {
	_, _, err := mergeWithout(ctx, w, srcs, nil)
	return err
}

// mergeWithout is mergeInto leaving out the records drop (if set) returns
// true for (an erasure): it returns how many were written and left out.
func mergeWithout(ctx context.Context, w *segment.Writer, srcs []*segment.Reader, drop func(*record.Record) bool) (kept, removed int64, err error) {
	pulls := make([]kmerge.Source[record.Record], len(srcs))
	for i, r := range srcs {
		pulls[i] = r.Cursor().Next
	}
	m := kmerge.New(compareTime, pulls...)
	// One record for the whole merge: drop and w.Add take its address,
	// which moves it to the heap, once rather than once per record.
	var rec record.Record
	for n := 0; ; n++ {
		if n%mergeCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return kept, removed, err
			}
		}
		var ok bool
		var err error
		rec, ok, err = m.Next()
		if err != nil || !ok {
			return kept, removed, err
		}
		if drop != nil && drop(&rec) {
			removed++
			continue
		}
		if err := w.Add(&rec); err != nil {
			return kept, removed, err
		}
		kept++
	}
}

// compareTime orders records by time, oldest first.
func compareTime(a, b record.Record) int { return a.Time.Compare(b.Time) }

// mergeCheckEvery is how many records a merge writes between two looks at
// its context: often enough to stop within milliseconds, rarely enough to
// cost nothing.
const mergeCheckEvery = 4096
