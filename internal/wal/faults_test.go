package wal

import (
	"errors"
	"slices"
	"syscall"
	"testing"

	"github.com/retentiond/retentiond/internal/fsutil"
)

// TestFailedAppendIsFatalAndNotReplayed: a failed write or fsync fails that
// append and every later one, even once the disk "recovers" (a second fsync
// could report success for lost data), and the bytes of the failed group are
// not replayed after a restart: the caller answered an error, so replaying
// them would store a batch the client will send again.
func TestFailedAppendIsFatalAndNotReplayed(t *testing.T) {
	for _, c := range []struct {
		name string
		rule fsutil.Rule
		want error
	}{
		{"fsync EIO", fsutil.Rule{Op: fsutil.OpSync, Path: ".wal", Err: syscall.EIO}, syscall.EIO},
		{"write ENOSPC", fsutil.Rule{Op: fsutil.OpWrite, Path: ".wal", Err: syscall.ENOSPC}, syscall.ENOSPC},
		{"short write", fsutil.Rule{Op: fsutil.OpWrite, Path: ".wal", Err: &fsutil.ShortWrite{Err: syscall.ENOSPC}}, syscall.ENOSPC},
		{"write EIO", fsutil.Rule{Op: fsutil.OpWrite, Path: ".wal", Err: syscall.EIO}, syscall.EIO},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			var in fsutil.Injector
			w := openT(t, dir, Options{FS: in.FS()})
			if _, err := w.Append([]byte("ok")); err != nil {
				t.Fatal(err)
			}
			in.Add(c.rule)
			if _, err := w.Append([]byte("lost")); !errors.Is(err, ErrFailed) || !errors.Is(err, c.want) {
				t.Fatalf("append with failing %s: %v, want ErrFailed wrapping %v", c.name, err, c.want)
			}
			in.Clear() // the disk "recovers": the WAL must not
			if _, err := w.Append([]byte("later")); !errors.Is(err, ErrFailed) {
				t.Fatalf("append after a failure: %v, want ErrFailed", err)
			}
			if _, err := w.Rotate(); !errors.Is(err, ErrFailed) {
				t.Fatalf("rotate after a failure: %v, want ErrFailed", err)
			}
			if got := reopened(t, w); !slices.Equal(got, []string{"ok"}) {
				t.Fatalf("replayed %q after the failure, want only the acknowledged [ok]", got)
			}
		})
	}
}

// TestRotationFailureIsRetried: a failure to start the next file (EMFILE,
// ENOSPC for its header, a failed fsync of the new file or of the directory)
// puts no acknowledged byte at risk, so appends go on into the current file,
// the WAL reports itself degraded, and the rotation is retried until it
// works.
func TestRotationFailureIsRetried(t *testing.T) {
	for _, c := range []struct {
		name string
		rule fsutil.Rule
	}{
		{"open EMFILE", fsutil.Rule{Op: fsutil.OpOpen, Path: ".wal", Err: syscall.EMFILE}},
		{"header ENOSPC", fsutil.Rule{Op: fsutil.OpWrite, Path: "00000002.wal", Err: syscall.ENOSPC}},
		{"new file fsync EIO", fsutil.Rule{Op: fsutil.OpSync, Path: "00000002.wal", Err: syscall.EIO}},
		{"dir fsync EIO", fsutil.Rule{Op: fsutil.OpSyncDir, Err: syscall.EIO}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			var in fsutil.Injector
			w := openT(t, dir, Options{SegmentSize: 256, FS: in.FS()})
			in.Add(c.rule)
			var want [][]byte
			for i := range 40 {
				p := payload(i)
				if _, err := w.Append(p); err != nil {
					t.Fatalf("append %d while rotation fails: %v", i, err)
				}
				want = append(want, p)
			}
			if _, err := w.Rotate(); err == nil || errors.Is(err, ErrFailed) {
				t.Fatalf("explicit rotate while rotation fails: %v, want a retryable error", err)
			}
			if err := w.Degraded(); !errors.Is(err, c.rule.Err) {
				t.Fatalf("Degraded() = %v, want %v", err, c.rule.Err)
			}
			if segs := w.Segments(); len(segs) != 1 {
				t.Fatalf("files %v while rotation fails", segs)
			}
			in.Clear()
			for i := 40; i < 50; i++ {
				p := payload(i)
				if _, err := w.Append(p); err != nil {
					t.Fatalf("append %d after recovery: %v", i, err)
				}
				want = append(want, p)
			}
			if err := w.Degraded(); err != nil {
				t.Fatalf("still degraded after the fault was lifted: %v", err)
			}
			if segs := w.Segments(); len(segs) < 2 {
				t.Fatalf("no rotation after the fault was lifted: %v", segs)
			}
			w.Close()
			w = openT(t, dir, Options{})
			defer w.Close()
			got := replayAll(t, w)
			if len(got) != len(want) {
				t.Fatalf("replayed %d payloads, want %d", len(got), len(want))
			}
			for i := range want {
				if string(got[i]) != string(want[i]) {
					t.Fatalf("payload %d differs", i)
				}
			}
		})
	}
}

// TestAppendAllIsOneGroup: the payloads of one AppendAll are written with one
// write and one fsync, so a failure loses all of them, never a prefix.
func TestAppendAllIsOneGroup(t *testing.T) {
	dir := t.TempDir()
	var in fsutil.Injector
	w := openT(t, dir, Options{FS: in.FS()})
	if _, err := w.AppendAll([][]byte{[]byte("a1"), []byte("a2")}); err != nil {
		t.Fatal(err)
	}
	in.Add(fsutil.Rule{Op: fsutil.OpWrite, Path: ".wal", Err: &fsutil.ShortWrite{Err: syscall.ENOSPC}})
	if _, err := w.AppendAll([][]byte{[]byte("b1"), []byte("b2"), []byte("b3")}); !errors.Is(err, ErrFailed) {
		t.Fatalf("AppendAll with a short write: %v", err)
	}
	w.Close()
	w = openT(t, dir, Options{})
	defer w.Close()
	var got []string
	for _, p := range replayAll(t, w) {
		got = append(got, string(p))
	}
	if !slices.Equal(got, []string{"a1", "a2"}) {
		t.Fatalf("replayed %q", got)
	}
	if _, err := w.AppendAll([][]byte{[]byte("x"), make([]byte, MaxPayload+1)}); err == nil || errors.Is(err, ErrFailed) {
		t.Fatalf("oversized payload in AppendAll: %v, want a plain size error", err)
	}
	if _, err := w.Append([]byte("after")); err != nil {
		t.Fatalf("a size error failed the WAL: %v", err)
	}
}
