package segment

import (
	"fmt"
	"math"
)

// Numbers are a caller's own numbers for the dictionary entries of a
// segment: the numbers it gave the writer for them (Writer.AddKnown,
// WriteRuns' known). The store's head numbers every domain and user agent
// it holds once, and each of its in-memory parts keeps those numbers
// beside its dictionaries: a search of the day then decides a user-agent
// term once per number for all the parts, where it had to look every
// part's entries up by string (BenchmarkFreshData).
type Numbers struct {
	// Space names the numbering. Two readers whose Numbers share a
	// nonzero Space number equal strings alike; numbers of different
	// spaces say nothing about each other.
	Space uint64
	// Domains and UserAgents give each dictionary id's number, or
	// NoNumber for an entry the writer was given no number for.
	Domains, UserAgents []uint32
}

// NoNumber marks a dictionary entry without a number in Numbers.
const NoNumber = math.MaxUint32

// numbers inverts the writer's map from AddKnown's numbers to dictionary
// ids: nil when no number was given. A string given several numbers keeps
// the largest, which is as good as any: each of them stands for it.
func (w *Writer) numbers() *Numbers {
	if len(w.extDoms) == 0 && len(w.extUAs) == 0 {
		return nil
	}
	return &Numbers{Domains: invertExt(w.extDoms, len(w.domains)), UserAgents: invertExt(w.extUAs, len(w.uas))}
}

// invertExt turns byExt (number -> dictionary id + 1, 0 for none) into a
// slice of n numbers indexed by dictionary id.
func invertExt(byExt []uint32, n int) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = NoNumber
	}
	for num, id := range byExt {
		if id != 0 {
			out[id-1] = uint32(num)
		}
	}
	return out
}

// Numbers returns the numbers the reader was opened with
// (OpenOptions.Numbers), nil when none.
func (r *Reader) Numbers() *Numbers { return r.numbers }

// setNumbers checks that n fits the dictionaries before the reader keeps
// it: a slice of the wrong length would make a search index past it.
func (r *Reader) setNumbers(n *Numbers) error {
	if n == nil {
		return nil
	}
	if len(n.Domains) != len(r.domains) || len(n.UserAgents) != len(r.uas) {
		return fmt.Errorf("segment %s: numbers for %d domains and %d user agents, the dictionaries hold %d and %d",
			r.path, len(n.Domains), len(n.UserAgents), len(r.domains), len(r.uas))
	}
	r.numbers = n
	return nil
}
