package store

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestSegmentFiles checks that the layout a read-only tool lists is the one
// the store writes: segment names from segName, quarantined ones with
// CorruptSuffix, and nothing the store would ignore.
func TestSegmentFiles(t *testing.T) {
	dir := t.TempDir()
	day := filepath.Join(DaysDir(dir), "2026-01-01")
	if err := os.MkdirAll(day, 0o750); err != nil {
		t.Fatal(err)
	}
	names := []string{segName(1, 1, false), segName(2, 5, false), segName(6, 6, false) + CorruptSuffix, "notes.seg", "seg-1-1.seg", segName(7, 7, false) + ".tmp", segName(8, 9, true), segName(10, 10, true) + CorruptSuffix, "seg-00000011-00000011.archive.seg.tmp"}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(day, n), nil, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	live, quarantined, err := SegmentFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	wantLive := []string{filepath.Join(day, segName(1, 1, false)), filepath.Join(day, segName(2, 5, false)), filepath.Join(day, segName(8, 9, true))}
	wantQ := []string{filepath.Join(day, segName(6, 6, false)+CorruptSuffix), filepath.Join(day, segName(10, 10, true)+CorruptSuffix)}
	if !reflect.DeepEqual(live, wantLive) || !reflect.DeepEqual(quarantined, wantQ) {
		t.Errorf("SegmentFiles = %v, %v; want %v, %v", live, quarantined, wantLive, wantQ)
	}
	if _, _, err := SegmentFiles(t.TempDir()); err == nil {
		t.Error("SegmentFiles of a directory without days/ succeeded")
	}
}
