package search

import (
	"context"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/loggen"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
	"github.com/retentiond/retentiond/internal/store"
)

// TestParseOrAndGroups checks what OR, AND and parentheses mean, on
// records chosen so that each reading of a query gives a different answer.
func TestParseOrAndGroups(t *testing.T) {
	rec := func(ip, domain, path string) record.Record {
		return record.Record{IP: netip.MustParseAddr(ip), Domain: domain, Path: path, UserAgent: "ua"}
	}
	recs := []record.Record{
		rec("203.0.113.7", "a.nl", "/robots.txt"), // 0
		rec("203.0.113.7", "a.nl", "/x"),          // 1
		rec("198.51.100.9", "b.nl", "/x"),         // 2
		rec("198.51.100.9", "b.nl", "/robots.txt"),
		rec("192.0.2.1", "a.nl", "/x"), // 4
		rec("192.0.2.1", "c.nl", "/a(b)"),
	}
	for _, tc := range []struct {
		q    string
		want []int // indexes of recs that match
		alts int
	}{
		{"(ip:203.0.113.7 OR ip:198.51.100.0/24) -path:/robots.txt", []int{1, 2}, 2},
		{"ip:203.0.113.7 OR ip:198.51.100.0/24 -path:/robots.txt", []int{0, 1, 2}, 2}, // AND binds tighter
		{"ip:192.0.2.1 OR domain:b.nl", []int{2, 3, 4, 5}, 2},
		{"domain:a.nl path:/x", []int{1, 4}, 1}, // a space still means AND
		{"domain:a.nl AND path:/x", []int{1, 4}, 1},
		{"-(domain:a.nl OR domain:b.nl)", []int{5}, 1},          // De Morgan: one alternative
		{"-(domain:a.nl path:/x)", []int{0, 2, 3, 5}, 2},        // ... and two
		{"(path:/a(b) OR path:/robots.txt)", []int{0, 3, 5}, 2}, // a ')' of the value stays in it
		{"path:/a(b)", []int{5}, 1},                             // outside groups as before
		{"((ip:192.0.2.1))", []int{4, 5}, 1},
		{"(domain:a.nl OR domain:b.nl) (path:/x OR path:/robots.txt)", []int{0, 1, 2, 3, 4}, 4},
		{"", []int{0, 1, 2, 3, 4, 5}, 1},
	} {
		t.Run(tc.q, func(t *testing.T) {
			q, err := Parse(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if len(q.Alts) != tc.alts {
				t.Errorf("%d alternatives, want %d", len(q.Alts), tc.alts)
			}
			var got []int
			for i := range recs {
				tree := q.Match(&recs[i])
				dnf := slices.ContainsFunc(q.Alts, func(alt []Term) bool { return allTermsMatch(alt, &recs[i]) })
				if tree != dnf {
					t.Errorf("record %d: the tree says %v, the alternatives %v", i, tree, dnf)
				}
				if tree {
					got = append(got, i)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("matches %v, want %v", got, tc.want)
			}
		})
	}
}

// TestParseOrErrorsPointAtTheirPlace checks that malformed groups and
// operators are refused with the position of the fault.
func TestParseOrErrorsPointAtTheirPlace(t *testing.T) {
	for _, tc := range []struct {
		q    string
		pos  int // 1-based, as in the message
		term string
	}{
		{"(ip:1.2.3.4 OR ip:5.6.7.8", 1, "(i"},
		{"ip:1.2.3.4) OR ip:5.6.7.8", 1, "ip:1.2.3.4)"}, // outside groups a ')' is part of the value, as before
		{"ip:1.2.3.4 OR", 14, "end of the query"},
		{"OR ip:1.2.3.4", 1, "OR"},
		{"()", 2, ")"},
		{"ip:1.2.3.4 OR OR ip:5.6.7.8", 15, "OR"},
		{"AND ip:1.2.3.4", 1, "AND"},
		{"(ip:1.2.3.4))", 13, ")"},
		{"(ip:999.1.1.1 OR ip:1.2.3.4)", 2, "ip:999.1.1.1"},
		{"(a:b:c:d OR e:f:g:h OR i:j) (k:l OR m:n)", 2, "a:b:c:d"},
	} {
		t.Run(tc.q, func(t *testing.T) {
			_, err := Parse(tc.q)
			qe, ok := err.(*QueryError)
			if !ok {
				t.Fatalf("Parse(%q) = %v, want a QueryError", tc.q, err)
			}
			if qe.Pos+1 != tc.pos || qe.Term != tc.term {
				t.Fatalf("Parse(%q): %v; want position %d, term %q", tc.q, err, tc.pos, tc.term)
			}
		})
	}
	// An AND of ORs that multiplies past MaxAlternatives is refused.
	q := "(ip:10.0.0.1 OR ip:10.0.0.2)"
	for i := 0; i < 6; i++ {
		q += " (ip:10.0.0.1 OR ip:10.0.0.2)"
	}
	if _, err := Parse(q); err == nil {
		t.Fatalf("Parse of 2^7 alternatives succeeded, want an error")
	}
}

// TestOrOfAddressesReadsOnlyTheirBlocks proves an OR of ip: terms is
// planned as a union of index ranges: it decodes exactly the blocks that
// hold either address, and its count and rows equal the two searches'.
func TestOrOfAddressesReadsOnlyTheirBlocks(t *testing.T) {
	g := loggen.New(loggen.Options{Seed: 9, Start: start, Days: 1, Total: 50_000})
	var recs []record.Record
	for !g.Done() {
		recs = append(recs, g.Next())
	}
	p := filepath.Join(t.TempDir(), "big.seg")
	if _, err := segment.Write(p, recs, segment.Options{BlockRows: 1024}); err != nil {
		t.Fatal(err)
	}
	sr, log := openLogged(t, p, segment.OpenOptions{})
	// Two visitors of a few requests each: the first such addresses of the
	// first and the second half of the day.
	seen := map[netip.Addr]int{}
	for _, r := range recs {
		seen[r.IP]++
	}
	var a, b netip.Addr
	for i, r := range recs {
		if n := seen[r.IP]; n >= 3 && n <= 20 {
			if !a.IsValid() {
				a = r.IP
			} else if i > len(recs)/2 && r.IP != a {
				b = r.IP
				break
			}
		}
	}
	holding := map[int]bool{}
	for i := 0; i < sr.NumBlocks(); i++ {
		blk, err := sr.ReadBlock(i, segment.ColIP)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(blk.IPs, a) || slices.Contains(blk.IPs, b) {
			holding[i] = true
		}
	}
	if len(holding) >= sr.NumBlocks()/2 {
		t.Fatalf("test setup: %d of %d blocks hold the addresses", len(holding), sr.NumBlocks())
	}
	src := &fakeSource{days: []*store.DayView{{Day: start, Segments: []*segment.Reader{sr}}}}
	ex := &Executor{Source: src}
	day := func(q string) *Request {
		pq, err := Parse(q)
		if err != nil {
			t.Fatal(err)
		}
		return &Request{Query: pq, From: start, To: start.Add(24 * time.Hour)}
	}
	before := log.mark()
	var got []record.Record
	if _, err := ex.Run(context.Background(), day("ip:"+a.String()+" OR ip:"+b.String()),
		func(r record.Record) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if read := log.blocksSince(t, before); read != int64(len(holding)) {
		t.Fatalf("the OR of two addresses decoded %d blocks; %d of %d blocks hold them", read, len(holding), sr.NumBlocks())
	}
	var want int
	for _, r := range recs {
		if r.IP == a || r.IP == b {
			want++
		}
	}
	if len(got) != want {
		t.Fatalf("the OR returned %d rows, want %d", len(got), want)
	}
	n, err := ex.Count(context.Background(), day("(ip:"+a.String()+" OR ip:"+b.String()+")"))
	if err != nil || n != int64(want) {
		t.Fatalf("count = %d, %v; want %d", n, err, want)
	}
	// With a limit, the index's row counts still stop the cursor early.
	before = log.mark()
	lim := day("ip:" + a.String() + " OR ip:" + b.String())
	lim.Limit = 1
	if _, err := ex.Run(context.Background(), lim, func(record.Record) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if read := log.blocksSince(t, before); read != 1 {
		t.Fatalf("limit 1 decoded %d blocks, want 1", read)
	}
}
