package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/retentiond/retentiond/internal/search"
)

// TestSearchCLISaysWhenTheLimitCutTheAnswer: a search answer that stopped
// at its limit (the Retentiond-Truncated trailer) makes every output form
// print "N of M shown; --limit 0 for all" on stderr, with "more than" when
// the daemon did not count the total; a complete answer prints no such
// notice. Other forms than the table print the SHA-256 of the bytes
// received. On the old CLI a cut CSV export said nothing at all.
func TestSearchCLISaysWhenTheLimitCutTheAnswer(t *testing.T) {
	row := `{"time":"2026-03-27T00:00:00.000Z","domain":"d.example.nl","path":"/a&b","user_agent":"ua","ip":"192.0.2.1"}` + "\n"
	for _, tc := range []struct {
		name  string
		trail *search.Truncation
		want  string
	}{
		{"counted", &search.Truncation{Limit: 2, Total: 4112}, "2 of 4,112 records shown; --limit 0 for all"},
		{"not counted", &search.Truncation{Limit: 2, TotalAtLeast: 3}, "2 of more than 2 records shown"},
		{"complete", nil, ""},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			w.Write([]byte(row + row))
			w.(http.Flusher).Flush()
			if tc.trail != nil {
				v, _ := json.Marshal(tc.trail)
				w.Header().Set(http.TrailerPrefix+search.TruncatedTrailer, string(v))
			}
		}))
		for _, format := range []string{"ndjson", "table", "csv"} {
			t.Run(tc.name+" "+format, func(t *testing.T) {
				f := searchFlags{format: format, limit: 2, caseID: "INC-1", reason: "test"}
				var out, errOut bytes.Buffer
				if err := runSearch(&out, &errOut, &apiClient{base: srv.URL}, &f, "ip:192.0.2.1"); err != nil {
					t.Fatal(err)
				}
				got := errOut.String()
				if tc.want != "" && !strings.Contains(got, tc.want) || tc.want == "" && strings.Contains(got, "shown") {
					t.Fatalf("stderr %q, want %q", got, tc.want)
				}
				if strings.Contains(out.String(), "shown") {
					t.Fatalf("the notice leaked into the results: %q", out.String())
				}
				if format != "table" {
					sum := sha256.Sum256([]byte(row + row))
					if !strings.Contains(got, "sha256 "+hex.EncodeToString(sum[:])) {
						t.Fatalf("stderr %q, want the SHA-256 of the body", got)
					}
				}
			})
		}
		srv.Close()
	}
}

// TestStatsCLIShowsWhatIsLeftOut: by a field, a top that leaves values
// out says "N of M values shown"; a timeline prints every bucket, a run of
// empty ones as one line naming its first and last.
func TestStatsCLIShowsWhatIsLeftOut(t *testing.T) {
	for _, tc := range []struct {
		by, answer string
		want       []string
	}{
		{"domain", `{"by":"domain","total":9,"top":[{"key":"a.nl","count":5},{"key":"b.nl","count":2}],"approximate":false,"truncated":false,"groups":5,"shown":2}`,
			[]string{"2 of 5 values shown; --top 0 for all"}},
		{"hour", `{"by":"hour","total":3,"top":[{"key":"2026-03-27T00:00:00Z","count":1},{"key":"2026-03-27T01:00:00Z","count":0},` +
			`{"key":"2026-03-27T02:00:00Z","count":0},{"key":"2026-03-27T03:00:00Z","count":0},{"key":"2026-03-27T04:00:00Z","count":2},` +
			`{"key":"2026-03-27T05:00:00Z","count":0}],"approximate":false,"truncated":false,"groups":6,"shown":6}`,
			[]string{"1 2026-03-27T00:00:00Z", "0 2026-03-27T01:00:00Z … 2026-03-27T03:00:00Z (3 empty hour buckets)",
				"2 2026-03-27T04:00:00Z", "0 2026-03-27T05:00:00Z"}},
	} {
		t.Run(tc.by, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte(tc.answer))
			}))
			defer srv.Close()
			f := searchFlags{statsBy: tc.by, top: 2, caseID: "INC-1", reason: "test"}
			var out, errOut bytes.Buffer
			if err := runSearch(&out, &errOut, &apiClient{base: srv.URL}, &f, "ip:192.0.2.1"); err != nil {
				t.Fatal(err)
			}
			squeezed := strings.Join(strings.FieldsFunc(out.String(), func(r rune) bool { return r == ' ' }), " ")
			for _, w := range tc.want {
				if !strings.Contains(squeezed, w) {
					t.Fatalf("output %q, want a line with %q", out.String(), w)
				}
			}
			if tc.by == "hour" && strings.Contains(out.String(), "shown") {
				t.Fatalf("a timeline is never cut, but the output says %q", out.String())
			}
		})
	}
}
