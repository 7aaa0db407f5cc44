package ingest

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/retentiond/retentiond/internal/parse"
	"github.com/retentiond/retentiond/internal/record"
)

// TestInternersAcrossRequests: consecutive NDJSON requests hand the same
// domain and user agent over as the same string (one address), and a
// request with more distinct values than an Interner keeps gets an
// Interner that is then not kept, so the next request starts afresh and
// still parses every line.
func TestInternersAcrossRequests(t *testing.T) {
	sink := &memSink{}
	h := NewHandler(Options{Sink: sink})
	post := func(body string) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeIngest(rec, httptest.NewRequest("POST", "/api/v1/ingest", strings.NewReader(body)))
		if rec.Code != 200 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	line := jl("2026-11-21T16:27:08Z", "Shop.Example", "/x", "Mozilla/5.0 test", "192.0.2.1")
	post(line + "\n")
	post(line + "\n" + line + "\n")
	recs := sink.all()
	if len(recs) != 3 {
		t.Fatalf("%d records stored, want 3", len(recs))
	}
	for _, r := range recs[1:] {
		if r.Domain != "shop.example" || record.StringAddr(r.Domain) != record.StringAddr(recs[0].Domain) {
			t.Fatalf("domain %q of a later request is not the first request's string", r.Domain)
		}
		if record.StringAddr(r.UserAgent) != record.StringAddr(recs[0].UserAgent) {
			t.Fatal("user agent of a later request is not the first request's string")
		}
	}

	// A body of unique user agents past what an Interner keeps.
	var b strings.Builder
	for i := range 20_000 {
		fmt.Fprintln(&b, jl("2026-11-21T16:27:08Z", "shop.example", "/x", fmt.Sprintf("ua-%d-%s", i, strings.Repeat("x", 64)), "192.0.2.1"))
	}
	post(b.String())
	if n := len(h.ins.idle); n != 0 {
		t.Fatalf("%d Interners kept after a request of unique values, want 0", n)
	}
	post(line + "\n")
	if got := len(sink.all()); got != 3+20_000+1 {
		t.Fatalf("%d records stored, want %d", got, 3+20_000+1)
	}
}

// TestInternersBound: at most maxIdleInterners are kept, and only
// reusable ones.
func TestInternersBound(t *testing.T) {
	var p interners
	var got []*parse.Interner
	for range maxIdleInterners + 2 {
		got = append(got, p.get())
	}
	for _, in := range got {
		p.put(in)
	}
	if len(p.idle) != maxIdleInterners {
		t.Fatalf("%d Interners kept, want %d", len(p.idle), maxIdleInterners)
	}
	if in := p.get(); in != got[maxIdleInterners-1] {
		t.Fatal("get did not return the Interner put last")
	}
}
