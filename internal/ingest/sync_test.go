package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/store"
)

// syncSink is a Sink and Admitter whose reservations append without
// waiting (DeferredReservation) and whose Sync fails with syncErr; it
// counts both, and in what order they came.
type syncSink struct {
	memSink
	syncErr error

	mu     sync.Mutex
	events []string // "append" (durable), "nosync", "sync"
}

func (s *syncSink) event(e string) {
	s.mu.Lock()
	s.events = append(s.events, e)
	s.mu.Unlock()
}

func (s *syncSink) Sync() error { s.event("sync"); return s.syncErr }

func (s *syncSink) Reserve(context.Context, int64) (Reservation, error) { return syncRes{s}, nil }
func (s *syncSink) ReserveLimit() int64                                 { return 1 << 30 }
func (s *syncSink) ReserveFor(n int, textBytes int64) int64             { return int64(n) + textBytes }

type syncRes struct{ s *syncSink }

func (r syncRes) Append(ctx context.Context, recs []record.Record) error {
	r.s.event("append")
	return r.s.memSink.Append(ctx, recs)
}

func (r syncRes) AppendNoSync(ctx context.Context, recs []record.Record) error {
	r.s.event("nosync")
	return r.s.memSink.Append(ctx, recs)
}

func (syncRes) Release() {}

// TestOneSyncPerRequest: a body of four chunks is appended chunk by chunk
// without waiting for durability and synced once before the answer, which
// counts its records only if that sync succeeded; a failed sync is answered
// 503 with nothing stored, even after a body error that would have said
// what was stored.
func TestOneSyncPerRequest(t *testing.T) {
	now := time.Date(2026, 11, 21, 17, 0, 0, 0, time.UTC)
	ndjson := strings.Join(numbered(35), "\n") + "\n"
	for _, tc := range []struct {
		name, body, encoding string
		syncErr              error
		status, accepted     int
		want                 string
	}{
		{name: "synced", body: ndjson, status: 200, accepted: 35},
		{name: "sync fails", body: ndjson, syncErr: errors.New("fsync: EIO"), status: 503, want: "nothing was stored"},
		{name: "body error, synced", body: gz(ndjson)[:len(gz(ndjson))-30], encoding: "gzip", status: 400, accepted: 20, want: "were stored"},
		{name: "body error, sync fails", body: gz(ndjson)[:len(gz(ndjson))-30], encoding: "gzip", syncErr: errors.New("fsync: EIO"),
			status: 400, want: "nothing was stored"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := &syncSink{syncErr: tc.syncErr}
			h := NewHandler(Options{Sink: sink, ChunkRecords: 10, Now: func() time.Time { return now }, Registerer: prometheus.NewRegistry()})
			req := httptest.NewRequest("POST", "/api/v1/ingest", strings.NewReader(tc.body))
			if tc.encoding != "" {
				req.Header.Set("Content-Encoding", tc.encoding)
			}
			req.ContentLength = -1
			rec := httptest.NewRecorder()
			h.ServeIngest(rec, req)
			var a Answer
			json.Unmarshal(rec.Body.Bytes(), &a)
			if rec.Code != tc.status || a.Accepted != tc.accepted || !strings.Contains(rec.Body.String(), tc.want) {
				t.Fatalf("answer %d %s, want %d with %d accepted and %q", rec.Code, rec.Body.String(), tc.status, tc.accepted, tc.want)
			}
			n := len(sink.events)
			if n < 2 || sink.events[n-1] != "sync" {
				t.Fatalf("store saw %v, want appends without sync and one sync last", sink.events)
			}
			for _, e := range sink.events[:n-1] {
				if e != "nosync" {
					t.Fatalf("store saw %v, want every chunk appended without sync", sink.events)
				}
			}
		})
	}
}

// TestRequestFsyncsOnce: with a real store wired as the daemon wires it
// (the store as Sink, Admit(store) as Admitter), a body of four chunks
// costs the WAL one fsync, and every record is in the store.
func TestRequestFsyncsOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	st, err := store.Open(t.TempDir(), store.Options{FlushInterval: time.Hour, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	counter := func(name string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		t.Fatalf("no metric %s", name)
		return 0
	}
	now := time.Date(2026, 11, 21, 17, 0, 0, 0, time.UTC)
	h := NewHandler(Options{Sink: st, Admitter: Admit(st), ChunkRecords: 10, Now: func() time.Time { return now },
		Registerer: prometheus.NewRegistry()})
	before := counter("retentiond_wal_fsyncs_total")
	rec := httptest.NewRecorder()
	h.ServeIngest(rec, httptest.NewRequest("POST", "/api/v1/ingest", strings.NewReader(strings.Join(numbered(35), "\n"))))
	if rec.Code != 200 {
		t.Fatalf("answer %d %s", rec.Code, rec.Body.String())
	}
	if n := counter("retentiond_wal_fsyncs_total") - before; n != 1 {
		t.Fatalf("%v WAL fsyncs for one request of four chunks, want 1", n)
	}
	if n := counter("retentiond_store_appended_records_total"); n != 35 {
		t.Fatalf("%v records appended, want 35", n)
	}
}
