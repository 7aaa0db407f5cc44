package purge

import (
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/retentiond/retentiond/internal/fsutil"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/store"
	"github.com/retentiond/retentiond/internal/testkit"
)

// TestPurgeFaultIsRetried (issue 12, fault injection): when removing an
// expired day fails (its rename to *.deleting, the removal, or a directory
// fsync), the run is reported as a failure in the metrics, the young days are
// untouched, and the next run finishes the expired day: it must not be
// forgotten until a restart.
func TestPurgeFaultIsRetried(t *testing.T) {
	for _, c := range []struct {
		name string
		rule fsutil.Rule
	}{
		{"mark rename EIO", fsutil.Rule{Op: fsutil.OpRename, Path: "2024-02-27", Err: syscall.EIO}},
		{"remove EIO", fsutil.Rule{Op: fsutil.OpRemove, Path: "2024-02-27", Err: syscall.EIO}},
		{"days dir fsync EIO", fsutil.Rule{Op: fsutil.OpSyncDir, Path: "days", Err: syscall.EIO}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
			clk := testkit.NewClock(time.Time{})
			clk.Set(ts(t, "2024-03-01T00:00:00Z"))
			var in fsutil.Injector
			st, err := store.Open(dir, store.Options{Now: clk.Now, FlushInterval: time.Hour,
				Registerer: prometheus.NewRegistry(), Logger: quiet, FS: in.FS()})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			var recs []record.Record
			for _, d := range []string{"2024-02-27", "2024-02-28", "2024-02-29"} {
				for i := range 5 {
					recs = append(recs, record.Record{Time: ts(t, d).Add(time.Duration(i) * time.Hour),
						Domain: "shop.example.nl", Path: "/p", UserAgent: "test", IP: netip.MustParseAddr("192.0.2.10")})
				}
			}
			if err := st.Append(bg, recs); err != nil {
				t.Fatal(err)
			}
			if err := st.Flush(); err != nil {
				t.Fatal(err)
			}
			// 2024-02-27 has expired at this time; the 28th and 29th have not.
			clk.Set(ts(t, "2026-02-28T07:00:00Z"))
			reg := prometheus.NewRegistry()
			s, err := NewScheduler(Options{Policy: Policy{Retention: Retention{Years: 2}}, Store: st, Now: clk.Now,
				Registerer: reg, Logger: quiet, DataDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Stop()
			in.Add(c.rule)
			if _, err := s.RunNow(bg, false); err == nil {
				t.Fatalf("run with %s succeeded", c.name)
			}
			if n := testutil.ToFloat64(s.m.runs.WithLabelValues(ResultFailure)); n != 1 {
				t.Fatalf("failed runs counted %v, want 1", n)
			}
			young := func() {
				t.Helper()
				snap, err := st.Snapshot(ts(t, "2024-02-28"), ts(t, "2024-03-01"))
				if err != nil {
					t.Fatal(err)
				}
				defer snap.Release()
				if len(snap.Days) != 2 {
					t.Fatalf("young days visible: %d, want 2", len(snap.Days))
				}
			}
			young()
			in.Clear()
			rep, err := s.RunNow(bg, false)
			if err != nil {
				t.Fatalf("run after the fault was lifted: %v", err)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "days", "2024-02-27*")); len(left) > 0 {
				t.Fatalf("the expired day survives the second run (report %+v): %v", rep, left)
			}
			for _, d := range st.Days() {
				if d.Day.Equal(ts(t, "2024-02-27")) {
					t.Fatalf("the expired day is still listed: %+v", d)
				}
			}
			young()
			if _, err := os.Stat(filepath.Join(dir, "days", "2024-02-28")); err != nil {
				t.Fatalf("young day: %v", err)
			}
		})
	}
}
