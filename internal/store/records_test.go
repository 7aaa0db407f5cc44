package store

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
)

// TestRecords checks the chunked run of records against a plain slice
// through every operation the head uses: add (and addKnown, whose numbers
// must follow their records), prefix, view, drop, At, All and Chunks, at
// sizes around the chunk boundaries.
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
		// Records filled with addKnown carry each record's numbers, in
		// chunks of the same lengths as its records.
		if rs.known == nil {
			if rs.knownChunks() != nil {
				t.Fatal("numbers without addKnown")
			}
			return
		}
		var known []int
		for ci, c := range rs.knownChunks() {
			if len(c) != len(rs.Chunks()[ci]) {
				t.Fatalf("chunk %d: %d numbers for %d records", ci, len(c), len(rs.Chunks()[ci]))
			}
			for _, k := range c {
				known = append(known, int(k.Domain))
			}
		}
		if !slices.Equal(known, want) {
			t.Fatalf("numbers %v, want %v", known, want)
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
		for _, withKnown := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/known=%v", c.name, withKnown), func(t *testing.T) {
				var rs Records
				var want []int
				add := func(i int) {
					if withKnown {
						rs.addKnown(mk(i), segment.Known{Domain: uint32(i), UserAgent: uint32(i)})
					} else {
						rs.add(mk(i))
					}
				}
				for i := range c.n {
					add(i)
					want = append(want, i)
				}
				check(t, rs, want)
				before := rs.view()
				p := rs.prefix(c.drop)
				check(t, p, want[:c.drop])
				rs = rs.drop(c.drop)
				for i := range c.more {
					add(c.n + i)
					want = append(want, c.n+i)
				}
				check(t, rs, want[c.drop:])
				check(t, before, want[:c.n])
				check(t, p, want[:c.drop])
				check(t, RecordsOf(slices.Collect(rs.All())), want[c.drop:])
			})
		}
	}
}

// TestRecycleClearsChunks: a chunk given back for reuse keeps no record
// (its strings would stay alive in the pool), and only whole chunks of
// recordChunk records go back.
func TestRecycleClearsChunks(t *testing.T) {
	var rs Records
	for i := range 3*recordChunk + 5 {
		rs.addKnown(record.Record{Domain: "d", Path: fmt.Sprintf("/%d", i)}, segment.Known{Domain: 1, UserAgent: 2})
	}
	rest, gone := rs.dropChunks(2*recordChunk + 10)
	if gone != 2 || rest.Len() != recordChunk+5-10 || rest.At(0).Path != fmt.Sprint("/", 2*recordChunk+10) {
		t.Fatalf("dropChunks: %d chunks gone, rest of %d from %q", gone, rest.Len(), rest.At(0).Path)
	}
	rs.recycle(gone)
	for k := 0; k < gone; k++ {
		c := rs.chunks[k][:recordChunk]
		if cap(rs.chunks[k]) == recordChunk {
			for i := range c {
				if c[i] != (record.Record{}) {
					t.Fatalf("chunk %d record %d kept %q", k, i, c[i].Path)
				}
			}
		}
	}
	if rest.At(rest.Len()-1).Path != fmt.Sprint("/", 3*recordChunk+4) {
		t.Fatal("recycling changed the records kept")
	}
}

// TestShareNumbersStrings: the head numbers equal strings alike whether
// it is given the same copy again, another copy of the same bytes, or an
// empty string, and gives back its shared copy.
func TestShareNumbersStrings(t *testing.T) {
	// Three heads of one store share its cache of numbers by address
	// (shareCache), and one has none; each must number every string the
	// same way every time, whatever the others did to the cache's slots.
	cache := new(shareCache)
	heads := []*head{newHead(), newHead(), newHead(), newHead()}
	for _, h := range heads[:3] {
		h.shares = cache
	}
	rng := rand.New(rand.NewPCG(7, 8))
	var pool []string
	for i := range 3000 {
		pool = append(pool, fmt.Sprintf("string %d %s", i, strings.Repeat("x", i%40)))
	}
	pool = append(pool, "", strings.Repeat("long ", 100)) // not cached: empty, and too long
	want := make([]map[string]uint32, len(heads))
	for i := range want {
		want[i] = map[string]uint32{}
	}
	for i := range 400_000 {
		hi := rng.IntN(len(heads))
		h := heads[hi]
		s := pool[rng.IntN(len(pool))]
		switch rng.IntN(4) {
		case 0:
			s = strings.Clone(s) // the same bytes elsewhere
		case 1:
			s = s[:len(s)/2] // other bytes at the same address
		}
		got, num, _ := h.share(s, h.lastDom)
		h.lastDom = num
		h.n++
		if got != s || h.names[num] != s {
			t.Fatalf("step %d, head %d: %q shared as %q, number %d (%q)", i, hi, s, got, num, h.names[num])
		}
		if w, ok := want[hi][s]; ok && w != num {
			t.Fatalf("step %d, head %d: %q numbered %d, earlier %d", i, hi, s, num, w)
		}
		want[hi][s] = num
	}
	for i, h := range heads {
		if len(h.names) != len(want[i]) {
			t.Fatalf("head %d: %d names for %d distinct strings", i, len(h.names), len(want[i]))
		}
	}
}
