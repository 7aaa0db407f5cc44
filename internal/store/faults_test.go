package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/fsutil"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/wal"
)

func openFaulty(t *testing.T, dir string, in *fsutil.Injector, reg *prometheus.Registry, mod func(*Options)) *Store {
	t.Helper()
	opts := Options{FlushInterval: time.Hour, BlockRows: 64, Registerer: reg, FS: in.FS()}
	if mod != nil {
		mod(&opts)
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return s
}

func batch(lo, hi int) []record.Record {
	var recs []record.Record
	for i := lo; i < hi; i++ {
		recs = append(recs, rec(base.Add(time.Duration(i)*time.Second), i))
	}
	return recs
}

// TestBatchLargerThanWALFrame (issue 12 row 1): one batch whose encoding is
// larger than a WAL frame (64 MiB) is stored in several frames; it must not
// put the store into its failed state, and the next append must succeed.
func TestBatchLargerThanWALFrame(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 70 MB")
	}
	dir := t.TempDir()
	s := openFaulty(t, dir, &fsutil.Injector{}, prometheus.NewRegistry(), func(o *Options) { o.HeadMaxBytes = 1 << 30 })
	pad := strings.Repeat("p", 60000)
	n := wal.MaxPayload/60000 + 50
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{Time: base.Add(time.Duration(i) * time.Millisecond), Domain: "big.example",
			Path: fmt.Sprintf("/seq/%d?%s", i, pad), UserAgent: "ua", IP: netip.MustParseAddr("192.0.2.1")}
	}
	if err := s.Append(context.Background(), recs); err != nil {
		t.Fatalf("append of a batch larger than a WAL frame: %v", err)
	}
	if err := s.Append(context.Background(), []record.Record{rec(base, n)}); err != nil {
		t.Fatalf("the next small append: %v", err)
	}
	if err := s.Health(); err != nil {
		t.Fatalf("health after a big batch: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openFaulty(t, dir, &fsutil.Injector{}, prometheus.NewRegistry(), nil)
	defer s.Close()
	if got := collect(t, s, base, base.AddDate(0, 0, 1)); !slices.Equal(got, seqRange(0, n+1)) {
		t.Fatalf("after reopen %d records, want %d", len(got), n+1)
	}
}

// TestBatchLargerThanHead (issue 12 row 11): a batch that can never fit
// under head_max_bytes is ErrTooLarge (413), not ErrBusy (429 forever).
func TestBatchLargerThanHead(t *testing.T) {
	s := openFaulty(t, t.TempDir(), &fsutil.Injector{}, prometheus.NewRegistry(), func(o *Options) { o.HeadMaxBytes = 64 << 10 })
	defer s.Close()
	err := s.Append(context.Background(), batch(0, 500))
	if !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrBusy) {
		t.Fatalf("batch above head_max_bytes: %v, want ErrTooLarge and not ErrBusy", err)
	}
	if err := s.Append(context.Background(), batch(500, 510)); err != nil {
		t.Fatalf("small batch after a too large one: %v", err)
	}
	if err := s.Health(); err != nil {
		t.Fatalf("a request's size error changed the store's health: %v", err)
	}
}

// TestWALFailureFailsStoreAndDropsBatch (issue 12 rows 5 and 11): an fsync
// error fails the store for good (Health, the failed gauge, the Failed
// channel), and the batch answered with that error is not there after a
// restart, so a client's retry does not duplicate it.
func TestWALFailureFailsStoreAndDropsBatch(t *testing.T) {
	for _, c := range []struct {
		name string
		rule fsutil.Rule
	}{
		{"fsync EIO", fsutil.Rule{Op: fsutil.OpSync, Path: "/wal/", Err: syscall.EIO}},
		{"write ENOSPC", fsutil.Rule{Op: fsutil.OpWrite, Path: "/wal/", Err: syscall.ENOSPC}},
		{"short write", fsutil.Rule{Op: fsutil.OpWrite, Path: "/wal/", Err: &fsutil.ShortWrite{Err: syscall.ENOSPC}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			var in fsutil.Injector
			reg := prometheus.NewRegistry()
			s := openFaulty(t, dir, &in, reg, nil)
			ctx := context.Background()
			if err := s.Append(ctx, batch(0, 10)); err != nil {
				t.Fatal(err)
			}
			if metricValue(t, reg, "retentiond_store_failed") != 0 {
				t.Fatal("store_failed is 1 before any failure")
			}
			in.Add(c.rule)
			if err := s.Append(ctx, batch(10, 20)); !errors.Is(err, ErrFailed) {
				t.Fatalf("append with a failing WAL: %v, want ErrFailed", err)
			}
			in.Clear()
			if err := s.Append(ctx, batch(20, 30)); !errors.Is(err, ErrFailed) {
				t.Fatalf("append after the WAL failed: %v, want ErrFailed", err)
			}
			if err := s.Health(); !errors.Is(err, ErrFailed) {
				t.Fatalf("Health() = %v, want ErrFailed", err)
			}
			select {
			case <-s.Failed():
			default:
				t.Fatal("Failed() not closed")
			}
			if g := metricValue(t, reg, "retentiond_store_failed"); g != 1 {
				t.Fatalf("retentiond_store_failed = %v, want 1", g)
			}
			s.Close()
			s = openFaulty(t, dir, &fsutil.Injector{}, prometheus.NewRegistry(), nil)
			defer s.Close()
			if got := collect(t, s, base, base.AddDate(0, 0, 1)); !slices.Equal(got, seqRange(0, 10)) {
				t.Fatalf("after restart %v, want only the acknowledged 0..9", got)
			}
		})
	}
}

// TestTransientFaultsDegradeAndRecover (issue 12 row 3): EMFILE or ENOSPC
// while rotating the WAL or flushing the head neither loses nor refuses
// anything: appends keep being acknowledged, Health reports the store
// degraded, and once the fault is gone the next flush succeeds and every
// acknowledged record is there after a restart, exactly once.
func TestTransientFaultsDegradeAndRecover(t *testing.T) {
	for _, c := range []struct {
		name string
		rule fsutil.Rule
	}{
		{"wal rotation EMFILE", fsutil.Rule{Op: fsutil.OpOpen, Path: "/wal/", Err: syscall.EMFILE}},
		{"wal rotation ENOSPC", fsutil.Rule{Op: fsutil.OpWrite, Path: "/wal/00000002", Err: syscall.ENOSPC}},
		{"part open EMFILE", fsutil.Rule{Op: fsutil.OpOpen, Path: "/days/", Err: syscall.EMFILE}},
		{"part write ENOSPC", fsutil.Rule{Op: fsutil.OpWrite, Path: "/days/", Err: syscall.ENOSPC}},
		{"part short write", fsutil.Rule{Op: fsutil.OpWrite, Path: "/days/", Err: &fsutil.ShortWrite{Err: syscall.ENOSPC}}},
		{"day mkdir ENOSPC", fsutil.Rule{Op: fsutil.OpMkdir, Path: "/days/", Err: syscall.ENOSPC}},
		{"part dir fsync EIO", fsutil.Rule{Op: fsutil.OpSyncDir, Path: "/days/2026", Err: syscall.EIO}},
		{"checkpoint ENOSPC", fsutil.Rule{Op: fsutil.OpWrite, Path: "checkpoint.json", Err: syscall.ENOSPC}},
		{"checkpoint rename EIO", fsutil.Rule{Op: fsutil.OpRename, Path: "checkpoint.json", Err: syscall.EIO}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			var in fsutil.Injector
			reg := prometheus.NewRegistry()
			s := openFaulty(t, dir, &in, reg, func(o *Options) { o.WALSegmentBytes = 2048 })
			ctx := context.Background()
			if err := s.Append(ctx, batch(0, 10)); err != nil {
				t.Fatal(err)
			}
			in.Add(c.rule)
			for i := 10; i < 200; i += 10 {
				if err := s.Append(ctx, batch(i, i+10)); err != nil {
					t.Fatalf("append %d during %s: %v", i, c.name, err)
				}
			}
			if err := s.Flush(); err == nil {
				t.Fatalf("flush during %s succeeded", c.name)
			}
			if err := s.Health(); !errors.Is(err, ErrDegraded) || !errors.Is(err, c.rule.Err) && !strings.Contains(err.Error(), "no space") {
				t.Fatalf("Health() = %v, want ErrDegraded with the cause", err)
			}
			if g := metricValue(t, reg, "retentiond_store_degraded"); g != 1 {
				t.Fatalf("retentiond_store_degraded = %v, want 1", g)
			}
			if err := s.Append(ctx, batch(200, 210)); err != nil {
				t.Fatalf("append after a failed flush: %v", err)
			}
			if got := collect(t, s, base, base.AddDate(0, 0, 1)); !slices.Equal(got, seqRange(0, 210)) {
				t.Fatalf("searchable after the failed flush: %d records, want 210", len(got))
			}
			in.Clear()
			if err := s.Flush(); err != nil {
				t.Fatalf("flush after the fault was lifted: %v", err)
			}
			if err := s.Append(ctx, batch(210, 220)); err != nil {
				t.Fatal(err)
			}
			if err := s.Health(); err != nil {
				t.Fatalf("still unhealthy after recovery: %v", err)
			}
			if g := metricValue(t, reg, "retentiond_store_degraded"); g != 0 {
				t.Fatalf("retentiond_store_degraded = %v after recovery", g)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openFaulty(t, dir, &fsutil.Injector{}, prometheus.NewRegistry(), nil)
			defer s.Close()
			if got := collect(t, s, base, base.AddDate(0, 0, 1)); !slices.Equal(got, seqRange(0, 220)) {
				t.Fatalf("after restart %d records (want 220 exactly once)", len(got))
			}
		})
	}
}

// TestFaultMatrix injects each kind of fault into each file-system operation
// for a few calls while batches are appended and flushed, then restarts on a
// healthy disk: every acknowledged record is there exactly once and no record
// of a batch answered with an error is (nothing lost, no false ack, no
// duplicate on retry).
func TestFaultMatrix(t *testing.T) {
	ops := []fsutil.Op{fsutil.OpOpen, fsutil.OpWrite, fsutil.OpSync, fsutil.OpSyncDir, fsutil.OpRename,
		fsutil.OpRemove, fsutil.OpMkdir, fsutil.OpTruncate}
	errs := []error{syscall.ENOSPC, syscall.EIO, syscall.EMFILE, &fsutil.ShortWrite{Err: syscall.ENOSPC}}
	for _, op := range ops {
		for _, ferr := range errs {
			if _, short := ferr.(*fsutil.ShortWrite); short && op != fsutil.OpWrite {
				continue
			}
			for _, after := range []int{0, 3} {
				t.Run(fmt.Sprintf("%v/%v/after%d", op, ferr, after), func(t *testing.T) {
					dir := t.TempDir()
					var in fsutil.Injector
					s := openFaulty(t, dir, &in, prometheus.NewRegistry(), func(o *Options) { o.WALSegmentBytes = 4096 })
					in.Add(fsutil.Rule{Op: op, Err: ferr, After: after, Times: 3})
					ctx := context.Background()
					var acked []int
					for i := 0; i < 300; i += 10 {
						if err := s.Append(ctx, batch(i, i+10)); err == nil {
							acked = append(acked, seqRange(i, i+10)...)
						}
						if i%50 == 40 {
							s.Flush()
						}
					}
					s.Close()
					s = openFaulty(t, dir, &fsutil.Injector{}, prometheus.NewRegistry(), nil)
					defer s.Close()
					if got := collect(t, s, base, base.AddDate(0, 0, 1)); !slices.Equal(got, acked) {
						t.Fatalf("after restart %d records, want the %d acknowledged exactly once", len(got), len(acked))
					}
				})
			}
		}
	}
}
