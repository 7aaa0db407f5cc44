package ingest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/loggen"
	"github.com/retentiond/retentiond/internal/store"
)

// BenchmarkDaemonIngest measures what the daemon does with the peer
// benchmark's shape of traffic (scripts/bench peer): loggen records over
// 10 closed days posted as 50,000-line NDJSON batches by two clients,
// into a store with default settings, then the work those records cause
// later (the flush and each day's archive-level merge). It reports server
// CPU per record for the ingest and for the flush and merges separately,
// measured with the clients' own work (building the bodies) outside the
// timed part; HTTP client CPU on loopback is in it, as a shipper's share.
// BenchmarkHTTPIngest's 1,000-record batches of one shape measure less than
// the daemon spends under real batches; this one is the figure to compare.
func BenchmarkDaemonIngest(b *testing.B) {
	const total, perBatch, days = 400_000, 50_000, 10
	start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	g := loggen.New(loggen.Options{Seed: 1, Start: start, Days: days, Total: total})
	var bodies [][]byte
	var cur []byte
	n := 0
	for !g.Done() {
		r := g.Next()
		cur = loggen.AppendNDJSON(cur, &r)
		cur = append(cur, '\n')
		if n++; n%perBatch == 0 {
			bodies = append(bodies, cur)
			cur = nil
		}
	}
	if len(cur) > 0 {
		bodies = append(bodies, cur)
	}
	var ingestCPU, laterCPU float64
	for b.Loop() {
		st, err := store.Open(b.TempDir(), store.Options{Registerer: prometheus.NewRegistry()})
		if err != nil {
			b.Fatal(err)
		}
		h := NewHandler(Options{Sink: storeSink(st), Registerer: prometheus.NewRegistry()})
		srv := httptest.NewServer(http.HandlerFunc(h.ServeIngest))
		cpu0 := cpuSeconds()
		next := make(chan []byte)
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for body := range next {
					for {
						resp, err := srv.Client().Post(srv.URL, "application/x-ndjson", bytes.NewReader(body))
						if err != nil {
							b.Error(err)
							return
						}
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							break
						}
						if resp.StatusCode != http.StatusTooManyRequests {
							b.Errorf("status %d", resp.StatusCode)
							return
						}
						time.Sleep(100 * time.Millisecond)
					}
				}
			}()
		}
		for _, body := range bodies {
			next <- body
		}
		close(next)
		wg.Wait()
		cpu1 := cpuSeconds()
		if err := st.Flush(); err != nil {
			b.Fatal(err)
		}
		for d := range days {
			if err := st.MergeDay(start.AddDate(0, 0, d)); err != nil {
				b.Fatal(err)
			}
		}
		cpu2 := cpuSeconds()
		var stored int64
		for _, d := range st.Days() {
			stored += d.Records
		}
		if stored != total {
			b.Fatalf("stored %d records, posted %d", stored, total)
		}
		srv.Close()
		st.Close()
		ingestCPU += cpu1 - cpu0
		laterCPU += cpu2 - cpu1
	}
	per := func(s float64) float64 { return s / float64(b.N) / total * 1e6 }
	b.ReportMetric(per(ingestCPU), "ingest_cpu_µs/record")
	b.ReportMetric(per(laterCPU), "flush_merge_cpu_µs/record")
	b.ReportMetric(per(ingestCPU+laterCPU), "total_cpu_µs/record")
}
