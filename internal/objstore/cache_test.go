package objstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// cacheFixture is an object of n bytes in a fake bucket, read through a
// cache of maxPages pages.
func cacheFixture(t *testing.T, n int, maxPages int64) (*fake, *Cache, *Source, []byte) {
	t.Helper()
	f := newFake(t, "test-bucket")
	b := f.bucket(t, Config{})
	data := randBytes(t, n)
	if _, err := b.Put(context.Background(), "obj", bytes.NewReader(data), int64(n)); err != nil {
		t.Fatal(err)
	}
	c, err := NewCache(filepath.Join(t.TempDir(), "cache"), maxPages*PageSize)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return f, c, c.Source(b, "obj", int64(n)), data
}

func TestCacheGETsColdAndWarm(t *testing.T) {
	f, c, src, data := cacheFixture(t, 10*PageSize+100, 100)
	read := func(off int64, n int) {
		t.Helper()
		p := make([]byte, n)
		got, err := src.ReadAt(p, off)
		if err != nil || got != n || !bytes.Equal(p, data[off:off+int64(n)]) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", off, n, got, err)
		}
	}
	for _, step := range []struct {
		name               string
		off                int64
		n                  int
		gets, hits, misses int64 // added by this step
	}{
		{"cold footer-sized read in one page", 3*PageSize + 10, 500, 1, 0, 1},
		{"same read warm", 3*PageSize + 10, 500, 0, 1, 0},
		{"cold read over three pages: one GET", 5*PageSize - 1, PageSize + 2, 1, 0, 3},
		{"warm read over them", 5*PageSize - 1, PageSize + 2, 0, 3, 0},
		{"pages 2-8 with 3-6 cached: one GET for the missing span", 2 * PageSize, 7 * PageSize, 1, 0, 3},
		// Pages 0, 1 and 9 missing: one GET of 0-9 (the cached pages
		// between are fetched again rather than costing two more GETs).
		{"all but the last page, 0, 1 and 9 missing", 0, 10 * PageSize, 1, 0, 3},
		{"the short last page", 10 * PageSize, 100, 1, 0, 1},
		{"everything warm", 0, 10*PageSize + 100, 0, 11, 0},
	} {
		before := c.Stats()
		gotsBefore := f.gets.Load()
		read(step.off, step.n)
		after := c.Stats()
		if d := after.GETs - before.GETs; d != step.gets {
			t.Errorf("%s: %d GETs, want %d", step.name, d, step.gets)
		}
		if d := f.gets.Load() - gotsBefore; d != step.gets {
			t.Errorf("%s: the server saw %d GETs, want %d", step.name, d, step.gets)
		}
		if d := after.Hits - before.Hits; d != step.hits {
			t.Errorf("%s: %d hits, want %d", step.name, d, step.hits)
		}
		if d := after.Misses - before.Misses; d != step.misses {
			t.Errorf("%s: %d misses, want %d", step.name, d, step.misses)
		}
	}
	if s := c.Stats(); s.Bytes != int64(len(data)) || s.BytesFetched < int64(len(data)) {
		t.Errorf("stats %+v: want all %d bytes held", s, len(data))
	}
}

func TestCacheReadAtContract(t *testing.T) {
	_, _, src, data := cacheFixture(t, PageSize+10, 4)
	if src.Size() != int64(len(data)) || src.Name() == "" {
		t.Errorf("Size %d Name %q", src.Size(), src.Name())
	}
	p := make([]byte, 20)
	n, err := src.ReadAt(p, int64(len(data))-5)
	if n != 5 || !errors.Is(err, io.EOF) || !bytes.Equal(p[:5], data[len(data)-5:]) {
		t.Errorf("read over the end = %d, %v", n, err)
	}
	if n, err := src.ReadAt(p, int64(len(data))); n != 0 || err != io.EOF {
		t.Errorf("read at the end = %d, %v", n, err)
	}
	if _, err := src.ReadAt(p, -1); err == nil {
		t.Error("negative offset accepted")
	}
	// An object that is not there: an error naming the store, no data.
	f := newFake(t, "test-bucket")
	b := f.bucket(t, Config{})
	c, err := NewCache(t.TempDir(), PageSize)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Source(b, "gone", 100).ReadAt(p, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("read of a missing object = %v", err)
	}
}

func TestCacheEvictionWithinBound(t *testing.T) {
	const maxPages = 4
	_, c, src, data := cacheFixture(t, 12*PageSize, maxPages)
	p := make([]byte, 10)
	for i := int64(0); i < 12; i++ {
		if _, err := src.ReadAt(p, i*PageSize); err != nil || !bytes.Equal(p, data[i*PageSize:i*PageSize+10]) {
			t.Fatal(err)
		}
		st, err := os.Stat(filepath.Join(c.dir, pagesFile))
		if err != nil {
			t.Fatal(err)
		}
		if s := c.Stats(); s.Bytes > maxPages*PageSize || st.Size() > maxPages*PageSize {
			t.Fatalf("after page %d: %d bytes held, file %d bytes; bound %d", i, s.Bytes, st.Size(), maxPages*PageSize)
		}
	}
	if s := c.Stats(); s.Evictions != 12-maxPages || s.Bytes != maxPages*PageSize {
		t.Errorf("stats %+v, want %d evictions", s, 12-maxPages)
	}
	// Least recently used goes first: touch page 8, then read page 0
	// (evicting 9, the oldest untouched), and 8 is still a hit.
	before := c.Stats()
	for _, pg := range []int64{8, 0, 8} {
		if _, err := src.ReadAt(p, pg*PageSize); err != nil {
			t.Fatal(err)
		}
	}
	if s := c.Stats(); s.Hits-before.Hits != 2 || s.Misses-before.Misses != 1 {
		t.Errorf("LRU: %d hits, %d misses; want 2, 1", s.Hits-before.Hits, s.Misses-before.Misses)
	}
}

func TestCacheWipedAtOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	f := newFake(t, "test-bucket")
	b := f.bucket(t, Config{})
	data := randBytes(t, 3*PageSize)
	if _, err := b.Put(context.Background(), "obj", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	c, err := NewCache(dir, 8*PageSize)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Source(b, "obj", int64(len(data))).ReadAt(make([]byte, len(data)), 0); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c, err = NewCache(dir, 8*PageSize)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := os.Stat(filepath.Join(dir, pagesFile))
	if err != nil || st.Size() != 0 || c.Stats() != (Stats{}) {
		t.Errorf("reopened cache: file %v, %v, stats %+v; want empty", st.Size(), err, c.Stats())
	}
	if _, err := NewCache(dir, PageSize-1); err == nil {
		t.Error("a cache smaller than a page was accepted")
	}
}

// TestCacheConcurrent reads random ranges from many goroutines through a
// cache far smaller than the object (constant eviction); run with -race.
func TestCacheConcurrent(t *testing.T) {
	_, c, src, data := cacheFixture(t, 40*PageSize+123, 6)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 1))
			for i := 0; i < 60; i++ {
				off := rng.Int64N(int64(len(data)))
				n := 1 + rng.IntN(3*PageSize)
				p := make([]byte, n)
				got, err := src.ReadAt(p, off)
				want := min(int64(n), int64(len(data))-off)
				if int64(got) != want || (err != nil && !(errors.Is(err, io.EOF) && int64(n) > want)) {
					errs <- err
					return
				}
				if !bytes.Equal(p[:got], data[off:off+int64(got)]) {
					errs <- errors.New("wrong bytes")
					return
				}
			}
		}(uint64(g))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if s := c.Stats(); s.Bytes > 6*PageSize || s.Hits == 0 || s.Evictions == 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestCacheInvalidate: Invalidate drops an object's pages (the next read
// fetches again), overwrites their slots in the cache file (an erased
// object's bytes must not stay on local disk) and leaves other objects'
// pages alone.
func TestCacheInvalidate(t *testing.T) {
	f, c, src, data := cacheFixture(t, 3*PageSize, 100)
	b := f.bucket(t, Config{})
	other := randBytes(t, PageSize)
	if _, err := b.Put(context.Background(), "other", bytes.NewReader(other), int64(len(other))); err != nil {
		t.Fatal(err)
	}
	osrc := c.Source(b, "other", int64(len(other)))
	p := make([]byte, len(data))
	if _, err := src.ReadAt(p, 0); err != nil {
		t.Fatal(err)
	}
	q := make([]byte, len(other))
	if _, err := osrc.ReadAt(q, 0); err != nil {
		t.Fatal(err)
	}
	if n := c.Invalidate(b, "obj"); n != 3 {
		t.Fatalf("Invalidate dropped %d pages, want 3", n)
	}
	file, err := os.ReadFile(filepath.Join(c.dir, pagesFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(file, data[:4096]) || bytes.Contains(file, data[2*PageSize:2*PageSize+4096]) {
		t.Fatal("the invalidated object's bytes are still in the cache file")
	}
	if !bytes.Contains(file, other[:4096]) {
		t.Fatal("the other object's page was wiped too")
	}
	if st := c.Stats(); st.Bytes != int64(len(other)) {
		t.Fatalf("cache holds %d bytes, want the other object's %d", st.Bytes, len(other))
	}
	before := c.Stats().GETs
	if _, err := src.ReadAt(p, 0); err != nil || !bytes.Equal(p, data) {
		t.Fatalf("read after Invalidate: %v", err)
	}
	if c.Stats().GETs != before+1 {
		t.Fatal("a read after Invalidate did not fetch again")
	}
	before = c.Stats().GETs
	if _, err := osrc.ReadAt(q, 0); err != nil || c.Stats().GETs != before {
		t.Fatalf("the other object is no longer cached: %v", err)
	}
}
