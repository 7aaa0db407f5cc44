package fsutil

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

func TestWriteFileAndRemove(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a", "b", "file")
	if err := MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Fatalf("contents %q", b)
	}
	if _, err := os.Stat(p + TmpSuffix); !os.IsNotExist(err) {
		t.Fatalf("temp file left behind: %v", err)
	}
	if err := Remove(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left after Remove: %v", entries)
	}
	if err := Remove(filepath.Join(dir, "missing")); err != nil {
		t.Fatalf("removing a missing path: %v", err)
	}
}

func TestAbortAndSweep(t *testing.T) {
	dir := t.TempDir()
	f, err := Create(filepath.Join(dir, "x"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("partial"))
	f.Abort()
	f.Abort() // idempotent
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("Abort left %v", entries)
	}
	// Debris of crashes: a temp file and a half-deleted tree.
	os.WriteFile(filepath.Join(dir, "seg"+TmpSuffix), nil, 0o644)
	os.MkdirAll(filepath.Join(dir, "2024-01-01"+DeletingSuffix, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "keep.seg"), nil, 0o644)
	removed, err := SweepLeftovers(dir)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	if want := []string{"2024-01-01" + DeletingSuffix, "seg" + TmpSuffix}; !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "keep.seg")); err != nil {
		t.Fatalf("sweep removed a live file: %v", err)
	}
}

func TestRenameAcrossDirsAndRemoveFile(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := MkdirAll(a, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := MkdirAll(b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(filepath.Join(a, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Rename(filepath.Join(a, "f"), filepath.Join(b, "f")); err != nil {
		t.Fatal(err)
	}
	if err := RemoveFile(filepath.Join(b, "f")); err != nil {
		t.Fatal(err)
	}
	if err := RemoveFile(filepath.Join(b, "f")); err != nil {
		t.Fatalf("removing a missing file: %v", err)
	}
	if err := SyncDir(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("SyncDir of a missing directory succeeded")
	}
	if err := MkdirAll(filepath.Join(b, "f2", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(b, "plain"), nil, 0o644)
	if err := MkdirAll(filepath.Join(b, "plain"), 0o755); err == nil {
		t.Fatal("MkdirAll over a file succeeded")
	}
	f, _ := Create(filepath.Join(b, "c"), 0o644)
	f.Commit()
	if err := f.Commit(); err == nil {
		t.Fatal("second Commit succeeded")
	}
	held := &HeldError{Path: "LOCK", Holder: "7"}
	if held.Error() != "LOCK: lock held by another process (pid 7)" || trimPID([]byte(" \n")) != "unknown" {
		t.Fatalf("held error %q", held.Error())
	}
}

// TestShred: the file's bytes are overwritten in place before it is
// removed. A hard link made beforehand shares the inode, so it shows what
// became of the blocks the file occupied.
func TestShred(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "secret.key")
	secret := []byte("0123456789abcdef0123456789abcdef")
	if err := os.WriteFile(p, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	witness := filepath.Join(dir, "witness")
	if err := os.Link(p, witness); err != nil {
		t.Skipf("no hard links here: %v", err)
	}
	if err := Shred(p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("shredded file still there: %v", err)
	}
	got, err := os.ReadFile(witness)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(secret) || !bytes.Equal(got, make([]byte, len(secret))) {
		t.Fatalf("the file's blocks hold %q after Shred, want zeros", got)
	}
	if err := Shred(p); err != nil {
		t.Fatalf("shredding a missing file: %v", err)
	}
	if err := WithFaults(func(op Op, path string) error {
		if op == OpSync {
			return syscall.EIO
		}
		return nil
	}).Shred(witness); !errors.Is(err, syscall.EIO) {
		t.Fatalf("failed fsync: err = %v, want EIO", err)
	}
	if _, err := os.Stat(witness); err != nil {
		t.Fatal("a shred whose overwrite was not made durable removed the file anyway")
	}
}
