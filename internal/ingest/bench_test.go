package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/store"
)

// fsyncSink writes each batch to a file and fsyncs it before returning,
// standing for the WAL's durable acknowledgement.
type fsyncSink struct {
	mu sync.Mutex
	f  *os.File
}

func (s *fsyncSink) Append(_ context.Context, recs []record.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.f.Write(record.AppendBatch(nil, recs)); err != nil {
		return err
	}
	return s.f.Sync()
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// BenchmarkHTTPIngest posts NDJSON batches of 1,000 records over loopback
// and reports records/s and CPU seconds per million records (client and
// server together: they share the process).
func BenchmarkHTTPIngest(b *testing.B) {
	var body bytes.Buffer
	const perBatch = 1000
	t0 := time.Now().UTC().Truncate(time.Hour)
	for i := range perBatch {
		fmt.Fprintf(&body, `{"time":"%s","host":"site%d.example.nl","remote_addr":"198.51.%d.%d","request_uri":"/shop/item/%d?ref=mail&utm_source=x","status":200,"user_agent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"}`+"\n",
			t0.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano), i%50, i/256%256, i%256, i)
	}
	sinks := map[string]func(b *testing.B) Sink{
		"fsync_file": func(b *testing.B) Sink {
			f, err := os.Create(filepath.Join(b.TempDir(), "wal"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { f.Close() })
			return &fsyncSink{f: f}
		},
		"store": func(b *testing.B) Sink {
			s, err := store.Open(b.TempDir(), store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return storeSink(s)
		},
	}
	for _, name := range []string{"fsync_file", "store"} {
		b.Run(name, func(b *testing.B) {
			h := NewHandler(Options{Sink: sinks[name](b), Registerer: prometheus.NewRegistry()})
			srv := httptest.NewServer(http.HandlerFunc(h.ServeIngest))
			defer srv.Close()
			b.SetBytes(int64(body.Len()))
			const clients = 4 // concurrent posters share fsyncs, as shippers do
			cpu0 := cpuSeconds()
			var mu sync.Mutex
			n := 0
			b.SetParallelism(clients / max(1, 2))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := srv.Client().Post(srv.URL, "application/x-ndjson", bytes.NewReader(body.Bytes()))
					if err != nil {
						b.Error(err)
						return
					}
					var a answer
					json.NewDecoder(resp.Body).Decode(&a)
					resp.Body.Close()
					if resp.StatusCode != 200 || a.Accepted != perBatch {
						b.Errorf("status %d accepted %d", resp.StatusCode, a.Accepted)
						return
					}
					mu.Lock()
					n += perBatch
					mu.Unlock()
				}
			})
			cpu := cpuSeconds() - cpu0
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(cpu/float64(n)*1e6, "cpu-s/Mrecords")
		})
	}
}
