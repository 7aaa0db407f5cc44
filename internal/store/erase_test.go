package store

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/testkit"
)

// filesHolding lists the files under dir, outside audit/ and reports/,
// that contain any of needles.
func filesHolding(t *testing.T, dir string, needles ...[]byte) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != dir && (n == "audit" || n == "reports") {
				return filepath.SkipDir
			}
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if bytes.Contains(b, n) {
				hits = append(hits, path)
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// TestEraseAddress is the proof for erasure: after erasing one
// address the address counts 0, every other record of the same days is
// still there (exactly), and no file of the data directory outside audit/
// and reports/ holds the address's text or its 4 or 16 bytes; it stays so
// after a restart. Records sit in merged segments, in parts, in the head
// and the WAL, and on a day outside the range.
func TestEraseAddress(t *testing.T) {
	dir := t.TempDir()
	clk := testkit.NewClock(base.AddDate(0, 0, 3))
	s := openTest(t, dir, clk)
	target := netip.MustParseAddr("203.0.113.7")
	ipOf := map[int]netip.Addr{}
	seq := 0
	add := func(day, n int) {
		t.Helper()
		recs := make([]record.Record, 0, n)
		for range n {
			r := rec(base.AddDate(0, 0, day).Add(time.Duration(seq)*time.Second), seq)
			if seq%10 == 4 {
				r.IP = target
			}
			ipOf[seq] = r.IP
			recs = append(recs, r)
			seq++
		}
		if err := s.Append(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}
	add(0, 300)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	add(0, 200)
	add(1, 300)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.MergeDay(base); err != nil { // day 0: one merged file
		t.Fatal(err)
	}
	add(1, 100) // day 1: a part and records only in the head and WAL
	add(2, 100) // day 2: only in the head and WAL; outside the erased range
	needles := [][]byte{[]byte(target.String()), target.AsSlice(), netip.AddrFrom16(target.As16()).AsSlice()}
	if len(filesHolding(t, dir, needles...)) == 0 {
		t.Fatal("the address is not visible in the data directory before the erasure; the scan proves nothing")
	}

	want := func(pred func(seq int) bool) []int {
		var out []int
		for i := range seq {
			if pred(i) {
				out = append(out, i)
			}
		}
		return out
	}
	day2 := func(i int) bool { return i >= 900 }
	res, err := s.Erase(context.Background(), Erasure{Prefix: netip.PrefixFrom(target, 32), To: base.AddDate(0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Days) != 2 || res.Days[0].Records != 50 || res.Days[1].Records != 40 || res.Records != 90 {
		t.Fatalf("erasure result %+v", res)
	}
	check := func() {
		t.Helper()
		got := collect(t, s, base, base.AddDate(0, 0, 3))
		exp := want(func(i int) bool { return ipOf[i] != target || day2(i) })
		if !slices.Equal(got, exp) {
			t.Fatalf("%d records visible, want %d", len(got), len(exp))
		}
	}
	check()
	// Day 2 was outside the range: its records of the address stay (the
	// erasure's flush moved them from the WAL into a part of day 2).
	day2Dir := filepath.Join(dir, "days", "2026-11-22")
	hits := filesHolding(t, dir, needles...)
	if len(hits) == 0 {
		t.Fatal("day 2, outside the range, lost the address's records")
	}
	for _, h := range hits {
		if filepath.Dir(h) != day2Dir {
			t.Fatalf("%s still holds the address after the erasure", h)
		}
	}
	if _, err := s.Erase(context.Background(), Erasure{Prefix: netip.PrefixFrom(target, 32)}); err != nil {
		t.Fatal(err)
	}
	if hits := filesHolding(t, dir, needles...); len(hits) > 0 {
		t.Fatalf("after erasing every day, %v still hold the address", hits)
	}
	got := collect(t, s, base, base.AddDate(0, 0, 3))
	if exp := want(func(i int) bool { return ipOf[i] != target }); !slices.Equal(got, exp) {
		t.Fatalf("%d records visible, want %d", len(got), len(exp))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, clk)
	defer s.Close()
	if got2 := collect(t, s, base, base.AddDate(0, 0, 3)); !slices.Equal(got2, got) {
		t.Fatalf("after a restart %d records, want %d", len(got2), len(got))
	}
}

// TestEraseNetworkAndSkip erases an IPv6 network, leaves a skipped (held)
// day alone, and removes a file that held nothing else.
func TestEraseNetworkAndSkip(t *testing.T) {
	dir := t.TempDir()
	clk := testkit.NewClock(base.AddDate(0, 0, 3))
	s := openTest(t, dir, clk)
	defer s.Close()
	var recs []record.Record
	for i := range 300 {
		recs = append(recs, rec(base.AddDate(0, 0, i%3).Add(time.Duration(i)*time.Second), i))
	}
	if err := s.Append(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	// Day 2 gets a part of nothing but addresses of the network.
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	only := []record.Record{rec(base.AddDate(0, 0, 2).Add(time.Hour), 3000)}
	if err := s.Append(context.Background(), only); err != nil {
		t.Fatal(err)
	}
	net := netip.MustParsePrefix("2001:db8::/64")
	res, err := s.Erase(context.Background(), Erasure{Prefix: net, Skip: func(d time.Time) bool { return d.Equal(base.AddDate(0, 0, 1)) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Skipped) != 1 || !res.Skipped[0].Equal(base.AddDate(0, 0, 1)) {
		t.Fatalf("skipped %v", res.Skipped)
	}
	if len(res.Days) != 2 || res.Days[1].FilesRemoved != 1 {
		t.Fatalf("days %+v", res.Days)
	}
	var want []int
	for i := range 300 {
		if !net.Contains(rec(base, i).IP) || i%3 == 1 {
			want = append(want, i)
		}
	}
	if got := collect(t, s, base, base.AddDate(0, 0, 3)); !slices.Equal(got, want) {
		t.Fatalf("%d records visible, want %d", len(got), len(want))
	}
}
