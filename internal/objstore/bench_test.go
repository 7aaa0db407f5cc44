package objstore_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/loggen"
	"github.com/retentiond/retentiond/internal/objstore"
	"github.com/retentiond/retentiond/internal/objstore/weedtest"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
)

// BenchmarkUpload measures what a node's upload of a closed day costs on a
// real SeaweedFS: Bucket.Put of a file, including the digests computed
// before the first byte, the PUT(s) and the HEAD that verifies the stored
// object, in MB/s (b.SetBytes). Two sizes:
//
//   - day_1M_records: one day of 1M generated records written as the
//     store's final merge writes a closed day (segment.ArchiveLevel), one
//     single PUT; built once per machine under os.TempDir();
//   - random_80MiB: 80 MiB of random bytes (as incompressible as a sealed
//     segment), above the 64 MiB part size, so a multipart upload of two
//     parts (an 80 MiB day is ~8M records at ~10 bytes each).
//
// Each iteration writes a new key (an upload never overwrites), and the
// object is deleted after it, untimed. SeaweedFS reclaims deleted space
// only when it vacuums a volume, and weedtest's server holds about 512 MB:
// keep -benchtime at 5x or below. It needs RTD_TEST_E2E=1 and weed
// (scripts/weed):
//
//	RTD_TEST_E2E=1 go test -run '^$' -bench BenchmarkUpload -benchtime 5x ./internal/objstore/
func BenchmarkUpload(b *testing.B) {
	if os.Getenv("RTD_TEST_E2E") != "1" {
		b.Skip("needs a real SeaweedFS: RTD_TEST_E2E=1 go test -run '^$' -bench BenchmarkUpload -benchtime 5x ./internal/objstore/ (weed from scripts/weed, or RTD_WEED)")
	}
	files := []struct{ name, path string }{
		{"day_1M_records", daySegment(b)},
		{"random_80MiB", randomFile(b, 80<<20)},
	}
	day := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	for _, f := range files {
		st, err := os.Stat(f.path)
		if err != nil {
			b.Fatal(err)
		}
		size := st.Size()
		b.Run(f.name, func(b *testing.B) {
			// A server of its own per size: weedtest's SeaweedFS has about
			// 512 MB of volumes, and a deleted object's space comes back
			// only when a volume is vacuumed.
			s := weedtest.Start(b)
			cfg := s.Config()
			cfg.Prefix = "rtd/"
			bucket, err := objstore.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(size)
			fh, err := os.Open(f.path)
			if err != nil {
				b.Fatal(err)
			}
			defer fh.Close()
			ctx := context.Background()
			i := 0
			for b.Loop() {
				i++
				if _, err := fh.Seek(0, io.SeekStart); err != nil {
					b.Fatal(err)
				}
				key := objstore.SegmentKey(day, "bench", fmt.Sprintf("seg-%08d-%08d.archive.seg", i, i))
				info, err := bucket.Put(ctx, key, fh, size)
				if err != nil {
					b.Fatal(err)
				}
				if info.Size != size {
					b.Fatalf("stored %d bytes, sent %d", info.Size, size)
				}
				b.StopTimer()
				if err := bucket.Delete(ctx, key); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(size)/1e6, "MB/object")
		})
	}
}

// daySegment returns a segment file of one day of 1M generated records at
// the archive level, built once per machine (cached by the format version
// and level, as the search benchmarks cache theirs).
func daySegment(b *testing.B) string {
	b.Helper()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("retentiond-bench-upload-v%d-l%d-1M.seg", segment.Version, segment.ArchiveLevel))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	b.Logf("building %s (first run only)", path)
	g := loggen.New(loggen.Options{Seed: 1, Total: 1_000_000})
	recs := make([]record.Record, 0, 1_000_000)
	for !g.Done() {
		recs = append(recs, g.Next())
	}
	// Written beside and renamed, so that an interrupted build is not
	// taken for a complete file by the next run.
	tmp := path + ".tmp"
	if _, err := segment.Write(tmp, recs, segment.Options{Level: segment.ArchiveLevel}); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	return path
}

// randomFile returns a file of n random bytes in the benchmark's
// temporary directory.
func randomFile(b *testing.B, n int) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "random")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.Reader, int64(n)); err != nil {
		b.Fatal(err)
	}
	return path
}
