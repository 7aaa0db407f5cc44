package cases

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/search"
)

// TestWithinKeepsTheScope checks that a case's scope bounds every query,
// OR and parentheses included: the joined query never matches a record
// that the scope does not.
func TestWithinKeepsTheScope(t *testing.T) {
	in := record.Record{IP: netip.MustParseAddr("192.0.2.1"), Domain: "a.shop.example.nl", Path: "/x"}
	out := record.Record{IP: netip.MustParseAddr("192.0.2.2"), Domain: "other.nl", Path: "/y"}
	for _, tc := range []struct {
		scope, query string
		want         string // the joined query, or the error's text
		err          bool
	}{
		{"domain:*.shop.example.nl", "ip:192.0.2.1", "domain:*.shop.example.nl ip:192.0.2.1", false},
		{"domain:*.shop.example.nl", "ip:192.0.2.1 OR ip:192.0.2.2", "(domain:*.shop.example.nl) (ip:192.0.2.1 OR ip:192.0.2.2)", false},
		{"domain:a.shop.example.nl OR domain:b.shop.example.nl", "path:/x", "(domain:a.shop.example.nl OR domain:b.shop.example.nl) (path:/x)", false},
		{"domain:*.shop.example.nl", "-(path:/x path:/y)", "(domain:*.shop.example.nl) (-(path:/x path:/y))", false},
		{"domain:*.shop.example.nl", "path:/x) OR (path:/y", "without a matching", true},
		{"path:/a) OR ip:192.0.2.2", "ip:192.0.2.1 OR ip:192.0.2.2", "cannot be combined", true},
	} {
		t.Run(tc.scope+" + "+tc.query, func(t *testing.T) {
			got, err := within(tc.scope, tc.query)
			if tc.err {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("within = %q, %v; want an error with %q", got, err, tc.want)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("within = %q, %v; want %q", got, err, tc.want)
			}
			q, err := search.Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			if q.Match(&out) {
				t.Fatalf("%q matches a record outside the scope", got)
			}
			s, _ := search.Parse(tc.scope)
			u, _ := search.Parse(tc.query)
			if q.Match(&in) != (s.Match(&in) && u.Match(&in)) {
				t.Fatalf("%q is not scope AND query", got)
			}
		})
	}
}
