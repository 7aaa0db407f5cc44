package importer

import (
	"errors"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/retentiond/retentiond/internal/store"
)

var quiet = slog.New(slog.DiscardHandler)

// TestImportIntoStore runs the direct mode: a real store in a temporary data
// directory, the ledger beside it, as `retentiond import --data-dir` does.
func TestImportIntoStore(t *testing.T) {
	want, content := genNDJSON(6000, 15)
	dir := t.TempDir()
	f := writeFile(t, filepath.Join(t.TempDir(), "a.log.zst"), content, "zstd")
	e := &env{t: t, dir: dir, ledger: filepath.Join(dir, "imports.json")}

	st, err := store.Open(dir, store.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	sink := StoreSink{Store: st}
	sum, errs := e.run(sink, nil, f)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if _, errs := e.run(sink, nil, f); len(errs) != 1 || !errors.Is(errs[0], ErrAlreadyImported) {
		t.Fatalf("second run: %v", errs)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopen: what was acknowledged is durable.
	st, err = store.Open(dir, store.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n int64
	for _, d := range st.Days() {
		n += d.Records
	}
	if n != int64(len(want)) || sum.Accepted != int64(len(want)) {
		t.Fatalf("store holds %d records, importer accepted %d, want %d", n, sum.Accepted, len(want))
	}
}
