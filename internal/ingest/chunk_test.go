package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/retentiond/retentiond/internal/loggen"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/store"
)

// countingSink records every Append call's size; failAt, when > 0, makes
// that call (1-based) fail with err.
type countingSink struct {
	memSink
	calls  []int
	failAt int
	err    error
}

func (s *countingSink) Append(ctx context.Context, recs []record.Record) error {
	s.mu.Lock()
	s.calls = append(s.calls, len(recs))
	fail := len(s.calls) == s.failAt
	s.mu.Unlock()
	if fail {
		return s.err
	}
	return s.memSink.Append(ctx, recs)
}

// numbered returns n NDJSON lines whose paths are /1 ... /n; the lines listed
// in bad are replaced by a line that does not parse.
func numbered(n int, bad ...int) []string {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = jl("2026-11-21T16:27:08Z", "a.example", fmt.Sprintf("/%d", i+1), "ua", "192.0.2.1")
		for _, b := range bad {
			if b == i+1 {
				lines[i] = `{"ts":"2026-11-21T16:27:08Z","domain":"a.example","path":"/bad","ip":"300.1.1.1"}`
			}
		}
	}
	return lines
}

// TestBodyStoredInChunks posts bodies of several chunks (10 records each) and
// checks that each chunk reaches the store on its own, that the answer counts
// every record, and that a bad line in the third chunk costs only itself.
// A failure in the middle of the body is answered with what was stored and
// where to resume.
func TestBodyStoredInChunks(t *testing.T) {
	now := time.Date(2026, 11, 21, 17, 0, 0, 0, time.UTC)
	lines := numbered(35, 25)
	ndjson := strings.Join(lines, "\n") + "\n"
	array := "[" + strings.Join(lines, ",\n") + "]"
	combined := func(n int) string {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			fmt.Fprintf(&b, `192.0.2.1 - - [21/Nov/2026:16:27:08 +0000] "GET /%d HTTP/1.1" 200 3 "-" "ua"`+"\n", i)
		}
		return b.String()
	}
	tests := []struct {
		name, path, body, encoding string
		maxBody                    int64
		failAt                     int
		status, accepted, rejected int
		calls                      []int
		errLine                    int // line of the listed error, if rejected
		resume                     int
		want                       string // in the answer's error
	}{
		{name: "ndjson", body: ndjson, status: 200, accepted: 34, rejected: 1, calls: []int{10, 10, 9, 5}, errLine: 25},
		{name: "json array", body: array, status: 200, accepted: 34, rejected: 1, calls: []int{10, 10, 9, 5}, errLine: 25},
		{name: "gzip ndjson", body: gz(ndjson), encoding: "gzip", status: 200, accepted: 34, rejected: 1, calls: []int{10, 10, 9, 5}, errLine: 25},
		{name: "combined lines", path: "/api/v1/ingest/lines?format=combined&domain=c.example", body: combined(23), status: 200, accepted: 23, calls: []int{10, 10, 3}},
		{name: "store fails in chunk 2", body: ndjson, failAt: 2, status: 503, accepted: 10, calls: []int{10, 10}, resume: 11,
			want: "the 10 records accepted before line 11 were stored"},
		{name: "body over the limit in chunk 3", body: ndjson, maxBody: int64(len(strings.Join(lines[:25], "\n"))), status: 413, accepted: 20, calls: []int{10, 10}, resume: 21,
			want: "exceeds"},
		{name: "truncated gzip in chunk 3", body: gz(ndjson)[:len(gz(ndjson))-30], encoding: "gzip", status: 400, accepted: 20, calls: []int{10, 10}, resume: 21,
			want: "read body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &countingSink{failAt: tt.failAt, err: errors.New("fsync: EIO")}
			h := NewHandler(Options{Sink: sink, MaxBodyBytes: cmp0(tt.maxBody, 1<<20), ChunkRecords: 10,
				Now: func() time.Time { return now }, Registerer: prometheus.NewRegistry()})
			req := httptest.NewRequest("POST", cmpOr(tt.path, "/api/v1/ingest"), strings.NewReader(tt.body))
			if tt.encoding != "" {
				req.Header.Set("Content-Encoding", tt.encoding)
			}
			// Without a Content-Length, as a chunked or compressed body
			// arrives: the size is only found out while reading.
			req.ContentLength = -1
			rec := httptest.NewRecorder()
			if strings.HasPrefix(req.URL.Path, "/api/v1/ingest/lines") {
				h.ServeLines(rec, req)
			} else {
				h.ServeIngest(rec, req)
			}
			var a Answer
			if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
				t.Fatalf("answer is not JSON: %v: %q", err, rec.Body.String())
			}
			if rec.Code != tt.status || a.Accepted != tt.accepted || a.Rejected != tt.rejected {
				t.Fatalf("got %d accepted=%d rejected=%d, want %d %d %d; body %s",
					rec.Code, a.Accepted, a.Rejected, tt.status, tt.accepted, tt.rejected, rec.Body.String())
			}
			if fmt.Sprint(sink.calls) != fmt.Sprint(tt.calls) {
				t.Errorf("store saw batches of %v records, want %v (one per chunk)", sink.calls, tt.calls)
			}
			stored := sink.all()
			if len(stored) != tt.accepted {
				t.Errorf("store holds %d records, answer says %d accepted", len(stored), tt.accepted)
			}
			// Records arrive in body order, the bad line left out.
			want := 1
			for _, r := range stored {
				if want == 25 && tt.rejected > 0 {
					want++
				}
				if r.Path != fmt.Sprintf("/%d", want) {
					t.Fatalf("stored %q where /%d was due", r.Path, want)
				}
				want++
			}
			if tt.rejected > 0 && (len(a.Errors) != 1 || a.Errors[0].Line != tt.errLine || !strings.Contains(a.Errors[0].Error, "ip")) {
				t.Errorf("errors %+v, want one ip error on line %d", a.Errors, tt.errLine)
			}
			if a.ResumeAt != tt.resume || !strings.Contains(a.Error, tt.want) {
				t.Errorf("resume_at_line=%d error=%q, want %d and %q", a.ResumeAt, a.Error, tt.resume, tt.want)
			}
			if tt.status == 503 && rec.Header().Get("Retry-After") == "" {
				t.Error("no Retry-After")
			}
		})
	}
}

func cmp0(a, b int64) int64 {
	if a != 0 {
		return a
	}
	return b
}

// gatedBody yields its data only once open is closed: a client whose
// request is being served for as long as the test wants.
type gatedBody struct {
	open <-chan struct{}
	r    io.Reader
}

func (g *gatedBody) Read(p []byte) (int, error) {
	<-g.open
	return g.r.Read(p)
}

// TestConcurrencyBound holds MaxConcurrent requests open and checks that the
// next one waits QueueTimeout and is then answered 429 with Retry-After,
// having stored nothing, and that a turn is free again once one ends.
func TestConcurrencyBound(t *testing.T) {
	sink := &memSink{}
	reg := prometheus.NewRegistry()
	h := NewHandler(Options{Sink: sink, MaxConcurrent: 2, QueueTimeout: 50 * time.Millisecond, Registerer: reg})
	open := make(chan struct{})
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range 2 {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			h.ServeIngest(rec, httptest.NewRequest("POST", "/api/v1/ingest", &gatedBody{open, strings.NewReader(goodLine)}))
			codes[i] = rec.Code
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(h.m.inflight) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the two gated requests never started")
		}
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	rec := httptest.NewRecorder()
	h.ServeIngest(rec, httptest.NewRequest("POST", "/api/v1/ingest", strings.NewReader(goodLine)))
	if rec.Code != 429 || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "nothing was stored") {
		t.Fatalf("third request: %d %q (Retry-After %q), want 429 saying nothing was stored", rec.Code, rec.Body.String(), rec.Header().Get("Retry-After"))
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Errorf("third request answered after %s, before its queue timeout", waited)
	}
	if got := testutil.ToFloat64(h.m.refused.WithLabelValues("http", "concurrency")); got != 1 {
		t.Errorf("refused{reason=concurrency} = %v, want 1", got)
	}
	close(open)
	wg.Wait()
	if codes[0] != 200 || codes[1] != 200 {
		t.Fatalf("gated requests answered %v, want 200s", codes)
	}
	rec = httptest.NewRecorder()
	h.ServeIngest(rec, httptest.NewRequest("POST", "/api/v1/ingest", strings.NewReader(goodLine)))
	if rec.Code != 200 {
		t.Fatalf("request after the others ended: %d %s", rec.Code, rec.Body.String())
	}
	if n := len(sink.all()); n != 3 {
		t.Fatalf("%d records stored, want 3", n)
	}
}

// boundSink is a real store seen through the ingest interfaces: it checks,
// at every reservation and append, that the head, the reservations and any
// parsed records appended without a reservation (which nothing bounds)
// together stay within the head bound.
type boundSink struct {
	st    *store.Store
	reg   *prometheus.Registry
	bound int64

	mu         sync.Mutex
	unreserved int64 // estimated bytes of records in plain Append calls
	peak       int64
}

func (b *boundSink) gauge(name string) int64 {
	mfs, err := b.reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return int64(mf.GetMetric()[0].GetGauge().GetValue())
		}
	}
	return 0
}

func (b *boundSink) observe(extra int64) {
	b.mu.Lock()
	b.unreserved += extra
	n := b.gauge("retentiond_store_head_bytes") + b.gauge("retentiond_store_reserved_bytes") + b.unreserved
	b.peak = max(b.peak, n)
	b.mu.Unlock()
}

func (b *boundSink) Append(ctx context.Context, recs []record.Record) error {
	var est int64
	for i := range recs {
		est += int64(len(recs[i].Path)+len(recs[i].Domain)+len(recs[i].UserAgent)) + 96
	}
	b.observe(est)
	defer b.observe(-est)
	return b.st.Append(ctx, recs)
}

func (b *boundSink) Reserve(ctx context.Context, n int64) (Reservation, error) {
	r, err := Admit(b.st).Reserve(ctx, n)
	b.observe(0)
	if err != nil {
		return nil, err
	}
	return &boundReservation{b, r}, nil
}

func (b *boundSink) ReserveLimit() int64 { return b.st.ReserveLimit() }

func (b *boundSink) ReserveFor(n int, textBytes int64) int64 { return b.st.ReserveFor(n, textBytes) }

// storeSink is a *store.Store as serve wires it: the Sink, and its Admitter.
func storeSink(st *store.Store) Sink {
	return struct {
		Sink
		Admitter
	}{st, Admit(st)}
}

type boundReservation struct {
	b *boundSink
	r Reservation
}

func (r *boundReservation) Append(ctx context.Context, recs []record.Record) error {
	r.b.observe(0)
	err := r.r.Append(ctx, recs)
	r.b.observe(0)
	return err
}

func (r *boundReservation) Release() { r.r.Release(); r.b.observe(0) }

// TestConcurrentBodiesStayWithinHeadBound posts six ~3 MB bodies at once to
// a store whose head bound (16 MiB) is smaller than what they parse into
// together: every body must be stored whole (each request waits for memory
// rather than being refused), and records parsed but not yet stored never
// push the head past its bound.
func TestConcurrentBodiesStayWithinHeadBound(t *testing.T) {
	const bound = 16 << 20
	reg := prometheus.NewRegistry()
	st, err := store.Open(t.TempDir(), store.Options{HeadMaxBytes: bound, FlushInterval: time.Hour, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sink := &boundSink{st: st, reg: reg, bound: bound}
	h := NewHandler(Options{Sink: sink, MaxConcurrent: 6, QueueTimeout: time.Minute, Registerer: prometheus.NewRegistry()})

	const clients = 6
	bodies := make([][]byte, clients)
	total := 0
	for i := range bodies {
		g := loggen.New(loggen.Options{Seed: int64(i + 1), Start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Days: 2, Total: 11_000})
		for !g.Done() {
			r := g.Next()
			bodies[i] = loggen.AppendNDJSON(bodies[i], &r)
			total++
		}
	}
	var wg sync.WaitGroup
	answers := make([]string, clients)
	for i := range clients {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			h.ServeIngest(rec, httptest.NewRequest("POST", "/api/v1/ingest", bytes.NewReader(bodies[i])))
			answers[i] = fmt.Sprintf("%d %s", rec.Code, strings.TrimSpace(rec.Body.String()))
		})
	}
	wg.Wait()
	for i, a := range answers {
		if !strings.HasPrefix(a, "200 ") {
			t.Errorf("body %d (%d bytes): %s", i, len(bodies[i]), a)
		}
	}
	var stored int64
	for _, d := range st.Days() {
		stored += d.Records
	}
	if stored != int64(total) {
		t.Errorf("%d records stored, want %d", stored, total)
	}
	if sink.peak > bound {
		t.Fatalf("head + reserved + parsed-but-unreserved records reached %d bytes, over the %d bound", sink.peak, bound)
	}
	t.Logf("peak %.1f MiB of a %d MiB bound", float64(sink.peak)/(1<<20), bound>>20)
}
