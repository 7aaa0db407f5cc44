package search

import (
	"net/netip"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/record"
)

// TestDomainTermsUseTheStoredRule checks that a domain term is normalised by
// the same rule as ingest (record.NormalizeDomain), so that a name is found
// however it was written, that names stored by the older ASCII-only rule
// are still found, and that what ingest refuses is refused in a query too.
func TestDomainTermsUseTheStoredRule(t *testing.T) {
	stored := func(domain string) *record.Record {
		r := &record.Record{Time: time.Unix(1e9, 0), Domain: domain, Path: "/", IP: netip.MustParseAddr("192.0.2.1")}
		if err := r.Normalize(); err != nil {
			t.Fatalf("normalise %q: %v", domain, err)
		}
		return r
	}
	legacy := &record.Record{Domain: "bÜcher.example"} // as the ASCII-only rule stored "BÜCHER.example"
	tests := []struct {
		query string
		rec   *record.Record
		want  bool
	}{
		{"domain:BÜCHER.example", stored("BÜCHER.example"), true},
		{"domain:bücher.example", stored("BÜCHER.example"), true},
		{"domain:BÜCHER.example", legacy, true},
		{"domain:*.BÜCHER.example", stored("Shop.BÜCHER.example"), true},
		{"domain:SHOP.example.NL.", stored("shop.example.nl"), true},
		{"domain:shop.example.nl:443", stored("shop.example.nl"), true},
		{"domain:other.example", stored("BÜCHER.example"), false},
	}
	for _, tc := range tests {
		t.Run(tc.query+" "+tc.rec.Domain, func(t *testing.T) {
			q, err := Parse(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			if got := q.Match(tc.rec); got != tc.want {
				t.Errorf("Match(%q) = %v, want %v", tc.rec.Domain, got, tc.want)
			}
		})
	}
	for _, bad := range []string{"domain:victim.nl:evil", "domain:shop.example.nl..", "domain:a..b"} {
		t.Run(bad, func(t *testing.T) {
			if q, err := Parse(bad); err == nil {
				t.Errorf("Parse(%q) accepted it as %q; want the error ingest gives", bad, q.Terms[0].Value)
			}
		})
	}
}
