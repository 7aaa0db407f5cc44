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

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/store"
)

// memSink is an in-memory Sink; err, when set, is returned instead of storing.
type memSink struct {
	mu   sync.Mutex
	recs []record.Record
	err  error
}

func (s *memSink) Append(ctx context.Context, recs []record.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.recs = append(s.recs, recs...)
	return nil
}

func (s *memSink) all() []record.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]record.Record(nil), s.recs...)
}

func jl(ts, domain, path, ua, ip string) string {
	return fmt.Sprintf(`{"ts":%q,"domain":%q,"path":%q,"ua":%q,"ip":%q}`, ts, domain, path, ua, ip)
}

var goodLine = jl("2026-11-21T16:27:08Z", "a.example", "/x", "ua", "192.0.2.1")

func gz(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

func zst(s string) string {
	w, _ := zstd.NewWriter(nil)
	return string(w.EncodeAll([]byte(s), nil))
}

// blockingBody never yields data: it stands for a client that stops sending.
// It returns when the request's context ends, as the server's read timeout
// would make it.
type blockingBody struct{ ctx context.Context }

func (b blockingBody) Read([]byte) (int, error) {
	<-b.ctx.Done()
	return 0, b.ctx.Err()
}

type answer struct {
	Accepted int         `json:"accepted"`
	Rejected int         `json:"rejected"`
	Errors   []LineError `json:"errors"`
	Error    string      `json:"error"`
}

// busyErr and tooLargeErr are a Sink's errors that say busy and too large
// by their methods, as store.ErrBusy and store.ErrTooLarge do.
type busyErr struct{}

func (busyErr) Error() string             { return "busy" }
func (busyErr) RetryAfter() time.Duration { return 3 * time.Second }

type tooLargeErr struct{}

func (tooLargeErr) Error() string  { return "too large" }
func (tooLargeErr) TooLarge() bool { return true }

func TestHandlerMalformed(t *testing.T) {
	now := time.Date(2026, 11, 21, 17, 0, 0, 0, time.UTC)
	window := func(now time.Time) (time.Time, time.Time) { return now.AddDate(-2, 0, 0), now.Add(time.Hour) }
	many := make([]string, 250)
	for i := range many {
		many[i] = `{"ts":"bad"}`
	}
	tests := []struct {
		name     string
		path     string // default /api/v1/ingest
		body     string
		encoding string
		sinkErr  error
		status   int
		accepted int
		rejected int
		nErrors  int      // listed errors; -1 means equal to rejected
		firstAt  int      // line of the first listed error
		want     []string // substrings of the first error (or of "error")
	}{
		{name: "ndjson", body: goodLine + "\n" + goodLine + "\n", status: 200, accepted: 2},
		{name: "json array", body: "[" + goodLine + ",\n " + goodLine + "]", status: 200, accepted: 2},
		{name: "gzip", body: gz(goodLine + "\n"), encoding: "gzip", status: 200, accepted: 1},
		{name: "zstd", body: zst(goodLine + "\n" + goodLine), encoding: "zstd", status: 200, accepted: 2},
		{name: "crlf and blank lines", body: "\r\n" + goodLine + "\r\n\r\n", status: 200, accepted: 1},
		{name: "empty body", body: "", status: 400},
		{name: "broken json", body: `{"ts":"2026-11-21T16:27:08Z","domain":`, status: 400, rejected: 1, firstAt: 1, want: []string{"column", "invalid JSON"}},
		{name: "bad time", body: jl("21-11-2026", "a.example", "/x", "u", "192.0.2.1"), status: 400, rejected: 1, firstAt: 1, want: []string{"time", "21-11-2026"}},
		{name: "bad ip", body: jl("2026-11-21T16:27:08Z", "a.example", "/x", "u", "300.1.1.1"), status: 400, rejected: 1, firstAt: 1, want: []string{"ip", "300.1.1.1"}},
		{name: "empty domain", body: jl("2026-11-21T16:27:08Z", "", "/x", "u", "192.0.2.1"), status: 400, rejected: 1, firstAt: 1, want: []string{"domain", "missing"}},
		{name: "escaped NUL in path", body: strings.Replace(goodLine, `"/x"`, `"/x\u0000"`, 1), status: 400, rejected: 1, firstAt: 1, want: []string{"path", "NUL"}},
		{name: "raw NUL byte", body: "{\"ts\":\"2026-11-21T16:27:08Z\",\"path\":\"/\x00\"}", status: 400, rejected: 1, firstAt: 1, want: []string{"control byte 0x00"}},
		{name: "oversized line", body: goodLine + "\n" + `{"path":"` + strings.Repeat("a", 2000) + `"}` + "\n" + goodLine, status: 200, accepted: 2, rejected: 1, firstAt: 2, want: []string{"line too long"}},
		{name: "truncated gzip", body: gz(goodLine + "\n" + goodLine)[:30], encoding: "gzip", status: 400, want: []string{"read body", "nothing was stored"}},
		{name: "gzip bomb", body: gz(strings.Repeat(" ", 8<<20)), encoding: "gzip", status: 413, want: []string{"exceeds 65536 bytes after decompression"}},
		{name: "zstd bomb", body: zst(strings.Repeat("\n", 8<<20)), encoding: "zstd", status: 413, want: []string{"exceeds"}},
		{name: "plain body labelled gzip", body: goodLine, encoding: "gzip", status: 400, want: []string{"gzip"}},
		{name: "unknown encoding", body: goodLine, encoding: "br", status: 415, want: []string{"Content-Encoding", "br"}},
		{name: "huge array", body: "[" + strings.Repeat(goodLine+",", 2000) + goodLine + "]", status: 413, want: []string{"exceeds"}},
		{name: "errors capped, all counted", body: goodLine + "\n" + strings.Join(many, "\n"), status: 200, accepted: 1, rejected: 250, nErrors: 100, firstAt: 2, want: []string{"time"}},
		{name: "invalid utf-8 kept", body: jl("2026-11-21T16:27:08Z", "a.example", "/x", "u", "192.0.2.1")[:0] + "{\"ts\":1795278428,\"domain\":\"a.example\",\"path\":\"/\xff\",\"ip\":\"192.0.2.1\"}", status: 200, accepted: 1},
		{name: "mixed good and bad", body: goodLine + "\nnot json\n" + goodLine + "\n", status: 200, accepted: 2, rejected: 1, firstAt: 2, want: []string{"not a JSON object"}},
		{name: "array broken midway", body: "[" + goodLine + ", {\"ts\": ]", status: 200, accepted: 1, rejected: 1, firstAt: 2, want: []string{"invalid JSON"}},
		{name: "array of numbers", body: "[1, 2]", status: 400, rejected: 2, firstAt: 1, want: []string{"not a JSON object"}},
		{name: "too old", body: jl("2020-01-01T00:00:00Z", "a.example", "/x", "u", "192.0.2.1"), status: 400, rejected: 1, firstAt: 1, want: []string{"older than the retention"}},
		{name: "too new", body: jl("2027-01-01T00:00:00Z", "a.example", "/x", "u", "192.0.2.1"), status: 400, rejected: 1, firstAt: 1, want: []string{"too far in the future"}},
		{name: "store busy", body: goodLine, sinkErr: fmt.Errorf("append: %w", store.ErrBusy), status: 429, want: []string{"retry"}},
		{name: "store failed", body: goodLine, sinkErr: errors.New("fsync: EIO"), status: 503, want: []string{"retry"}},
		{name: "batch above the head bound", body: goodLine, sinkErr: fmt.Errorf("append: %w", store.ErrTooLarge), status: 413, want: []string{"smaller"}},
		// Any Sink's errors are told apart by behaviour, not by identity.
		{name: "busy by behaviour", body: goodLine, sinkErr: fmt.Errorf("append: %w", busyErr{}), status: 429, want: []string{"retry"}},
		{name: "too large by behaviour", body: goodLine, sinkErr: fmt.Errorf("append: %w", tooLargeErr{}), status: 413, want: []string{"smaller"}},
		{name: "lines combined", path: "/api/v1/ingest/lines?format=combined&domain=L.example",
			body: `192.0.2.1 - - [21/Nov/2026:16:27:08 +0000] "GET /l HTTP/1.1" 200 3 "-" "ua"` + "\n", status: 200, accepted: 1},
		{name: "lines vhost_combined gzip", path: "/api/v1/ingest/lines?format=vhost_combined", encoding: "gzip",
			body: gz(`v.example:443 192.0.2.1 - - [21/Nov/2026:16:27:08 +0000] "GET /l HTTP/1.1" 200 3 "-" "ua"`), status: 200, accepted: 1},
		{name: "lines without domain", path: "/api/v1/ingest/lines?format=combined",
			body: `192.0.2.1 - - [21/Nov/2026:16:27:08 +0000] "GET /l HTTP/1.1" 200 3 "-" "ua"`, status: 400, rejected: 1, firstAt: 1, want: []string{"domain", "missing"}},
		{name: "lines unknown format", path: "/api/v1/ingest/lines?format=w3c", body: "x", status: 400, want: []string{"unknown format"}},
		{name: "gzip with trailing junk over the limit", body: gz(strings.Repeat("x", 200<<10)) + strings.Repeat("\x00", 70<<10), encoding: "gzip", status: 413, want: []string{"exceeds"}},
		{name: "slow client", body: "<blocking>", status: 400, want: []string{"read body", "deadline"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &memSink{err: tt.sinkErr}
			reg := prometheus.NewRegistry()
			h := NewHandler(Options{Sink: sink, MaxBodyBytes: 64 << 10, MaxLineBytes: 1024, TimeWindow: window,
				Now: func() time.Time { return now }, Registerer: reg})
			path := cmpOr(tt.path, "/api/v1/ingest")
			var body io.Reader = strings.NewReader(tt.body)
			ctx := t.Context()
			if tt.body == "<blocking>" {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 20*time.Millisecond)
				defer cancel()
				body = blockingBody{ctx}
			}
			req := httptest.NewRequestWithContext(ctx, "POST", path, body)
			if tt.encoding != "" {
				req.Header.Set("Content-Encoding", tt.encoding)
			}
			rec := httptest.NewRecorder()
			if strings.HasPrefix(path, "/api/v1/ingest/lines") {
				h.ServeLines(rec, req)
			} else {
				h.ServeIngest(rec, req)
			}
			var a answer
			if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
				t.Fatalf("answer is not JSON: %v: %q", err, rec.Body.String())
			}
			if rec.Code != tt.status || a.Accepted != tt.accepted || a.Rejected != tt.rejected {
				t.Fatalf("got %d accepted=%d rejected=%d, want %d %d %d; body %s",
					rec.Code, a.Accepted, a.Rejected, tt.status, tt.accepted, tt.rejected, rec.Body.String())
			}
			if (tt.status == 429 || tt.status == 503) && rec.Header().Get("Retry-After") == "" {
				t.Error("no Retry-After")
			}
			if got := len(sink.all()); tt.sinkErr == nil && got != tt.accepted {
				t.Errorf("sink holds %d records, answer says %d accepted", got, tt.accepted)
			}
			nErr := tt.nErrors
			if nErr == 0 {
				nErr = tt.rejected
			}
			if len(a.Errors) != nErr {
				t.Errorf("%d errors listed, want %d", len(a.Errors), nErr)
			}
			msg := a.Error
			if len(a.Errors) > 0 {
				msg = a.Errors[0].Error
				if a.Errors[0].Line != tt.firstAt {
					t.Errorf("first error on line %d, want %d", a.Errors[0].Line, tt.firstAt)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
			if tt.name == "gzip bomb" {
				// The decompressor is stopped at the limit, not after: no
				// more than the limit (plus one read) was inflated.
				if got := testutil.ToFloat64(h.m.bytes.WithLabelValues("http")); got > 64<<10+64<<10 {
					t.Errorf("inflated %v bytes of a bomb with a 64 KiB limit", got)
				}
			}
			if tt.name == "invalid utf-8 kept" && sink.all()[0].Path != "/\xff" {
				t.Errorf("path %q, want the raw byte kept", sink.all()[0].Path)
			}
			if tt.rejected > 0 {
				if got := testutil.ToFloat64(h.m.records.WithLabelValues(inputOf(path), "rejected")); int(got) != tt.rejected {
					t.Errorf("rejected metric %v, want %d", got, tt.rejected)
				}
			}
		})
	}
}

func inputOf(path string) string {
	if strings.HasPrefix(path, "/api/v1/ingest/lines") {
		return "http_lines"
	}
	return "http"
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestMetricsSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := Options{Sink: &memSink{}, Registerer: reg}
	NewHandler(opts)
	NewHandler(opts) // a second user of the same registry (the syslog listeners) must not panic
	h := NewHandler(opts)
	req := httptest.NewRequest("POST", "/api/v1/ingest", strings.NewReader(goodLine+"\nx\n"))
	h.ServeIngest(httptest.NewRecorder(), req)
	if n, err := testutil.GatherAndCount(reg, "retentiond_ingest_records_total", "retentiond_ingest_rejected_total"); err != nil || n != 3 {
		t.Fatalf("GatherAndCount = %d, %v; want 3 series", n, err)
	}
}

func FuzzJSONBody(f *testing.F) {
	f.Add([]byte(goodLine + "\n" + goodLine))
	f.Add([]byte("[" + goodLine + "," + goodLine + "]"))
	f.Add([]byte(`{"a":[1,{"b":null}],"ts":1e3,"ip":"::1","path":"/\ud83d\ude00","domain":"x"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		sink := &memSink{}
		h := NewHandler(Options{Sink: sink, MaxBodyBytes: 1 << 20, MaxLineBytes: 4096})
		rec := httptest.NewRecorder()
		h.ServeIngest(rec, httptest.NewRequest("POST", "/api/v1/ingest", bytes.NewReader(body)))
		var a answer
		if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
			t.Fatalf("answer is not JSON: %q", rec.Body.String())
		}
		if a.Accepted != len(sink.all()) {
			t.Fatalf("accepted %d, stored %d", a.Accepted, len(sink.all()))
		}
		if (rec.Code == 200) != (a.Accepted > 0) {
			t.Fatalf("status %d with %d accepted", rec.Code, a.Accepted)
		}
		for _, r := range sink.all() {
			again := r
			if err := again.Normalize(); err != nil {
				t.Fatalf("stored record does not validate: %v", err)
			}
		}
	})
}

// ingestStatus sends body to a handler with a small MaxLineBytes and returns
// the status and the records accepted.
func ingestStatus(t *testing.T, body []byte, maxLine int) (int, int) {
	t.Helper()
	sink := &memSink{}
	h := NewHandler(Options{Sink: sink, MaxBodyBytes: 1 << 20, MaxLineBytes: maxLine})
	rec := httptest.NewRecorder()
	h.ServeIngest(rec, httptest.NewRequest("POST", "/api/v1/ingest", bytes.NewReader(body)))
	var a answer
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
		t.Fatalf("answer is not JSON: %q", rec.Body.String())
	}
	return rec.Code, a.Accepted
}

// TestNDJSONAndArrayAgree: an object is accepted as an NDJSON line exactly
// when it is accepted as the element of a JSON array; max_line_bytes counts
// the object, not the whitespace around it, in both.
func TestNDJSONAndArrayAgree(t *testing.T) {
	const maxLine = 128
	obj := func(n int) string { // an object of exactly n bytes
		o := `{"ts":1795278428,"domain":"a.example","ip":"192.0.2.1","path":"/`
		return o + strings.Repeat("x", n-len(o)-2) + `"}`
	}
	for _, tt := range []struct {
		name, obj string
		ok        bool
	}{
		{"at the limit", obj(maxLine), true},
		{"one byte over", obj(maxLine + 1), false},
		{"two bytes over", obj(maxLine + 2), false},
		{"at the limit, spaces around", "   " + obj(maxLine) + "  \t ", true},
		{"over, spaces around", "  " + obj(maxLine+1) + "  ", false},
		{"small", obj(80), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, body := range []string{tt.obj + "\n", tt.obj + "\r\n", tt.obj, "[" + tt.obj + "]", "[\n" + tt.obj + "\n]"} {
				code, n := ingestStatus(t, []byte(body), maxLine)
				if (code == 200 && n == 1) != tt.ok {
					t.Errorf("body %q: status %d, %d accepted; want accepted %v", body, code, n, tt.ok)
				}
			}
		})
	}
}

// TestTrailingBytesAfterObject pins how the two forms count bytes after a
// complete object (found by FuzzNDJSONArrayAgree): an NDJSON line is one
// record, so the line is rejected as a whole; in an array the object is a
// complete element and is accepted, and what follows it without a ','
// is rejected as the next element. Either way the error is reported and
// counted, and no other record is lost.
func TestTrailingBytesAfterObject(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		code, n    int
	}{
		{"ndjson line", goodLine + "0", 400, 0},
		{"ndjson line, then a good one", goodLine + "0\n" + goodLine + "\n", 200, 1},
		{"array element", "[" + goodLine + "0]", 200, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, n := ingestStatus(t, []byte(tc.body), 4096); code != tc.code || n != tc.n {
				t.Fatalf("status %d, %d accepted; want %d, %d", code, n, tc.code, tc.n)
			}
		})
	}
}

// FuzzNDJSONArrayAgree sends one object as an NDJSON body and as a JSON
// array of one element: the answers must agree.
func FuzzNDJSONArrayAgree(f *testing.F) {
	f.Add([]byte(goodLine), 64)
	f.Add([]byte(" "+goodLine+"  "), len(goodLine))
	f.Add([]byte(goodLine), len(goodLine)-1)
	f.Fuzz(func(t *testing.T, obj []byte, maxLine int) {
		maxLine = 16 + int(uint(maxLine)%4096)
		// NDJSON splits at newlines (a JSON object may hold them between
		// its tokens), and a body opening with '[' is an array.
		if bytes.ContainsAny(obj, "\n\r") || !bytes.HasPrefix(bytes.TrimLeft(obj, " \t"), []byte("{")) {
			return
		}
		// One object only: after a complete one, more bytes are a bad
		// line in NDJSON but an element of their own in an array, where
		// the object before them stands (TestTrailingBytesAfterObject).
		dec := json.NewDecoder(bytes.NewReader(obj))
		var v json.RawMessage
		if dec.Decode(&v) == nil && len(bytes.Trim(obj[dec.InputOffset():], " \t")) > 0 {
			return
		}
		c1, n1 := ingestStatus(t, obj, maxLine)
		c2, n2 := ingestStatus(t, append(append([]byte("["), obj...), ']'), maxLine)
		if c1 != c2 || n1 != n2 {
			t.Fatalf("%q (max_line_bytes %d): NDJSON %d (%d accepted), array %d (%d accepted)", obj, maxLine, c1, n1, c2, n2)
		}
	})
}
