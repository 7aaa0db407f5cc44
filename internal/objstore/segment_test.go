package objstore_test

import (
	"context"
	"iter"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/retentiond/retentiond/internal/loggen"
	"github.com/retentiond/retentiond/internal/objstore"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
)

// The cache's Source is what segment.OpenSource reads through; this
// package does not import segment, so the fit is checked here.
var _ segment.Source = (*objstore.Source)(nil)

// TestSegmentThroughCache opens a real segment held in a bucket through
// the cache: every record reads back as from the local file, a cold open
// costs few GETs, and a second open of the same object costs none.
func TestSegmentThroughCache(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("seg-bucket"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	defer srv.Close()
	b, err := objstore.New(objstore.Config{Endpoint: srv.URL, Bucket: "seg-bucket", Prefix: "rtd"})
	if err != nil {
		t.Fatal(err)
	}
	recs, path, info, f := writeSegment(t, loggen.Options{Seed: 7, Total: 50_000, Vhosts: 200, Visitors: 5000},
		"seg-00000001-00000001.seg", 4096)
	key := objstore.SegmentKey(recs[0].Time, "node-a", filepath.Base(path))
	obj, err := b.Put(context.Background(), key, f, info.Bytes)
	if err != nil {
		t.Fatal(err)
	}

	cache, err := objstore.NewCache(filepath.Join(t.TempDir(), "cache"), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	local, err := segment.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()

	remote, err := segment.OpenSource(cache.Source(b, key, obj.Size), segment.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	openGETs := cache.Stats().GETs
	t.Logf("segment of %d bytes, %d blocks: cold open %d GETs, %d bytes", info.Bytes, remote.NumBlocks(), openGETs, cache.Stats().BytesFetched)
	if openGETs == 0 || openGETs > 4 {
		t.Errorf("cold open cost %d GETs, want 1-4 (header, trailer, footer)", openGETs)
	}
	// One block, cold: its columns lie together, one GET.
	before := cache.Stats().GETs
	if _, err := remote.ReadBlock(remote.NumBlocks()/2, segment.ColAll); err != nil {
		t.Fatal(err)
	}
	if d := cache.Stats().GETs - before; d > 2 {
		t.Errorf("a cold block read cost %d GETs", d)
	}
	var n int
	next, stop := iter.Pull2(local.Iter())
	defer stop()
	for rec, err := range remote.Iter() {
		if err != nil {
			t.Fatal(err)
		}
		want, werr, ok := next()
		if !ok || werr != nil || rec != want {
			t.Fatalf("record %d: remote %+v, local %+v", n, rec, want)
		}
		n++
	}
	if n != len(recs) {
		t.Fatalf("read %d records remotely, wrote %d", n, len(recs))
	}
	remote.Close()
	// Opened again (another search): everything is cached.
	before = cache.Stats().GETs
	again, err := segment.OpenSource(cache.Source(b, key, obj.Size), segment.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	for _, err := range again.Iter() {
		if err != nil {
			t.Fatal(err)
		}
	}
	if d := cache.Stats().GETs - before; d != 0 {
		t.Errorf("warm open and full read cost %d GETs, want 0", d)
	}
}

// writeSegment writes the records loggen makes with opts as a segment file
// named name, in blocks of blockRows, and opens it for an upload (closed at
// the test's end).
func writeSegment(t *testing.T, opts loggen.Options, name string, blockRows int) ([]record.Record, string, segment.Info, *os.File) {
	t.Helper()
	g := loggen.New(opts)
	var recs []record.Record
	for !g.Done() {
		recs = append(recs, g.Next())
	}
	path := filepath.Join(t.TempDir(), name)
	info, err := segment.Write(path, recs, segment.Options{BlockRows: blockRows})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return recs, path, info, f
}
