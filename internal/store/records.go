package store

import (
	"iter"
	"slices"
	"sync"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
)

// recordChunk is how many records a chunk of a head's tail holds (384 KiB
// of record structs).
const recordChunk = 4096

// Records is a run of records in arrival order, kept in chunks of
// recordChunk records: a head's tail, or the part of it a snapshot sees.
// The tail grows by chunks and a seal drops whole chunks, so no record is
// ever copied to grow or shrink it: a tail kept in one slice was copied
// each time it grew and again after each seal, 11 % of the daemon's ingest
// CPU in issue 15's peer benchmark. A chunk's records never move, so a
// Records taken from a tail stays valid while the tail grows: appends
// write only beyond its length. The zero value is empty.
type Records struct {
	// chunks hold the records, recordChunk to a chunk: record i is at
	// position off+i. Every chunk is full but the last; the first grows
	// from a few records (a quiet day's head stays small), the others
	// are allocated whole.
	chunks [][]record.Record
	// known holds, chunk for chunk, each record's domain and user agent
	// as its head numbers them (addKnown), for the seal to hand to
	// segment.Writer.AddKnown; nil when the records were added without
	// (add). A Records is filled by one of the two, never both.
	known [][]segment.Known
	off   int // where the first record lies in chunks[0]
	n     int
}

// RecordsOf returns a copy of recs as Records.
func RecordsOf(recs []record.Record) Records {
	var rs Records
	for _, r := range recs {
		rs.add(r)
	}
	return rs
}

// Len returns the number of records.
func (rs Records) Len() int { return rs.n }

// At returns record i, which must not be changed.
func (rs Records) At(i int) *record.Record {
	if i < 0 || i >= rs.n {
		panic("store: Records index out of range")
	}
	i += rs.off
	return &rs.chunks[i/recordChunk][i%recordChunk]
}

// All yields the records in order.
func (rs Records) All() iter.Seq[record.Record] {
	return func(yield func(record.Record) bool) {
		for _, c := range rs.Chunks() {
			for i := range c {
				if !yield(c[i]) {
					return
				}
			}
		}
	}
}

// Chunks returns the records as consecutive slices, in order, which must
// not be changed.
func (rs Records) Chunks() [][]record.Record { return chunksOf(rs.chunks, rs.off, rs.n) }

// knownChunks returns the records' head numbers (addKnown) as Chunks
// returns the records, nil when they were added without.
func (rs Records) knownChunks() [][]segment.Known {
	if rs.known == nil {
		return nil
	}
	return chunksOf(rs.known, rs.off, rs.n)
}

// chunksOf returns the n items from off on of chunks of recordChunk items
// as consecutive slices.
func chunksOf[T any](chunks [][]T, off, n int) [][]T {
	out := make([][]T, 0, len(chunks))
	start, left := off, n
	for _, c := range chunks {
		if left == 0 {
			break
		}
		k := min(len(c)-start, left)
		out = append(out, c[start:start+k])
		left -= k
		start = 0
	}
	return out
}

// add appends r, starting a chunk when the last one is full. Views taken
// before (view, prefix) keep seeing what they saw: they hold their own
// list of chunks, and add writes only beyond their ends.
func (rs *Records) add(r record.Record) { rs.push(r, segment.Known{}, false) }

// addKnown is add with the record's head numbers (see known).
func (rs *Records) addKnown(r record.Record, k segment.Known) { rs.push(r, k, true) }

func (rs *Records) push(r record.Record, k segment.Known, withKnown bool) {
	c := (rs.off + rs.n) / recordChunk
	if c == len(rs.chunks) {
		if c == 0 {
			rs.chunks = append(rs.chunks, make([]record.Record, 0, 64))
			if withKnown {
				rs.known = append(rs.known, make([]segment.Known, 0, 64))
			}
		} else {
			rs.chunks = append(rs.chunks, newRecordChunk())
			if withKnown {
				rs.known = append(rs.known, newKnownChunk())
			}
		}
	}
	rs.chunks[c] = append(rs.chunks[c], r)
	if withKnown {
		rs.known[c] = append(rs.known[c], k)
	}
	rs.n++
}

// view returns the records as they are now, for a reader outside the
// store's lock (a snapshot): its own copy of the list of chunks, which add
// changes in place.
func (rs Records) view() Records { return rs.prefix(rs.n) }

// prefix returns a view of the first n records.
func (rs Records) prefix(n int) Records {
	rs.n = n
	end := (rs.off + n + recordChunk - 1) / recordChunk
	rs.chunks = slices.Clone(rs.chunks[:end])
	if rs.known != nil {
		rs.known = slices.Clone(rs.known[:end])
	}
	if n == 0 {
		return Records{}
	}
	return rs
}

// drop returns rs without its first n records. The chunks holding only
// those are let go; the list of chunks is copied, not resliced, because
// snapshots may still read the old one.
func (rs Records) drop(n int) Records {
	rest, _ := rs.dropChunks(n)
	return rest
}

// dropChunks is drop that also returns how many of the leading chunks of
// rs the rest no longer holds (all their records were dropped).
func (rs Records) dropChunks(n int) (Records, int) {
	off := rs.off + n
	gone := off / recordChunk
	rs.chunks = slices.Clone(rs.chunks[gone:])
	if rs.known != nil {
		rs.known = slices.Clone(rs.known[gone:])
	}
	rs.off, rs.n = off%recordChunk, rs.n-n
	if rs.n == 0 {
		return Records{}, gone
	}
	return rs, gone
}

// Whole chunks a seal let go of are reused by the tails that grow after it,
// when no snapshot can still read them (Store.recycleChunks): a tail's
// chunks were a quarter of what the daemon allocated over the peer
// benchmark (496 of 1,788 MB), each 384 KiB zeroed anew, and that
// allocation is what set how often the collector ran. A sync.Pool keeps
// them only until the collector runs twice without a taker, so an idle
// daemon returns them.
var (
	recordChunks = sync.Pool{New: func() any { s := make([]record.Record, 0, recordChunk); return &s }}
	knownChunks  = sync.Pool{New: func() any { s := make([]segment.Known, 0, recordChunk); return &s }}
)

func newRecordChunk() []record.Record { return *recordChunks.Get().(*[]record.Record) }
func newKnownChunk() []segment.Known  { return *knownChunks.Get().(*[]segment.Known) }

// recycle gives the first n chunks of rs back for reuse. The caller
// guarantees that nothing reads them any more. A chunk is cleared first,
// so that the pool keeps no record's strings alive.
func (rs Records) recycle(n int) {
	for _, c := range rs.chunks[:n] {
		if cap(c) == recordChunk {
			c = c[:0:recordChunk]
			clear(c[:recordChunk])
			recordChunks.Put(&c)
		}
	}
	if rs.known == nil {
		return
	}
	for _, c := range rs.known[:n] {
		if cap(c) == recordChunk {
			c = c[:0:recordChunk]
			knownChunks.Put(&c)
		}
	}
}
