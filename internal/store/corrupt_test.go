package store

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
	"github.com/retentiond/retentiond/internal/testkit"
)

// damageFooter flips a byte of the footer of the segment file at path (the
// byte just before the trailer), so that Open fails its footer checksum.
func damageFooter(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-29] ^= 0xff
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

// damageBlocks flips one byte in every 16 of the block area of the segment
// file at path (between the header and the footer), leaving the footer
// intact: Open succeeds and every block fails its checksum when read.
func damageBlocks(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	footer := int(binary.LittleEndian.Uint64(b[len(b)-28:]))
	for i := 8; i < footer; i += 16 {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

func dayFiles(t *testing.T, dir string, d time.Time) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "days", record.DayString(d)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestCorruptFooterIsQuarantined: a segment file whose footer is damaged
// does not stop the store from opening; it is renamed to *.corrupt, counted,
// listed with its day, and everything else keeps working. It stays counted
// across restarts until the operator or a purge removes it.
func TestCorruptFooterIsQuarantined(t *testing.T) {
	dir := t.TempDir()
	clk := testkit.NewClock(base.Add(2 * time.Hour))
	s := openTest(t, dir, clk)
	ctx := context.Background()
	for i := 0; i < 2; i++ { // two parts of the same day
		if err := s.Append(ctx, []record.Record{rec(base.Add(time.Duration(i)*time.Minute), i)}); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	bad := filepath.Join(dir, "days", "2026-11-20", segName(1, 1, false))
	damageFooter(t, bad)

	reg := prometheus.NewRegistry()
	s, err := Open(dir, Options{Now: clk.Now, FlushInterval: time.Hour, BlockRows: 64, Registerer: reg})
	if err != nil {
		t.Fatalf("open with a damaged footer: %v", err)
	}
	if got := dayFiles(t, dir, base); !slices.Equal(got, []string{segName(1, 1, false) + CorruptSuffix, segName(2, 2, false)}) {
		t.Fatalf("day files after open: %v, want the damaged one quarantined", got)
	}
	if n := metricValue(t, reg, "retentiond_store_corrupt_files"); n != 1 {
		t.Errorf("retentiond_store_corrupt_files = %v, want 1", n)
	}
	if n := metricValue(t, reg, "retentiond_store_corrupt_file_detections_total"); n != 1 {
		t.Errorf("retentiond_store_corrupt_file_detections_total = %v, want 1", n)
	}
	days := s.Days()
	if len(days) != 1 || days[0].CorruptFiles != 1 || days[0].Records != 1 {
		t.Fatalf("Days() = %+v, want one day with 1 record and 1 corrupt file", days)
	}
	snap, err := s.Snapshot(base, base.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if v := snap.Days[0]; len(v.Corrupt) != 1 || v.Corrupt[0].Path != bad+CorruptSuffix ||
		v.Corrupt[0].Err == nil || v.Corrupt[0].Err.File != bad || v.Corrupt[0].Err.Offset <= 0 {
		t.Errorf("snapshot's damaged files = %+v, want %s with its offset", v.Corrupt, bad)
	}
	snap.Release()
	// Ingest and search still work.
	if err := s.Append(ctx, []record.Record{rec(base.Add(time.Hour), 5)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.MergeDay(base); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, s, time.Time{}, base.AddDate(1, 0, 0)); !slices.Equal(got, []int{1, 5}) {
		t.Fatalf("records after quarantine: %v, want [1 5]", got)
	}
	s.Close()

	// A restart finds the quarantined file again and keeps counting it.
	reg = prometheus.NewRegistry()
	s, err = Open(dir, Options{Now: clk.Now, FlushInterval: time.Hour, BlockRows: 64, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := metricValue(t, reg, "retentiond_store_corrupt_files"); n != 1 {
		t.Errorf("after restart retentiond_store_corrupt_files = %v, want 1", n)
	}
	if got := collect(t, s, time.Time{}, base.AddDate(1, 0, 0)); !slices.Equal(got, []int{1, 5}) {
		t.Fatalf("records after restart: %v, want [1 5]", got)
	}
}

// TestPurgeDestroysDayWithCorruptFile: an expired day whose only segment
// is damaged is still a day the store lists and DeleteDay destroys, the
// quarantined file included.
func TestPurgeDestroysDayWithCorruptFile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(*testing.T, string)
	}{{"footer", damageFooter}, {"blocks", damageBlocks}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			clk := testkit.NewClock(base.Add(2 * time.Hour))
			s := openTest(t, dir, clk)
			ctx := context.Background()
			canary := netip.MustParseAddr("198.51.100.77")
			c := rec(base.Add(time.Hour), 1)
			c.IP = canary
			c.Path = "/seq/1?canary=CANARY-7f3a9"
			if err := s.Append(ctx, []record.Record{c, rec(base.AddDate(0, 0, 1), 2)}); err != nil {
				t.Fatal(err)
			}
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			s.Close()
			tc.damage(t, filepath.Join(dir, "days", "2026-11-20", segName(1, 1, false)))

			s = openTest(t, dir, clk)
			defer s.Close()
			if tc.name == "blocks" {
				// The damage shows when the file is read: a search reports it.
				snap, err := s.Snapshot(base, base.AddDate(0, 0, 1))
				if err != nil {
					t.Fatal(err)
				}
				sr := snap.Days[0].Segments[0]
				_, err = sr.ReadBlock(0, segment.ColAll)
				ce := asCorruption(err)
				if ce == nil {
					t.Fatalf("reading a damaged block: %v, want a CorruptionError", err)
				}
				snap.ReportCorrupt(ce)
				snap.Release()
			}
			days := s.Days()
			if len(days) != 2 || !days[0].Day.Equal(base) || days[0].CorruptFiles != 1 {
				t.Fatalf("Days() = %+v, want the damaged day listed with its corrupt file", days)
			}
			if _, err := s.DeleteDay(ctx, base); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, "days", "2026-11-20")); !os.IsNotExist(err) {
				t.Errorf("day directory after DeleteDay: %v, want it gone", err)
			}
			scanFor(t, dir, []byte("CANARY-7f3a9"))
			scanFor(t, dir, canary.AsSlice())
			for _, in := range s.Days() {
				if in.CorruptFiles != 0 {
					t.Errorf("after delete, %s still has %d corrupt files", in.Day, in.CorruptFiles)
				}
			}
		})
	}
}

// TestReportedDamageIsQuarantined: a file a search found damaged leaves the
// day's readable segments at once, is renamed to *.corrupt by the
// background loop (so a restart still knows it), and no longer stops merges.
func TestReportedDamageIsQuarantined(t *testing.T) {
	dir := t.TempDir()
	clk := testkit.NewClock(base.Add(2 * time.Hour))
	s := openTest(t, dir, clk)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if err := s.Append(ctx, []record.Record{rec(base.Add(time.Duration(i)*time.Minute), i)}); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	bad := filepath.Join(dir, "days", "2026-11-20", segName(2, 2, false))
	damageBlocks(t, bad)
	reg := prometheus.NewRegistry()
	s, err := Open(dir, Options{Now: clk.Now, FlushInterval: time.Hour, BlockRows: 64, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A merge reads every block: it meets the damage, reports it itself, and
	// the next merge goes ahead without the file.
	if err := s.MergeDay(base); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("merge over a damaged part: %v, want an error naming %s", err, bad)
	}
	if n := metricValue(t, reg, "retentiond_store_corrupt_files"); n != 1 {
		t.Errorf("retentiond_store_corrupt_files = %v, want 1", n)
	}
	if err := s.MergeDay(base); err != nil {
		t.Fatalf("merge after the damaged part was set aside: %v", err)
	}
	if got := collect(t, s, time.Time{}, base.AddDate(1, 0, 0)); !slices.Equal(got, []int{0, 2}) {
		t.Fatalf("records: %v, want [0 2]", got)
	}
	if got := dayFiles(t, dir, base); !slices.Equal(got, []string{segName(1, 3, false), segName(2, 2, false) + CorruptSuffix}) {
		t.Fatalf("day files: %v, want the merged file and the quarantined one", got)
	}
}

// metricValue returns the value of the unlabelled gauge or counter name.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.Gauge != nil {
				return m.Gauge.GetValue()
			}
			return m.Counter.GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func asCorruption(err error) *segment.CorruptionError {
	var ce *segment.CorruptionError
	if errors.As(err, &ce) {
		return ce
	}
	return nil
}
