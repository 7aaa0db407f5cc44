package search

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/record"
)

// get serves one request to h's endpoint and returns the response, its
// body read (so trailers are in place).
func get(t *testing.T, serve http.HandlerFunc, v url.Values) (*http.Response, string) {
	t.Helper()
	w := httptest.NewRecorder()
	serve(w, httptest.NewRequest("GET", "/?"+v.Encode(), nil))
	resp := w.Result()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestSearchSaysWhenTheLimitCutIt: an answer that stopped at its limit
// while more records match carries the Retentiond-Truncated trailer, with
// the total when the indexes give it cheaply and "at least" otherwise; a
// complete answer carries none. On the old code a search cut at 1000 rows
// looked exactly like a complete one.
func TestSearchSaysWhenTheLimitCutIt(t *testing.T) {
	src, all := dataset(t, 3000)
	now := start.AddDate(0, 0, 5)
	h := NewHandler(Options{Source: src, DefaultLimit: 1000, Now: func() time.Time { return now }})
	ip := all[100].IP.String()
	count := func(q string) int {
		pq, _ := Parse(q)
		return len(brute(pq, all, start, now, false, 0))
	}
	nIP, nPath := count("ip:"+ip), count("path:*a*")
	if nIP < 3 || nPath < 3 {
		t.Fatalf("test setup: %d and %d matches", nIP, nPath)
	}
	for _, tc := range []struct {
		name, q, limit, format string
		rows                   int
		want                   *Truncation
	}{
		{"an address, counted", "ip:" + ip, "2", "ndjson", 2, &Truncation{Limit: 2, Total: int64(nIP)}},
		{"an address in csv", "ip:" + ip, "2", "csv", 3, &Truncation{Limit: 2, Total: int64(nIP)}},
		{"a path, not counted", "path:*a*", "2", "combined", 2, &Truncation{Limit: 2, TotalAtLeast: 3}},
		{"limit = total", "ip:" + ip, itoa(nIP), "ndjson", nIP, nil},
		{"limit above total", "ip:" + ip, itoa(nIP + 1), "ndjson", nIP, nil},
		{"no limit", "path:*a*", "0", "ndjson", nPath, nil},
		{"the default limit", "", "", "ndjson", 1000, &Truncation{Limit: 1000, Total: int64(len(all))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := url.Values{"q": {tc.q}, "from": {"2026-03-27"}, "format": {tc.format}}
			if tc.limit != "" {
				v.Set("limit", tc.limit)
			}
			resp, body := get(t, h.ServeSearch, v)
			if resp.StatusCode != 200 || strings.Count(body, "\n") != tc.rows {
				t.Fatalf("status %d, %d lines, want %d", resp.StatusCode, strings.Count(body, "\n"), tc.rows)
			}
			got := resp.Trailer.Get(TruncatedTrailer)
			if tc.want == nil {
				if got != "" {
					t.Fatalf("trailer %q on a complete answer", got)
				}
				return
			}
			want, _ := json.Marshal(tc.want)
			if got != string(want) {
				t.Fatalf("trailer %q, want %s", got, want)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestUnknownParametersAreRefused: every endpoint refuses (400) a query
// parameter it does not read, naming it, so that Loki's start and end, or
// a misspelt limit, never silently become a search of the whole retention;
// the guard's case and reason pass when declared. On the old code
// start=... was ignored and the search answered 200 over everything.
func TestUnknownParametersAreRefused(t *testing.T) {
	src, _ := dataset(t, 300)
	h := NewHandler(Options{Source: src, Now: func() time.Time { return start.AddDate(0, 0, 5) },
		GuardParams: []string{"case", "reason"}})
	for _, tc := range []struct {
		name   string
		serve  http.HandlerFunc
		params url.Values
		status int
		names  []string
	}{
		{"search start and end", h.ServeSearch, url.Values{"start": {"2026-03-28"}, "end": {"2026-03-29"}}, 400, []string{`"end"`, `"start"`}},
		{"search limits", h.ServeSearch, url.Values{"limits": {"5"}}, 400, []string{`"limits"`}},
		{"search with case and reason", h.ServeSearch, url.Values{"case": {"A"}, "reason": {"r"}, "limit": {"1"}}, 200, nil},
		{"count with a search parameter", h.ServeCount, url.Values{"limit": {"5"}}, 400, []string{`"limit"`}},
		{"count", h.ServeCount, url.Values{"from": {"2026-03-28"}}, 200, nil},
		{"stats step", h.ServeStats, url.Values{"by": {"day"}, "step": {"1h"}}, 400, []string{`"step"`}},
		{"stats", h.ServeStats, url.Values{"by": {"day"}, "top": {"3"}, "from": {"2026-03-27"}}, 200, nil},
		{"histogram top", h.ServeHistogram, url.Values{"step": {"1h"}, "top": {"3"}}, 400, []string{`"top"`}},
		{"histogram", h.ServeHistogram, url.Values{"step": {"1h"}, "from": {"2026-03-27"}}, 200, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, tc.serve, tc.params)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.status)
			}
			var answer struct{ Error string }
			json.Unmarshal([]byte(body), &answer)
			for _, n := range tc.names {
				if !strings.Contains(answer.Error, n) {
					t.Fatalf("answer %s does not name %s", body, n)
				}
			}
		})
	}
	// The evidence export's parameters are checked the same way.
	if _, err := h.Prepare(httptest.NewRequest("GET", "/?start=-7d&case=A", nil)); err == nil || !strings.Contains(err.Error(), `"start"`) {
		t.Fatalf("Prepare with start: %v, want an error naming it", err)
	}
}

// TestServeStatsTimeline: by hour with top=5 answers every hour of the
// range in time order (zeros too), not the first five; the empty hours
// after now that the default range reaches are left out; a timeline
// longer than MaxTimelineBuckets is refused; by a field the answer says
// how many values it shows of how many.
func TestServeStatsTimeline(t *testing.T) {
	src, all := dataset(t, 3000)
	now := start.AddDate(0, 0, 3).Add(90 * time.Minute) // in the fourth day
	h := NewHandler(Options{Source: src, Now: func() time.Time { return now }})
	var body struct {
		Top []struct {
			Key   string
			Count int64
		}
		Total, Groups int64
		Shown         int
	}
	resp, raw := get(t, h.ServeStats, url.Values{"by": {"hour"}, "top": {"5"}, "from": {"2026-03-27"}})
	if resp.StatusCode != 200 || json.Unmarshal([]byte(raw), &body) != nil {
		t.Fatalf("%d %s", resp.StatusCode, raw)
	}
	var inRange int64
	for _, r := range all {
		if r.Time.Before(now.Add(48 * time.Hour)) {
			inRange++
		}
	}
	// Hours up to now, and after it any hour with a record (the data
	// runs to the end of the fourth day).
	last := now.Truncate(time.Hour)
	for _, r := range all {
		if h := r.Time.Truncate(time.Hour); h.After(last) {
			last = h
		}
	}
	wantHours := int(last.Sub(start)/time.Hour) + 1
	if len(body.Top) != wantHours || body.Shown != wantHours || body.Groups != int64(wantHours) || body.Total != inRange {
		t.Fatalf("%d buckets (shown %d, groups %d), total %d; want %d hours, total %d", len(body.Top), body.Shown, body.Groups,
			body.Total, wantHours, inRange)
	}
	for i, b := range body.Top {
		if want := start.Add(time.Duration(i) * time.Hour).Format(time.RFC3339); b.Key != want {
			t.Fatalf("bucket %d is %s, want %s", i, b.Key, want)
		}
	}
	resp, raw = get(t, h.ServeStats, url.Values{"by": {"minute"}, "from": {"2026-01-01"}})
	if resp.StatusCode != 400 || !strings.Contains(raw, "20000") {
		t.Fatalf("by minute over months: %d %s, want 400 naming the bound", resp.StatusCode, raw)
	}
	resp, raw = get(t, h.ServeStats, url.Values{"by": {"domain"}, "top": {"3"}, "from": {"2026-03-27"}})
	if resp.StatusCode != 200 || json.Unmarshal([]byte(raw), &body) != nil || body.Shown != 3 || body.Groups <= 3 {
		t.Fatalf("by domain top 3: %s, want shown 3 of more", raw)
	}
}

// TestSearchRowsAreFaithful: every NDJSON and CSV time has the fixed
// width of record.TimeLayout, and & < > in a path are written as logged.
// On the old code a time on a whole second had no fraction and & became
// \u0026.
func TestSearchRowsAreFaithful(t *testing.T) {
	src, all := dataset(t, 300)
	h := NewHandler(Options{Source: src, Now: func() time.Time { return start.AddDate(0, 0, 5) }})
	fixed := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	for _, format := range []string{"ndjson", "csv"} {
		t.Run(format, func(t *testing.T) {
			_, body := get(t, h.ServeSearch, url.Values{"from": {"2026-03-27"}, "limit": {"0"}, "format": {format}})
			lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
			if format == "csv" {
				lines = lines[1:]
			}
			if len(lines) != len(all) {
				t.Fatalf("%d rows, want %d", len(lines), len(all))
			}
			whole := 0
			for _, l := range lines {
				var ts string
				if format == "csv" {
					ts, _, _ = strings.Cut(l, ",")
				} else {
					var row map[string]string
					if err := json.Unmarshal([]byte(l), &row); err != nil {
						t.Fatal(err)
					}
					ts = row["time"]
				}
				if !fixed.MatchString(ts) {
					t.Fatalf("time %q is not YYYY-MM-DDTHH:MM:SS.mmmZ", ts)
				}
				if strings.HasSuffix(ts, ".000Z") {
					whole++
				}
			}
			if whole == 0 {
				t.Log("no record on a whole second: the width check is weaker")
			}
		})
	}
	r := record.Record{Time: start, Domain: "a.nl", Path: "/a?x=1&y=<2>", UserAgent: "<script>", IP: all[0].IP}
	if got := string(AppendNDJSON(nil, &r)); !strings.Contains(got, `"path":"/a?x=1&y=<2>","user_agent":"<script>"`) ||
		!strings.Contains(got, `"time":"2026-03-27T00:00:00.000Z"`) {
		t.Fatalf("row %s", got)
	}
}
