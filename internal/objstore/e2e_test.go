package objstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/loggen"
	"github.com/retentiond/retentiond/internal/objstore"
	"github.com/retentiond/retentiond/internal/objstore/weedtest"
	"github.com/retentiond/retentiond/internal/segment"
)

// These tests run the implementation against a real SeaweedFS
// (RTD_TEST_E2E=1, weed from scripts/weed): what the fake cannot show.

func e2eBucket(t *testing.T, s *weedtest.Server, prefix string, partSize int64) objstore.Bucket {
	t.Helper()
	cfg := s.Config()
	cfg.Prefix = prefix
	cfg.PartSize = partSize
	b, err := objstore.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func random(t *testing.T, n int) []byte {
	t.Helper()
	p := make([]byte, n)
	if _, err := rand.Read(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestE2EBucket(t *testing.T) {
	s := weedtest.Start(t)
	ctx := context.Background()
	b := e2eBucket(t, s, "rtd", 5<<20)
	day := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)

	t.Run("put single and multipart, stat, range reads, get", func(t *testing.T) {
		for _, n := range []int{1, 100_000, 2*(5<<20) + 777} {
			data := random(t, n)
			path := filepath.Join(t.TempDir(), "seg")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			key := objstore.SegmentKey(day, "node-a", "seg-"+strings.Repeat("0", 3)+string(rune('a'+n%26))+".seg")
			info, err := b.Put(ctx, key, f, int64(n))
			f.Close()
			if err != nil {
				t.Fatalf("Put %d bytes: %v", n, err)
			}
			t.Logf("Put %d bytes: ETag %s", n, info.ETag)
			st, err := b.Stat(ctx, key)
			if err != nil || st.Size != int64(n) || st.ETag != info.ETag {
				t.Fatalf("Stat = %+v, %v", st, err)
			}
			for _, r := range [][2]int{{0, n}, {n - 1, 1}, {n / 3, n / 2}} {
				p := make([]byte, r[1])
				if err := b.ReadAt(ctx, key, p, int64(r[0])); err != nil || !bytes.Equal(p, data[r[0]:r[0]+r[1]]) {
					t.Fatalf("ReadAt(%d, %d) = %v", r[0], r[1], err)
				}
			}
			if err := b.ReadAt(ctx, key, make([]byte, 2), int64(n-1)); err == nil {
				t.Error("ReadAt past the end succeeded")
			}
			var buf bytes.Buffer
			if got, err := b.Get(ctx, key, &buf); err != nil || got != int64(n) || !bytes.Equal(buf.Bytes(), data) {
				t.Fatalf("Get = %d, %v", got, err)
			}
		}
		list, err := b.List(ctx, objstore.DayPrefix(day))
		if err != nil || len(list) != 3 {
			t.Fatalf("List = %v, %v", list, err)
		}
		for _, o := range list {
			if _, node, _, ok := objstore.ParseSegmentKey(o.Key); !ok || node != "node-a" {
				t.Errorf("listed key %q does not parse as a segment key", o.Key)
			}
		}
	})

	t.Run("a segment read through the cache by range GETs", func(t *testing.T) {
		recs, path, info, f := writeSegment(t, loggen.Options{Seed: 3, Total: 30_000, Vhosts: 100, Visitors: 3000},
			"seg-00000001-00000002.seg", 2048)
		key := objstore.SegmentKey(day, "node-b", filepath.Base(path))
		if _, err := b.Put(ctx, key, f, info.Bytes); err != nil {
			t.Fatal(err)
		}
		cache, err := objstore.NewCache(t.TempDir(), 8<<20)
		if err != nil {
			t.Fatal(err)
		}
		defer cache.Close()
		r, err := segment.OpenSource(cache.Source(b, key, info.Bytes), segment.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		open := cache.Stats()
		var n int
		for _, err := range r.Iter() {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		all := cache.Stats()
		t.Logf("%d-byte segment, %d blocks: open %d GETs/%d bytes; full read %d GETs/%d bytes", info.Bytes, r.NumBlocks(), open.GETs, open.BytesFetched, all.GETs, all.BytesFetched)
		if n != len(recs) || open.GETs < 1 || open.GETs > 4 || all.BytesFetched > info.Bytes+2*objstore.PageSize*int64(all.GETs) {
			t.Errorf("read %d of %d records; stats %+v", n, len(recs), all)
		}
	})

	t.Run("not found", func(t *testing.T) {
		if _, err := b.Stat(ctx, "days/1999-01-01/x/y"); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("Stat: %v", err)
		}
		if err := b.ReadAt(ctx, "days/1999-01-01/x/y", make([]byte, 3), 0); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("ReadAt: %v", err)
		}
		if _, err := b.Get(ctx, "days/1999-01-01/x/y", io.Discard); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("Get: %v", err)
		}
	})

	t.Run("PutIfAbsent answers 412 as ErrExists", func(t *testing.T) {
		if err := b.PutIfAbsent(ctx, objstore.LeaseKey(), []byte("a")); err != nil {
			t.Fatal(err)
		}
		err := b.PutIfAbsent(ctx, objstore.LeaseKey(), []byte("b"))
		var se *objstore.Error
		if !errors.Is(err, objstore.ErrExists) || !errors.As(err, &se) || se.Status != 412 {
			t.Fatalf("second create = %v, want ErrExists from HTTP 412", err)
		}
		var buf bytes.Buffer
		if _, err := b.Get(ctx, objstore.LeaseKey(), &buf); err != nil || buf.String() != "a" {
			t.Errorf("lease = %q, %v", buf.String(), err)
		}
		if err := b.Delete(ctx, objstore.LeaseKey()); err != nil {
			t.Fatal(err)
		}
		if err := b.PutIfAbsent(ctx, objstore.LeaseKey(), []byte("b")); err != nil {
			t.Errorf("create after release: %v", err)
		}
	})

	t.Run("DeleteAll unversioned", func(t *testing.T) {
		if v, err := b.Versioned(ctx); err != nil || v {
			t.Fatalf("Versioned = %v, %v", v, err)
		}
		res, err := b.DeleteAll(ctx, objstore.DayPrefix(day))
		if err != nil || res.Objects != 4 || !res.Verified || res.Markers != 0 {
			t.Fatalf("DeleteAll = %+v, %v", res, err)
		}
		if list, err := b.List(ctx, objstore.DayPrefix(day)); err != nil || len(list) != 0 {
			t.Errorf("left: %v, %v", list, err)
		}
		if _, err := b.Stat(ctx, objstore.LeaseKey()); err != nil {
			t.Errorf("lease outside the day was deleted: %v", err)
		}
	})
}

// TestE2EVersionedDeleteAll records what SeaweedFS does with versioning:
// it keeps versions and delete markers, and DeleteAll removes them all.
func TestE2EVersionedDeleteAll(t *testing.T) {
	s := weedtest.Start(t)
	ctx := context.Background()
	b := e2eBucket(t, s, "", 0)
	day := objstore.DayPrefix(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	// A "null" version written before versioning was enabled.
	if _, err := b.Put(ctx, day+"a/0.seg", bytes.NewReader([]byte("before")), 6); err != nil {
		t.Fatal(err)
	}
	s.EnableVersioning()
	if v, err := b.Versioned(ctx); err != nil || !v {
		t.Fatalf("Versioned = %v, %v after enabling", v, err)
	}
	for _, body := range []string{"one", "two!"} {
		if _, err := b.Put(ctx, day+"a/1.seg", strings.NewReader(body), int64(len(body))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Put(ctx, day+"b/1.seg", strings.NewReader("12345"), 5); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, day+"b/1.seg"); err != nil { // leaves a version and a marker
		t.Fatal(err)
	}
	res, err := b.DeleteAll(ctx, day)
	if err != nil {
		t.Fatal(err)
	}
	want := objstore.DeleteResult{Objects: 4, Bytes: 6 + 3 + 4 + 5, Markers: 1, Verified: true}
	if res != want {
		t.Errorf("DeleteAll = %+v, want %+v", res, want)
	}
}

// TestE2EOutage: with the store killed, reads fail naming the store (not
// "not found"); after a restart the data is there.
func TestE2EOutage(t *testing.T) {
	s := weedtest.Start(t)
	ctx := context.Background()
	cfg := s.Config()
	cfg.RequestTimeout = 5 * time.Second
	b, err := objstore.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	data := random(t, 4096)
	if _, err := b.Put(ctx, "k", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	start := time.Now()
	err = b.ReadAt(ctx, "k", make([]byte, 10), 0)
	if err == nil || errors.Is(err, objstore.ErrNotFound) || !strings.Contains(err.Error(), s.Endpoint) {
		t.Fatalf("ReadAt with the store down = %v, want an error naming %s", err, s.Endpoint)
	}
	t.Logf("store down: %v (after %s)", err, time.Since(start).Round(time.Millisecond))
	if _, err := b.List(ctx, ""); err == nil {
		t.Error("List with the store down succeeded")
	}
	s.Restart()
	p := make([]byte, len(data))
	if err := b.ReadAt(ctx, "k", p, 0); err != nil || !bytes.Equal(p, data) {
		t.Fatalf("ReadAt after restart = %v", err)
	}
}
