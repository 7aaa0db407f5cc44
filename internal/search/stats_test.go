package search

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
	"github.com/retentiond/retentiond/internal/store"
)

// highCardinality builds one day of n records with n-heavy distinct paths
// (a scanner's random URLs) and heavy paths that each occur many times,
// spread at random positions so that most of them arrive after the bound is
// reached. A quarter of the records is in a segment, the rest in the head.
// It returns the source and the true count of every path.
func highCardinality(t testing.TB, n int, heavy map[string]int) (*fakeSource, map[string]int64) {
	t.Helper()
	paths := make([]string, 0, n)
	for p, c := range heavy {
		for range c {
			paths = append(paths, p)
		}
	}
	for i := 0; len(paths) < n; i++ {
		paths = append(paths, fmt.Sprintf("/scan/%08x", i))
	}
	rng := rand.New(rand.NewPCG(5, 6))
	rng.Shuffle(len(paths), func(i, j int) { paths[i], paths[j] = paths[j], paths[i] })
	want := map[string]int64{}
	recs := make([]record.Record, len(paths))
	ip := netip.MustParseAddr("192.0.2.7")
	for i, p := range paths {
		want[p]++
		recs[i] = record.Record{Time: start.Add(time.Duration(i) * (24 * time.Hour / time.Duration(n))), Domain: "shop.example.nl",
			Path: p, UserAgent: "scanner", IP: ip}
	}
	seg := filepath.Join(t.TempDir(), "day.seg")
	if _, err := segment.Write(seg, recs[:n/4], segment.Options{BlockRows: 4096}); err != nil {
		t.Fatal(err)
	}
	sr, err := segment.Open(seg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sr.Close() })
	return &fakeSource{days: []*store.DayView{{Day: start, Segments: []*segment.Reader{sr}, Head: store.RecordsOf(recs[n/4:])}}}, want
}

// TestStatsMemoryIsBounded groups 200,000 distinct paths with the default
// bound of 100,000: the counter never holds more values than the bound, the
// answer says it is approximate and truncated, and the heavy paths are found
// with counts whose error interval holds the truth.
func TestStatsMemoryIsBounded(t *testing.T) {
	heavy := map[string]int{"/wp-login.php": 3000, "/xmlrpc.php": 2000, "/.env": 1000}
	src, want := highCardinality(t, 200_000, heavy)
	ex := &Executor{Source: src}
	q, _ := Parse("")
	req := &Request{Query: q, From: start, To: start.AddDate(0, 0, 1)}
	for _, top := range []int{0, 3, 200_000} {
		res, gc, err := ex.groupStats(context.Background(), req, ByPath, top, DefaultStatsMaxGroups, DefaultStatsMaxKeyBytes)
		if err != nil {
			t.Fatal(err)
		}
		if gc.peak > DefaultStatsMaxGroups || len(res.Buckets) > DefaultStatsMaxGroups {
			t.Fatalf("top=%d: held up to %d values and answered %d, want at most %d", top, gc.peak, len(res.Buckets), DefaultStatsMaxGroups)
		}
		if !res.Approximate || res.Groups != 0 || res.Total != 200_000 {
			t.Fatalf("top=%d: approximate=%v groups=%d total=%d, want an approximate answer over 200000", top, res.Approximate, res.Groups, res.Total)
		}
		if res.Truncated != (top != 3) {
			t.Fatalf("top=%d: truncated=%v", top, res.Truncated)
		}
		if top == 0 {
			checkStats(t, "top=0", res, gc, want, DefaultStatsMaxGroups, false)
		}
		if top == 3 {
			for i, p := range []string{"/wp-login.php", "/xmlrpc.php", "/.env"} {
				b := res.Buckets[i]
				if b.Key != p || b.Count < want[p] || b.Count-b.Error > want[p] {
					t.Fatalf("bucket %d = %+v, want %s with %d inside [count-error, count]", i, b, p, want[p])
				}
			}
		}
		for _, b := range res.Buckets {
			if b.Count < want[b.Key] || b.Count-b.Error > want[b.Key] {
				t.Fatalf("top=%d: %+v, true count %d outside [count-error, count]", top, b, want[b.Key])
			}
		}
	}
}

// TestStatsCounter checks the counter against exact counts over random
// skewed streams, with bounds on values and on bytes: Space-Saving's
// guarantees hold, and the bounds are never exceeded.
func TestStatsCounter(t *testing.T) {
	tests := []struct {
		name                   string
		distinct, n            int
		maxGroups, maxKeyBytes int
	}{
		{"fits: exact", 50, 5000, 100, 1 << 20},
		{"groups bound", 5000, 20000, 100, 1 << 20},
		{"bytes bound", 5000, 20000, 1000, 2000},
		{"tiny", 1000, 3000, 1, 1 << 20},
	}
	for seed, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 9))
			zipf := rand.NewZipf(rand.New(rand.NewPCG(uint64(seed), 10)), 1.2, 1, uint64(tc.distinct-1))
			gc := newGroupCounter(tc.maxGroups, tc.maxKeyBytes)
			want := map[string]int64{}
			for range tc.n {
				// Key lengths vary so that the byte bound evicts more
				// than one value at times.
				v := zipf.Uint64()
				k := fmt.Sprintf("/%d/%s", v, strings.Repeat("x", int(v%7)*rng.IntN(3)))
				want[k]++
				gc.add(k, 1)
				if gc.held() > tc.maxGroups || gc.keyBytes > tc.maxKeyBytes {
					t.Fatalf("holds %d values in %d bytes, bounds %d and %d", gc.held(), gc.keyBytes, tc.maxGroups, tc.maxKeyBytes)
				}
			}
			got := gc.buckets()
			if exact := len(want) <= tc.maxGroups && tc.maxKeyBytes >= 1<<20; gc.approximate() == exact {
				t.Fatalf("approximate=%v with %d distinct values", gc.approximate(), len(want))
			}
			var sum, least int64 = 0, math.MaxInt64
			held := map[string]bool{}
			for _, b := range got {
				held[b.Key] = true
				sum += b.Count
				least = min(least, b.Count)
				if b.Count < want[b.Key] || b.Count-b.Error > want[b.Key] || b.Error > gc.floor {
					t.Fatalf("%+v: true count %d, or error above the floor %d", b, want[b.Key], gc.floor)
				}
			}
			if gc.floor > least {
				t.Fatalf("floor %d above the least count held %d", gc.floor, least)
			}
			// With the group bound alone the counts sum to the stream's
			// length, so the least count, and every error, is at most
			// n/maxGroups. (The byte bound may evict several values for one,
			// and the sum then drifts either way: only the intervals and
			// the floor are promised.)
			if tc.maxKeyBytes >= 1<<20 {
				if sum != int64(tc.n) {
					t.Fatalf("counts sum to %d over %d occurrences", sum, tc.n)
				}
				if gc.approximate() && least > int64(tc.n/tc.maxGroups) {
					t.Fatalf("least count %d above n/maxGroups = %d", least, tc.n/tc.maxGroups)
				}
			}
			for k, c := range want {
				if !held[k] && c > gc.floor {
					t.Fatalf("%q occurred %d times, more than the floor %d, but is missing", k, c, gc.floor)
				}
			}
		})
	}
}

// TestStatsTimeIsExact: a timeline (by minute, hour or day) holds every
// bucket of the range in time order, empty ones included, whatever top
// asks and whatever the bound on values: on the old code "top 5" by hour
// gave the first five hours that had a match, and a gap vanished.
func TestStatsTimeIsExact(t *testing.T) {
	src, all := dataset(t, 3000)
	// One visitor's address: it matches in a few hours, and every other
	// hour of the four days must still be in the answer, with 0.
	target := all[len(all)/2].IP
	q, err := Parse("ip:" + target.String())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	for _, r := range all {
		if r.IP == target {
			want[r.Time.Truncate(time.Hour).Format(time.RFC3339)]++
		}
	}
	from, to := start, start.AddDate(0, 0, 4)
	for _, tc := range []struct {
		by      StatsBy
		top     int
		buckets int
	}{
		{ByHour, 5, 96},
		{ByHour, 0, 96},
		{ByDay, 1, 4},
		{ByMinute, 3, 4 * 24 * 60},
	} {
		t.Run(fmt.Sprintf("%s top %d", tc.by, tc.top), func(t *testing.T) {
			res, _, err := (&Executor{Source: src}).groupStats(context.Background(), &Request{Query: q, From: from, To: to}, tc.by, tc.top, 2, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if res.Approximate || res.Truncated || len(res.Buckets) != tc.buckets || res.Groups != int64(tc.buckets) {
				t.Fatalf("approximate=%v truncated=%v groups=%d, %d buckets; want exact, %d buckets", res.Approximate,
					res.Truncated, res.Groups, len(res.Buckets), tc.buckets)
			}
			step := tc.by.timelineStep()
			var total int64
			hours := map[string]int64{}
			for i, b := range res.Buckets {
				at := from.Add(time.Duration(i) * step)
				k := at.Format(time.RFC3339)
				if tc.by == ByDay {
					k = record.DayString(at)
				}
				if b.Key != k {
					t.Fatalf("bucket %d is %q, want %q (every bucket, in time order)", i, b.Key, k)
				}
				total += b.Count
				hours[at.Truncate(time.Hour).Format(time.RFC3339)] += b.Count
			}
			if total != res.Total {
				t.Fatalf("buckets add up to %d, total %d", total, res.Total)
			}
			if tc.by == ByHour && len(want) > tc.buckets/2 {
				t.Fatalf("test setup: the address is in %d of %d hours", len(want), tc.buckets)
			}
			if tc.by != ByDay {
				for k, n := range want {
					if hours[k] != n {
						t.Fatalf("hour %s: %d, want %d", k, hours[k], n)
					}
				}
			}
		})
	}
}

// TestServeStatsSaysApproximate: the JSON answer carries approximate,
// truncated, the bound and each count's error, and an exact one says so too.
func TestServeStatsSaysApproximate(t *testing.T) {
	src, want := highCardinality(t, 5000, map[string]int{"/wp-login.php": 500})
	h := NewHandler(Options{Source: src, StatsMaxGroups: 1000, Now: func() time.Time { return start.AddDate(0, 0, 2) }})
	tests := []struct {
		by, top     string
		approximate bool
		truncated   bool
	}{
		{"path", "0", true, true},
		{"path", "1", true, false},
		{"domain", "0", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.by+" top="+tc.top, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeStats(w, httptest.NewRequest("GET", "/api/v1/stats?from=2026-03-27&to=2026-03-28&by="+tc.by+"&top="+tc.top, nil))
			var body struct {
				Approximate, Truncated *bool
				Groups                 *int64
				MaxGroups              *int64 `json:"max_groups"`
				Total                  int64
				Top                    []struct {
					Key          string
					Count, Error int64
				}
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != http.StatusOK {
				t.Fatalf("%d %s: %v", w.Code, w.Body, err)
			}
			if body.Approximate == nil || *body.Approximate != tc.approximate || body.Truncated == nil || *body.Truncated != tc.truncated {
				t.Fatalf("body %s: want approximate=%v truncated=%v", w.Body, tc.approximate, tc.truncated)
			}
			if tc.approximate != (body.MaxGroups != nil && *body.MaxGroups == 1000) || tc.approximate == (body.Groups != nil) {
				t.Fatalf("body %s: want max_groups only when approximate, groups only when exact", w.Body)
			}
			if body.Total != 5000 || len(body.Top) == 0 || len(body.Top) > 1000 {
				t.Fatalf("total %d, %d rows", body.Total, len(body.Top))
			}
			if tc.by == "path" {
				b := body.Top[0]
				if b.Key != "/wp-login.php" || b.Count < want[b.Key] || b.Count-b.Error > want[b.Key] || b.Error == 0 && b.Count != want[b.Key] {
					t.Fatalf("top row %+v, true count %d", b, want[b.Key])
				}
			}
		})
	}
}

// BenchmarkStatsHighCardinality groups 400,000 distinct paths (plus heavy
// ones) with the default bound and without one. B/op is what one request
// allocates; held-values is the most values held at once and held-B the heap
// they keep (measured after a GC while the counter is alive).
func BenchmarkStatsHighCardinality(b *testing.B) {
	src, _ := highCardinality(b, 400_000, map[string]int{"/wp-login.php": 20_000, "/xmlrpc.php": 10_000})
	q, _ := Parse("")
	req := &Request{Query: q, From: start, To: start.AddDate(0, 0, 1)}
	for _, bc := range []struct {
		name      string
		maxGroups int
	}{{"bounded", DefaultStatsMaxGroups}, {"unbounded", math.MaxInt}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			ex := &Executor{Source: src}
			var gc *groupCounter
			var retained uint64
			for b.Loop() {
				// retained is the heap still in use after the request
				// while its counter is alive: what the counter holds.
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				var err error
				if _, gc, err = ex.groupStats(context.Background(), req, ByPath, 10, bc.maxGroups, math.MaxInt); err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				retained = max(retained, after.HeapAlloc-min(after.HeapAlloc, before.HeapAlloc))
				runtime.KeepAlive(gc)
			}
			b.ReportMetric(float64(gc.peak), "held-values")
			b.ReportMetric(float64(retained), "held-B")
		})
	}
}

// checkStats compares an answer for all values (top=0) with the true counts.
// It must be exact when the values fit in maxGroups (or exempt: hour and
// day); otherwise it must say it is approximate and truncated, hold at most
// maxGroups values, give each an interval [count-error, count] that holds
// the truth, and miss no value that occurred more often than the floor.
func checkStats(t *testing.T, label string, res StatsResult, gc *groupCounter, want map[string]int64, maxGroups int, exempt bool) {
	t.Helper()
	var total int64
	for _, n := range want {
		total += n
	}
	got := map[string]Bucket{}
	for _, b := range res.Buckets {
		got[b.Key] = b
	}
	if res.Total != total || len(got) != len(res.Buckets) {
		t.Fatalf("%s: total %d in %d buckets (%d distinct), want %d", label, res.Total, len(res.Buckets), len(got), total)
	}
	if exempt || len(want) <= maxGroups {
		if res.Approximate || res.Truncated || res.Groups != int64(len(want)) || len(got) != len(want) {
			t.Fatalf("%s: approximate=%v truncated=%v groups=%d in %d buckets, want exact %d", label,
				res.Approximate, res.Truncated, res.Groups, len(got), len(want))
		}
		for k, n := range want {
			if b := got[k]; b.Count != n || b.Error != 0 {
				t.Fatalf("%s: bucket %q = %+v, want %d", label, k, b, n)
			}
		}
		return
	}
	if !res.Approximate || !res.Truncated || res.Groups != 0 || gc.peak > maxGroups || len(got) > maxGroups {
		t.Fatalf("%s: approximate=%v truncated=%v groups=%d, held up to %d values, answered %d, over %d values", label,
			res.Approximate, res.Truncated, res.Groups, gc.peak, len(got), len(want))
	}
	for k, b := range got {
		if n := want[k]; n < b.Count-b.Error || n > b.Count || b.Error > gc.floor {
			t.Fatalf("%s: %+v, true count %d, floor %d", label, b, n, gc.floor)
		}
	}
	for k, n := range want {
		if _, ok := got[k]; !ok && n > gc.floor {
			t.Fatalf("%s: %q occurred %d times, above the floor %d, but is missing", label, k, n, gc.floor)
		}
	}
}
