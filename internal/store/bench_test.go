package store

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/keys"
	"github.com/retentiond/retentiond/internal/loggen"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
	"github.com/retentiond/retentiond/internal/wal"
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

// BenchmarkIngestEncryption measures what encryption at rest costs ingest:
// the same 200,000 records of one day go through a plain and an encrypted
// store in each iteration (alternately, so both see the same machine):
// appended in batches of 500 (each fsynced through the WAL), then flushed
// and merged as a closed day is. It reports the process CPU time per
// record of each phase, plain and encrypted, and their ratios, and the
// bytes of the WAL and of the merged segment.
func BenchmarkIngestEncryption(b *testing.B) {
	const n, batchSize = 200_000, 500
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	g := loggen.New(loggen.Options{Seed: 3, Start: day, Days: 1, Total: n})
	recs := make([]record.Record, 0, n)
	for !g.Done() {
		recs = append(recs, g.Next())
	}
	type result struct {
		appendCPU, flushCPU time.Duration
		walBytes, segBytes  int64
	}
	ingest := func(encrypted bool) result {
		dir := b.TempDir()
		opts := Options{FlushInterval: time.Hour, Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler),
			Now: func() time.Time { return day.AddDate(0, 0, 2) }} // a closed day: merged at the archive level
		if encrypted {
			ring, err := keys.Open(filepath.Join(dir, "keys"), make([]byte, keys.KeySize), keys.Options{})
			if err != nil {
				b.Fatal(err)
			}
			opts.Keys = ring
		}
		s, err := Open(dir, opts)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		var res result
		c0 := cpuTime(b)
		for i := 0; i < len(recs); i += batchSize {
			if err := s.Append(context.Background(), recs[i:min(i+batchSize, len(recs))]); err != nil {
				b.Fatal(err)
			}
		}
		c1 := cpuTime(b)
		res.walBytes = dirBytes(b, filepath.Join(dir, walDirName))
		if err := s.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := s.MergeDay(day); err != nil {
			b.Fatal(err)
		}
		res.appendCPU, res.flushCPU = c1-c0, cpuTime(b)-c1
		res.segBytes = dirBytes(b, filepath.Join(dir, daysDirName))
		return res
	}
	// A warm-up pair: the first store of the process builds the zstd
	// encoders and grows the heap, which would be charged to one side.
	ingest(false)
	ingest(true)
	var plain, sealed result
	i := 0
	for b.Loop() {
		// Alternate which side goes first, so drift in the machine's load
		// spreads over both.
		var p, s result
		if i%2 == 0 {
			p, s = ingest(false), ingest(true)
		} else {
			s, p = ingest(true), ingest(false)
		}
		i++
		plain.appendCPU += p.appendCPU
		plain.flushCPU += p.flushCPU
		sealed.appendCPU += s.appendCPU
		sealed.flushCPU += s.flushCPU
		plain.walBytes, plain.segBytes, sealed.walBytes, sealed.segBytes = p.walBytes, p.segBytes, s.walBytes, s.segBytes
	}
	// The WAL encoding alone (no I/O: the part encryption adds to every
	// append), timed over repeated rounds so that it is stable on a busy
	// machine: plain frames against per-day sealed frames.
	ring, err := keys.Open(b.TempDir(), make([]byte, keys.KeySize), keys.Options{})
	if err != nil {
		b.Fatal(err)
	}
	enc := &Store{opts: Options{Keys: ring}}
	var encPlain, encSealed time.Duration
	for round := 0; round < 5; round++ {
		t0 := time.Now()
		for i := 0; i < len(recs); i += batchSize {
			encodeFrames(recs[i:min(i+batchSize, len(recs))], wal.MaxPayload, 0, 0)
		}
		t1 := time.Now()
		for i := 0; i < len(recs); i += batchSize {
			if _, err := enc.frames(recs[i:min(i+batchSize, len(recs))]); err != nil {
				b.Fatal(err)
			}
		}
		encPlain, encSealed = encPlain+t1.Sub(t0), encSealed+time.Since(t1)
	}
	b.ReportMetric(float64(encPlain.Nanoseconds())/float64(5*n), "plain_wal_encode_ns/record")
	b.ReportMetric(float64(encSealed.Nanoseconds())/float64(5*n), "encrypted_wal_encode_ns/record")

	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(n) / float64(b.N) }
	b.ReportMetric(per(plain.appendCPU+plain.flushCPU), "plain_cpu_ns/record")
	b.ReportMetric(per(sealed.appendCPU+sealed.flushCPU), "encrypted_cpu_ns/record")
	b.ReportMetric(float64(sealed.appendCPU+sealed.flushCPU)/float64(plain.appendCPU+plain.flushCPU), "cpu_ratio")
	b.ReportMetric(float64(sealed.appendCPU)/float64(plain.appendCPU), "append_cpu_ratio")
	b.ReportMetric(float64(sealed.flushCPU)/float64(plain.flushCPU), "flush_merge_cpu_ratio")
	b.ReportMetric(float64(sealed.walBytes)/float64(plain.walBytes), "wal_bytes_ratio")
	b.ReportMetric(float64(sealed.segBytes)/float64(plain.segBytes), "segment_bytes_ratio")
	b.ReportMetric(float64(sealed.segBytes)/n, "encrypted_segment_B/record")
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func dirBytes(b *testing.B, dir string) (n int64) {
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkSealFlush measures the two encodings every record of a busy day
// goes through in the daemon (issue 15's profile: 40 % of ingest CPU):
// sealing the head's tail into in-memory parts of defaultSealRows records,
// and the flush that merges those parts into the day's file at the
// archive level. The records of one loggen day arrive as two interleaved
// streams, as two shippers posting batches of the same day do, so the
// parts overlap in time as they do under the peer benchmark. It reports
// the process CPU time per record of each phase (garbage collection
// included, as the daemon pays it); compare builds with benchstat.
func BenchmarkSealFlush(b *testing.B) {
	const n = 500_000
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	g := loggen.New(loggen.Options{Seed: 3, Start: day, Days: 1, Total: n})
	var recs []record.Record
	for !g.Done() {
		recs = append(recs, g.Next())
	}
	// Two streams, the first and the second half of the day, arriving in
	// alternate runs.
	const run = 2048
	var arrival []record.Record
	half := len(recs) / 2
	for i := 0; i < half; i += run {
		arrival = append(arrival, recs[i:min(i+run, half)]...)
		arrival = append(arrival, recs[half+i:min(half+i+run, len(recs))]...)
	}
	path := filepath.Join(b.TempDir(), "flush.seg")
	var seal, flush time.Duration
	var partBytes int64
	b.ResetTimer()
	for range b.N {
		h := newHead()
		for _, r := range arrival {
			h.add(r)
		}
		// Each phase starts on a collected heap, so that it pays for the
		// collections its own garbage causes and not for the setup's.
		runtime.GC()
		t0 := cpuTime(b)
		for h.tail.Len() > 0 {
			k := min(h.tail.Len(), defaultSealRows)
			p, err := sealPart(day.Unix(), h.space, []Records{h.tail.prefix(k)}, nil)
			if err != nil {
				b.Fatal(err)
			}
			h.parts = append(h.parts, p)
			h.tail = h.tail.drop(k)
			partBytes += p.r.Info().Bytes
		}
		seal += cpuTime(b) - t0
		runtime.GC()
		t1 := cpuTime(b)
		if err := writeHead(path, day.Unix(), h, segment.Options{Level: segment.ArchiveLevel}); err != nil {
			b.Fatal(err)
		}
		flush += cpuTime(b) - t1
	}
	per := float64(b.N) * float64(len(arrival))
	b.ReportMetric(float64(seal.Nanoseconds())/per, "seal_ns/record")
	b.ReportMetric(float64(flush.Nanoseconds())/per, "flush_ns/record")
	b.ReportMetric(float64(partBytes)/per, "part_bytes/record")
	b.ReportMetric(0, "ns/op")
}
