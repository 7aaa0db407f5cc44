package store

import (
	"context"
	"flag"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/loggen"
	"github.com/retentiond/retentiond/internal/record"
)

var headRecords = flag.Int("head-records", 5_000_000, "records for BenchmarkHeadMemoryBound (one UTC day)")

// BenchmarkHeadMemoryBound ingests a whole day of generated records through
// the store with a 64 MiB head bound and reports the largest head size
// seen, the Go heap's peak, and the ingest rate. The claim it checks: the
// head's memory is bounded by configuration, not by the day's volume.
func BenchmarkHeadMemoryBound(b *testing.B) {
	const bound = 64 << 20
	for i := 0; i < b.N; i++ {
		s, err := Open(b.TempDir(), Options{HeadMaxBytes: bound, FlushInterval: time.Hour, Registerer: prometheus.NewRegistry()})
		if err != nil {
			b.Fatal(err)
		}
		g := loggen.New(loggen.Options{Seed: 1, Start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Days: 1, Total: *headRecords})
		var peakHead int64
		var peakHeap uint64
		var ms runtime.MemStats
		batch := make([]record.Record, 0, 1000)
		start := time.Now()
		n := 0
		for !g.Done() {
			batch = append(batch, g.Next())
			if len(batch) < cap(batch) && !g.Done() {
				continue
			}
			for {
				err := s.Append(context.Background(), batch)
				if err == ErrBusy {
					time.Sleep(time.Millisecond)
					continue
				}
				if err != nil {
					b.Fatal(err)
				}
				break
			}
			n += len(batch)
			batch = batch[:0]
			s.mu.Lock()
			if h := s.headBytes + s.frozenBytes; h > peakHead {
				peakHead = h
			}
			s.mu.Unlock()
			if n%100_000 == 0 {
				runtime.ReadMemStats(&ms)
				peakHeap = max(peakHeap, ms.HeapAlloc)
			}
		}
		elapsed := time.Since(start)
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		if peakHead > bound {
			b.Fatalf("unflushed records reached %d bytes, over their %d bound", peakHead, bound)
		}
		b.ReportMetric(float64(peakHead)/float64(bound), "peak_head/bound")
		b.ReportMetric(float64(peakHeap)/(1<<20), "peak_heap_MiB")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "records/s")
	}
}

// BenchmarkAppend measures durable appends (each batch fsynced through the
// WAL's group commit) from several concurrent writers.
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		b.Run(map[int]string{1: "writers=1", 8: "writers=8", 64: "writers=64"}[writers], func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{FlushInterval: time.Hour, Registerer: prometheus.NewRegistry()})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			g := loggen.New(loggen.Options{Seed: 2, Total: 50 * 64})
			var batch []record.Record
			for !g.Done() && len(batch) < 50 {
				batch = append(batch, g.Next())
			}
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			per := (b.N + writers - 1) / writers
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < per; i++ {
						if err := s.Append(context.Background(), batch); err != nil && err != ErrBusy {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(per*writers*len(batch))/time.Since(start).Seconds(), "records/s")
		})
	}
}
