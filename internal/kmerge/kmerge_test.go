package kmerge

import (
	"cmp"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

type item struct {
	key int
	src int // which source it came from
	pos int // its position in that source
}

// TestMergeMatchesStableSort is the property: for random sorted sources
// (many equal keys, empty sources, ascending and descending), the merge
// equals a stable sort of the sources' concatenation, which is exactly
// "in order, equal items in source order". Half the sources hand out
// every item in one reused variable, as the store's segment cursors do,
// so a merger that advanced a source before its item was taken would
// fail it.
func TestMergeMatchesStableSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 500; round++ {
		desc := round%2 == 1
		order := func(a, b item) int {
			if desc {
				return cmp.Compare(b.key, a.key)
			}
			return cmp.Compare(a.key, b.key)
		}
		k := rng.IntN(8)
		var all []item
		srcs := make([]Source[item], k)
		for s := 0; s < k; s++ {
			n := rng.IntN(30)
			its := make([]item, n)
			for i := range its {
				its[i] = item{key: rng.IntN(20), src: s}
			}
			slices.SortStableFunc(its, order)
			for i := range its {
				its[i].pos = i
			}
			all = append(all, its...)
			srcs[s] = Slice(its)
			if s%2 == 1 {
				srcs[s] = reusing(its)
			}
		}
		want := slices.Clone(all)
		slices.SortStableFunc(want, order)
		m := New(func(a, b *item) int { return order(*a, *b) }, srcs...)
		var got []item
		each(t, m, func(v *item) { got = append(got, *v) })
		if !slices.Equal(got, want) {
			t.Fatalf("round %d (desc %v): merge\n%v\nwant\n%v", round, desc, got, want)
		}
	}
}

// reusing returns a Source of its that hands out each item in the same
// variable, valid only until its next call.
func reusing[T any](its []T) Source[T] {
	var cur T
	return func() (*T, bool, error) {
		if len(its) == 0 {
			return nil, false, nil
		}
		cur, its = its[0], its[1:]
		return &cur, true, nil
	}
}

func TestMergeSourceError(t *testing.T) {
	boom := errors.New("boom")
	calls := 0
	five := 5
	bad := func() (*int, bool, error) {
		calls++
		if calls > 1 {
			return nil, false, boom
		}
		return &five, true, nil
	}
	for _, tc := range []struct {
		name string
		srcs []Source[int]
		ok   int // items returned before the error
	}{
		{"at start", []Source[int]{func() (*int, bool, error) { return nil, false, boom }}, 0},
		// 1, 2 and 5 come out; advancing bad past 5 fails the next call.
		{"mid-stream", []Source[int]{Slice([]int{1, 2}), bad}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls = 0
			m := New(func(a, b *int) int { return cmp.Compare(*a, *b) }, tc.srcs...)
			n := 0
			for {
				_, ok, err := m.Next()
				if err != nil {
					if !errors.Is(err, boom) {
						t.Fatalf("err %v", err)
					}
					break
				}
				if !ok {
					t.Fatal("merge ended without the source's error")
				}
				n++
			}
			if n != tc.ok {
				t.Fatalf("%d items before the error, want %d", n, tc.ok)
			}
		})
	}
}

// BenchmarkMergeRows merges eight sorted streams of 100,000 items the size
// of a store merge's rows (a record and two numbers, 104 bytes), whose
// keys interleave as the parts of a day sealed from two shippers' batches
// do, and reports ns per item.
func BenchmarkMergeRows(b *testing.B) {
	type row struct {
		key  int64
		rest [96]byte
	}
	const k, n = 8, 100_000
	streams := make([][]row, k)
	for s := range streams {
		streams[s] = make([]row, n)
		for i := range streams[s] {
			streams[s][i].key = int64(i*k+s) + int64(i%97)
			streams[s][i].rest[0] = byte(s) // the payload a row carries
		}
		slices.SortFunc(streams[s], func(a, b row) int { return cmp.Compare(a.key, b.key) })
	}
	for b.Loop() {
		srcs := make([]Source[row], k)
		for s := range srcs {
			srcs[s] = Slice(streams[s])
		}
		each(b, New(func(a, b *row) int { return cmp.Compare(a.key, b.key) }, srcs...), func(*row) {})
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*k*n), "ns/item")
	b.ReportMetric(0, "ns/op")
}

// each calls fn for every item m yields, in order, and fails tb on an error.
func each[T any](tb testing.TB, m *Merger[T], fn func(*T)) {
	tb.Helper()
	for {
		v, ok, err := m.Next()
		if err != nil {
			tb.Fatal(err)
		}
		if !ok {
			return
		}
		fn(v)
	}
}
