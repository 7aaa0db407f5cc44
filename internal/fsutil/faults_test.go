package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// TestFaultsFailEachOperation injects a fault into each operation and checks
// the call reports it (errors.Is sees the errno) and has no effect beyond
// what a real failure of that call could leave.
func TestFaultsFailEachOperation(t *testing.T) {
	type env struct{ dir, file string }
	setup := func(t *testing.T) env {
		dir := t.TempDir()
		file := filepath.Join(dir, "f")
		if err := os.WriteFile(file, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		return env{dir, file}
	}
	cases := []struct {
		name  string
		rule  Rule
		run   func(fsys FS, e env) error
		check func(t *testing.T, e env)
	}{
		{"create EMFILE", Rule{Op: OpOpen, Err: syscall.EMFILE},
			func(fsys FS, e env) error { _, err := fsys.Create(filepath.Join(e.dir, "n"), 0o644); return err },
			func(t *testing.T, e env) { absent(t, filepath.Join(e.dir, "n"+TmpSuffix)) }},
		{"write ENOSPC keeps old contents", Rule{Op: OpWrite, Err: syscall.ENOSPC},
			func(fsys FS, e env) error { return fsys.WriteFile(e.file, []byte("new"), 0o644) },
			func(t *testing.T, e env) { contents(t, e.file, "old"); absent(t, e.file+TmpSuffix) }},
		{"fsync EIO keeps old contents", Rule{Op: OpSync, Err: syscall.EIO},
			func(fsys FS, e env) error { return fsys.WriteFile(e.file, []byte("new"), 0o644) },
			func(t *testing.T, e env) { contents(t, e.file, "old"); absent(t, e.file+TmpSuffix) }},
		{"commit rename fails", Rule{Op: OpRename, Err: syscall.EIO},
			func(fsys FS, e env) error { return fsys.WriteFile(e.file, []byte("new"), 0o644) },
			func(t *testing.T, e env) { contents(t, e.file, "old"); absent(t, e.file+TmpSuffix) }},
		{"dir fsync EIO", Rule{Op: OpSyncDir, Err: syscall.EIO},
			func(fsys FS, e env) error { return fsys.SyncDir(e.dir) }, nil},
		{"rename EXDEV", Rule{Op: OpRename, Err: syscall.EXDEV},
			func(fsys FS, e env) error { return fsys.Rename(e.file, e.file+"2") },
			func(t *testing.T, e env) { contents(t, e.file, "old"); absent(t, e.file+"2") }},
		{"remove file EIO", Rule{Op: OpRemove, Err: syscall.EIO},
			func(fsys FS, e env) error { return fsys.RemoveFile(e.file) },
			func(t *testing.T, e env) { contents(t, e.file, "old") }},
		{"remove tree: mark fails", Rule{Op: OpRename, Err: syscall.EIO},
			func(fsys FS, e env) error { return fsys.Remove(e.file) },
			func(t *testing.T, e env) { contents(t, e.file, "old") }},
		{"remove tree: removal fails after mark", Rule{Op: OpRemove, Err: syscall.EIO},
			func(fsys FS, e env) error { return fsys.Remove(e.file) },
			func(t *testing.T, e env) { absent(t, e.file); contents(t, e.file+DeletingSuffix, "old") }},
		{"mkdir ENOSPC", Rule{Op: OpMkdir, Err: syscall.ENOSPC},
			func(fsys FS, e env) error { return fsys.MkdirAll(filepath.Join(e.dir, "a", "b"), 0o755) },
			func(t *testing.T, e env) { absent(t, filepath.Join(e.dir, "a")) }},
		{"sweep remove fails", Rule{Op: OpRemove, Err: syscall.EIO},
			func(fsys FS, e env) error {
				os.WriteFile(filepath.Join(e.dir, "x"+TmpSuffix), nil, 0o644)
				_, err := fsys.SweepLeftovers(e.dir)
				return err
			}, nil},
		{"truncate EIO", Rule{Op: OpTruncate, Err: syscall.EIO},
			func(fsys FS, e env) error {
				h, err := fsys.OpenFile(e.file, os.O_WRONLY, 0)
				if err != nil {
					return err
				}
				defer h.Close()
				return h.Truncate(0)
			},
			func(t *testing.T, e env) { contents(t, e.file, "old") }},
		{"lock open EMFILE", Rule{Op: OpOpen, Err: syscall.EMFILE},
			func(fsys FS, e env) error { _, err := fsys.Lock(filepath.Join(e.dir, "LOCK")); return err }, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := setup(t)
			var in Injector
			in.Add(c.rule)
			err := c.run(in.FS(), e)
			if !errors.Is(err, c.rule.Err) {
				t.Fatalf("err = %v, want %v", err, c.rule.Err)
			}
			if in.Failed(c.rule.Op) == 0 {
				t.Fatalf("injector counted no failure of %v", c.rule.Op)
			}
			if c.check != nil {
				c.check(t, e)
			}
			// Without the fault the same call succeeds.
			in.Clear()
			if err := c.run(in.FS(), e); err != nil {
				t.Fatalf("after Clear: %v", err)
			}
		})
	}
}

func TestShortWrite(t *testing.T) {
	dir := t.TempDir()
	var in Injector
	in.Add(Rule{Op: OpWrite, Err: &ShortWrite{Err: syscall.ENOSPC}})
	h, err := in.FS().OpenFile(filepath.Join(dir, "f"), os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	n, err := h.Write([]byte("abcdefgh"))
	if n != 4 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("short write: n=%d err=%v, want 4 and ENOSPC", n, err)
	}
	if n, err := h.WriteAt([]byte("wxyz"), 10); n != 2 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("short WriteAt: n=%d err=%v", n, err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "f"))
	if string(b[:4]) != "abcd" || string(b[10:]) != "wx" {
		t.Fatalf("file holds %q", b)
	}
}

func TestInjectorAfterTimesAndPath(t *testing.T) {
	var in Injector
	in.Add(Rule{Op: OpSync, Path: "wal", Err: syscall.EIO, After: 2, Times: 2})
	var got []bool
	for i := 0; i < 6; i++ {
		got = append(got, in.Faults(OpSync, "/d/wal/1.wal") != nil)
	}
	want := []bool{false, false, true, true, false, false}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("calls failed %v, want %v", got, want)
		}
	}
	if in.Faults(OpSync, "/d/days/x") != nil || in.Faults(OpWrite, "/d/wal/1.wal") != nil {
		t.Fatal("rule matched another path or op")
	}
	if in.Failed(OpSync) != 2 {
		t.Fatalf("Failed = %d", in.Failed(OpSync))
	}
	if OpSync.String() != "sync" || Op(0).String() != "op?" {
		t.Fatal("op names")
	}
}

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "LOCK")
	l, err := FS{}.Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to an open file description, so a second open in
	// the same process contends like another process would.
	_, err = FS{}.Lock(path)
	var held *HeldError
	if !errors.As(err, &held) || !errors.Is(err, ErrLockHeld) || held.Holder != itoa(os.Getpid()) {
		t.Fatalf("second lock: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := FS{}.Lock(path)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l2.Close()
}

func TestRemoveFinishesEarlierFailedRemove(t *testing.T) {
	dir := t.TempDir()
	day := filepath.Join(dir, "2024-01-01")
	os.MkdirAll(filepath.Join(day, "sub"), 0o755)
	var in Injector
	in.Add(Rule{Op: OpRemove, Err: syscall.EIO})
	if err := in.FS().Remove(day); !errors.Is(err, syscall.EIO) {
		t.Fatalf("remove: %v", err)
	}
	in.Clear()
	if err := in.FS().Remove(day); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left %v", entries)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func absent(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !os.IsNotExist(err) {
		t.Fatalf("%s exists (%v)", p, err)
	}
}

func contents(t *testing.T, p, want string) {
	t.Helper()
	if b, err := os.ReadFile(p); err != nil || string(b) != want {
		t.Fatalf("%s holds %q (%v), want %q", p, b, err, want)
	}
}

// TestMap reads a file through Map (a read-only mapping where the system has
// one, the file's bytes read into memory elsewhere), checks the bytes stay
// readable after the descriptor is closed and the file removed, as a
// segment reader relies on, and that an injected failure is reported.
func TestMap(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		data string
	}{
		{"small", "segment bytes"},
		{"larger than a page", string(make([]byte, 3*4096+17))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name)
			if err := os.WriteFile(p, []byte(c.data), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Map(f, len(c.data))
			if err != nil {
				t.Fatal(err)
			}
			// The fallback of systems without mmap, tested here too.
			read, err := readAll(f, len(c.data))
			f.Close()
			if err != nil || string(read) != c.data {
				t.Fatalf("readAll: %d bytes, %v", len(read), err)
			}
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if string(b) != c.data {
				t.Fatalf("mapped %d bytes, want the file's %d", len(b), len(c.data))
			}
			if err := Unmap(b); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("size beyond the file", func(t *testing.T) {
		p := filepath.Join(dir, "short")
		os.WriteFile(p, []byte("abc"), 0o644)
		f, _ := os.Open(p)
		defer f.Close()
		if b, err := Map(f, 4); err == nil {
			Unmap(b)
			t.Fatal("mapping 4 bytes of a 3-byte file succeeded")
		}
	})
	t.Run("injected ENOMEM", func(t *testing.T) {
		p := filepath.Join(dir, "small")
		os.WriteFile(p, []byte("x"), 0o644)
		f, _ := os.Open(p)
		defer f.Close()
		var in Injector
		in.Add(Rule{Op: OpMap, Err: syscall.ENOMEM})
		if _, err := in.FS().Map(f, 1); !errors.Is(err, syscall.ENOMEM) || in.Failed(OpMap) != 1 {
			t.Fatalf("err = %v, failed %d", err, in.Failed(OpMap))
		}
	})
}
