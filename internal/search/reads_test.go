package search

import (
	"bytes"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/retentiond/retentiond/internal/segment"
)

// readLog is a segment.Source over a file's bytes that records every range
// a reader asks for. Tests see through it which blocks and index pages a
// search read, without the segment package exporting counters for them.
type readLog struct {
	r    *bytes.Reader
	name string

	mu     sync.Mutex
	reads  []span // every range read, in order
	blocks []span // the byte range of each block (see openLogged)
	// dict is block 0's path column: a reader of format 4 reads it as the
	// path dictionary of the other blocks (once, and again after its
	// dictionary was evicted), which is not a decode of block 0.
	dict span
}

// span is a byte range [off, end) of a segment file.
type span struct{ off, end int64 }

func (l *readLog) ReadAt(p []byte, off int64) (int, error) {
	l.mu.Lock()
	l.reads = append(l.reads, span{off, off + int64(len(p))})
	l.mu.Unlock()
	return l.r.ReadAt(p, off)
}
func (l *readLog) Size() int64  { return l.r.Size() }
func (l *readLog) Name() string { return l.name }

// openLogged opens the segment at path through a readLog. It learns where
// each block lies from one read of its first column (time) per block and
// one of the last block's last column (path): the writer lays blocks, and
// the columns in a block, end to end. Then it forgets those reads.
func openLogged(t testing.TB, path string, opts segment.OpenOptions) (*segment.Reader, *readLog) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	l := &readLog{r: bytes.NewReader(b), name: path}
	sr, err := segment.OpenSource(l, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sr.Close() })
	column := func(i int, col segment.Columns) span {
		m := l.mark()
		if _, err := sr.ReadBlock(i, col); err != nil {
			t.Fatal(err)
		}
		reads := slices.DeleteFunc(slices.Clone(l.reads[m:]), func(r span) bool { return r == l.dict })
		if len(reads) != 1 {
			t.Fatalf("block %d of %s: %d reads for one column, want 1", i, path, len(reads))
		}
		return reads[0]
	}
	n := sr.NumBlocks()
	if n > 0 {
		l.dict = column(0, segment.ColPath)
	}
	for i := range n {
		l.blocks = append(l.blocks, span{off: column(i, segment.ColTime).off})
		if i > 0 {
			l.blocks[i-1].end = l.blocks[i].off
		}
	}
	if n > 0 {
		l.blocks[n-1].end = column(n-1, segment.ColPath).end
	}
	l.reads = nil
	return sr, l
}

// mark returns the position to count reads from.
func (l *readLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.reads)
}

// readsSince returns how many ranges were read since mark m.
func (l *readLog) readsSince(m int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.reads) - m
}

// blocksSince returns how many distinct blocks were read since mark m. A
// block whose same columns were read twice (decoded again instead of kept)
// fails the test: the count is of blocks decoded once each.
func (l *readLog) blocksSince(t testing.TB, m int) int64 {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	touched := map[int]bool{}
	seen := map[span]bool{}
	for _, r := range l.reads[m:] {
		i, ok := slices.BinarySearchFunc(l.blocks, r.off, func(b span, off int64) int {
			switch {
			case b.end <= off:
				return -1
			case b.off > off:
				return 1
			}
			return 0
		})
		if !ok || r == l.dict {
			continue // an index page, the footer or the path dictionary
		}
		if seen[r] {
			t.Fatalf("block %d: bytes [%d, %d) read twice", i, r.off, r.end)
		}
		seen[r] = true
		touched[i] = true
	}
	return int64(len(touched))
}

// loggedTwin returns a Source over the same days as src (heads and damaged
// files included), its segment files opened as src's were (src.open)
// through readLogs, so that a test or benchmark can count what a search
// over src reads.
func loggedTwin(t testing.TB, src *fakeSource) (*fakeSource, readLogs) {
	t.Helper()
	twin := &fakeSource{open: src.open}
	var logs readLogs
	for _, v := range src.days {
		dv := *v
		dv.Segments = nil
		for _, sr := range v.Segments {
			lr, l := openLogged(t, sr.Path(), src.open)
			dv.Segments = append(dv.Segments, lr)
			logs = append(logs, l)
		}
		twin.days = append(twin.days, &dv)
	}
	return twin, logs
}

// readLogs are the logs of several segments (a Source's).
type readLogs []*readLog

// mark returns each log's position to count reads from.
func (ls readLogs) mark() []int {
	m := make([]int, len(ls))
	for i, l := range ls {
		m[i] = l.mark()
	}
	return m
}

// blocksSince returns the blocks read from each segment since marks m (see
// readLog.blocksSince).
func (ls readLogs) blocksSince(t testing.TB, m []int) []int64 {
	t.Helper()
	n := make([]int64, len(ls))
	for i, l := range ls {
		n[i] = l.blocksSince(t, m[i])
	}
	return n
}

// sum adds up counts per segment.
func sum(n []int64) (s int64) {
	for _, x := range n {
		s += x
	}
	return s
}
