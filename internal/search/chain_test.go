package search

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
	"github.com/retentiond/retentiond/internal/store"
)

// minutesSegment writes a segment with one record per minute from minute
// lo to minute hi (inclusive) of start's day; lo > hi gives an empty one.
func minutesSegment(t *testing.T, lo, hi int, blockRows int) string {
	t.Helper()
	var recs []record.Record
	for m := lo; m <= hi; m++ {
		recs = append(recs, record.Record{Time: start.Add(time.Duration(m) * time.Minute), Domain: "example.nl",
			Path: fmt.Sprintf("/p%d", m), UserAgent: "ua", IP: netip.AddrFrom4([4]byte{192, 0, 2, byte(m % 7)})})
	}
	p := filepath.Join(t.TempDir(), fmt.Sprintf("%d-%d.seg", lo, hi))
	if _, err := segment.Write(p, recs, segment.Options{BlockRows: blockRows}); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestChains(t *testing.T) {
	for _, c := range []struct {
		name  string
		spans [][2]int // minutes of each segment, in order
		want  [][2]int
	}{
		{"one", [][2]int{{0, 9}}, [][2]int{{0, 1}}},
		{"one after another", [][2]int{{0, 9}, {10, 19}, {20, 29}}, [][2]int{{0, 3}}},
		{"overlap", [][2]int{{0, 9}, {5, 19}, {20, 29}}, [][2]int{{0, 1}, {1, 3}}},
		{"equal times", [][2]int{{0, 9}, {9, 19}}, [][2]int{{0, 1}, {1, 2}}},
		{"out of order", [][2]int{{10, 19}, {0, 9}}, [][2]int{{0, 1}, {1, 2}}},
		{"an empty segment does not bridge an overlap", [][2]int{{0, 9}, {1, 0}, {5, 19}}, [][2]int{{0, 2}, {2, 3}}},
		{"an empty segment joins a run", [][2]int{{0, 9}, {1, 0}, {10, 19}}, [][2]int{{0, 3}}},
		{"only empty", [][2]int{{1, 0}, {1, 0}}, [][2]int{{0, 2}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var segs []*segment.Reader
			for _, s := range c.spans {
				sr, err := segment.Open(minutesSegment(t, s[0], s[1], 100))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { sr.Close() })
				segs = append(segs, sr)
			}
			if got := chains(segs); !slices.Equal(got, c.want) {
				t.Fatalf("chains = %v, want %v", got, c.want)
			}
		})
	}
}

// TestChainedSegmentsStopEarly checks that a limited search of a day held
// in segments one after another (a sealed head's parts) decodes blocks of
// the first segment only, or of the last one for newest first, and returns
// the records a single file would.
func TestChainedSegmentsStopEarly(t *testing.T) {
	var segs []*segment.Reader
	var logs readLogs
	for k := range 4 {
		sr, log := openLogged(t, minutesSegment(t, 300*k, 300*k+299, 50), segment.OpenOptions{})
		segs = append(segs, sr)
		logs = append(logs, log)
	}
	src := &fakeSource{days: []*store.DayView{{Day: start, Segments: segs}}}
	q, err := Parse("ip:192.0.2.3")
	if err != nil {
		t.Fatal(err)
	}
	for _, desc := range []bool{false, true} {
		t.Run(fmt.Sprintf("desc=%v", desc), func(t *testing.T) {
			before := logs.mark()
			var got []time.Time
			_, err := (&Executor{Source: src}).Run(context.Background(),
				&Request{Query: q, From: start, To: start.AddDate(0, 0, 1), Desc: desc, Limit: 10},
				func(r record.Record) error { got = append(got, r.Time); return nil })
			if err != nil {
				t.Fatal(err)
			}
			read := logs.blocksSince(t, before)
			first := 0
			if desc {
				first = len(read) - 1
			}
			if read[first] == 0 {
				t.Fatalf("no block of the first segment was read: %v", read)
			}
			for k := range read {
				if k != first && read[k] != 0 {
					t.Fatalf("segment %d decoded %d blocks; only segment %d holds the first 10 matches (all: %v)", k, read[k], first, read)
				}
			}
			var want []time.Time
			for m := 3; m < 1200; m += 7 {
				want = append(want, start.Add(time.Duration(m)*time.Minute))
			}
			if desc {
				slices.Reverse(want)
			}
			if !slices.Equal(got, want[:10]) {
				t.Fatalf("got %v, want %v", got, want[:10])
			}
		})
	}
}

// TestPropertyChainedSegments runs random queries, limited and not, oldest
// and newest first, over days held as a head and three segments one after
// another in time (as a sealed head's parts are), and compares every
// answer with brute force: reading a run of segments one after the other,
// opening each only when needed, and sharing the user-agent answers
// between them (termMemo) must not change one.
func TestPropertyChainedSegments(t *testing.T) {
	all, byDay := generateDays(9, 4000)
	src := &fakeSource{}
	rng := rand.New(rand.NewPCG(11, 12))
	for d := range 4 {
		day := start.AddDate(0, 0, d)
		recs := byDay[day]
		slices.SortStableFunc(recs, func(a, b record.Record) int { return a.Time.Compare(b.Time) })
		v := &store.DayView{Day: day}
		var head []record.Record
		var runs [3][]record.Record
		for i, r := range recs {
			if rng.IntN(5) == 0 {
				head = append(head, r)
				continue
			}
			runs[min(3*i/len(recs), 2)] = append(runs[min(3*i/len(recs), 2)], r)
		}
		v.Head = store.RecordsOf(head)
		for k, run := range runs {
			p := filepath.Join(t.TempDir(), fmt.Sprintf("%d-%d.seg", d, k))
			// As the store's sealed parts are, some with small IP index
			// pages and sorted domains (store.sealOptions).
			if _, err := segment.Write(p, run, segment.Options{BlockRows: 61, IPPageEntries: []int{0, 1, 7}[k]}); err != nil {
				t.Fatal(err)
			}
			sr, err := segment.OpenWith(p, segment.OpenOptions{IndexDomains: k > 0})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sr.Close() })
			v.Segments = append(v.Segments, sr)
		}
		if got := chains(v.Segments); len(got) != 1 {
			t.Fatalf("day %d: chains %v, want the three segments as one run", d, got)
		}
		src.days = append(src.days, v)
	}
	propertyAgainstBruteForce(t, src, all, rand.New(rand.NewPCG(13, 14)), 150)
}
