package wal

import "path/filepath"

// Files returns the paths of the log files in dir in replay order, the files
// Open and Replay would read; tools that check a WAL read-only (retentiond
// verify) list it with this rather than spelling the file naming again. A
// directory that does not exist has no files.
func Files(dir string) ([]string, error) {
	idx, err := listFiles(dir)
	if err != nil {
		return nil, err
	}
	paths := make([]string, len(idx))
	for i, n := range idx {
		paths[i] = filepath.Join(dir, fileName(n))
	}
	return paths, nil
}
