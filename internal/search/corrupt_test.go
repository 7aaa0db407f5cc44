package search

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/store"
)

// damagedStore builds a store with two days: the first day has two part
// files, the second one. It then flips one byte in every 16 of the block
// area of the first day's first part (the footer stays intact, so the store
// opens it and the damage shows only when its blocks are read) and reopens
// the store. It returns the store, the damaged file and the paths of the
// records in the undamaged files.
func damagedStore(t *testing.T) (s *store.Store, bad string, good map[string]bool) {
	t.Helper()
	dir := t.TempDir()
	now := func() time.Time { return start.AddDate(0, 0, 3) }
	open := func() *store.Store {
		s, err := store.Open(dir, store.Options{Now: now, FlushInterval: time.Hour, BlockRows: 16,
			Registerer: prometheus.NewRegistry()})
		if err != nil {
			t.Fatalf("open store: %v", err)
		}
		return s
	}
	s = open()
	good = map[string]bool{}
	seq := 0
	batch := func(day, n int, keep bool) {
		var recs []record.Record
		for i := 0; i < n; i++ {
			r := record.Record{Time: start.AddDate(0, 0, day).Add(time.Duration(seq) * time.Second),
				Domain: fmt.Sprintf("d%d.example.nl", seq%3), Path: fmt.Sprintf("/seq/%d", seq),
				UserAgent: "test", IP: netip.AddrFrom4([4]byte{192, 0, 2, byte(seq)})}
			if err := r.Normalize(); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, r)
			if keep {
				good[r.Path] = true
			}
			seq++
		}
		if err := s.Append(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	batch(0, 50, true)   // flush 1
	batch(1, 100, false) // flush 2: the file that gets damaged
	batch(1, 70, true)   // flush 3
	s.Close()
	// The day is closed (now is three days later), so its first flush may
	// write the archived form of the name (seg-A-B.archive.seg).
	matches, err := filepath.Glob(filepath.Join(dir, "days", record.DayString(start.AddDate(0, 0, 1)), "seg-00000002-00000002*.seg"))
	if err != nil || len(matches) != 1 {
		t.Fatalf("the second flush's file: %v %v", matches, err)
	}
	bad = matches[0]
	b, err := os.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	footer := int(binary.LittleEndian.Uint64(b[len(b)-28:]))
	for i := 8; i < footer; i += 16 {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(bad, b, 0o640); err != nil {
		t.Fatal(err)
	}
	s = open()
	t.Cleanup(func() { s.Close() })
	return s, bad, good
}

// TestDamagedSegmentIsSkipped: a segment file whose blocks fail their
// checksum no longer fails the search of its day. Every search, count and
// stats answers 200 with the records of every other file, and names the
// damaged file (a header, a trailer when found mid-stream, a "skipped"
// field); the store then keeps the file out of later snapshots. With one
// day scanned at a time, the first search has sent the first day's records
// before it reads the damaged second day: it names the file in a trailer.
func TestDamagedSegmentIsSkipped(t *testing.T) {
	s, bad, good := damagedStore(t)
	reg := prometheus.NewRegistry()
	h := NewHandler(Options{Source: s, MaxConcurrency: 1, Now: func() time.Time { return start.AddDate(0, 0, 3) }, Registerer: reg})
	mux := http.NewServeMux()
	mux.HandleFunc("/search", h.ServeSearch)
	mux.HandleFunc("/count", h.ServeCount)
	mux.HandleFunc("/stats", h.ServeStats)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(path string, kv ...string) (*http.Response, string) {
		t.Helper()
		v := url.Values{"from": {record.DayString(start)}, "to": {record.DayString(start.AddDate(0, 0, 2))}}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		resp, err := http.Get(srv.URL + path + "?" + v.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body) // trailers arrive after the body
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(body)
	}
	// namesBad checks that the answer names the damaged file, in its
	// header or trailer.
	namesBad := func(t *testing.T, resp *http.Response) {
		t.Helper()
		vals := append(resp.Header.Values(SkippedHeader), resp.Trailer.Values(SkippedHeader)...)
		for _, v := range vals {
			var f SkippedFile
			if err := json.Unmarshal([]byte(v), &f); err != nil {
				t.Fatalf("%s value %q: %v", SkippedHeader, v, err)
			}
			if f.File == bad && f.Reason != "" {
				return
			}
		}
		t.Fatalf("answer does not name the damaged file %s: header %q, trailer %q", bad,
			resp.Header.Values(SkippedHeader), resp.Trailer.Values(SkippedHeader))
	}
	// The first search meets the damage mid-scan, the later ones skip the
	// file the store has set aside; all answer the same.
	for i, format := range []string{"ndjson", "csv", "combined", "ndjson"} {
		t.Run("search "+format, func(t *testing.T) {
			resp, body := get("/search", "limit", "0", "format", format)
			if first := i == 0; first != (len(resp.Trailer.Values(SkippedHeader)) > 0) ||
				first == (len(resp.Header.Values(SkippedHeader)) > 0) {
				t.Errorf("search %d: header %q, trailer %q; want the first in a trailer (found mid-stream), later ones in the header",
					i, resp.Header.Values(SkippedHeader), resp.Trailer.Values(SkippedHeader))
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			seen := map[string]bool{}
			sc := bufio.NewScanner(strings.NewReader(body))
			for sc.Scan() {
				i := strings.Index(sc.Text(), "/seq/")
				if i < 0 {
					continue // the CSV header
				}
				p := sc.Text()[i:]
				p = p[:strings.IndexAny(p+" \",", " \",")]
				seen[p] = true
			}
			for p := range good {
				if !seen[p] {
					t.Fatalf("record %s of an undamaged file is missing (%d of %d returned)", p, len(seen), len(good))
				}
			}
			if len(seen) != len(good) {
				t.Errorf("%d records returned, want the %d of the undamaged files", len(seen), len(good))
			}
			namesBad(t, resp)
		})
	}
	t.Run("count", func(t *testing.T) {
		resp, body := get("/count", "q", "path:/seq/*")
		var v struct {
			Count   int64         `json:"count"`
			Skipped []SkippedFile `json:"skipped"`
		}
		if err := json.Unmarshal([]byte(body), &v); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, body %s: %v", resp.StatusCode, body, err)
		}
		if v.Count != int64(len(good)) || len(v.Skipped) != 1 || v.Skipped[0].File != bad {
			t.Fatalf("count answer %+v, want %d and the damaged file skipped", v, len(good))
		}
		namesBad(t, resp)
	})
	t.Run("stats", func(t *testing.T) {
		resp, body := get("/stats", "by", "domain")
		var v struct {
			Total   int64         `json:"total"`
			Skipped []SkippedFile `json:"skipped"`
		}
		if err := json.Unmarshal([]byte(body), &v); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, body %s: %v", resp.StatusCode, body, err)
		}
		if v.Total != int64(len(good)) || len(v.Skipped) != 1 || v.Skipped[0].File != bad {
			t.Fatalf("stats answer %+v, want %d and the damaged file skipped", v, len(good))
		}
	})
	// The store set the file aside: later snapshots no longer hold its
	// reader, so nothing decodes it again, and name it as damaged.
	snap, err := s.Snapshot(start.AddDate(0, 0, 1), start.AddDate(0, 0, 2))
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	v := snap.Days[0]
	if len(v.Segments) != 1 || len(v.Corrupt) != 1 || v.Corrupt[0].Err.File != bad {
		t.Fatalf("day after the damage was found: %d readable files, damaged %+v; want 1 and %s",
			len(v.Segments), v.Corrupt, bad)
	}
	mfs, _ := reg.Gather()
	partial := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "retentiond_search_partial_results_total" {
			for _, m := range mf.GetMetric() {
				partial += m.GetCounter().GetValue()
			}
		}
	}
	if partial != 6 {
		t.Errorf("retentiond_search_partial_results_total = %v, want 6 (every answer above)", partial)
	}
}
