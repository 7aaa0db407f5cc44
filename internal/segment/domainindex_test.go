package segment

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestDomainID checks that a reader with sorted domains (IndexDomains)
// and one without answer every lookup alike: each stored domain finds its
// own id, and names that are not stored (before, between and after the
// stored ones in sort order) find none.
func TestDomainID(t *testing.T) {
	recs := genRecords(21, 3000)
	p := filepath.Join(t.TempDir(), "d.seg")
	if _, err := Write(p, recs, Options{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := OpenBytes(b, p, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	indexed, err := OpenBytes(b, p, OpenOptions{IndexDomains: true})
	if err != nil {
		t.Fatal(err)
	}
	doms := indexed.Domains()
	if len(doms) < 10 {
		t.Fatalf("only %d domains", len(doms))
	}
	for id, d := range doms {
		for name, r := range map[string]*Reader{"plain": plain, "indexed": indexed} {
			if got, ok := r.DomainID(d); !ok || got != uint32(id) {
				t.Fatalf("%s: DomainID(%q) = %d, %v; want %d", name, d, got, ok, id)
			}
		}
	}
	sorted := slices.Sorted(slices.Values(doms))
	absent := []string{"", "\x00", "~~~~", sorted[0][:len(sorted[0])-1], sorted[len(sorted)-1] + "x"}
	for _, d := range sorted[:50] {
		absent = append(absent, d+"\x00", "0"+d)
	}
	for _, name := range absent {
		if slices.Contains(doms, name) {
			continue
		}
		for rn, r := range map[string]*Reader{"plain": plain, "indexed": indexed} {
			if id, ok := r.DomainID(name); ok {
				t.Fatalf("%s: DomainID(%q) = %d, want none", rn, name, id)
			}
		}
	}
}

// TestIPPageEntries checks that a segment written with small IP index
// pages answers every address and prefix lookup as the default does, and
// that the writer refuses sizes outside 1-1024.
func TestIPPageEntries(t *testing.T) {
	recs := genRecords(22, 20000)
	dir := t.TempDir()
	def := writeOpen(t, filepath.Join(dir, "def.seg"), recs, Options{BlockRows: 512})
	for _, n := range []int{1, 3, 64} {
		small := writeOpen(t, filepath.Join(dir, "small.seg"), recs, Options{BlockRows: 512, IPPageEntries: n})
		if small.footerPages() <= def.footerPages() {
			t.Fatalf("%d entries a page: %d pages, the default has %d", n, small.footerPages(), def.footerPages())
		}
		for i := 0; i < len(recs); i += 97 {
			a := recs[i].IP
			for _, bits := range []int{a.BitLen(), a.BitLen() - 8, a.BitLen() - 16} {
				pfx, _ := a.Prefix(bits)
				wb, wr := def.BlockRowsForPrefix(pfx, true)
				gb, gr := small.BlockRowsForPrefix(pfx, true)
				if !slices.Equal(gb, wb) || !slices.Equal(gr, wr) {
					t.Fatalf("%d entries a page, %s: blocks %v rows %v, want %v %v", n, pfx, gb, gr, wb, wr)
				}
			}
		}
		small.Close()
	}
	for _, n := range []int{-1, 1025} {
		if _, err := Write(filepath.Join(dir, "bad.seg"), recs[:10], Options{IPPageEntries: n}); err == nil {
			t.Errorf("IPPageEntries %d accepted", n)
		}
	}
}

func (r *Reader) footerPages() int { return len(r.ipPages) }

// TestAddKnown checks that records added with the caller's numbers for
// their domains and user agents (as a merge adds them) give a file byte
// for byte equal to the same records added by their strings, including
// when the numbers are sparse, start high, or are mixed with plain Adds.
func TestAddKnown(t *testing.T) {
	recs := genRecords(23, 5000)
	dir := t.TempDir()
	want := filepath.Join(dir, "want.seg")
	if _, err := Write(want, recs, Options{BlockRows: 300}); err != nil {
		t.Fatal(err)
	}
	wb, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	number := func(seen map[string]uint32, s string, stride uint32) uint32 {
		if n, ok := seen[s]; ok {
			return n
		}
		n := 1000 + stride*uint32(len(seen))
		seen[s] = n
		return n
	}
	for _, c := range []struct {
		name   string
		stride uint32
		plain  func(i int) bool // rows added with Add instead
	}{
		{"dense", 1, func(int) bool { return false }},
		{"sparse", 7, func(int) bool { return false }},
		{"mixed", 3, func(i int) bool { return i%5 == 0 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name+".seg")
			w, err := NewWriter(p, Options{BlockRows: 300})
			if err != nil {
				t.Fatal(err)
			}
			doms, uas := map[string]uint32{}, map[string]uint32{}
			for i := range recs {
				r := &recs[i]
				if c.plain(i) {
					err = w.Add(r)
				} else {
					err = w.AddKnown(r, number(doms, r.Domain, c.stride), number(uas, r.UserAgent, c.stride))
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if _, err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, wb) {
				t.Fatal("AddKnown wrote a different file than Add")
			}
		})
	}
}

// TestMemoryWriterKeepsLittleSlack: a segment built in memory holds at
// most an eighth more memory than its length (the store accounts an
// in-memory part at its length), whether the reservation for it was too
// small or too large.
func TestMemoryWriterKeepsLittleSlack(t *testing.T) {
	for _, n := range []int{1, 300, 20000} {
		recs := genRecords(24, n)
		b, _, err := WriteMemory("slack", recs, Options{Level: 1, IPPageEntries: 64})
		if err != nil {
			t.Fatal(err)
		}
		if cap(b) > len(b)+len(b)/8 {
			t.Errorf("%d records: %d bytes in a buffer of %d", n, len(b), cap(b))
		}
		w, err := NewMemoryWriter("slack", Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range recs {
			if err := w.Add(&recs[i]); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if b := w.Bytes(); cap(b) > len(b)+len(b)/8 {
			t.Errorf("%d records added one by one: %d bytes in a buffer of %d", n, len(b), cap(b))
		}
	}
}
