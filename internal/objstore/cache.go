package objstore

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/fsutil"
)

// PageSize is the cache's unit: objects are fetched and kept in aligned
// 64 KiB pages. A GET to an object store costs tens of milliseconds
// before its first byte, so a read rounded out to whole pages (at most
// 128 KiB more, ~1 ms at 1 Gbit/s) costs nothing it could measure, and
// the neighbouring footer, index page or block it pulls in is often read
// next. Pages much larger would waste cache on the small index pages an
// exact-address search touches (a few KiB each, spread over the file);
// much smaller would multiply the bookkeeping (a 10 GiB cache is 160 Ki
// pages at 64 KiB).
const PageSize = 64 << 10

// pagesFile is the cache's one file under its directory.
const pagesFile = "pages"

// Cache keeps pages of remote segment objects on local disk, least
// recently used evicted first, within a byte bound. It is safe for
// concurrent use. Its contents do not survive a restart: NewCache wipes
// them (a cache entry is never evidence, and a restart must not trust
// pages it cannot vouch for).
//
// Pages live in slots of one file (<dir>/pages, at most maxBytes long),
// so that caching and evicting create and remove no files. Objects are
// immutable once written (every segment upload has a key of its own), so
// a page never goes stale; the page's identity includes the object's size
// all the same.
//
// A Cache is a prometheus.Collector: register it with metricsx.Register.
type Cache struct {
	dir   string
	w     *fsutil.Handle
	r     *os.File
	slots int

	mu    sync.Mutex
	pages map[pageKey]*page
	lru   list.List // of *page, most recently used at the front
	free  []int     // released slots
	next  int       // slots below next have been used
	bytes int64     // bytes of the pages held

	gets, fetched, hits, misses, evictions atomic.Int64

	descBytes, descCap, descHits, descMisses, descEvictions, descGets, descFetched *prometheus.Desc
}

type pageKey struct {
	obj string // store name, key and size of the object
	idx int64
}

type page struct {
	key  pageKey
	slot int
	n    int // bytes in the page (the object's last page may be short)
	pins int // readers copying out of the slot: not to be evicted
	elem *list.Element
	// dead: Invalidate dropped the page while a reader had it pinned; the
	// last reader to unpin it wipes and frees its slot.
	dead bool
}

// Stats are the cache's counters since NewCache, for tests and benchmarks.
type Stats struct {
	GETs         int64 // range GETs issued for missing pages
	BytesFetched int64 // bytes those GETs returned
	Hits         int64 // pages served from the cache
	Misses       int64 // pages that had to be fetched
	Evictions    int64 // pages dropped to make room
	Bytes        int64 // bytes held now
}

// NewCache opens an empty cache under dir holding at most maxBytes
// (rounded down to whole pages; at least one page).
func NewCache(dir string, maxBytes int64) (*Cache, error) {
	if maxBytes < PageSize {
		return nil, fmt.Errorf("objstore cache: %d bytes is less than one %d-byte page", maxBytes, PageSize)
	}
	if err := fsutil.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("objstore cache: %w", err)
	}
	path := filepath.Join(dir, pagesFile)
	// O_TRUNC wipes what an earlier run left.
	w, err := fsutil.FS{}.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("objstore cache: %w", err)
	}
	r, err := os.Open(path)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("objstore cache: %w", err)
	}
	c := &Cache{
		dir:   dir,
		w:     w,
		r:     r,
		slots: int(maxBytes / PageSize),
		pages: map[pageKey]*page{},
	}
	c.descBytes = prometheus.NewDesc("retentiond_objstore_cache_bytes", "Bytes of remote segment pages held in the local cache.", nil, nil)
	c.descCap = prometheus.NewDesc("retentiond_objstore_cache_capacity_bytes", "The local cache's bound (object_storage.cache_bytes, in whole pages).", nil, nil)
	c.descHits = prometheus.NewDesc("retentiond_objstore_cache_hits_total", "Pages of remote segments served from the local cache.", nil, nil)
	c.descMisses = prometheus.NewDesc("retentiond_objstore_cache_misses_total", "Pages of remote segments not in the local cache, fetched with range GETs.", nil, nil)
	c.descEvictions = prometheus.NewDesc("retentiond_objstore_cache_evictions_total", "Pages dropped from the local cache to stay within its bound.", nil, nil)
	c.descGets = prometheus.NewDesc("retentiond_objstore_cache_fetches_total", "Range GETs the cache issued for missing pages.", nil, nil)
	c.descFetched = prometheus.NewDesc("retentiond_objstore_cache_fetched_bytes_total", "Bytes the cache's range GETs returned.", nil, nil)
	return c, nil
}

// Close releases the cache's file. Sources must not be used after it.
func (c *Cache) Close() error {
	return errors.Join(c.r.Close(), c.w.Close())
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	held := c.bytes
	c.mu.Unlock()
	return Stats{
		GETs:         c.gets.Load(),
		BytesFetched: c.fetched.Load(),
		Hits:         c.hits.Load(),
		Misses:       c.misses.Load(),
		Evictions:    c.evictions.Load(),
		Bytes:        held,
	}
}

// Describe implements prometheus.Collector.
func (c *Cache) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.descBytes, c.descCap, c.descHits, c.descMisses, c.descEvictions, c.descGets, c.descFetched} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Cache) Collect(ch chan<- prometheus.Metric) {
	s := c.Stats()
	ch <- prometheus.MustNewConstMetric(c.descBytes, prometheus.GaugeValue, float64(s.Bytes))
	ch <- prometheus.MustNewConstMetric(c.descCap, prometheus.GaugeValue, float64(int64(c.slots)*PageSize))
	ch <- prometheus.MustNewConstMetric(c.descHits, prometheus.CounterValue, float64(s.Hits))
	ch <- prometheus.MustNewConstMetric(c.descMisses, prometheus.CounterValue, float64(s.Misses))
	ch <- prometheus.MustNewConstMetric(c.descEvictions, prometheus.CounterValue, float64(s.Evictions))
	ch <- prometheus.MustNewConstMetric(c.descGets, prometheus.CounterValue, float64(s.GETs))
	ch <- prometheus.MustNewConstMetric(c.descFetched, prometheus.CounterValue, float64(s.BytesFetched))
}

// Source is one object of a bucket read through the cache. It satisfies
// segment.Source (io.ReaderAt, Size, Name) without this package knowing
// the segment format.
type Source struct {
	c    *Cache
	b    Bucket
	key  string
	size int64
	obj  string
}

// Source returns key of b, size bytes long (from a listing or Stat),
// read through the cache.
func (c *Cache) Source(b Bucket, key string, size int64) *Source {
	return &Source{c: c, b: b, key: key, size: size, obj: fmt.Sprintf("%s\x00%s\x00%d", b.String(), key, size)}
}

// Size is the object's length.
func (s *Source) Size() int64 { return s.size }

// Name is what errors call the object: store and key.
func (s *Source) Name() string { return s.b.String() + "/" + s.key }

// ReadAt reads len(p) bytes at off with io.ReaderAt's contract: fewer
// only at the object's end (with io.EOF) or with an error. Cached pages
// are copied from disk; the missing ones, from the first to the last, are
// fetched with one range GET (bounded by the bucket's request timeout), so
// a cold read of a footer, an index page or a block costs one GET and a
// warm one none.
func (s *Source) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset %d", s.Name(), off)
	}
	if off >= s.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), s.size)
	if end == off {
		return 0, nil
	}
	first, last := off/PageSize, (end-1)/PageSize
	c := s.c

	// Pin the pages held; find the span of missing ones.
	held := make([]*page, last-first+1)
	missFirst, missLast := int64(-1), int64(-1)
	c.mu.Lock()
	for i := first; i <= last; i++ {
		if pg := c.pages[pageKey{s.obj, i}]; pg != nil {
			pg.pins++
			c.lru.MoveToFront(pg.elem)
			held[i-first] = pg
		} else {
			if missFirst < 0 {
				missFirst = i
			}
			missLast = i
		}
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		var wipe []int
		for _, pg := range held {
			if pg != nil {
				pg.pins--
				if pg.dead && pg.pins == 0 {
					wipe = append(wipe, pg.slot)
				}
			}
		}
		c.mu.Unlock()
		c.wipe(wipe)
	}()

	var hits, misses int64
	if missFirst >= 0 {
		start := missFirst * PageSize
		stop := min((missLast+1)*PageSize, s.size)
		buf := make([]byte, stop-start)
		c.gets.Add(1)
		if err := s.b.ReadAt(context.Background(), s.key, buf, start); err != nil {
			return 0, err
		}
		c.fetched.Add(int64(len(buf)))
		for i := missFirst; i <= missLast; i++ {
			lo := (i - missFirst) * PageSize
			data := buf[lo:min(lo+PageSize, int64(len(buf)))]
			if held[i-first] == nil {
				misses++
				c.insert(pageKey{s.obj, i}, data)
			}
			copyPage(p, off, i, data)
		}
	}
	for i, pg := range held {
		idx := first + int64(i)
		if pg == nil || (missFirst >= 0 && idx >= missFirst && idx <= missLast) {
			continue
		}
		hits++
		// The part of page idx that p covers.
		pageStart := idx * PageSize
		lo, hi := max(off, pageStart), min(end, pageStart+int64(pg.n))
		if _, err := c.r.ReadAt(p[lo-off:hi-off], int64(pg.slot)*PageSize+(lo-pageStart)); err != nil {
			return 0, fmt.Errorf("%s: read cached page: %w", s.Name(), err)
		}
	}
	c.hits.Add(hits)
	c.misses.Add(misses)
	n := int(end - off)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// copyPage copies the part of page idx (data) that p, read at off, covers.
func copyPage(p []byte, off, idx int64, data []byte) {
	pageStart := idx * PageSize
	lo, hi := max(off, pageStart), min(off+int64(len(p)), pageStart+int64(len(data)))
	if lo < hi {
		copy(p[lo-off:hi-off], data[lo-pageStart:hi-pageStart])
	}
}

// insert stores a fetched page, evicting the least recently used unpinned
// page when every slot is taken. A page another reader inserted meanwhile
// is kept; a page that finds no slot (all pinned) or cannot be written
// (the cache's disk full) is simply not cached: the read it came with is
// served all the same.
func (c *Cache) insert(key pageKey, data []byte) {
	c.mu.Lock()
	if c.pages[key] != nil {
		c.mu.Unlock()
		return
	}
	slot, ok := c.slotLocked()
	c.mu.Unlock()
	if !ok {
		return
	}
	if _, err := c.w.WriteAt(data, int64(slot)*PageSize); err != nil {
		c.mu.Lock()
		c.free = append(c.free, slot)
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pages[key] != nil {
		c.free = append(c.free, slot)
		return
	}
	pg := &page{key: key, slot: slot, n: len(data)}
	pg.elem = c.lru.PushFront(pg)
	c.pages[key] = pg
	c.bytes += int64(pg.n)
}

// slotLocked returns a slot to write a page into: a free one, a new one,
// or the least recently used unpinned page's.
func (c *Cache) slotLocked() (int, bool) {
	if n := len(c.free); n > 0 {
		s := c.free[n-1]
		c.free = c.free[:n-1]
		return s, true
	}
	if c.next < c.slots {
		c.next++
		return c.next - 1, true
	}
	for e := c.lru.Back(); e != nil; e = e.Prev() {
		pg := e.Value.(*page)
		if pg.pins > 0 {
			continue
		}
		c.lru.Remove(e)
		delete(c.pages, pg.key)
		c.bytes -= int64(pg.n)
		c.evictions.Add(1)
		return pg.slot, true
	}
	return 0, false
}

// Invalidate drops every cached page of key in b and overwrites their
// slots with zeros before they are reused. The store calls it when an
// erasure destroys an object: its pages hold the erased records, and a
// cache entry must not keep what the bucket no longer has (the cache file
// is on local disk). A page a reader is copying from is wiped when that
// reader is done. It returns how many pages were dropped.
func (c *Cache) Invalidate(b Bucket, key string) int {
	prefix := b.String() + "\x00" + key + "\x00"
	var wipe []int
	n := 0
	c.mu.Lock()
	for k, pg := range c.pages {
		if !strings.HasPrefix(k.obj, prefix) {
			continue
		}
		n++
		delete(c.pages, k)
		c.lru.Remove(pg.elem)
		c.bytes -= int64(pg.n)
		if pg.pins > 0 {
			pg.dead = true
		} else {
			wipe = append(wipe, pg.slot)
		}
	}
	c.mu.Unlock()
	c.wipe(wipe)
	return n
}

// wipe overwrites slots with zeros and returns them to the free list. A
// slot that cannot be overwritten is not reused for another object's page
// only by luck, so it stays out of the free list (lost capacity, never
// stale bytes served: its page is gone from the map either way).
func (c *Cache) wipe(slots []int) {
	if len(slots) == 0 {
		return
	}
	zero := make([]byte, PageSize)
	var freed []int
	for _, s := range slots {
		if _, err := c.w.WriteAt(zero, int64(s)*PageSize); err == nil {
			freed = append(freed, s)
		}
	}
	c.mu.Lock()
	c.free = append(c.free, freed...)
	c.mu.Unlock()
}
