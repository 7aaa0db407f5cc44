package store

import (
	"context"
	"slices"

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
	// The writer is told which strings it has seen by number (AddKnown):
	// the numbers of the head the sources were sealed from when they all
	// share one (commonSpace), so that equal strings of different parts
	// are looked up once; else the sources' dictionary ids, offset so
	// that no two sources share a number.
	pulls := make([]kmerge.Source[segment.Row], len(srcs))
	shared := commonSpace(srcs) != 0
	var domOff, uaOff uint32
	for i, r := range srcs {
		cur := r.Cursor()
		// Each source keeps its current row here, where the merge reads
		// it by address until it asks for the next.
		row := new(segment.Row)
		if shared {
			nums := r.Numbers()
			pulls[i] = func() (*segment.Row, bool, error) {
				var ok bool
				var err error
				*row, ok, err = cur.NextRow()
				if ok {
					row.Domain, row.UserAgent = nums.Domains[row.Domain], nums.UserAgents[row.UserAgent]
				}
				return row, ok, err
			}
			continue
		}
		dOff, uOff := domOff, uaOff
		pulls[i] = func() (*segment.Row, bool, error) {
			var ok bool
			var err error
			*row, ok, err = cur.NextRow()
			row.Domain += dOff
			row.UserAgent += uOff
			return row, ok, err
		}
		domOff += uint32(len(r.Domains()))
		uaOff += uint32(len(r.UserAgents()))
	}
	m := kmerge.New(compareRowTime, pulls...)
	for n := 0; ; n++ {
		if n%mergeCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return kept, removed, err
			}
		}
		row, ok, err := m.Next()
		if err != nil || !ok {
			return kept, removed, err
		}
		if drop != nil && drop(&row.Record) {
			removed++
			continue
		}
		if err := w.AddKnown(&row.Record, row.Domain, row.UserAgent); err != nil {
			return kept, removed, err
		}
		kept++
	}
}

// commonSpace returns the numbering (segment.Numbers.Space) that every
// source carries with a number for every dictionary entry, 0 when they do
// not all share one.
func commonSpace(srcs []*segment.Reader) uint64 {
	var space uint64
	for i, r := range srcs {
		n := r.Numbers()
		if n == nil || n.Space == 0 || i > 0 && n.Space != space ||
			slices.Contains(n.Domains, segment.NoNumber) || slices.Contains(n.UserAgents, segment.NoNumber) {
			return 0
		}
		space = n.Space
	}
	return space
}

// compareRowTime orders rows by time, oldest first.
func compareRowTime(a, b *segment.Row) int { return a.Record.Time.Compare(b.Record.Time) }

// mergeCheckEvery is how many records a merge writes between two looks at
// its context: often enough to stop within milliseconds, rarely enough to
// cost nothing.
const mergeCheckEvery = 4096
