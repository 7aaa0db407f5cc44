package importer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/retentiond/retentiond/internal/record"
)

// fakeDaemon implements the ingest endpoint's contract: gzip NDJSON in,
// {"accepted","rejected","errors"} out, 429 with Retry-After when busy.
type fakeDaemon struct {
	mu       sync.Mutex
	rows     []ndjsonRow
	busy     int // answer 429 this many times first
	requests int
}

func (d *fakeDaemon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.requests++
	if r.URL.Path != "/api/v1/ingest" || r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer s3cret" {
		http.Error(w, `{"error":"bad request line or token"}`, http.StatusUnauthorized)
		return
	}
	if d.busy > 0 {
		d.busy--
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	if r.Header.Get("Content-Encoding") != "gzip" {
		http.Error(w, `{"error":"want gzip"}`, http.StatusUnsupportedMediaType)
		return
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		http.Error(w, `{"error":"bad gzip"}`, http.StatusBadRequest)
		return
	}
	type lineErr struct {
		Line  int    `json:"line"`
		Error string `json:"error"`
	}
	var ans struct {
		Accepted int       `json:"accepted"`
		Rejected int       `json:"rejected"`
		Errors   []lineErr `json:"errors"`
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		var row ndjsonRow
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			http.Error(w, `{"error":"bad json"}`, http.StatusBadRequest)
			return
		}
		// The fake daemon refuses one domain, to exercise rejections.
		if row.Domain == "refused.example.nl" {
			ans.Rejected++
			ans.Errors = append(ans.Errors, lineErr{n, `domain "refused.example.nl": not hosted here`})
			continue
		}
		ans.Accepted++
		d.rows = append(d.rows, row)
	}
	json.NewEncoder(w).Encode(ans)
}

func TestAPISink(t *testing.T) {
	want, content := genNDJSON(3000, 9)
	// Two records the daemon will refuse.
	extra := `{"time":"2026-01-02T00:00:00Z","domain":"refused.example.nl","path":"/","user_agent":"curl/8.5.0","ip":"2001:db8::1"}` + "\n"
	content = append(content, strings.Repeat(extra, 2)...)
	d := &fakeDaemon{busy: 2}
	srv := httptest.NewServer(d)
	defer srv.Close()

	e := newEnv(t)
	f := writeFile(t, filepath.Join(e.dir, "a.log.gz"), content, "gzip")
	sink := &APISink{Server: srv.URL + "/", Token: "s3cret"}
	sum, errs := e.run(sink, nil, f)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if sum.Accepted != int64(len(want)) || sum.Rejected != 2 || sum.Retries != 2 {
		t.Fatalf("summary %+v", sum)
	}
	if len(sum.Reasons) != 1 || sum.Reasons[0].Examples[0] != f+`:3001: domain "refused.example.nl": not hosted here` {
		t.Fatalf("reasons %+v", sum.Reasons[0])
	}
	if len(d.rows) != len(want) {
		t.Fatalf("daemon stored %d rows, want %d", len(d.rows), len(want))
	}
	for i, r := range want {
		got := d.rows[i]
		if got.Time != r.Time.Format(time.RFC3339Nano) || got.Domain != r.Domain || got.Path != r.Path || got.UserAgent != r.UserAgent || got.IP != r.IP.String() {
			t.Fatalf("row %d: %+v, want %+v", i, got, r)
		}
	}
}

func TestAPISinkErrors(t *testing.T) {
	recs, _ := genNDJSON(3, 10)
	for _, tc := range []struct {
		name      string
		status    int
		header    string
		body      string
		wantRetry time.Duration
		wantErr   string
	}{
		{"busy with seconds", 503, "7", "", 7 * time.Second, ""},
		{"busy without header", 429, "", "", time.Second, ""},
		{"too large", 413, "", `{"error":"body over 8 MiB"}`, 0, "--batch-size"},
		{"unauthorised", 401, "", `{"error":"token lacks role ingest"}`, 0, "token lacks role ingest"},
		{"wrong count", 200, "", `{"accepted":1,"rejected":0}`, 0, "1 accepted + 0 rejected for 3"},
		{"all rejected", 400, "", `{"accepted":0,"rejected":3,"errors":[{"line":2,"error":"ip: missing"}]}`, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				if tc.header != "" {
					w.Header().Set("Retry-After", tc.header)
				}
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			}))
			defer srv.Close()
			rejs, err := (&APISink{Server: srv.URL}).AppendPartial(context.Background(), recs)
			var re RetryableError
			switch {
			case tc.wantRetry > 0:
				if !errors.As(err, &re) || re.RetryAfter() != tc.wantRetry {
					t.Fatalf("err %v, want retry after %v", err, tc.wantRetry)
				}
			case tc.wantErr != "":
				if err == nil || errors.As(err, &re) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want a final error containing %q", err, tc.wantErr)
				}
			default:
				if err != nil || len(rejs) != 3 || rejs[0].Index != 1 {
					t.Fatalf("rejections %+v, err %v", rejs, err)
				}
			}
		})
	}
	t.Run("connection refused is retried", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		_, err := (&APISink{Server: url}).AppendPartial(context.Background(), recs)
		var re RetryableError
		if !errors.As(err, &re) {
			t.Fatalf("err %v, want retryable", err)
		}
	})
}

func TestStoreSinkBusy(t *testing.T) {
	var busy error = busyError{}
	calls := 0
	s := StoreSink{Store: sinkFunc(func(context.Context, []record.Record) error {
		calls++
		if calls < 3 {
			return fmt.Errorf("append: %w", busy)
		}
		return nil
	})}
	e := newEnv(t)
	_, content := genNDJSON(10, 11)
	f := writeFile(t, filepath.Join(e.dir, "a.log"), content, "")
	sum, errs := e.run(s, nil, f)
	if len(errs) > 0 || sum.Retries != 2 || sum.Accepted != 10 {
		t.Fatalf("errs %v, summary %+v", errs, sum)
	}
}

// busyError says busy by its RetryAfter method, as store.ErrBusy does.
type busyError struct{}

func (busyError) Error() string             { return "store busy" }
func (busyError) RetryAfter() time.Duration { return time.Hour }

type sinkFunc func(context.Context, []record.Record) error

func (f sinkFunc) Append(ctx context.Context, recs []record.Record) error { return f(ctx, recs) }
