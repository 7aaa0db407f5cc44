package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/fsutil"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/testkit"
)

// testBound is how long a test waits for something that must happen
// promptly; old code that waited without bound fails cleanly at it instead
// of hanging until the package timeout.
const testBound = 20 * time.Second

// counterValue reads a counter or gauge from reg; it fails the test if the
// metric is not registered.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("metric %s is not registered", name)
	return 0
}

// TestDeleteDayBoundsItsWaitForSearches holds a snapshot of the day being
// deleted, as a search whose client stopped reading would, and checks that
// DeleteDay waits for it at most purge.reader_grace: a search that lets go
// within the grace finishes untouched, one that does not is cancelled with
// an error that names the destroyed day, and the day is destroyed either way.
// Searches that do not hold the day are never cancelled.
func TestDeleteDayBoundsItsWaitForSearches(t *testing.T) {
	tests := []struct {
		name         string
		grace        time.Duration
		releaseAfter time.Duration // < 0: never, until DeleteDay returned
		wantCancel   bool
	}{
		{"reader releases within the grace", 10 * time.Second, 50 * time.Millisecond, false},
		{"reader holds the day past the grace", 200 * time.Millisecond, -1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			reg := prometheus.NewRegistry()
			s, err := Open(dir, Options{Now: (testkit.NewClock(base.AddDate(0, 0, 5))).Now, FlushInterval: time.Hour,
				BlockRows: 64, ReaderGrace: tt.grace, Registerer: reg})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			c := rec(base.Add(time.Hour), 1)
			c.Path = "/seq/1?canary=CANARY-41d2"
			if err := s.Append(ctx, []record.Record{c, rec(base.Add(2*time.Hour), 2), rec(base.AddDate(0, 0, 1), 3)}); err != nil {
				t.Fatal(err)
			}
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}

			holder, err := s.Snapshot(base, base.AddDate(0, 0, 2))
			if err != nil {
				t.Fatal(err)
			}
			hctx, stop := holder.Context(ctx)
			defer stop()
			other, err := s.Snapshot(base.AddDate(0, 0, 1), base.AddDate(0, 0, 2))
			if err != nil {
				t.Fatal(err)
			}
			octx, ostop := other.Context(ctx)
			defer ostop()

			var release sync.Once
			releaseHolder := func() { release.Do(holder.Release) }
			if tt.releaseAfter >= 0 {
				time.AfterFunc(tt.releaseAfter, releaseHolder)
			}
			dctx, cancel := context.WithTimeout(ctx, testBound)
			defer cancel()
			info, err := s.DeleteDay(dctx, base)
			if err != nil {
				t.Fatalf("DeleteDay: %v", err)
			}
			if info.Records != 2 {
				t.Errorf("DeleteDay destroyed %d records, want 2", info.Records)
			}
			cause := context.Cause(hctx)
			if tt.wantCancel {
				if !errors.Is(cause, ErrDayDestroyed) || !strings.Contains(cause.Error(), record.DayString(base)) {
					t.Errorf("the holding search ended with %v, want an error naming day %s as destroyed", cause, record.DayString(base))
				}
			} else if cause != nil {
				t.Errorf("a search that let go within the grace was cancelled: %v", cause)
			}
			if octx.Err() != nil {
				t.Errorf("a search not holding the day was cancelled: %v", context.Cause(octx))
			}
			want := 0.0
			if tt.wantCancel {
				want = 1
			}
			if got := counterValue(t, reg, "retentiond_store_purge_cancelled_searches_total"); got != want {
				t.Errorf("cancelled searches metric = %v, want %v", got, want)
			}
			releaseHolder()
			other.Release()
			if got := collect(t, s, time.Time{}, base.AddDate(1, 0, 0)); !slices.Equal(got, []int{3}) {
				t.Fatalf("after delete: %v, want [3]", got)
			}
			scanFor(t, dir, []byte("CANARY-41d2"))
		})
	}
}

// TestDeleteDayDestroysWALOnlyRecords covers records of the purged day that
// exist only in the WAL: a quiet daemon whose last records were never
// flushed, and a crash followed by a start-up purge. After the purge, and
// after the next restart, no file under the data directory (WAL included)
// holds them, and the other day's records are still there.
func TestDeleteDayDestroysWALOnlyRecords(t *testing.T) {
	const canary = "CANARY-wal-9c1e"
	tests := []struct {
		name  string
		crash bool // reopen a copy of the directory taken while the store ran
	}{
		{"quiet daemon", false},
		{"start-up purge after a crash", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			clk := testkit.NewClock(base.AddDate(0, 0, 5))
			s := openTest(t, dir, clk)
			ctx := context.Background()
			// The surviving day is flushed into parts, so the purged day's
			// records are the only ones in the head and the WAL.
			if err := s.Append(ctx, []record.Record{rec(base.AddDate(0, 0, 1), 10)}); err != nil {
				t.Fatal(err)
			}
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			c := rec(base.Add(time.Hour), 1)
			c.Path = "/seq/1?canary=" + canary
			if err := s.Append(ctx, []record.Record{c}); err != nil {
				t.Fatal(err)
			}
			if !containsAnywhere(t, dir, []byte(canary)) {
				t.Fatal("the canary is not in the data directory before the purge; the scan would prove nothing")
			}
			if tt.crash {
				crashed := t.TempDir()
				copyTree(t, dir, crashed)
				s.Close()
				dir = crashed
				s = openTest(t, dir, clk)
			}
			if _, err := s.DeleteDay(ctx, base); err != nil {
				t.Fatal(err)
			}
			scanFor(t, dir, []byte(canary))
			if got := collect(t, s, time.Time{}, base.AddDate(1, 0, 0)); !slices.Equal(got, []int{10}) {
				t.Fatalf("after delete: %v, want [10]", got)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openTest(t, dir, clk)
			defer s.Close()
			if got := collect(t, s, time.Time{}, base.AddDate(1, 0, 0)); !slices.Equal(got, []int{10}) {
				t.Fatalf("after restart: %v, want [10]", got)
			}
			scanFor(t, dir, []byte(canary))
		})
	}
}

// containsAnywhere reports whether any file under dir contains needle.
func containsAnywhere(t *testing.T, dir string, needle []byte) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		found = found || bytes.Contains(b, needle)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestDeleteDayWALCleanupSurvivesAFailedCheckpoint: the purge of a day whose
// only record is in the WAL fails to write its checkpoint (ENOSPC). The
// purge reports the failure, and the next flush, once the disk has room
// again, still removes the WAL file holding the record, although the head
// is empty.
func TestDeleteDayWALCleanupSurvivesAFailedCheckpoint(t *testing.T) {
	const canary = "CANARY-ckpt-3b70"
	dir := t.TempDir()
	var in fsutil.Injector
	s := openFaulty(t, dir, &in, prometheus.NewRegistry(), nil)
	defer s.Close()
	ctx := context.Background()
	c := rec(base.Add(time.Hour), 1)
	c.Path = "/seq/1?canary=" + canary
	if err := s.Append(ctx, []record.Record{c}); err != nil {
		t.Fatal(err)
	}
	in.Add(fsutil.Rule{Op: fsutil.OpOpen, Path: checkpointName, Err: syscall.ENOSPC})
	if _, err := s.DeleteDay(ctx, base); err == nil {
		t.Fatal("DeleteDay reported success although its checkpoint could not be written")
	}
	if !containsAnywhere(t, dir, []byte(canary)) {
		t.Fatal("the canary is gone although the checkpoint failed; the test proves nothing")
	}
	in.Clear()
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	scanFor(t, dir, []byte(canary))
}
