package segment

import (
	"slices"
	"sync"
)

// Block 0's paths (format 4). A block's path column stores its distinct
// paths sorted and front-coded, and every block repeated the paths a site
// serves all day (its stylesheets, scripts and pages): on 500k-record
// loggen days, block 0's distinct paths are about a third of each later
// block's. From format 4 on, a later block stores only the paths that are
// not in block 0's dictionary, and its rows index block 0's entries first,
// then its own: the path column of 500k-record days 4.98 → 4.60 bytes per
// record (BenchmarkBytesPerRecord; docs/format.md has the alternatives
// measured). A block then decodes fewer path bytes than before, and a
// search tests block 0's paths once per segment instead of once per block
// (BlockView.EachOwnPath, Reader.EachBasePath).
const (
	// basePathsMax bounds the bytes of block 0's distinct paths that later
	// blocks may share, and so what a reader keeps per segment: a block 0
	// with longer paths shares none. Block 0 of a loggen day holds about
	// 170 KB of distinct paths.
	basePathsMax = 512 << 10
	// maxBasePaths bounds how many segments' block-0 dictionaries readers
	// keep (basePathCache).
	maxBasePaths = 32
)

// basePaths numbers the distinct paths of block 0 (sorted, as stored) for
// the writer's later blocks, or returns nil when they are too long to
// share.
func basePaths(distinct []string) map[string]uint32 {
	n := 0
	for _, p := range distinct {
		n += len(p)
	}
	if n > basePathsMax || len(distinct) == 0 {
		return nil
	}
	m := make(map[string]uint32, len(distinct))
	for i, p := range distinct {
		m[p] = uint32(i)
	}
	return m
}

// basePathCache holds the readers whose block-0 dictionary is loaded,
// oldest first. A search over two years reads every day's segment, and
// keeping 730 dictionaries would hold hundreds of MiB that no setting
// bounds: only the maxBasePaths loaded last are kept (at most 16 MiB of
// paths, 6 MiB on loggen days), and an evicted one is decoded again when
// next needed.
var basePathCache struct {
	mu      sync.Mutex
	readers []*Reader
}

// basePathDict returns block 0's path dictionary, built for random access
// and never changed afterwards (several blocks' views read it at once).
func (r *Reader) basePathDict() (*pathDict, error) {
	if d := r.basePaths.Load(); d != nil {
		return d, nil
	}
	d, err := r.loadBasePaths()
	if err != nil {
		return nil, err
	}
	r.basePaths.Store(d)
	basePathCache.mu.Lock()
	defer basePathCache.mu.Unlock()
	c := &basePathCache
	c.readers = append(c.readers, r)
	if n := len(c.readers) - maxBasePaths; n > 0 {
		for _, old := range c.readers[:n] {
			old.basePaths.Store(nil)
		}
		// Copied down, so that the evicted readers are not kept
		// reachable by the slice's backing array.
		k := copy(c.readers, c.readers[n:])
		clear(c.readers[k:])
		c.readers = c.readers[:k]
	}
	return d, nil
}

// dropBasePaths forgets r's block-0 dictionary and its place in
// basePathCache (Close): a closed reader must not be kept reachable.
func (r *Reader) dropBasePaths() {
	if r.basePaths.Swap(nil) == nil {
		return
	}
	basePathCache.mu.Lock()
	defer basePathCache.mu.Unlock()
	c := &basePathCache
	c.readers = slices.DeleteFunc(c.readers, func(x *Reader) bool { return x == r })
}

// loadBasePaths decodes block 0's path column. It does not count as a
// block decode (r.decoded): tests count decodes to prove an index spared
// blocks.
func (r *Reader) loadBasePaths() (*pathDict, error) {
	b := &r.blocks[0]
	off := b.off
	for c := 0; c < 4; c++ {
		off += int64(b.cols[c].clen)
	}
	cm := b.cols[4]
	comp, err := r.readAt(off, int64(cm.clen))
	if err != nil {
		return nil, err
	}
	if comp, err = r.openColumn(nil, comp, off, 0, 4, cm.crc); err != nil {
		return nil, err
	}
	raw, err := decompress(comp, int(cm.rlen))
	var p pathDict
	if err == nil {
		err = p.decode(raw, b.rows, r.version, nil)
	}
	if err != nil {
		return nil, r.corrupt(off, "block 0 path column (the paths later blocks share): %w", err)
	}
	p.build()
	// Only the rebuilt paths are kept.
	return &pathDict{arena: p.arena, ends: p.ends, built: true}, nil
}

// entry returns path j of a built dictionary without copying.
func (p *pathDict) entry(j int) []byte {
	start := 0
	if j > 0 {
		start = p.ends[j-1]
	}
	return p.arena[start:p.ends[j]]
}

// EachBasePath calls fn with each of block 0's distinct paths that later
// blocks share (format 4), in dictionary order: entry j of every block
// whose BlockView.NumBasePaths is above j. It calls nothing for a segment
// whose blocks share none. The bytes must not be kept or changed.
func (r *Reader) EachBasePath(fn func(j int, path []byte)) error {
	if r.version < 4 || len(r.blocks) < 2 {
		return nil
	}
	d, err := r.basePathDict()
	if err != nil {
		return err
	}
	for j := range d.ends {
		fn(j, d.entry(j))
	}
	return nil
}
