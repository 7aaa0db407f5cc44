package fsutil

import (
	"os"
	"path/filepath"
	"slices"
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
