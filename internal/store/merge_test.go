package store

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/fsutil"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
	"github.com/retentiond/retentiond/internal/testkit"
)

// mergeGate holds the merge whose output name contains name at its first
// file operation op, until the test opens the gate: the merge is then
// provably in progress while the test does something else.
type mergeGate struct {
	name    string
	op      fsutil.Op
	blocked chan struct{} // closed when the merge reaches the gate
	release chan struct{} // closed by open
	once    sync.Once
	opened  sync.Once
}

func newMergeGate(name string, op fsutil.Op) *mergeGate {
	return &mergeGate{name: name, op: op, blocked: make(chan struct{}), release: make(chan struct{})}
}

func (g *mergeGate) faults(op fsutil.Op, path string) error {
	if op == g.op && strings.Contains(filepath.Base(path), g.name) {
		g.once.Do(func() { close(g.blocked) })
		<-g.release
	}
	return nil
}

func (g *mergeGate) open() { g.opened.Do(func() { close(g.release) }) }

func (g *mergeGate) await(t *testing.T) {
	t.Helper()
	select {
	case <-g.blocked:
	case <-time.After(30 * time.Second):
		t.Fatal("the merge never reached its gate")
	}
}

// threeParts appends and flushes three batches of day base (seq 0-299),
// so that the day has the parts seg-1-1, seg-2-2 and seg-3-3.
func threeParts(t *testing.T, s *Store, mod func(*record.Record)) {
	t.Helper()
	for f := 0; f < 3; f++ {
		recs := batch(f*100, f*100+100)
		for i := range recs {
			if mod != nil {
				mod(&recs[i])
			}
		}
		if err := s.Append(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFlushDuringMerge (issue 12 row 4): a flush must not wait for the
// merge of a day. While the merge of a closed day writes its file (which at
// the archive level takes a long time for a big day), ingest keeps filling
// the head; a flush blocked behind the merge lets the head reach its bound
// and holds that memory until the merge ends.
func TestFlushDuringMerge(t *testing.T) {
	dir := t.TempDir()
	// The day is still open (12 h in) and has fewer than MaxParts parts, so
	// the background loop leaves the merge to the test.
	s, gate, clk := openGated(t, dir, fsutil.OpWrite)
	threeParts(t, s, nil)

	merged := startMerge(t, s, gate)

	// The merge is writing. New records of the same day and of the next
	// one arrive and are flushed.
	if err := s.Append(context.Background(), append(batch(300, 400), rec(base.AddDate(0, 0, 1), 400))); err != nil {
		t.Fatal(err)
	}
	flushed := make(chan error, 1)
	go func() { flushed <- s.Flush() }()
	select {
	case err := <-flushed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Flush waited for the merge of a day to finish writing")
	}
	if got := collect(t, s, time.Time{}, base.AddDate(1, 0, 0)); !slices.Equal(got, seqRange(0, 401)) {
		t.Fatalf("during the merge: %d records visible, want 401", len(got))
	}

	gate.open()
	if err := <-merged; err != nil {
		t.Fatal(err)
	}
	// The merged file replaced exactly its three inputs; the part the flush
	// wrote meanwhile stays beside it.
	want := []string{"seg-00000001-00000003.seg", "seg-00000004-00000004.seg"}
	if got := dayFiles(t, dir, base); !slices.Equal(got, want) {
		t.Fatalf("day files after the merge: %v, want %v", got, want)
	}
	if got := collect(t, s, time.Time{}, base.AddDate(1, 0, 0)); !slices.Equal(got, seqRange(0, 401)) {
		t.Fatalf("after the merge: %d records visible, want 401", len(got))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, clk)
	defer s.Close()
	if got := collect(t, s, time.Time{}, base.AddDate(1, 0, 0)); !slices.Equal(got, seqRange(0, 401)) {
		t.Fatalf("after reopening: %d records visible, want 401 exactly once", len(got))
	}
}

// TestDeleteDayDuringMerge: a purge of a day whose merge is in progress
// destroys every copy, including the merge's output, whether the merge is
// still writing or already committing its file, and the merge puts nothing
// back afterwards.
func TestDeleteDayDuringMerge(t *testing.T) {
	const canary = "CANARY-merge-5d21"
	canaryIP := netip.MustParseAddr("198.51.100.93")
	for _, tc := range []struct {
		name string
		op   fsutil.Op
	}{
		{"while writing", fsutil.OpWrite},
		{"while committing", fsutil.OpRename},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, gate, clk := openGated(t, dir, tc.op)
			threeParts(t, s, func(r *record.Record) {
				r.Path += "&" + canary
				r.IP = canaryIP
			})
			// A record of another day, which must survive.
			other := rec(base.AddDate(0, 0, 1), 1000)
			if err := s.Append(context.Background(), []record.Record{other}); err != nil {
				t.Fatal(err)
			}

			merged := startMerge(t, s, gate)
			deleted := make(chan error, 1)
			go func() {
				_, err := s.DeleteDay(context.Background(), base)
				deleted <- err
			}()
			// Let the merge go on once the purge has begun.
			for deadline := time.Now().Add(30 * time.Second); ; {
				s.mu.Lock()
				begun := s.deleting[base.Unix()]
				s.mu.Unlock()
				if begun {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("DeleteDay never began")
				}
				time.Sleep(time.Millisecond)
			}
			gate.open()
			if err := <-deleted; err != nil {
				t.Fatal(err)
			}
			if err := <-merged; err != nil {
				t.Fatalf("merge of a purged day: %v, want nil (nothing left to merge)", err)
			}
			if _, err := os.Stat(filepath.Join(dir, daysDirName, record.DayString(base))); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the purged day's directory: %v, want it gone", err)
			}
			scanFor(t, dir, []byte(canary))
			scanFor(t, dir, canaryIP.AsSlice())
			if got := collect(t, s, time.Time{}, base.AddDate(1, 0, 0)); !slices.Equal(got, []int{1000}) {
				t.Fatalf("after the purge: %v, want [1000]", got)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openTest(t, dir, clk)
			defer s.Close()
			if got := collect(t, s, time.Time{}, base.AddDate(1, 0, 0)); !slices.Equal(got, []int{1000}) {
				t.Fatalf("after reopening: %v, want [1000]", got)
			}
		})
	}
}

// TestMergeWithAChangedInput: a source reported damaged while the merge
// writes is not swapped out by a file that claims its flush range; the
// merge is abandoned, and the next one leaves the quarantined file out.
func TestMergeWithAChangedInput(t *testing.T) {
	dir := t.TempDir()
	s, gate, _ := openGated(t, dir, fsutil.OpWrite)
	threeParts(t, s, nil)
	merged := startMerge(t, s, gate)
	part2 := filepath.Join(dir, daysDirName, record.DayString(base), "seg-00000002-00000002.seg")
	s.reportCorrupt(&segment.CorruptionError{File: part2, Offset: 8, Err: errors.New("test: damaged block")})
	gate.open()
	if err := <-merged; err != nil {
		t.Fatal(err)
	}
	if got := dayFiles(t, dir, base); slices.Contains(got, "seg-00000001-00000003.seg") {
		t.Fatalf("day files %v: the abandoned merge's output is there", got)
	}
	// The next merge quarantines part 2 first and merges the other two.
	if err := s.MergeDay(base); err != nil {
		t.Fatal(err)
	}
	want := []string{"seg-00000001-00000003.seg", "seg-00000002-00000002.seg" + CorruptSuffix}
	if got := dayFiles(t, dir, base); !slices.Equal(got, want) {
		t.Fatalf("day files after the second merge: %v, want %v", got, want)
	}
	if got := collect(t, s, time.Time{}, base.AddDate(1, 0, 0)); !slices.Equal(got, append(seqRange(0, 100), seqRange(200, 300)...)) {
		t.Fatalf("after the second merge: %d records visible, want 200", len(got))
	}
}

// TestEraseDuringMerge: an erasure while a merge of the day writes cancels
// the merge, so no file with the erased records is left behind it.
func TestEraseDuringMerge(t *testing.T) {
	dir := t.TempDir()
	s, gate, _ := openGated(t, dir, fsutil.OpWrite)
	erased := netip.MustParseAddr("198.51.100.94")
	threeParts(t, s, func(r *record.Record) {
		if r.Path[len(r.Path)-1]%2 == 0 {
			r.IP = erased
		}
	})
	merged := startMerge(t, s, gate)
	done := make(chan error, 1)
	go func() {
		_, err := s.Erase(context.Background(), Erasure{Prefix: netip.PrefixFrom(erased, 32)})
		done <- err
	}()
	for deadline := time.Now().Add(30 * time.Second); ; {
		s.mu.Lock()
		cancelled := s.merging != nil && s.merging.ctx.Err() != nil
		s.mu.Unlock()
		if cancelled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Erase never cancelled the merge")
		}
		time.Sleep(time.Millisecond)
	}
	gate.open()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-merged; err != nil {
		t.Fatal(err)
	}
	scanFor(t, dir, erased.AsSlice())
}

// openGated opens a store on dir whose merge of the day base stops at op on
// its output file until the gate opens. The day is 12 h old, so it is still
// open and the background loop leaves the merge to the test. At the end of
// the test the gate opens before the store closes, since Close may wait for
// the merge.
func openGated(t *testing.T, dir string, op fsutil.Op) (*Store, *mergeGate, *testkit.Clock) {
	t.Helper()
	gate := newMergeGate("seg-00000001-00000003", op)
	clk := testkit.NewClock(base.Add(12 * time.Hour))
	s, err := Open(dir, Options{Now: clk.Now, FlushInterval: time.Hour, BlockRows: 64,
		Registerer: prometheus.NewRegistry(), FS: fsutil.WithFaults(gate.faults)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	t.Cleanup(gate.open)
	return s, gate, clk
}

// startMerge merges the day base in the background and returns once the
// merge has reached its gate; the channel gets the merge's result.
func startMerge(t *testing.T, s *Store, gate *mergeGate) chan error {
	t.Helper()
	merged := make(chan error, 1)
	go func() { merged <- s.MergeDay(base) }()
	gate.await(t)
	return merged
}
