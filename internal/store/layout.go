package store

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The layout of a data directory, for tools that read one without opening
// the store (retentiond verify runs beside a live daemon and must not take
// its lock). The store uses the same names (lockName, walDirName,
// daysDirName, segName), so a tool cannot look somewhere else than the
// store writes. docs/storage.md describes the layout.

// WALDir returns the write-ahead log directory of the data directory dir.
func WALDir(dir string) string { return filepath.Join(dir, walDirName) }

// DaysDir returns the directory of the day directories of dir.
func DaysDir(dir string) string { return filepath.Join(dir, daysDirName) }

// SegmentFiles lists the segment files of the data directory dir in path
// order: live are the files the store reads, quarantined those it set aside
// as damaged (named with CorruptSuffix; see CorruptFile). Files the store
// would ignore are not listed. It fails when dir has no days directory,
// which is how a path that is not a data directory shows.
func SegmentFiles(dir string) (live, quarantined []string, err error) {
	days, err := os.ReadDir(DaysDir(dir))
	if err != nil {
		return nil, nil, fmt.Errorf("%s is not a retentiond data directory: %w", dir, err)
	}
	for _, d := range days {
		if !d.IsDir() {
			continue
		}
		dayDir := filepath.Join(DaysDir(dir), d.Name())
		entries, err := os.ReadDir(dayDir)
		if err != nil {
			return nil, nil, fmt.Errorf("list day directory: %w", err)
		}
		for _, e := range entries {
			name := e.Name()
			if orig, ok := strings.CutSuffix(name, CorruptSuffix); ok {
				if _, _, _, ok := parseSegName(orig); ok {
					quarantined = append(quarantined, filepath.Join(dayDir, name))
				}
				continue
			}
			if _, _, _, ok := parseSegName(name); ok {
				live = append(live, filepath.Join(dayDir, name))
			}
		}
	}
	slices.Sort(live)
	slices.Sort(quarantined)
	return live, quarantined, nil
}

// parseSegName returns the flush range of a segment file name and whether
// it is an archived file.
func parseSegName(name string) (lo, hi int64, archived, ok bool) {
	plain := name
	if b, ok := strings.CutSuffix(name, archiveSuffix); ok {
		plain, archived = b+".seg", true
	}
	if _, err := fmt.Sscanf(plain, "seg-%d-%d.seg", &lo, &hi); err != nil || name != segName(lo, hi, archived) {
		return 0, 0, false, false
	}
	return lo, hi, archived, true
}

func segName(minFlush, maxFlush int64, archived bool) string {
	if archived {
		return fmt.Sprintf("seg-%08d-%08d%s", minFlush, maxFlush, archiveSuffix)
	}
	return fmt.Sprintf("seg-%08d-%08d.seg", minFlush, maxFlush)
}
