package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/testkit"
	"github.com/retentiond/retentiond/internal/wal"
)

var base = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

// rec builds a normalised record whose path carries a unique sequence
// number, so tests can count every record exactly.
func rec(t time.Time, seq int) record.Record {
	r := record.Record{
		Time:      t,
		Domain:    fmt.Sprintf("site%d.example.nl", seq%7),
		Path:      fmt.Sprintf("/seq/%d?q=%d", seq, seq*31),
		UserAgent: fmt.Sprintf("Mozilla/5.0 test/%d", seq%5),
		IP:        netip.AddrFrom4([4]byte{192, 0, 2, byte(seq % 250)}),
	}
	if seq%3 == 0 {
		r.IP = netip.MustParseAddr(fmt.Sprintf("2001:db8::%x:%x", (seq>>16)&0xffff, seq&0xffff))
	}
	if err := r.Normalize(); err != nil {
		panic(err)
	}
	return r
}

func openTest(t *testing.T, dir string, clk *testkit.Clock) *Store {
	t.Helper()
	s, err := Open(dir, Options{Now: clk.Now, FlushInterval: time.Hour, BlockRows: 64, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return s
}

// collect returns the sequence numbers of every record visible in [from, to).
func collect(t *testing.T, s *Store, from, to time.Time) []int {
	t.Helper()
	snap, err := s.Snapshot(from, to)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	defer snap.Release()
	var seqs []int
	add := func(path string) {
		n, err := strconv.Atoi(strings.TrimPrefix(strings.SplitN(path, "?", 2)[0], "/seq/"))
		if err != nil {
			t.Fatalf("unexpected path %q", path)
		}
		seqs = append(seqs, n)
	}
	for _, v := range snap.Days {
		for r := range v.Head.All() {
			add(r.Path)
		}
		for _, sr := range v.Segments {
			for r, err := range sr.Iter() {
				if err != nil {
					t.Fatalf("iterate %s: %v", sr.Path(), err)
				}
				if record.Day(r.Time) != v.Day {
					t.Fatalf("record of %s in day %s", r.Time, v.Day)
				}
				add(r.Path)
			}
		}
	}
	slices.Sort(seqs)
	return seqs
}

func seqRange(lo, hi int) []int {
	var s []int
	for i := lo; i < hi; i++ {
		s = append(s, i)
	}
	return s
}

func TestAppendFlushMergeReopen(t *testing.T) {
	dir := t.TempDir()
	clk := testkit.NewClock(base.Add(36 * time.Hour))
	s := openTest(t, dir, clk)
	ctx := context.Background()
	all := time.Time{}
	end := base.AddDate(1, 0, 0)

	// Three flushes, records spread over two days, out of time order.
	seq := 0
	for round := 0; round < 3; round++ {
		var batch []record.Record
		for i := 0; i < 500; i++ {
			batch = append(batch, rec(base.Add(time.Duration(rand.IntN(48*3600))*time.Second), seq))
			seq++
		}
		if err := s.Append(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if got := collect(t, s, all, end); !slices.Equal(got, seqRange(0, seq)) {
			t.Fatalf("round %d before flush: %d records visible, want %d", round, len(got), seq)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		if got := collect(t, s, all, end); !slices.Equal(got, seqRange(0, seq)) {
			t.Fatalf("round %d after flush: %d records visible, want %d", round, len(got), seq)
		}
	}
	days := s.Days()
	if len(days) != 2 || days[0].Records+days[1].Records != int64(seq) {
		t.Fatalf("days = %+v", days)
	}
	// The first day is closed (clock is 12h into the second): merge it.
	if err := s.mergeDue(); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	nFirst, nSecond := len(s.days[base.Unix()].segs), len(s.days[base.AddDate(0, 0, 1).Unix()].segs)
	s.mu.Unlock()
	if nFirst != 1 || nSecond != 3 {
		t.Fatalf("after merge: %d and %d segment files, want 1 and 3", nFirst, nSecond)
	}
	if got := collect(t, s, all, end); !slices.Equal(got, seqRange(0, seq)) {
		t.Fatalf("after merge: %d records visible, want %d", len(got), seq)
	}
	// Day filtering: only the second day.
	second := collect(t, s, base.AddDate(0, 0, 1), end)
	if int64(len(second)) != days[1].Records {
		t.Fatalf("second day: %d records, want %d", len(second), days[1].Records)
	}

	// Unflushed records survive a close and reopen (via flush at Close).
	if err := s.Append(ctx, []record.Record{rec(base.Add(time.Hour), seq)}); err != nil {
		t.Fatal(err)
	}
	seq++
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, clk)
	defer s.Close()
	if got := collect(t, s, all, end); !slices.Equal(got, seqRange(0, seq)) {
		t.Fatalf("after reopen: %d records visible, want %d", len(got), seq)
	}
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, testkit.NewClock(base))
	defer s.Close()
	_, err := Open(dir, Options{})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: err = %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), strconv.Itoa(os.Getpid())) {
		t.Errorf("lock error %q does not name the holder's pid", err)
	}
}

// TestRecoveryDiscardsUncheckpointedParts simulates a crash after a flush
// wrote its parts but before it wrote the checkpoint: the parts must go
// (their records are replayed from the WAL), so nothing is doubled.
func TestRecoveryDiscardsUncheckpointedParts(t *testing.T) {
	dir := t.TempDir()
	clk := testkit.NewClock(base)
	s := openTest(t, dir, clk)
	var batch []record.Record
	for i := 0; i < 100; i++ {
		batch = append(batch, rec(base.Add(time.Duration(i)*time.Minute), i))
	}
	if err := s.Append(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	// Keep a copy of the WAL and checkpoint state before the flush.
	snapshotDir := t.TempDir()
	copyTree(t, dir, snapshotDir)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	parts, _ := filepath.Glob(filepath.Join(dir, "days", "*", "*.seg"))
	if len(parts) != 1 {
		t.Fatalf("parts = %v", parts)
	}
	s.Close()
	// "Crash": restore the pre-flush WAL and checkpoint but keep the new part.
	os.RemoveAll(filepath.Join(dir, "wal"))
	os.Remove(filepath.Join(dir, checkpointName))
	copyTree(t, filepath.Join(snapshotDir, "wal"), filepath.Join(dir, "wal"))
	if _, err := os.Stat(filepath.Join(snapshotDir, checkpointName)); err == nil {
		t.Fatal("test setup: a checkpoint existed before the first flush")
	}
	s = openTest(t, dir, clk)
	defer s.Close()
	if got := collect(t, s, time.Time{}, base.AddDate(1, 0, 0)); !slices.Equal(got, seqRange(0, 100)) {
		t.Fatalf("after recovery: %v records, want exactly 0..99 once", len(got))
	}
	if _, err := os.Stat(parts[0]); err == nil {
		t.Errorf("uncheckpointed part %s survived recovery", parts[0])
	}
}

// TestRecoveryRemovesMergedSources simulates a crash after a merge wrote its
// output but before it removed its inputs.
func TestRecoveryRemovesMergedSources(t *testing.T) {
	dir := t.TempDir()
	clk := testkit.NewClock(base.Add(3 * 24 * time.Hour))
	s := openTest(t, dir, clk)
	for i := 0; i < 3; i++ {
		if err := s.Append(context.Background(), []record.Record{rec(base.Add(time.Duration(i)*time.Hour), i)}); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	dayDir := filepath.Join(dir, "days", "2026-11-20")
	saved := t.TempDir()
	copyTree(t, dayDir, saved)
	if err := s.MergeDay(base); err != nil {
		t.Fatal(err)
	}
	s.Close()
	copyTree(t, saved, dayDir) // the parts "were not removed"
	files, _ := os.ReadDir(dayDir)
	if len(files) != 4 {
		t.Fatalf("setup: %d files in day dir, want 3 parts + 1 merged", len(files))
	}
	s = openTest(t, dir, clk)
	defer s.Close()
	if got := collect(t, s, time.Time{}, base.AddDate(1, 0, 0)); !slices.Equal(got, []int{0, 1, 2}) {
		t.Fatalf("after recovery: %v, want [0 1 2]", got)
	}
	files, _ = os.ReadDir(dayDir)
	if len(files) != 1 {
		t.Errorf("after recovery %d files remain in the day, want the merged one", len(files))
	}
}

func TestDeleteDayWaitsForSearchesAndDestroysEveryCopy(t *testing.T) {
	dir := t.TempDir()
	clk := testkit.NewClock(base.Add(5 * 24 * time.Hour))
	s := openTest(t, dir, clk)
	defer s.Close()
	ctx := context.Background()
	canary := netip.MustParseAddr("198.51.100.77")
	c := rec(base.Add(time.Hour), 1)
	c.IP = canary
	c.Path = "/seq/1?canary=CANARY-7f3a9"
	if err := s.Append(ctx, []record.Record{c, rec(base.Add(2*time.Hour), 2)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	// A later record of the deleted day, still only in the head and WAL, and
	// one of another day that must survive.
	late := rec(base.Add(3*time.Hour), 3)
	late.Path = "/seq/3?canary=CANARY-7f3a9"
	if err := s.Append(ctx, []record.Record{late, rec(base.AddDate(0, 0, 2), 4)}); err != nil {
		t.Fatal(err)
	}

	snap, err := s.Snapshot(base, base.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.DeleteDay(ctx, base)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("DeleteDay returned (%v) while a search held the day", err)
	case <-time.After(100 * time.Millisecond):
	}
	// The running search still reads the whole day.
	n := snap.Days[0].Head.Len()
	for _, sr := range snap.Days[0].Segments {
		n += int(sr.Info().Records)
	}
	if n != 3 {
		t.Fatalf("held snapshot sees %d records, want 3", n)
	}
	snap.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := collect(t, s, time.Time{}, base.AddDate(1, 0, 0)); !slices.Equal(got, []int{4}) {
		t.Fatalf("after delete: %v, want [4]", got)
	}
	scanFor(t, dir, []byte("CANARY-7f3a9"))
	scanFor(t, dir, canary.AsSlice())
}

// scanFor fails if needle appears in any file under dir.
func scanFor(t *testing.T, dir string, needle []byte) {
	t.Helper()
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, needle) {
			t.Errorf("%s still contains %q", path, needle)
		}
		return nil
	})
}

func TestBusyUnderBackpressure(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{HeadMaxBytes: 4 << 10, FlushInterval: time.Hour, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Stop the background flusher so the head cannot drain.
	s.maintMu.Lock()
	defer s.maintMu.Unlock()
	var busy bool
	for i := 0; i < 200 && !busy; i++ {
		err := s.Append(context.Background(), []record.Record{rec(base, i)})
		switch {
		case errors.Is(err, ErrBusy):
			busy = true
		case err != nil:
			t.Fatal(err)
		}
		s.mu.Lock()
		if h := s.headBytes + s.frozenBytes; h > s.opts.HeadMaxBytes {
			t.Fatalf("unflushed records use %d bytes, over the %d bound", h, s.opts.HeadMaxBytes)
		}
		s.mu.Unlock()
	}
	if !busy {
		t.Fatal("the head grew past its bound without ErrBusy")
	}
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if d.Name() == lockName {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCrashKill runs a child process that appends records from several
// goroutines and prints the sequence number of every acknowledged record,
// SIGKILLs it at a random moment, reopens the store, and checks that every
// acknowledged record is there exactly once and nothing else is. Set
// RTD_TEST_CRASH_ROUNDS for more rounds (e.g. 1000 locally).
func TestCrashKill(t *testing.T) {
	if os.Getenv("RTD_TEST_STORE_CHILD") != "" {
		crashChild()
		return
	}
	rounds := 20
	if v, err := strconv.Atoi(os.Getenv("RTD_TEST_CRASH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	if testing.Short() {
		rounds = 3
	}
	dir := t.TempDir()
	acked := make(map[int]bool)
	next := 0
	for round := 0; round < rounds; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKill$")
		cmd.Env = append(os.Environ(), "RTD_TEST_STORE_CHILD="+dir, "RTD_TEST_STORE_FIRST="+strconv.Itoa(next))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var killed atomic.Bool
		kill := time.AfterFunc(time.Duration(50+rand.IntN(250))*time.Millisecond, func() {
			killed.Store(true)
			cmd.Process.Signal(syscall.SIGKILL)
		})
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if n, err := strconv.Atoi(sc.Text()); err == nil {
				acked[n] = true
			}
		}
		kill.Stop()
		cmd.Process.Signal(syscall.SIGKILL)
		waitErr := cmd.Wait()
		if !killed.Load() {
			t.Fatalf("round %d: child exited before it was killed: %v", round, waitErr)
		}
		next += 1_000_000

		s, err := Open(dir, Options{FlushInterval: time.Hour, Registerer: prometheus.NewRegistry()})
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		got := collect(t, s, time.Time{}, base.AddDate(10, 0, 0))
		s.Close()
		seen := make(map[int]bool, len(got))
		for _, n := range got {
			if seen[n] {
				t.Fatalf("round %d: record %d stored twice", round, n)
			}
			seen[n] = true
			if n%1_000_000 >= 1_000_000/2 {
				t.Fatalf("round %d: record %d was never sent", round, n)
			}
		}
		for n := range acked {
			if !seen[n] {
				t.Fatalf("round %d: acknowledged record %d lost", round, n)
			}
		}
	}
	t.Logf("%d SIGKILL rounds, %d acknowledged records all present exactly once", rounds, len(acked))
}

// crashChild is the body of the process TestCrashKill kills.
func crashChild() {
	dir := os.Getenv("RTD_TEST_STORE_CHILD")
	first, _ := strconv.Atoi(os.Getenv("RTD_TEST_STORE_FIRST"))
	// A small head bound makes flushes (and so checkpoints and WAL
	// truncation) happen during the run, where the kill can hit them.
	s, err := Open(dir, Options{HeadMaxBytes: 64 << 10, FlushInterval: 50 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; ; i += 8 {
				seq := first + i
				if i >= 1_000_000/2 {
					return
				}
				// Spread over three days so flushes write several parts.
				r := rec(base.Add(time.Duration(i%3)*24*time.Hour+time.Duration(i)*time.Millisecond), seq)
				r.Path = fmt.Sprintf("/seq/%d", seq)
				err := s.Append(context.Background(), []record.Record{r})
				if errors.Is(err, ErrBusy) {
					time.Sleep(time.Millisecond)
					i -= 8
					continue
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, "child append:", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintln(w, seq)
				w.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	os.Exit(0)
}

// TestCrashDuringDeleteDay SIGKILLs a child process while it deletes days
// one after another. After every restart no half-deleted day is visible: a
// day is either whole (every record) or gone, no *.deleting debris remains,
// and every day the child reported deleted stays gone.
func TestCrashDuringDeleteDay(t *testing.T) {
	if dir := os.Getenv("RTD_TEST_DELETE_CHILD"); dir != "" {
		s, err := Open(dir, Options{FlushInterval: time.Hour})
		if err != nil {
			fmt.Fprintln(os.Stderr, "child open:", err)
			os.Exit(2)
		}
		for _, in := range s.Days() {
			if _, err := s.DeleteDay(context.Background(), in.Day); err != nil {
				fmt.Fprintln(os.Stderr, "child delete:", err)
				os.Exit(2)
			}
			fmt.Println(record.DayString(in.Day))
		}
		os.Exit(0)
	}
	rounds := 10
	if testing.Short() {
		rounds = 2
	}
	const days, perDay = 30, 200
	var killedAfter []int
	defer func() { t.Logf("%d rounds; killed after this many of %d day deletions: %v", rounds, days, killedAfter) }()
	for round := 0; round < rounds; round++ {
		dir := t.TempDir()
		s := openTest(t, dir, testkit.NewClock(base))
		for d := 0; d < days; d++ {
			var batch []record.Record
			for i := 0; i < perDay; i++ {
				batch = append(batch, rec(base.AddDate(0, 0, d).Add(time.Duration(i)*time.Second), d*perDay+i))
			}
			if err := s.Append(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
			if d%3 == 0 {
				s.Flush() // some days in several parts, some still in the WAL
			}
		}
		s.Close()

		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDuringDeleteDay$")
		cmd.Env = append(os.Environ(), "RTD_TEST_DELETE_CHILD="+dir)
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Arm the kill once the purge is under way, so it lands among the
		// deletions rather than during start-up.
		deleted := map[string]bool{}
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if len(deleted) == 0 {
				time.AfterFunc(time.Duration(rand.IntN(40))*time.Millisecond, func() { cmd.Process.Signal(syscall.SIGKILL) })
			}
			deleted[sc.Text()] = true
		}
		cmd.Wait()
		killedAfter = append(killedAfter, len(deleted))

		s = openTest(t, dir, testkit.NewClock(base))
		for _, in := range s.Days() {
			if deleted[record.DayString(in.Day)] {
				t.Fatalf("round %d: day %s was reported deleted but is back", round, record.DayString(in.Day))
			}
			if in.Records != perDay {
				t.Fatalf("round %d: day %s is half there: %d of %d records", round, record.DayString(in.Day), in.Records, perDay)
			}
		}
		if got := len(s.Days()) + len(deleted); got > days {
			t.Fatalf("round %d: %d days present + %d deleted > %d", round, len(s.Days()), len(deleted), days)
		}
		// The purge completes after the restart.
		for _, in := range s.Days() {
			if _, err := s.DeleteDay(context.Background(), in.Day); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(s.Days()); n != 0 {
			t.Fatalf("round %d: %d days left after completing the purge", round, n)
		}
		s.Close()
		debris, _ := filepath.Glob(filepath.Join(dir, "days", "*"+".deleting"))
		if len(debris) > 0 {
			t.Fatalf("round %d: debris left: %v", round, debris)
		}
	}
}

// TestReplayBothBatchForms: a WAL holding plain batches (what earlier
// versions wrote) before the shared-string batches this version appends
// replays every record of both, as after an upgrade with unflushed records.
func TestReplayBothBatchForms(t *testing.T) {
	dir := t.TempDir()
	clk := testkit.NewClock(base.AddDate(0, 0, 1))
	w, err := wal.Open(filepath.Join(dir, "wal"), wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append(record.AppendBatch(nil, batch(0, 40))); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, dir, clk)
	if err := s.Append(context.Background(), batch(40, 90)); err != nil {
		t.Fatal(err)
	}
	// "Crash": the data directory as it is now, before a flush.
	crashed := t.TempDir()
	copyTree(t, dir, crashed)
	s.Close()
	if _, err := os.Stat(filepath.Join(crashed, checkpointName)); err == nil {
		t.Fatal("test setup: a flush ran before the copy")
	}
	s = openTest(t, crashed, clk)
	defer s.Close()
	got := collect(t, s, base, base.AddDate(0, 0, 1))
	slices.Sort(got)
	if len(got) != 90 || got[0] != 0 || got[89] != 89 {
		t.Fatalf("replayed %d records (%v…), want 0-89", len(got), got[:min(len(got), 5)])
	}
}
