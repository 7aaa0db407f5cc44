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
