package purge

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/store"
	"github.com/retentiond/retentiond/internal/testkit"
)

// *store.Store is the Store the daemon purges.
var _ Store = (*store.Store)(nil)

// filesContaining lists the files under dir that contain needle.
func filesContaining(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, needle) {
			hits = append(hits, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// TestRealStoreStartupPurge drives the real store: days written before 40
// days of downtime are destroyed by the start-up run, including a canary
// that was still only in the WAL, and the younger days stay readable.
func TestRealStoreStartupPurge(t *testing.T) {
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	clk := testkit.NewClock(time.Time{})
	clk.Set(ts(t, "2024-02-27T00:00:00Z"))
	st, err := store.Open(dir, store.Options{Now: clk.Now, FlushInterval: time.Hour, Registerer: prometheus.NewRegistry(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const canary = "/canary-5e1f0c9a"
	var recs []record.Record
	for d := ts(t, "2024-02-27"); d.Before(ts(t, "2024-03-05")); d = d.AddDate(0, 0, 1) {
		for i := range 5 {
			r := record.Record{Time: d.Add(time.Duration(i) * time.Hour), Domain: "shop.example.nl", Path: "/p",
				UserAgent: "test", IP: netip.MustParseAddr("192.0.2.10")}
			if d.Equal(ts(t, "2024-02-29")) && i == 2 {
				r.Path = canary
			}
			recs = append(recs, r)
		}
	}
	if err := st.Append(bg, recs); err != nil {
		t.Fatal(err)
	}
	if len(filesContaining(t, dir, []byte(canary))) == 0 {
		t.Fatal("the canary is not visible in the data directory before the purge; the scan proves nothing")
	}

	clk.Set(ts(t, "2026-03-02T07:00:00Z")) // back after downtime: 27 Feb .. 1 Mar 2024 have expired
	reg := prometheus.NewRegistry()
	s, err := NewScheduler(Options{Policy: Policy{Retention: Retention{Years: 2}}, Store: st, Now: clk.Now,
		Registerer: reg, Logger: quiet, MaxDaysPerRun: 1, StartupIgnoresLimit: true, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	rep, err := s.RunStartup(bg)
	if err != nil || len(rep.Days) != 4 || rep.Records != 20 {
		t.Fatalf("start-up run: %d days, %d records, %v", len(rep.Days), rep.Records, err)
	}
	days := st.Days()
	if len(days) != 3 || !days[0].Day.Equal(ts(t, "2024-03-02")) || days[0].Records != 5 {
		t.Fatalf("days after the purge: %+v", days)
	}
	if hits := filesContaining(t, dir, []byte(canary)); len(hits) > 0 {
		t.Errorf("the canary of a purged day survives in %v", hits)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*", "2024-02-2*")); len(left) > 0 {
		t.Errorf("files of purged days remain: %v", left)
	}
}

// TestRealStoreScheduledRunNotHeldBySearch: a search that never lets go of
// an expired day (its client stopped reading, say) used to keep the
// scheduled run waiting for ever, so every later run was skipped. With the
// store's reader grace the run cancels the search, destroys the day and
// succeeds; the search's context says why it was cancelled.
func TestRealStoreScheduledRunNotHeldBySearch(t *testing.T) {
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	clk := testkit.NewClock(time.Time{})
	clk.Set(ts(t, "2024-02-27T00:00:00Z"))
	st, err := store.Open(dir, store.Options{Now: clk.Now, FlushInterval: time.Hour, ReaderGrace: 100 * time.Millisecond,
		Registerer: prometheus.NewRegistry(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const canary = "/canary-held-77a1"
	recs := []record.Record{
		{Time: ts(t, "2024-02-27T10:00:00Z"), Domain: "shop.example.nl", Path: canary, UserAgent: "test", IP: netip.MustParseAddr("192.0.2.10")},
		{Time: ts(t, "2024-03-05T10:00:00Z"), Domain: "shop.example.nl", Path: "/p", UserAgent: "test", IP: netip.MustParseAddr("192.0.2.10")},
	}
	if err := st.Append(bg, recs); err != nil {
		t.Fatal(err)
	}
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	snap, err := st.Snapshot(ts(t, "2024-02-27"), ts(t, "2024-03-06"))
	if err != nil {
		t.Fatal(err)
	}
	var release sync.Once
	defer release.Do(snap.Release) // lets a hung run of old code end after the test failed
	sctx, stop := snap.Context(bg)
	defer stop()

	clk.Set(ts(t, "2026-03-02T07:00:00Z")) // 2024-02-27 has expired, 2024-03-05 has not
	s, err := NewScheduler(Options{Policy: Policy{Retention: Retention{Years: 2}}, Store: st, Now: clk.Now,
		Registerer: prometheus.NewRegistry(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	ran := make(chan struct{})
	go func() { s.scheduledRun(); close(ran) }()
	select {
	case <-ran:
	case <-time.After(20 * time.Second):
		t.Fatal("the scheduled run is still waiting for the search after 20s (reader grace 100ms)")
	}
	if got := testutil.ToFloat64(s.m.runs.WithLabelValues(ResultSuccess)); got != 1 {
		t.Errorf("successful runs = %v, want 1", got)
	}
	if !errors.Is(context.Cause(sctx), store.ErrDayDestroyed) {
		t.Errorf("the holding search's context ended with %v, want the destroyed-day error", context.Cause(sctx))
	}
	release.Do(snap.Release)
	if hits := filesContaining(t, dir, []byte(canary)); len(hits) > 0 {
		t.Errorf("the canary of the purged day survives in %v", hits)
	}
	if days := st.Days(); len(days) != 1 || !days[0].Day.Equal(ts(t, "2024-03-05")) {
		t.Errorf("days after the run: %+v", days)
	}
}
