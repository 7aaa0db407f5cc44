package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/retentiond/retentiond/internal/search"
)

// TestSearchCLIWarnsOfSkippedFiles: when the daemon names a damaged segment
// file it left out (header, or trailer after a streamed body), every output
// form of the CLI prints a warning naming it on stderr, and the results on
// stdout stay clean.
func TestSearchCLIWarnsOfSkippedFiles(t *testing.T) {
	const bad = "/data/days/2026-03-28/seg-00000002-00000002.seg"
	skipped, _ := json.Marshal(search.SkippedFile{File: bad, Offset: 8, Reason: "block 0 time column: checksum mismatch"})
	row := `{"time":"2026-03-27T00:00:00.000Z","domain":"d.example.nl","path":"/","user_agent":"ua","ip":"192.0.2.1"}` + "\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/search":
			w.WriteHeader(http.StatusOK)
			w.Write([]byte(row))
			w.(http.Flusher).Flush()
			w.Header().Set(http.TrailerPrefix+search.SkippedHeader, string(skipped))
		default:
			w.Header().Set(search.SkippedHeader, string(skipped))
			w.WriteHeader(http.StatusOK)
			w.Write([]byte(`{"count": 1, "total": 1, "top": [], "skipped": [` + string(skipped) + `]}`))
		}
	}))
	defer srv.Close()
	for _, f := range []searchFlags{
		{format: "ndjson"}, {format: "table"}, {format: "csv"}, {count: true}, {statsBy: "domain"},
	} {
		f.caseID, f.reason = "INC-1", "test"
		var out, errOut bytes.Buffer
		if err := runSearch(&out, &errOut, &apiClient{base: srv.URL}, &f, "ip:192.0.2.1"); err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		if !strings.Contains(errOut.String(), "warning: damaged segment file "+bad+" (offset 8") ||
			strings.Count(errOut.String(), "warning:") != 1 {
			t.Errorf("%+v: stderr %q, want one warning naming %s", f, errOut.String(), bad)
		}
		if strings.Contains(out.String(), "warning") {
			t.Errorf("%+v: the warning leaked into the results: %q", f, out.String())
		}
	}
}

// TestSearchCLIFailsOnAnAnswerEndedByAnError: a search the daemon had to end
// after its first rows (a purge destroyed a day it read) says so in the
// Retentiond-Error trailer and, for NDJSON, in a last {"error"} line; every
// output form of the CLI then exits with that error instead of presenting
// the rows as the whole answer, and the table shows no empty row for it.
func TestSearchCLIFailsOnAnAnswerEndedByAnError(t *testing.T) {
	const msg = "day 2026-03-27 was destroyed by the retention purge while this search read it"
	row := `{"time":"2026-03-27T00:00:00.000Z","domain":"d.example.nl","path":"/","user_agent":"ua","ip":"192.0.2.1"}` + "\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(row))
		if r.URL.Query().Get("format") == "ndjson" {
			line, _ := json.Marshal(map[string]string{"error": msg})
			w.Write(append(line, '\n'))
		}
		w.(http.Flusher).Flush() // chunked, so the trailer is sent
		w.Header().Set(http.TrailerPrefix+search.ErrorTrailer, msg)
	}))
	defer srv.Close()
	for _, f := range []searchFlags{{format: "ndjson"}, {format: "table"}, {format: "csv"}} {
		f.caseID, f.reason = "INC-1", "test"
		var out, errOut bytes.Buffer
		err := runSearch(&out, &errOut, &apiClient{base: srv.URL}, &f, "ip:192.0.2.1")
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%+v: error %v, want one that says %q", f, err, msg)
		}
		if f.format == "table" && strings.Count(out.String(), "\n") != 2 {
			t.Errorf("table: %q, want the header and one row", out.String())
		}
	}
}
