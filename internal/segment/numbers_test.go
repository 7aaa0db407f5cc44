package segment

import (
	"bytes"
	"strings"
	"testing"

	"github.com/retentiond/retentiond/internal/record"
)

// TestNumbers checks that a writer given numbers (WriteRuns' known) reports
// each dictionary entry's number, one without reports none, and a reader
// keeps numbers that fit its dictionaries and refuses others.
func TestNumbers(t *testing.T) {
	recs := genRecords(22, 2000)
	// Numbers as a head gives them: one sequence for domains and user
	// agents alike, from 7 so that no number equals a dictionary id.
	numbers := map[string]uint32{}
	number := func(s string) uint32 {
		n, ok := numbers[s]
		if !ok {
			n = uint32(7 + len(numbers))
			numbers[s] = n
		}
		return n
	}
	known := make([]Known, len(recs))
	for i, r := range recs {
		known[i] = Known{Domain: number(r.Domain), UserAgent: number(r.UserAgent)}
	}
	b, info, err := WriteMemoryRuns("n", [][]record.Record{recs}, [][]Known{known}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	nums := info.Numbers
	if nums == nil {
		t.Fatal("a writer given numbers reports none")
	}
	r, err := OpenBytes(b, "n", OpenOptions{Numbers: nums})
	if err != nil {
		t.Fatal(err)
	}
	if r.Numbers() != nums {
		t.Fatal("the reader does not give its numbers back")
	}
	for _, c := range []struct {
		name string
		dict []string
		nums []uint32
	}{{"domain", r.Domains(), nums.Domains}, {"user agent", r.UserAgents(), nums.UserAgents}} {
		if len(c.dict) < 5 || len(c.nums) != len(c.dict) {
			t.Fatalf("%s: %d numbers for %d entries", c.name, len(c.nums), len(c.dict))
		}
		for id, s := range c.dict {
			if c.nums[id] != numbers[s] {
				t.Fatalf("%s %q (id %d): number %d, want %d", c.name, s, id, c.nums[id], numbers[s])
			}
		}
	}

	_, plain, err := WriteMemoryRuns("p", [][]record.Record{recs}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if plain.Numbers != nil {
		t.Fatalf("a writer given no numbers reports %v", plain.Numbers)
	}

	short := &Numbers{Domains: nums.Domains[1:], UserAgents: nums.UserAgents}
	if _, err := OpenBytes(b, "n", OpenOptions{Numbers: short}); err == nil || !strings.Contains(err.Error(), "numbers for") {
		t.Fatalf("numbers that do not fit the dictionaries: err = %v", err)
	}
}

// TestWritersReuseBuffersCleanly: writers take their block buffers from a
// pool (blockBuf), so a segment must come out byte for byte the same
// whether its writer's buffers are new or left by a writer of other
// records, other block sizes, or one that was aborted.
func TestWritersReuseBuffersCleanly(t *testing.T) {
	a, b := genRecords(23, 5000), genRecords(24, 9000)
	write := func(recs []record.Record, rows int) []byte {
		t.Helper()
		out, _, err := WriteMemoryRuns("w", [][]record.Record{recs}, nil, Options{BlockRows: rows})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	first := write(a, 700)
	for i := range 4 {
		write(b, 1000+i*300)
		w, err := NewMemoryWriter("aborted", Options{BlockRows: 50})
		if err != nil {
			t.Fatal(err)
		}
		for j := range 120 {
			if err := w.Add(&b[j]); err != nil {
				t.Fatal(err)
			}
		}
		w.Abort()
		if again := write(a, 700); !bytes.Equal(again, first) {
			t.Fatalf("round %d: the same records wrote %d bytes, first %d, or different ones", i, len(again), len(first))
		}
	}
}
