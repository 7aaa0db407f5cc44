package store

import (
	"slices"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/record"
)

// TestRecords checks the chunked run of records against a plain slice
// through every operation the head uses: add, prefix, view, drop, At, All
// and Chunks, at sizes around the chunk boundaries.
func TestRecords(t *testing.T) {
	mk := func(i int) record.Record { return record.Record{Time: time.UnixMilli(int64(i)), Path: "/"} }
	check := func(t *testing.T, rs Records, want []int) {
		t.Helper()
		if rs.Len() != len(want) {
			t.Fatalf("Len = %d, want %d", rs.Len(), len(want))
		}
		for i, w := range want {
			if got := rs.At(i).Time.UnixMilli(); got != int64(w) {
				t.Fatalf("At(%d) = %d, want %d", i, got, w)
			}
		}
		var all []int
		for r := range rs.All() {
			all = append(all, int(r.Time.UnixMilli()))
		}
		var chunked []int
		for _, c := range rs.Chunks() {
			for _, r := range c {
				chunked = append(chunked, int(r.Time.UnixMilli()))
			}
		}
		if !slices.Equal(all, want) || !slices.Equal(chunked, want) {
			t.Fatalf("All or Chunks differ from At")
		}
	}
	for _, c := range []struct {
		name          string
		n, drop, more int
	}{
		{"empty", 0, 0, 0},
		{"small", 10, 3, 5},
		{"one chunk", recordChunk, recordChunk - 1, 2},
		{"across chunks", 2*recordChunk + 17, recordChunk + 3, recordChunk},
		{"drop everything", 2 * recordChunk, 2 * recordChunk, 9},
		{"drop at a boundary", 3 * recordChunk, recordChunk, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var rs Records
			var want []int
			for i := range c.n {
				rs.add(mk(i))
				want = append(want, i)
			}
			check(t, rs, want)
			before := rs.view()
			p := rs.prefix(c.drop)
			check(t, p, want[:c.drop])
			rs = rs.drop(c.drop)
			for i := range c.more {
				rs.add(mk(c.n + i))
				want = append(want, c.n+i)
			}
			check(t, rs, want[c.drop:])
			check(t, before, want[:c.n])
			check(t, p, want[:c.drop])
			check(t, RecordsOf(slices.Collect(rs.All())), want[c.drop:])
		})
	}
}
