package search

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/keys"
	"github.com/retentiond/retentiond/internal/loggen"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
	"github.com/retentiond/retentiond/internal/store"
)

// benchStart is the first day of both benchmark datasets.
var benchStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// benchData returns a Source with one merged segment per day for a generated
// dataset, written at segment.ArchiveLevel as a closed day's merge is. The segment files are cached under os.TempDir() by a name that
// encodes the dataset and the segment format version, so only the first run
// pays for generation and compression.
func benchData(b *testing.B, days, total int) *fakeSource {
	b.Helper()
	return benchDataWith(b, days, total, false)
}

// benchMaster is the master key of the encrypted benchmark datasets: a
// benchmark's key, not a secret.
var benchMaster = make([]byte, keys.KeySize)

// benchDataWith is benchData whose segments are, when encrypted is set,
// sealed under day keys kept in a key directory inside the cached dataset.
func benchDataWith(b *testing.B, days, total int, encrypted bool) *fakeSource {
	b.Helper()
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("retentiond-bench-v%d-l%d-s1-%dd-%d", segment.Version, segment.ArchiveLevel, days, total))
	var ring *keys.Ring
	if encrypted {
		dir += "-encrypted"
	}
	openRing := func() {
		if !encrypted {
			return
		}
		var err error
		if ring, err = keys.Open(filepath.Join(dir, "keys"), benchMaster, keys.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "complete")); err != nil {
		b.Logf("building benchmark dataset in %s (first run only)", dir)
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		openRing()
		g := loggen.New(loggen.Options{Seed: 1, Start: benchStart, Days: days, Total: total})
		var cur []record.Record
		flush := func() {
			if len(cur) == 0 {
				return
			}
			p := filepath.Join(dir, record.DayString(record.Day(cur[0].Time))+".seg")
			// Closed days are stored as the store's final merge writes them.
			opts := segment.Options{Level: segment.ArchiveLevel}
			if ring != nil {
				k, err := ring.KeyFor(cur[0].Time)
				if err != nil {
					b.Fatal(err)
				}
				opts.Key = k
			}
			if _, err := segment.Write(p, cur, opts); err != nil {
				b.Fatal(err)
			}
			cur = cur[:0]
		}
		for !g.Done() {
			r := g.Next()
			if len(cur) > 0 && !record.Day(r.Time).Equal(record.Day(cur[0].Time)) {
				flush()
			}
			cur = append(cur, r)
		}
		flush()
		if err := os.WriteFile(filepath.Join(dir, "complete"), nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil || len(files) == 0 {
		b.Fatalf("no segments in %s: %v", dir, err)
	}
	if ring == nil {
		openRing()
	}
	var oo segment.OpenOptions
	if ring != nil {
		oo.Keys = ring
	}
	src := &fakeSource{open: oo}
	for _, f := range files { // Glob sorts, and day names sort by time
		sr, err := segment.OpenWith(f, oo)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { sr.Close() })
		day, err := record.ParseDay(strings.TrimSuffix(filepath.Base(f), ".seg"))
		if err != nil {
			b.Fatal(err)
		}
		src.days = append(src.days, &store.DayView{Day: day, Segments: []*segment.Reader{sr}})
	}
	return src
}

// sampleRecord returns a record from the middle of the dataset, so query
// values exist in the data.
func sampleRecord(b *testing.B, src *fakeSource, v4 bool) record.Record {
	b.Helper()
	sr := src.days[len(src.days)/2].Segments[0]
	for r, err := range sr.Iter() {
		if err != nil {
			b.Fatal(err)
		}
		if r.IP.Is4() == v4 {
			return r
		}
	}
	b.Fatal("no sample record")
	return record.Record{}
}

// middleAddresses yields the distinct addresses of a middle segment in
// order of first appearance, each with its match count over every day (a
// count reads no block), until yield returns false.
func middleAddresses(b *testing.B, src *fakeSource, yield func(a netip.Addr, matches int64) bool) {
	b.Helper()
	e := &Executor{Source: src}
	seen := map[netip.Addr]bool{}
	for r, err := range src.days[len(src.days)/2].Segments[0].Iter() {
		if err != nil {
			b.Fatal(err)
		}
		if seen[r.IP] {
			continue
		}
		seen[r.IP] = true
		q, _ := Parse("ip:" + r.IP.String())
		n, err := e.Count(context.Background(), &Request{Query: q, From: benchStart, To: benchStart.AddDate(3, 0, 0)})
		if err != nil {
			b.Fatal(err)
		}
		if !yield(r.IP, n) {
			return
		}
	}
}

// rareIP returns, among the first 50 distinct addresses of a middle
// segment, the one with the fewest matches: the typical needle of an
// investigation, where the sample record's address may be a heavy crawler.
func rareIP(b *testing.B, src *fakeSource) netip.Addr {
	b.Helper()
	var best netip.Addr
	bestN, seen := int64(-1), 0
	middleAddresses(b, src, func(a netip.Addr, n int64) bool {
		if bestN < 0 || n < bestN {
			best, bestN = a, n
		}
		seen++
		return seen < 50
	})
	return best
}

// thinIP returns issue 15's thinly spread address: among the addresses of
// a middle segment, the one with 1,000 to 3,000 matches over every day
// that lies in the most blocks (a regular visitor, a few rows per block
// across nearly every block), so that its first 1000 rows touch hundreds
// of blocks. The index answers both figures without decoding a block.
func thinIP(b *testing.B, src *fakeSource) (addr netip.Addr, matches int64, blocks int) {
	b.Helper()
	middleAddresses(b, src, func(a netip.Addr, n int64) bool {
		if n < 1000 || n > 3000 {
			return true
		}
		nb := 0
		for _, d := range src.days {
			for _, sr := range d.Segments {
				nb += len(sr.BlocksForPrefix(netip.PrefixFrom(a, a.BitLen())))
			}
		}
		if nb > blocks {
			addr, matches, blocks = a, n, nb
		}
		return true
	})
	if blocks == 0 {
		b.Fatal("no address with 1,000 to 3,000 matches")
	}
	return addr, matches, blocks
}

func runSearch(b *testing.B, src *fakeSource, q string, limit int, mode string) {
	b.Helper()
	pq, err := Parse(q)
	if err != nil {
		b.Fatal(err)
	}
	req := &Request{Query: pq, From: benchStart, To: benchStart.AddDate(3, 0, 0), Limit: limit}
	run := func(src *fakeSource) (n int64) {
		e := &Executor{Source: src}
		var err error
		switch mode {
		case "count":
			n, err = e.Count(context.Background(), req)
		case "stats":
			var res StatsResult
			res, err = e.Stats(context.Background(), req, ByDomain, 10)
			n = res.Total
		default:
			n, err = e.Run(context.Background(), req, func(record.Record) error { return nil })
		}
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	var n int64
	for b.Loop() {
		n = run(src)
	}
	b.ReportMetric(float64(n), "matches")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
	// The blocks a search decodes, counted (untimed) in more runs over the
	// same files read through readLogs. A limited search filters blocks
	// ahead of its output, so its count varies a little from run to run:
	// the metric is the mean of up to 10 runs.
	logged, logs := loggedTwin(b, src)
	runs := min(b.N, 10)
	var blocks int64
	for range runs {
		marks := logs.mark()
		if m := run(logged); m != n {
			b.Fatalf("the run over logged readers found %d matches, the timed runs %d", m, n)
		}
		blocks += sum(logs.blocksSince(b, marks))
	}
	b.ReportMetric(float64(blocks)/float64(runs), "blocks/op")
}

// BenchmarkSearch5M runs the investigation queries of issue 4 over 5M
// generated records spread over 10 days (one merged segment per day).
func BenchmarkSearch5M(b *testing.B) {
	src := benchData(b, 10, 5_000_000)
	r4 := sampleRecord(b, src, true)
	r6 := sampleRecord(b, src, false)
	net4 := netip.PrefixFrom(r4.IP, 24).Masked()
	net6 := netip.PrefixFrom(r6.IP, 48).Masked()
	thin, thinN, thinBlocks := thinIP(b, src)
	b.Logf("thinly spread address: %d matches in %d blocks", thinN, thinBlocks)
	dom := r4.Domain
	suffix := dom
	if i := strings.IndexByte(dom, '.'); i >= 0 {
		suffix = dom[i+1:]
	}
	cases := []struct{ name, q, mode string }{
		{"exact_ip_busy", "ip:" + r4.IP.String(), "search"},
		{"exact_ip_rare", "ip:" + rareIP(b, src).String(), "search"},
		{"exact_ip_thin", "ip:" + thin.String(), "search"},
		{"ipv4_24", "ip:" + net4.String(), "search"},
		{"ipv6_48", "ip:" + net6.String(), "search"},
		{"domain_exact", "domain:" + dom, "search"},
		{"domain_count", "domain:" + dom, "count"},
		{"domain_suffix", "domain:*." + suffix, "search"},
		{"path_substring", "path:*setup-config*", "search"},
		{"ua_substring", "ua:*sqlmap*", "search"},
		{"count_all_wp_login", "path:/wp-login.php", "count"},
		{"stats_by_domain", "path:/wp-login.php", "stats"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) { runSearch(b, src, c.q, 1000, c.mode) })
	}
	// The baseline, measured in the same run: what the busy-IP query costs
	// without the index, the planner or the dictionary form, decoding every
	// record of every day (one goroutine per day) and testing it with the
	// reference Query.Match. Figures are reported as ratios to it.
	b.Run("baseline_full_scan", func(b *testing.B) {
		q, err := Parse("ip:" + r4.IP.String())
		if err != nil {
			b.Fatal(err)
		}
		var n atomic.Int64
		for b.Loop() {
			n.Store(0)
			var wg sync.WaitGroup
			for _, v := range src.days {
				for _, sr := range v.Segments {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for r, err := range sr.Iter() {
							if err != nil {
								b.Error(err)
								return
							}
							if q.Match(&r) {
								n.Add(1)
							}
						}
					}()
				}
			}
			wg.Wait()
		}
		b.ReportMetric(float64(n.Load()), "matches")
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
	})
}

// BenchmarkSearchTwoYears checks that an exact IP over 730 days of 20k
// records costs in proportion to the matches, not the days.
func BenchmarkSearchTwoYears(b *testing.B) {
	src := benchData(b, 730, 730*20_000)
	r := sampleRecord(b, src, true)
	rare := rareIP(b, src)
	b.Run("exact_ip_busy", func(b *testing.B) { runSearch(b, src, "ip:"+r.IP.String(), 1000, "search") })
	b.Run("exact_ip_rare", func(b *testing.B) { runSearch(b, src, "ip:"+rare.String(), 1000, "search") })
	b.Run("exact_ip_rare_count", func(b *testing.B) { runSearch(b, src, "ip:"+rare.String(), 0, "count") })
	// A CIDR is not answered by the address filter: every day's index is
	// consulted (one page per day).
	net := netip.PrefixFrom(rare, 24).Masked()
	if !rare.Is4() {
		net = netip.PrefixFrom(rare, 48).Masked()
	}
	b.Run("cidr_of_rare_ip", func(b *testing.B) { runSearch(b, src, "ip:"+net.String(), 1000, "search") })
}

// BenchmarkSearchOr compares an OR of two exact addresses with the two
// searches run one after the other, over the 5M-record data: the OR is a
// union of the two index ranges, so it should cost about what the two
// searches cost together (one plan and one merge instead of two), never a
// scan. Pairs: two rare visitors, and the busy crawler with a rare one
// (limit 1000: the crawler's row counts stop the OR early).
func BenchmarkSearchOr(b *testing.B) {
	src := benchData(b, 10, 5_000_000)
	busy := sampleRecord(b, src, true).IP
	rare := rareIP(b, src)
	// A second rare address: the rarest of the next distinct ones.
	var rare2 netip.Addr
	var best int64 = -1
	e := &Executor{Source: src}
	seen := map[netip.Addr]bool{rare: true, busy: true}
	for r, err := range src.days[len(src.days)/2-1].Segments[0].Iter() {
		if err != nil {
			b.Fatal(err)
		}
		if seen[r.IP] {
			continue
		}
		seen[r.IP] = true
		q, _ := Parse("ip:" + r.IP.String())
		n, err := e.Count(context.Background(), &Request{Query: q, From: benchStart, To: benchStart.AddDate(3, 0, 0)})
		if err != nil {
			b.Fatal(err)
		}
		if best < 0 || n < best {
			rare2, best = r.IP, n
		}
		if len(seen) == 52 {
			break
		}
	}
	for _, pair := range []struct {
		name string
		a, c netip.Addr
	}{{"two_rare_ips", rare, rare2}, {"busy_and_rare_ip", busy, rare}} {
		or := "ip:" + pair.a.String() + " OR ip:" + pair.c.String()
		b.Run(pair.name+"/or", func(b *testing.B) { runSearch(b, src, or, 1000, "search") })
		b.Run(pair.name+"/separately", func(b *testing.B) {
			qa, _ := Parse("ip:" + pair.a.String())
			qc, _ := Parse("ip:" + pair.c.String())
			var n int64
			for b.Loop() {
				n = 0
				for _, q := range []*Query{qa, qc} {
					m, err := e.Run(context.Background(), &Request{Query: q, From: benchStart, To: benchStart.AddDate(3, 0, 0), Limit: 1000},
						func(record.Record) error { return nil })
					if err != nil {
						b.Fatal(err)
					}
					n += m
				}
			}
			b.ReportMetric(float64(n), "matches")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
		})
	}
}

// BenchmarkSearchEncryption measures what encryption at rest costs a
// search: the same queries over the same records (2M over 10 days, one
// merged segment per day), stored plain and encrypted, each iteration
// running the plain query and then the encrypted one, so that both see the
// same machine. It reports both latencies and their ratio
// (encrypted/plain), and the bytes of the two datasets.
func BenchmarkSearchEncryption(b *testing.B) {
	const days, total = 10, 2_000_000
	plain := benchDataWith(b, days, total, false)
	sealed := benchDataWith(b, days, total, true)
	r4 := sampleRecord(b, plain, true)
	cases := []struct{ name, q, mode string }{
		{"exact_ip_rare", "ip:" + rareIP(b, plain).String(), "search"},
		{"exact_ip_busy", "ip:" + r4.IP.String(), "search"},
		{"ipv4_24", "ip:" + netip.PrefixFrom(r4.IP, 24).Masked().String(), "search"},
		{"path_substring", "path:*setup-config*", "search"},
		{"domain_count", "domain:" + r4.Domain, "count"},
	}
	run := func(src *fakeSource, req *Request, mode string) int64 {
		var n int64
		var err error
		if mode == "count" {
			n, err = (&Executor{Source: src}).Count(context.Background(), req)
		} else {
			n, err = (&Executor{Source: src}).Run(context.Background(), req, func(record.Record) error { return nil })
		}
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			q, err := Parse(c.q)
			if err != nil {
				b.Fatal(err)
			}
			req := &Request{Query: q, From: benchStart, To: benchStart.AddDate(3, 0, 0), Limit: 1000}
			var tPlain, tSealed time.Duration
			for b.Loop() {
				t0 := time.Now()
				np := run(plain, req, c.mode)
				t1 := time.Now()
				ns := run(sealed, req, c.mode)
				tPlain, tSealed = tPlain+t1.Sub(t0), tSealed+time.Since(t1)
				if np != ns {
					b.Fatalf("plain answered %d, encrypted %d", np, ns)
				}
			}
			b.ReportMetric(float64(tPlain.Microseconds())/1000/float64(b.N), "plain_ms/op")
			b.ReportMetric(float64(tSealed.Microseconds())/1000/float64(b.N), "encrypted_ms/op")
			b.ReportMetric(float64(tSealed)/float64(tPlain), "latency_ratio")
		})
	}
	size := func(src *fakeSource) (n int64) {
		for _, v := range src.days {
			for _, sr := range v.Segments {
				n += sr.Info().Bytes
			}
		}
		return n
	}
	b.Run("bytes", func(b *testing.B) {
		for b.Loop() {
		}
		p, s := size(plain), size(sealed)
		b.ReportMetric(float64(p)/total, "plain_B/record")
		b.ReportMetric(float64(s)/total, "encrypted_B/record")
		b.ReportMetric(float64(s)/float64(p), "bytes_ratio")
	})
}
