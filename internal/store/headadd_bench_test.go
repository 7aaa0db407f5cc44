package store

import (
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/loggen"
	"github.com/retentiond/retentiond/internal/record"
)

// BenchmarkHeadAdd measures a head taking 500,000 records of one day in
// batches of 50,000 whose repeated domains and user agents share one
// string per batch, as the ingest's parser hands them over (one
// parse.Interner per request). It reports ns per record.
func BenchmarkHeadAdd(b *testing.B) {
	const n, batch = 500_000, 50_000
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	g := loggen.New(loggen.Options{Seed: 3, Start: day, Days: 1, Total: n})
	var recs []record.Record
	var shared map[string]string
	share := func(s string) string {
		if t, ok := shared[s]; ok {
			return t
		}
		s = string([]byte(s)) // a copy of its own, as each request's parser makes
		shared[s] = s
		return s
	}
	for i := 0; !g.Done(); i++ {
		if i%batch == 0 {
			shared = map[string]string{}
		}
		r := g.Next()
		r.Domain, r.UserAgent = share(r.Domain), share(r.UserAgent)
		recs = append(recs, r)
	}
	var total time.Duration
	for b.Loop() {
		h := newBenchHead()
		start := time.Now()
		for _, r := range recs {
			h.add(r)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N*len(recs)), "ns/record")
	b.ReportMetric(0, "ns/op")
}

// newBenchHead is a head of a store (with the store's shareCache).
func newBenchHead() *head {
	h := newHead()
	h.shares = new(shareCache)
	return h
}
