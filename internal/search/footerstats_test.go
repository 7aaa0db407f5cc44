package search

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"
)

// TestStatsFromFooter: stats by domain and by user agent over whole days
// are answered from the footers' row counts, reading no block, and agree
// with the reference Query.Match over every record; a range that cuts a
// day, or a query on another field, still scans and agrees too.
func TestStatsFromFooter(t *testing.T) {
	mapped, all := dataset(t, 6000)
	src, logs := loggedTwin(t, mapped)
	dom, ua := all[17].Domain, all[42].UserAgent
	whole := [2]time.Time{start, start.AddDate(0, 0, 4)}
	cut := [2]time.Time{start.Add(30 * time.Hour), start.AddDate(0, 0, 3).Add(5 * time.Hour)}
	for _, c := range []struct {
		name      string
		q         string
		by        StatsBy
		rng       [2]time.Time
		noDecoded bool // the footers answer: no block is read
	}{
		{"all by domain", "", ByDomain, whole, true},
		{"all by ua", "", ByUserAgent, whole, true},
		{"domain by domain", "domain:" + dom + " OR domain:*.nl", ByDomain, whole, true},
		{"ua by ua", "ua:*Firefox*", ByUserAgent, whole, true},
		{"domain by ua", "domain:" + dom, ByUserAgent, whole, false},
		{"ua by domain", "ua:\"" + ua + "\"", ByDomain, whole, false},
		{"cut range by domain", "", ByDomain, cut, false},
		{"path by domain", "path:/wp-*", ByDomain, whole, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			q, err := Parse(c.q)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]int64{}
			for i := range all {
				r := &all[i]
				if r.Time.Before(c.rng[0]) || !r.Time.Before(c.rng[1]) || !q.Match(r) {
					continue
				}
				k := r.Domain
				if c.by == ByUserAgent {
					k = r.UserAgent
				}
				want[k]++
			}
			marks := logs.mark()
			e := &Executor{Source: src}
			res, err := e.Stats(context.Background(), &Request{Query: q, From: c.rng[0], To: c.rng[1]}, c.by, 0)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int64{}
			var total int64
			for _, b := range res.Buckets {
				got[b.Key] = b.Count
				total += b.Count
			}
			if !maps.Equal(got, want) || res.Total != total || res.Approximate {
				t.Fatalf("stats %q by %s: %d groups, total %d (approximate %v); want %d groups", c.q, c.by, len(got), res.Total, res.Approximate, len(want))
			}
			if decoded := sum(logs.blocksSince(t, marks)); c.noDecoded != (decoded == 0) {
				t.Fatalf("stats %q by %s decoded %d blocks; footer answer expected: %v", c.q, c.by, decoded, c.noDecoded)
			}
		})
	}
}

// TestCountOneDomain: a count of one exact domain is answered from the
// footers of the segments that lie inside the range (exactDomainCount,
// without a cursor) and agrees with the reference Query.Match, for a
// domain present, absent, written in capitals, negated or in a range that
// cuts the days; every segment's fast answer, where it gives one, equals
// what its cursor counts.
func TestCountOneDomain(t *testing.T) {
	mapped, all := dataset(t, 6000)
	src, logs := loggedTwin(t, mapped)
	dom := all[17].Domain
	whole := [2]time.Time{start, start.AddDate(0, 0, 4)}
	cut := [2]time.Time{start.Add(30 * time.Hour), start.AddDate(0, 0, 3).Add(5 * time.Hour)}
	for _, c := range []struct {
		name      string
		q         string
		rng       [2]time.Time
		noDecoded bool
	}{
		{"present", "domain:" + dom, whole, true},
		{"absent", "domain:absent.example", whole, true},
		{"capitals", "domain:" + strings.ToUpper(dom), whole, true},
		{"negated", "-domain:" + dom, whole, true},
		{"cut range", "domain:" + dom, cut, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			q, err := Parse(c.q)
			if err != nil {
				t.Fatal(err)
			}
			var want int64
			for i := range all {
				if r := &all[i]; !r.Time.Before(c.rng[0]) && r.Time.Before(c.rng[1]) && q.Match(r) {
					want++
				}
			}
			req := &Request{Query: q, From: c.rng[0], To: c.rng[1]}
			marks := logs.mark()
			got, err := (&Executor{Source: src}).Count(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("count %q = %d, want %d", c.q, got, want)
			}
			if decoded := sum(logs.blocksSince(t, marks)); c.noDecoded != (decoded == 0) {
				t.Fatalf("count %q decoded %d blocks; footer answer expected: %v", c.q, decoded, c.noDecoded)
			}
			fast := 0
			for _, v := range mapped.days {
				for _, sr := range v.Segments {
					n, ok := exactDomainCount(sr, req)
					if !ok {
						continue
					}
					fast++
					cur := newSegCursor(context.Background(), sr, req, 0, cursorOpts{})
					m, err := cur.count()
					cur.close()
					if err != nil {
						t.Fatal(err)
					}
					if n != m {
						t.Fatalf("count %q over %s: %d from the footer, %d by the cursor", c.q, sr.Path(), n, m)
					}
				}
			}
			// The cut range holds one whole day, whose segments the
			// footers answer; a negated domain is never answered so.
			if wantFast := c.name != "negated"; wantFast != (fast > 0) {
				t.Fatalf("count %q: %d segments answered without a cursor", c.q, fast)
			}
		})
	}
}
