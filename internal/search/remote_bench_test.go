package search

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/objstore"
	"github.com/retentiond/retentiond/internal/objstore/weedtest"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
	"github.com/retentiond/retentiond/internal/store"
)

// remoteBenchNode is the node name the benchmark's objects are uploaded
// under.
const remoteBenchNode = "bench"

// remoteBenchOpens is how many footers a cold open reads at once: the
// store's limit (remoteFooterOpens in internal/store/remote.go), so that
// the cold figures are what a node's first search of the days costs.
const remoteBenchOpens = 8

// remoteObject is one day's object as a listing of the bucket shows it.
type remoteObject struct {
	day  time.Time
	key  string
	size int64
}

// BenchmarkRemoteSearch measures searches over days held only in a bucket
// of a real SeaweedFS beside the same searches over the same segment files
// on local disk, in the same run (issue 14). Two datasets: the 730 days of
// BenchmarkSearchTwoYears (20k records a day) and the 10 days of
// BenchmarkSearch5M (500k records a day, so that a day's object has the
// size and footer of a busier day). Each dataset is uploaded once under the
// real key layout (objstore.SegmentKey) and found again by listing the
// bucket, as a node does. Each iteration of a query runs it on
//
//   - local: the files mapped (segment.Open), as the store reads them;
//   - cold: a fresh objstore.Cache; the segments are opened through it
//     (their footers read, remoteBenchOpens at a time, as the store does)
//     and then searched. cold_ms includes the open, which is also reported
//     alone (cold_open_ms, cold_open_GETs);
//   - warm: one cache and one set of readers kept for the whole benchmark,
//     the query run once before timing.
//
// The three answers (match count and a hash of the records in answer
// order) must be equal, else the benchmark fails. GETs and bytes fetched
// come from Cache.Stats. The local files are in the OS page cache (the
// dataset is read before), and so, most likely, are SeaweedFS's volume
// files: "remote" here is the loopback HTTP path and the object store's
// own work, not a network's latency (see docs/scale-out.md, "Measured").
//
// It needs RTD_TEST_E2E=1 and weed (scripts/weed):
//
//	RTD_TEST_E2E=1 go test -run '^$' -bench BenchmarkRemoteSearch -benchtime 3x ./internal/search/
func BenchmarkRemoteSearch(b *testing.B) {
	if os.Getenv("RTD_TEST_E2E") != "1" {
		b.Skip("needs a real SeaweedFS: RTD_TEST_E2E=1 go test -run '^$' -bench BenchmarkRemoteSearch -benchtime 3x ./internal/search/ (weed from scripts/weed, or RTD_WEED)")
	}
	srv := weedtest.Start(b)
	cfg := srv.Config()
	cfg.Prefix = "rtd/"
	bucket, err := objstore.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	for _, ds := range []struct {
		name        string
		days, total int
	}{
		{"730d_20k", 730, 730 * 20_000},
		{"10d_500k", 10, 5_000_000},
	} {
		local := benchData(b, ds.days, ds.total)
		b.Run(ds.name, func(b *testing.B) { remoteCompare(b, bucket, ds.name, local, ds.total) })
	}
}

// remoteCompare uploads local's segments under their own day prefix
// (every dataset has other days) and runs the query set on the three
// layouts.
func remoteCompare(b *testing.B, bucket objstore.Bucket, name string, local *fakeSource, total int) {
	ctx := context.Background()
	// Upload, as a node uploads closed days: one verified Put per day,
	// one after the other.
	var sent int64
	t0 := time.Now()
	for i, v := range local.days {
		sr := v.Segments[0]
		// The store's name for an archived file (seg-<min>-<max>.archive.seg).
		file := fmt.Sprintf("seg-%08d-%08d.archive.seg", i+1, i+1)
		f, err := os.Open(sr.Path())
		if err != nil {
			b.Fatal(err)
		}
		info, err := bucket.Put(ctx, objstore.SegmentKey(v.Day, remoteBenchNode, file), f, sr.Info().Bytes)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		sent += info.Size
	}
	upload := time.Since(t0)

	// Find the objects by listing the days, as a node does.
	t0 = time.Now()
	var objs []remoteObject
	for _, v := range local.days {
		list, err := bucket.List(ctx, objstore.DayPrefix(v.Day))
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range list {
			day, node, _, ok := objstore.ParseSegmentKey(o.Key)
			if ok && node == remoteBenchNode {
				objs = append(objs, remoteObject{day: day, key: o.Key, size: o.Size})
			}
		}
	}
	listed := time.Since(t0)
	if len(objs) != len(local.days) {
		b.Fatalf("listing found %d objects, uploaded %d", len(objs), len(local.days))
	}
	b.Logf("%s: uploaded %d objects, %.1f MB in %s (%.1f MB/s); listed %d day prefixes in %s",
		name, len(objs), float64(sent)/1e6, upload.Round(time.Millisecond), float64(sent)/1e6/upload.Seconds(),
		len(local.days), listed.Round(time.Millisecond))
	b.Run("upload", func(b *testing.B) {
		for b.Loop() {
		}
		b.ReportMetric(float64(sent)/1e6/upload.Seconds(), "upload_MB/s")
		b.ReportMetric(float64(len(objs))/upload.Seconds(), "objects/s")
		b.ReportMetric(float64(sent)/float64(total), "B/record")
		b.ReportMetric(float64(sent)/float64(len(objs)), "B/object")
		b.ReportMetric(float64(listed.Microseconds())/1000/float64(len(local.days)), "list_ms/day")
	})

	// The caches hold the whole dataset: the benchmark measures fetching,
	// not eviction.
	cacheBytes := max(2*sent, 64<<20)
	warm, err := objstore.NewCache(filepath.Join(b.TempDir(), "warm"), cacheBytes)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { warm.Close() })
	warmSrc, err := openRemote(warm, bucket, objs)
	if err != nil {
		b.Fatal(err)
	}
	coldDir := filepath.Join(b.TempDir(), "cold")

	r4 := sampleRecord(b, local, true)
	rare := rareIP(b, local)
	cidr := netip.PrefixFrom(rare, 24).Masked()
	if !rare.Is4() {
		cidr = netip.PrefixFrom(r4.IP, 24).Masked()
	}
	cases := []struct{ name, q, mode string }{
		{"exact_ip_rare", "ip:" + rare.String(), "search"},
		{"exact_ip_busy", "ip:" + r4.IP.String(), "search"},
		{"ipv4_24", "ip:" + cidr.String(), "search"},
		// Answered from the footers' per-domain row counts.
		{"domain_count", "domain:" + r4.Domain, "count"},
		// Every record: the footers' row counts.
		{"count_all", "", "count"},
		// A path is not indexed: every block's path column is read.
		{"path_count", "path:/wp-login.php", "count"},
	}
	days := float64(len(objs))
	for _, c := range cases {
		q, err := Parse(c.q)
		if err != nil {
			b.Fatal(err)
		}
		req := &Request{Query: q, From: benchStart, To: benchStart.AddDate(3, 0, 0), Limit: 1000}
		if _, err := ask(warmSrc, req, c.mode); err != nil { // warm the warm cache for this query
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			var tLocal, tCold, tOpen, tWarm time.Duration
			var cold, open, wst objstore.Stats
			var n int64
			for b.Loop() {
				// Each layout starts from a collected heap, so that none
				// pays for the garbage of the one before (a cold open
				// allocates its footers).
				runtime.GC()
				t0 := time.Now()
				la, err := ask(local, req, c.mode)
				if err != nil {
					b.Fatal(err)
				}
				tLocal += time.Since(t0)
				runtime.GC()
				t1 := time.Now()
				cache, err := objstore.NewCache(coldDir, cacheBytes)
				if err != nil {
					b.Fatal(err)
				}
				coldSrc, err := openRemote(cache, bucket, objs)
				if err != nil {
					b.Fatal(err)
				}
				t2 := time.Now()
				ost := cache.Stats()
				ca, err := ask(coldSrc, req, c.mode)
				if err != nil {
					b.Fatal(err)
				}
				t3 := time.Now()
				tCold += t3.Sub(t1)
				cs := cache.Stats()
				cache.Close()
				runtime.GC()
				w0 := warm.Stats()
				t4 := time.Now()
				wa, err := ask(warmSrc, req, c.mode)
				if err != nil {
					b.Fatal(err)
				}
				tWarm += time.Since(t4)
				w1 := warm.Stats()
				if ca != la || wa != la {
					b.Fatalf("answers differ: local %+v, cold cache %+v, warm cache %+v", la, ca, wa)
				}
				n = la.n
				tOpen += t2.Sub(t1)
				cold.GETs += cs.GETs
				cold.BytesFetched += cs.BytesFetched
				open.GETs += ost.GETs
				open.BytesFetched += ost.BytesFetched
				wst.GETs += w1.GETs - w0.GETs
				wst.BytesFetched += w1.BytesFetched - w0.BytesFetched
				wst.Hits += w1.Hits - w0.Hits
			}
			per := func(v int64) float64 { return float64(v) / float64(b.N) }
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
			b.ReportMetric(float64(n), "matches")
			b.ReportMetric(ms(tLocal), "local_ms/op")
			b.ReportMetric(ms(tCold), "cold_ms/op")
			b.ReportMetric(ms(tOpen), "cold_open_ms/op")
			b.ReportMetric(ms(tWarm), "warm_ms/op")
			b.ReportMetric(per(cold.GETs), "cold_GETs/op")
			b.ReportMetric(per(cold.GETs)/days, "cold_GETs/day")
			b.ReportMetric(per(cold.BytesFetched), "cold_fetched_bytes/op")
			b.ReportMetric(per(open.GETs), "cold_open_GETs/op")
			b.ReportMetric(per(open.BytesFetched), "cold_open_bytes/op")
			b.ReportMetric(per(wst.GETs), "warm_GETs/op")
			b.ReportMetric(per(wst.BytesFetched), "warm_fetched_bytes/op")
			b.ReportMetric(per(wst.Hits), "warm_page_hits/op")
			b.ReportMetric(float64(tCold)/float64(tLocal), "cold/local")
			b.ReportMetric(float64(tWarm)/float64(tLocal), "warm/local")
		})
	}
}

// openRemote opens every object through cache, at most remoteBenchOpens
// at a time, into a Source of one segment per day in day order.
func openRemote(cache *objstore.Cache, bucket objstore.Bucket, objs []remoteObject) (*fakeSource, error) {
	views := make([]*store.DayView, len(objs))
	errs := make([]error, len(objs))
	sem := make(chan struct{}, remoteBenchOpens)
	var wg sync.WaitGroup
	for i, o := range objs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			r, err := segment.OpenSource(cache.Source(bucket, o.key, o.size), segment.OpenOptions{})
			if err != nil {
				errs[i] = err
				return
			}
			views[i] = &store.DayView{Day: o.day, Segments: []*segment.Reader{r}}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(views, func(a, b *store.DayView) int { return a.Day.Compare(b.Day) })
	return &fakeSource{days: views}, nil
}

// answer is what the layouts must agree on: the count and, for a search,
// a hash of the records in the order they were emitted.
type answer struct {
	n    int64
	hash uint64
}

func ask(src *fakeSource, req *Request, mode string) (answer, error) {
	e := &Executor{Source: src}
	if mode == "count" {
		n, err := e.Count(context.Background(), req)
		return answer{n: n}, err
	}
	h := fnv.New64a()
	var buf []byte
	n, err := e.Run(context.Background(), req, func(r record.Record) error {
		buf = binary.BigEndian.AppendUint64(buf[:0], uint64(r.Time.UnixMilli()))
		buf = append(buf, r.IP.AsSlice()...)
		buf = append(buf, strings.Join([]string{r.Domain, r.Path, r.UserAgent}, "\x00")...)
		h.Write(buf)
		return nil
	})
	return answer{n: n, hash: h.Sum64()}, err
}
