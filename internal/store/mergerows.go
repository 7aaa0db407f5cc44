package store

import (
	"context"
	"iter"

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
	pulls := make([]kmerge.Source[record.Record], len(srcs))
	for i, r := range srcs {
		next, stop := iter.Pull2(r.Iter())
		defer stop()
		pulls[i] = func() (record.Record, bool, error) {
			rec, err, ok := next()
			if !ok || err != nil {
				return record.Record{}, false, err
			}
			return rec, true, nil
		}
	}
	m := kmerge.New(compareTime, pulls...)
	for n := 0; ; n++ {
		if n%mergeCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rec, ok, err := m.Next()
		if err != nil || !ok {
			return err
		}
		if err := w.Add(&rec); err != nil {
			return err
		}
	}
}

// compareTime orders records by time, oldest first.
func compareTime(a, b record.Record) int { return a.Time.Compare(b.Time) }

// mergeCheckEvery is how many records a merge writes between two looks at
// its context: often enough to stop within milliseconds, rarely enough to
// cost nothing.
const mergeCheckEvery = 4096
