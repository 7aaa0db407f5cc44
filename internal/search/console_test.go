package search

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

func TestParseStep(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1m", time.Minute, true}, {"1h", time.Hour, true}, {"1d", 24 * time.Hour, true}, {"7d", 7 * 24 * time.Hour, true},
		{"", 0, false}, {"0s", 0, false}, {"7m", 0, false}, {"25h", 0, false}, {"xd", 0, false}, {"-1h", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseStep(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("ParseStep(%q) = %v, %v", tc.in, got, err)
			}
		})
	}
}

// TestHistogramMatchesOracle checks every bucket against the reference
// semantics (Query.Match over all records), zeros included.
func TestHistogramMatchesOracle(t *testing.T) {
	src, all := dataset(t, 4000)
	e := &Executor{Source: src, Concurrency: 4}
	for _, tc := range []struct {
		q    string
		step time.Duration
		from time.Time
		to   time.Time
	}{
		{"", time.Hour, start, start.Add(4 * 24 * time.Hour)},
		{"", 24 * time.Hour, start.Add(-48 * time.Hour), start.Add(6 * 24 * time.Hour)},
		{"path:/wp-*", time.Minute, start.Add(90 * time.Minute), start.Add(14 * time.Hour)},
		{"-path:/", 15 * time.Minute, start.Add(30 * time.Hour), start.Add(31 * time.Hour)},
	} {
		t.Run(tc.q+"/"+tc.step.String(), func(t *testing.T) {
			q, err := Parse(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			req := &Request{Query: q, From: tc.from, To: tc.to}
			first, counts, total, err := e.Histogram(context.Background(), req, tc.step)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]int64, len(counts))
			var wantTotal int64
			for i := range all {
				r := &all[i]
				if r.Time.Before(tc.from) || !r.Time.Before(tc.to) || !q.Match(r) {
					continue
				}
				want[int(r.Time.Sub(first)/tc.step)]++
				wantTotal++
			}
			if total != wantTotal || wantTotal == 0 {
				t.Fatalf("total %d, want %d (> 0)", total, wantTotal)
			}
			for i := range want {
				if counts[i] != want[i] {
					t.Fatalf("bucket %d (%s): %d, want %d", i, first.Add(time.Duration(i)*tc.step), counts[i], want[i])
				}
			}
			if !first.Equal(tc.from.Truncate(tc.step)) || first.Add(time.Duration(len(counts))*tc.step).Before(tc.to) {
				t.Fatalf("buckets [%s, +%d*%s) do not cover [%s, %s)", first, len(counts), tc.step, tc.from, tc.to)
			}
		})
	}
}

func TestServeHistogram(t *testing.T) {
	src, _ := dataset(t, 500)
	h := NewHandler(Options{Source: src, Now: func() time.Time { return start.Add(5 * 24 * time.Hour) }})
	get := func(v url.Values) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHistogram(w, httptest.NewRequest("GET", "/api/v1/histogram?"+v.Encode(), nil))
		return w
	}
	w := get(url.Values{"from": {start.Format(time.RFC3339)}, "to": {start.Add(4 * 24 * time.Hour).Format(time.RFC3339)}, "step": {"1d"}})
	var out struct {
		Start  string  `json:"start"`
		Step   int64   `json:"step_seconds"`
		Counts []int64 `json:"counts"`
		Total  int64   `json:"total"`
	}
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &out) != nil {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if out.Step != 86400 || len(out.Counts) != 4 || out.Total != 500 || out.Start != start.Format(time.RFC3339) {
		t.Fatalf("answer %+v", out)
	}
	for _, bad := range []url.Values{
		{"step": {"1m"}, "from": {"2020-01-01"}},
		{"step": {"nope"}},
		{},
	} {
		if w := get(bad); w.Code != http.StatusBadRequest {
			t.Fatalf("%v: status %d, want 400", bad, w.Code)
		}
	}
}
