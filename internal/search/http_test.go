package search

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestHandlers drives the three endpoints over generated data and checks
// status, headers, body shape, the numbers against brute force, and what the OnDone
// hook reports to a wrapping auth/audit layer.
func TestHandlers(t *testing.T) {
	src, all := dataset(t, 3000)
	type done struct {
		q     *Query
		count int64
		err   error
	}
	var got []done
	h := NewHandler(Options{Source: src, DefaultLimit: 1000, Now: func() time.Time { return start.AddDate(0, 0, 5) },
		OnDone: func(r *http.Request, q *Query, n int64, err error) { got = append(got, done{q, n, err}) }})
	ip := all[100].IP.String()
	q, _ := Parse("ip:" + ip)
	from, to := start, start.AddDate(0, 0, 5)
	want := int64(len(brute(q, all, from, to, false, 0)))
	params := func(kv ...string) string {
		v := url.Values{"from": {"2026-03-27"}, "to": {"2026-04-01"}}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return "?" + v.Encode()
	}
	tests := []struct {
		name   string
		serve  http.HandlerFunc
		query  string
		status int
		check  func(t *testing.T, body string)
		count  int64
		parsed bool
	}{
		{"search ndjson", h.ServeSearch, params("q", "ip:"+ip), 200, func(t *testing.T, body string) {
			sc := bufio.NewScanner(strings.NewReader(body))
			n := 0
			for sc.Scan() {
				var row struct{ Time, Domain, Path, UserAgent, IP string }
				if err := json.Unmarshal(sc.Bytes(), &row); err != nil || row.IP != ip {
					t.Fatalf("row %q: %v", sc.Text(), err)
				}
				n++
			}
			if int64(n) != want {
				t.Fatalf("%d rows, want %d", n, want)
			}
		}, want, true},
		{"count", h.ServeCount, params("q", "ip:"+ip), 200, func(t *testing.T, body string) {
			var c struct{ Count int64 }
			if err := json.Unmarshal([]byte(body), &c); err != nil || c.Count != want {
				t.Fatalf("count body %s, want %d", body, want)
			}
		}, want, true},
		{"stats", h.ServeStats, params("q", "ip:"+ip, "by", "ip"), 200, func(t *testing.T, body string) {
			var s struct {
				Total int64
				Top   []Bucket
			}
			if err := json.Unmarshal([]byte(body), &s); err != nil || s.Total != want || len(s.Top) != 1 || s.Top[0].Key != ip {
				t.Fatalf("stats body %s, want total %d for %s", body, want, ip)
			}
		}, want, true},
		{"bad query", h.ServeSearch, params("q", "ip:999.1.1.1"), 400, wantError("999.1.1.1"), 0, false},
		{"bad order", h.ServeSearch, params("q", "ip:"+ip, "order", "sideways"), 400, wantError("order"), 0, true},
		{"bad stats field", h.ServeStats, params("q", "ip:"+ip, "by", "cookie"), 400, wantError("by"), 0, true},
		{"bad time", h.ServeCount, params("q", "ip:"+ip, "from", "yesterday"), 400, wantError("from"), 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			rec := httptest.NewRecorder()
			tc.serve(rec, httptest.NewRequest("GET", "/x"+tc.query, nil))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			// Every JSON answer (all but the streamed search) has the
			// API's headers (internal/httpx), and every answer, the
			// streamed search included, names records: no cache may
			// keep it.
			hd := rec.Header()
			if tc.name != "search ndjson" && hd.Get("Content-Type") != "application/json" {
				t.Fatalf("headers %v: want a JSON answer", hd)
			}
			if hd.Get("Cache-Control") != "no-store" {
				t.Fatalf("headers %v: want Cache-Control: no-store", hd)
			}
			tc.check(t, rec.Body.String())
			if len(got) != 1 {
				t.Fatalf("OnDone called %d times, want once", len(got))
			}
			if d := got[0]; d.count != tc.count || (d.q != nil) != tc.parsed || (d.err != nil) != (tc.status != 200) {
				t.Fatalf("OnDone(q=%v, count=%d, err=%v); want count %d, parsed %v", d.q, d.count, d.err, tc.count, tc.parsed)
			}
		})
	}
}

func wantError(substr string) func(t *testing.T, body string) {
	return func(t *testing.T, body string) {
		var e struct{ Error string }
		if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Error, substr) {
			t.Fatalf("body %s: want a JSON error mentioning %q", body, substr)
		}
	}
}
