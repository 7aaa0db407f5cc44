package wal

import (
	"errors"
	"slices"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/retentiond/retentiond/internal/fsutil"
)

// TestWriteThenSync: Write does not fsync, Sync fsyncs everything written
// before it once (and nothing when nothing is new), an AppendAll's fsync
// covers earlier writes too, and all of it replays.
func TestWriteThenSync(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, dir, Options{})
	fsyncs := func() float64 { return testutil.ToFloat64(w.m.fsyncs) }
	for _, p := range []string{"a", "b"} {
		if _, err := w.Write([][]byte{[]byte(p)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := fsyncs(); n != 0 {
		t.Fatalf("%v fsyncs after two writes, want 0", n)
	}
	for range 2 {
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if n := fsyncs(); n != 1 {
		t.Fatalf("%v fsyncs after two syncs of the same writes, want 1", n)
	}
	if _, err := w.Write([][]byte{[]byte("c")}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append([]byte("d")); err != nil {
		t.Fatal(err)
	}
	if n := fsyncs(); n != 2 {
		t.Fatalf("%v fsyncs after a write and an append, want 2", n)
	}
	if got := reopened(t, w); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Fatalf("replayed %q", got)
	}
}

// TestFailedSyncCutsWrites: when the fsync that should make written frames
// durable fails, Sync fails with ErrFailed and the frames are cut off the
// file, as a failed append's are (their writers were never told they were
// durable), whether the fsync was asked for by Sync, by a rotation that
// leaves their file, or by an AppendAll after them.
func TestFailedSyncCutsWrites(t *testing.T) {
	for _, c := range []struct {
		name    string
		size    int64              // SegmentSize
		durable func(w *WAL) error // what asks for the failing fsync
	}{
		{"Sync", 0, func(w *WAL) error { return w.Sync() }},
		{"Rotate", 0, func(w *WAL) error { _, err := w.Rotate(); return err }},
		{"AppendAll", 0, func(w *WAL) error { _, err := w.Append([]byte("after")); return err }},
		{"the next file", 32, func(w *WAL) error {
			// The file is past its size after the first write: this
			// one fsyncs it before it starts the next.
			_, err := w.Write([][]byte{[]byte("next")})
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			var in fsutil.Injector
			w := openT(t, dir, Options{SegmentSize: c.size, FS: in.FS()})
			if _, err := w.Append([]byte("ok")); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([][]byte{[]byte("written")}); err != nil {
				t.Fatal(err)
			}
			in.Add(fsutil.Rule{Op: fsutil.OpSync, Path: ".wal", Err: syscall.EIO})
			if err := c.durable(w); !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.EIO) {
				t.Fatalf("%s with a failing fsync: %v, want ErrFailed wrapping EIO", c.name, err)
			}
			in.Clear()
			if err := w.Sync(); !errors.Is(err, ErrFailed) {
				t.Fatalf("sync after the failure: %v, want ErrFailed", err)
			}
			if got := reopened(t, w); !slices.Equal(got, []string{"ok"}) {
				t.Fatalf("replayed %q after the failed fsync, want only the acknowledged [ok]", got)
			}
		})
	}
}
