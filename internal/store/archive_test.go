package store

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/testkit"
)

// (dayFiles, which lists a day's file names in order, is in corrupt_test.go.)

func isArchived(name string) bool { return strings.HasSuffix(name, archiveSuffix) }

// sameFile reports whether the file at path is still the file fi described
// (not rewritten under the same or another name).
func sameFile(t *testing.T, path string, fi os.FileInfo) bool {
	t.Helper()
	now, err := os.Stat(path)
	return err == nil && os.SameFile(now, fi)
}

// TestClosedSingleDayIsArchived (issue 15): a closed day that has a single
// part, as most days get when a whole day arrives in one flush, is
// rewritten once at the archive level like a day of several parts; the
// file name says so, so that neither the next merge pass nor a restart
// rewrites it again.
func TestClosedSingleDayIsArchived(t *testing.T) {
	dir := t.TempDir()
	clk := testkit.NewClock(base.Add(12 * time.Hour))
	s := openTest(t, dir, clk)
	defer func() { s.Close() }()
	if err := s.Append(context.Background(), batch(0, 300)); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	// Open day: a single part stays as flushed.
	if err := s.mergeDue(); err != nil {
		t.Fatal(err)
	}
	if got := dayFiles(t, dir, base); len(got) != 1 || isArchived(got[0]) {
		t.Fatalf("open day: files %v, want the one flushed part", got)
	}
	clk.Set(base.Add(24*time.Hour + s.opts.MergeGrace))
	if err := s.mergeDue(); err != nil {
		t.Fatal(err)
	}
	got := dayFiles(t, dir, base)
	if len(got) != 1 || !isArchived(got[0]) {
		t.Fatalf("closed day: files %v, want one archived file", got)
	}
	if seqs := collect(t, s, base, base.AddDate(0, 0, 1)); !slices.Equal(seqs, seqRange(0, 300)) {
		t.Fatalf("after archiving: %d records, want 300", len(seqs))
	}
	path := filepath.Join(DaysDir(dir), record.DayString(base), got[0])
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := s.mergeDue(); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openTest(t, dir, clk)
			if err := s.mergeDue(); err != nil {
				t.Fatal(err)
			}
		}
		if !sameFile(t, path, fi) {
			t.Fatalf("pass %d: the archived file was rewritten (files now %v)", i, dayFiles(t, dir, base))
		}
	}
}

// TestArchiveCrashLeavesOneCopy: a crash after the archived copy of a
// single part was written but before the part was removed leaves both
// (same flush range); start-up keeps the archived one only.
func TestArchiveCrashLeavesOneCopy(t *testing.T) {
	dir := t.TempDir()
	clk := testkit.NewClock(base.Add(12 * time.Hour))
	s := openTest(t, dir, clk)
	if err := s.Append(context.Background(), batch(0, 100)); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	dayDir := filepath.Join(DaysDir(dir), record.DayString(base))
	part := dayFiles(t, dir, base)[0]
	b, err := os.ReadFile(filepath.Join(dayDir, part))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	lo, hi, _, _ := parseSegName(part)
	if err := os.WriteFile(filepath.Join(dayDir, segName(lo, hi, true)), b, 0o640); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, clk)
	defer s.Close()
	if got := dayFiles(t, dir, base); len(got) != 1 || !isArchived(got[0]) {
		t.Fatalf("after restart: files %v, want the archived copy only", got)
	}
	if seqs := collect(t, s, base, base.AddDate(0, 0, 1)); !slices.Equal(seqs, seqRange(0, 100)) {
		t.Fatalf("after restart: %d records, want 100", len(seqs))
	}
}

// TestLateRecordsDoNotRewriteTheArchive (issue 15): late records for an
// archived day are merged among themselves at the flush level; the day is
// archived again (one file, every record) only once the first of them has
// waited a merge grace, or once they reach a sixteenth of the archived
// file, not after every flush.
func TestLateRecordsDoNotRewriteTheArchive(t *testing.T) {
	dir := t.TempDir()
	clk := testkit.NewClock(base.Add(12 * time.Hour))
	s := openTest(t, dir, clk)
	defer s.Close()
	ctx := context.Background()
	for _, r := range [][2]int{{0, 1000}, {1000, 2000}} {
		if err := s.Append(ctx, batch(r[0], r[1])); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	closed := base.Add(24*time.Hour + s.opts.MergeGrace)
	clk.Set(closed)
	if err := s.mergeDue(); err != nil {
		t.Fatal(err)
	}
	files := dayFiles(t, dir, base)
	if len(files) != 1 {
		t.Fatalf("closed day: files %v, want one merged file", files)
	}
	archived := filepath.Join(DaysDir(dir), record.DayString(base), files[0])
	fi, err := os.Stat(archived)
	if err != nil {
		t.Fatal(err)
	}
	// Three flushes of one late record each, a merge pass after each.
	for i := 2000; i < 2003; i++ {
		clk.Set(closed.Add(time.Duration(i-2000) * time.Minute))
		if err := s.Append(ctx, batch(i, i+1)); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := s.mergeDue(); err != nil {
			t.Fatal(err)
		}
		if !sameFile(t, archived, fi) {
			t.Fatalf("late record %d: the archived file was rewritten (files now %v)", i, dayFiles(t, dir, base))
		}
		if got := dayFiles(t, dir, base); len(got) != 2 || isArchived(got[1]) {
			t.Fatalf("late record %d: files %v, want the archived file and one merged late part", i, got)
		}
	}
	if seqs := collect(t, s, base, base.AddDate(0, 0, 1)); !slices.Equal(seqs, seqRange(0, 2003)) {
		t.Fatalf("with late parts: %d records, want 2003", len(seqs))
	}
	// A merge grace after the first late part, the day is archived again.
	clk.Set(closed.Add(s.opts.MergeGrace))
	if err := s.mergeDue(); err != nil {
		t.Fatal(err)
	}
	if got := dayFiles(t, dir, base); len(got) != 1 || !isArchived(got[0]) {
		t.Fatalf("a grace after the late records: files %v, want one archived file", got)
	}
	if seqs := collect(t, s, base, base.AddDate(0, 0, 1)); !slices.Equal(seqs, seqRange(0, 2003)) {
		t.Fatalf("re-archived: %d records, want 2003", len(seqs))
	}

	// Late records of a sixteenth of the archived bytes or more: archived
	// again at once.
	clk.Set(closed.Add(2 * s.opts.MergeGrace))
	if err := s.Append(ctx, batch(2003, 2400)); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.mergeDue(); err != nil {
		t.Fatal(err)
	}
	if got := dayFiles(t, dir, base); len(got) != 1 || !isArchived(got[0]) {
		t.Fatalf("many late records: files %v, want one archived file", got)
	}
	if seqs := collect(t, s, base, base.AddDate(0, 0, 1)); !slices.Equal(seqs, seqRange(0, 2400)) {
		t.Fatalf("re-archived: %d records, want 2400", len(seqs))
	}
}

// TestFirstFlushOfAClosedDayIsArchived (issue 15): the first records of a
// day that is already closed (a backfill, an import, a shipper catching
// up) are flushed straight into the day's archived form, instead of a part
// that the archive pass then decodes and encodes again.
func TestFirstFlushOfAClosedDayIsArchived(t *testing.T) {
	dir := t.TempDir()
	clk := testkit.NewClock(base.AddDate(0, 0, 3))
	reg := prometheus.NewRegistry()
	s, err := Open(dir, Options{Now: clk.Now, FlushInterval: time.Hour, BlockRows: 64, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Append(context.Background(), batch(0, 300)); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := dayFiles(t, dir, base); len(got) != 1 || !isArchived(got[0]) {
		t.Fatalf("after the flush: files %v, want one archived file", got)
	}
	if err := s.mergeDue(); err != nil {
		t.Fatal(err)
	}
	if n := metricValue(t, reg, "retentiond_store_merges_total"); n != 0 {
		t.Fatalf("%v merges, want none: the flush wrote the archived file", n)
	}
	if seqs := collect(t, s, base, base.AddDate(0, 0, 1)); !slices.Equal(seqs, seqRange(0, 300)) {
		t.Fatalf("%d records, want 300", len(seqs))
	}
}
