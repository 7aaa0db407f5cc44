package segment

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/retentiond/retentiond/internal/fsutil"
	"github.com/retentiond/retentiond/internal/keys"
	"github.com/retentiond/retentiond/internal/record"
)

// Options tune a Writer. The zero value is the recommended configuration.
type Options struct {
	// BlockRows is the maximum number of rows per block (default 8192, at most
	// MaxBlockRows). Larger blocks compress better; smaller ones make a
	// needle search decode less.
	BlockRows int
	// Level is the zstd compression level, 1–22 (default DefaultLevel).
	Level int
	// IPPageEntries is the number of addresses per IP index page, 1 to
	// 1024 (default 1024). A lookup decompresses and scans one page, on
	// average half of it: larger pages compress better, smaller ones make
	// a lookup cheaper. A day's head holds many in-memory parts, each
	// looked up by every search of the day, so they use small pages.
	IPPageEntries int
	// FS creates and commits the file; the zero value is the real file
	// system, tests inject faults through it.
	FS fsutil.FS
	// Key, when set, encrypts the segment under this day key (it must be
	// the key of the records' day): every column, IP index page and the
	// meta section are sealed after compression, and the address filter is
	// keyed (docs/format.md, "Encrypted segments"). nil writes a plain
	// segment.
	Key *keys.DayKey
}

// Info summarises a segment file.
type Info struct {
	MinTime, MaxTime time.Time // first and last record time; zero for an empty segment
	Records          int64
	Blocks           int
	Bytes            int64 // file size
	// Numbers are the numbers the writer was given for its dictionary
	// entries (AddKnown), for OpenOptions.Numbers; nil when none was.
	// Their Space is left to the caller.
	Numbers *Numbers
}

// blockMeta is what the footer says about one block.
type blockMeta struct {
	off        int64 // file offset of the block's first column
	rows       int
	minT, maxT int64 // unix milliseconds
	cols       [numColumns]colMeta
}

type colMeta struct {
	clen, rlen uint32 // compressed and decoded length
	crc        uint32 // CRC32C of the compressed bytes
}

// Writer streams time-ordered records into a new segment file. The file
// appears under its final name only when Close succeeds. A Writer is not safe
// for concurrent use.
type Writer struct {
	f    sink
	path string
	opts Options
	enc  *zstd.Encoder
	// encQuick compresses the streams cut with cutQuick (parts).
	encQuick *zstd.Encoder
	off      int64
	err      error // sticky: the first write error
	done     bool
	lastT    int64

	inFooter  bool   // writes from here on are footer bytes
	footerCRC uint32 // running CRC32C of the footer bytes written so far

	fc      *keys.FileCipher // nil for a plain segment
	dataOff int64            // where the first block starts
	sealed  []byte           // scratch: a sealed unit

	domainIDs    map[string]uint32
	domains      []string
	domainBlocks [][]uint32 // per domain id: ascending blocks that hold it
	uaIDs        map[string]uint32
	uas          []string
	domainRows   []uint64 // per domain id: rows that hold it (format v2)
	uaRows       []uint64 // per user-agent id: rows that hold it (format v2)
	ipIDs        map[netip.Addr]uint32
	ipAddrs      []netip.Addr
	ipBlocks     [][]uint32 // per ipIDs value: ascending blocks that hold it
	ipRows       [][]uint32 // per ipIDs value: rows in each of those blocks (format v2)
	blocks       []blockMeta
	records      int64
	// lastDom and lastUA are the previous record's domain and user-agent
	// ids (Add).
	lastDom, lastUA uint32
	// extDoms and extUAs map AddKnown's numbers to dictionary ids plus
	// one (0: not seen yet).
	extDoms, extUAs []uint32

	// The block being filled and the scratch its encoding reuses, taken
	// from blockBufs for the writer's life.
	*blockBuf

	// basePaths numbers block 0's distinct paths, which later blocks
	// index instead of storing them again (pathdict.go); nil when block 0's
	// paths are too long to share.
	basePaths map[string]uint32
}

// blockBuf is a writer's block being filled and the scratch that encodes
// it. The store starts a writer for every sealed part (every few seconds
// under load) and every flush, and each writer grew these buffers and maps
// anew from nothing: they were a sixth of what the daemon allocated over
// the peer benchmark. A closed writer gives them back to blockBufs,
// cleared of the strings they held.
type blockBuf struct {
	times     []int64
	ips       []netip.Addr
	domIDs    []uint32
	agentIDs  []uint32
	paths     []string
	pathBytes int

	raw         parts
	comp        []byte
	idx         []uint32
	ipScratch   ipScratch
	pathScratch pathScratch
	// addrRows counts the rows of each of the block's distinct
	// addresses (ipScratch.sorted), for the footer's IP index.
	addrRows []uint32
	visitors visitors
}

var blockBufs = sync.Pool{New: func() any { return new(blockBuf) }}

// releaseBuf gives the writer's block buffers back to blockBufs, once.
func (w *Writer) releaseBuf() {
	b := w.blockBuf
	if b == nil {
		return
	}
	w.blockBuf = nil
	// Only the strings matter to the collector: paths hold records'
	// paths, the path scratch the block's distinct ones.
	clear(b.paths[:cap(b.paths)])
	b.paths, b.pathBytes = b.paths[:0], 0
	clear(b.pathScratch.seen[:cap(b.pathScratch.seen)])
	clear(b.pathScratch.sorted[:cap(b.pathScratch.sorted)])
	clear(b.pathScratch.ids)
	b.times, b.ips, b.domIDs, b.agentIDs = b.times[:0], b.ips[:0], b.domIDs[:0], b.agentIDs[:0]
	blockBufs.Put(b)
}

// sink is where a Writer's bytes go: a file that appears at its final name
// on Commit (fsutil.File), or memory (memSink).
type sink interface {
	Write(b []byte) (int, error)
	Commit() error
	Abort()
}

// memSink collects a segment in memory (NewMemoryWriter).
type memSink struct{ buf []byte }

func (m *memSink) Write(b []byte) (int, error) { m.buf = append(m.buf, b...); return len(b), nil }
func (m *memSink) Commit() error               { return nil }
func (m *memSink) Abort()                      { m.buf = nil }

// NewWriter starts a segment at path. Nothing exists at path until Close.
func NewWriter(path string, opts Options) (*Writer, error) {
	return newWriter(path, opts, nil)
}

// NewMemoryWriter starts a segment built in memory; Bytes returns it after
// Close. The store encodes the records of a head this way every few
// seconds, so that fresh data is searched through the same indexes as
// files (OpenBytes) and held in a fraction of the memory. name is only
// what errors call it.
func NewMemoryWriter(name string, opts Options) (*Writer, error) {
	return newWriter(name, opts, &memSink{})
}

// Bytes returns the segment a NewMemoryWriter built, after Close; nil for a
// file writer.
func (w *Writer) Bytes() []byte {
	if m, ok := w.f.(*memSink); ok && w.done {
		// A part stays in memory until the next flush and is accounted
		// at its length: it keeps no more than an eighth unused.
		if cap(m.buf) > len(m.buf)+len(m.buf)/8 {
			m.buf = slices.Clone(m.buf)
		}
		return m.buf
	}
	return nil
}

// memBytesPerRecord is what WriteMemoryRuns reserves per record: the
// store's in-memory parts take 9.3 bytes per loggen record
// (BenchmarkSealFlush), and a buffer grown by appends alone was allocated
// twice over on the way.
const memBytesPerRecord = 10

func newWriter(path string, opts Options, mem *memSink) (*Writer, error) {
	if opts.BlockRows == 0 {
		opts.BlockRows = DefaultBlockRows
	}
	if opts.BlockRows < 1 || opts.BlockRows > MaxBlockRows {
		return nil, fmt.Errorf("segment writer: block rows %d out of range 1-%d", opts.BlockRows, MaxBlockRows)
	}
	if opts.Level == 0 {
		opts.Level = DefaultLevel
	}
	if opts.IPPageEntries == 0 {
		opts.IPPageEntries = ipPageEntries
	}
	if opts.IPPageEntries < 1 || opts.IPPageEntries > ipPageEntries {
		return nil, fmt.Errorf("segment writer: IP page entries %d out of range 1-%d", opts.IPPageEntries, ipPageEntries)
	}
	if opts.Level < 1 || opts.Level > 22 {
		return nil, fmt.Errorf("segment writer: zstd level %d out of range 1-22", opts.Level)
	}
	enc, err := encoderFor(opts.Level)
	if err != nil {
		return nil, err
	}
	encQuick, err := encoderFor(min(opts.Level, quickLevel))
	if err != nil {
		return nil, err
	}
	var f sink = mem
	if mem == nil {
		file, err := opts.FS.Create(path, 0o640)
		if err != nil {
			return nil, fmt.Errorf("segment writer: %w", err)
		}
		f = file
	}
	w := &Writer{
		f: f, path: path, opts: opts, enc: enc, encQuick: encQuick,
		domainIDs: map[string]uint32{}, uaIDs: map[string]uint32{}, ipIDs: map[netip.Addr]uint32{},
		blockBuf: blockBufs.Get().(*blockBuf),
	}
	hdr := []byte{magic[0], magic[1], magic[2], magic[3], Version, 0, 0, 0}
	if opts.Key != nil {
		fc, salt, err := opts.Key.NewFile()
		if err != nil {
			f.Abort()
			return nil, fmt.Errorf("segment writer: %w", err)
		}
		w.fc = fc
		id := opts.Key.ID()
		hdr[5] = flagEncrypted
		hdr = append(hdr, id[:]...)
		hdr = binary.LittleEndian.AppendUint64(hdr, uint64(opts.Key.Day().Unix()))
		hdr = append(hdr, salt[:]...)
	}
	w.dataOff = int64(len(hdr))
	w.write(hdr)
	if w.err != nil {
		f.Abort()
		return nil, w.err
	}
	return w, nil
}

func (w *Writer) write(b []byte) {
	if w.err != nil {
		return
	}
	if _, err := w.f.Write(b); err != nil {
		w.err = fmt.Errorf("segment writer: write %s: %w", w.path, err)
		return
	}
	w.off += int64(len(b))
	if w.inFooter {
		w.footerCRC = crc32.Update(w.footerCRC, castagnoli, b)
	}
}

// Add appends a record. Its time (kept to the millisecond) must not be
// before the previous record's. A rejected record leaves the writer as it was.
func (w *Writer) Add(r *record.Record) error { return w.add(r, -1, -1) }

// AddKnown is Add for a caller that knows the record's domain and user
// agent by numbers of its own, dom and ua: small dense numbers (a merge
// uses its sources' dictionary ids, offset per source) that stand for the
// same string every time they are given. The writer then looks each number
// up in its dictionaries once instead of hashing every record's strings,
// which was a sixth of a merge's CPU.
func (w *Writer) AddKnown(r *record.Record, dom, ua uint32) error {
	return w.add(r, int64(dom), int64(ua))
}

// add is Add and AddKnown; extDom and extUA are -1 when unknown.
func (w *Writer) add(r *record.Record, extDom, extUA int64) error {
	switch {
	case w.done:
		return errors.New("segment writer: add after close")
	case w.err != nil:
		return w.err
	case !r.IP.IsValid():
		return errors.New("segment writer: record without IP")
	case len(r.Path) > maxFieldLen || len(r.UserAgent) > maxFieldLen || len(r.Domain) > maxFieldLen:
		return fmt.Errorf("segment writer: field longer than %d bytes", maxFieldLen)
	}
	t := r.Time.UnixMilli()
	if t < 0 {
		return fmt.Errorf("segment writer: time %s before 1970", r.Time.UTC().Format(time.RFC3339))
	}
	if w.records > 0 && t < w.lastT {
		return fmt.Errorf("segment writer: time %s before previous record's %s",
			r.Time.UTC().Format(time.RFC3339Nano), time.UnixMilli(w.lastT).UTC().Format(time.RFC3339Nano))
	}
	w.lastT = t
	// Time deltas are stored as 32-bit numbers: a block never spans more
	// than 2^32 ms (49 days). A day segment never comes close; other
	// callers get an extra block.
	if len(w.times) > 0 && t-w.times[0] >= math.MaxUint32 {
		w.flushBlock()
	}
	w.records++
	w.times = append(w.times, t)
	w.ips = append(w.ips, r.IP.WithZone(""))
	dom := w.dict(r.Domain, extDom, w.lastDom, &w.extDoms, w.domainIDs, &w.domains)
	ua := w.dict(r.UserAgent, extUA, w.lastUA, &w.extUAs, w.uaIDs, &w.uas)
	w.lastDom, w.lastUA = dom, ua
	w.domIDs = append(w.domIDs, dom)
	w.agentIDs = append(w.agentIDs, ua)
	w.domainRows = countRow(w.domainRows, dom)
	w.uaRows = countRow(w.uaRows, ua)
	w.paths = append(w.paths, r.Path)
	w.pathBytes += len(r.Path)
	if len(w.times) >= w.opts.BlockRows || w.pathBytes >= blockPathBudget {
		w.flushBlock()
	}
	return w.err
}

// dict returns s's id in a dictionary (ids, list), adding it if new. A
// caller's number for s (ext, AddKnown) is remembered in byExt, so that s
// is hashed once per number. Without one, a visitor's requests come in
// runs: a record with the previous record's string (last) takes its id
// without a map lookup (string equality is a pointer comparison when the
// strings are shared, as the head's are).
func (w *Writer) dict(s string, ext int64, last uint32, byExt *[]uint32, ids map[string]uint32, list *[]string) uint32 {
	if ext >= 0 && ext < maxExtIDs {
		if ext < int64(len(*byExt)) && (*byExt)[ext] != 0 {
			return (*byExt)[ext] - 1
		}
		id := intern(s, ids, list)
		for int64(len(*byExt)) <= ext {
			*byExt = append(*byExt, 0)
		}
		(*byExt)[ext] = id + 1
		return id
	}
	if w.records > 1 && s == (*list)[last] {
		return last
	}
	return intern(s, ids, list)
}

// maxExtIDs bounds the numbers AddKnown remembers (a larger one is looked
// up by its string), so that a stray number cannot make the writer
// allocate without bound.
const maxExtIDs = 1 << 24

func intern(s string, ids map[string]uint32, dict *[]string) uint32 {
	if id, ok := ids[s]; ok {
		return id
	}
	id := uint32(len(*dict))
	ids[s] = id
	*dict = append(*dict, s)
	return id
}

// countRow adds one to counts[id], growing counts as the dictionary grows
// (ids are assigned densely in order of first appearance).
func countRow(counts []uint64, id uint32) []uint64 {
	for int(id) >= len(counts) {
		counts = append(counts, 0)
	}
	counts[id]++
	return counts
}

// flushBlock encodes, compresses and writes the pending rows as one block,
// and records them in the footer indexes.
func (w *Writer) flushBlock() {
	if len(w.times) == 0 || w.err != nil {
		return
	}
	blk := uint32(len(w.blocks))
	m := blockMeta{off: w.off, rows: len(w.times), minT: w.times[0], maxT: w.times[len(w.times)-1]}
	for c := 0; c < numColumns; c++ {
		w.raw.reset()
		switch Columns(1) << c {
		case ColTime:
			w.idx = appendTimes(&w.raw, w.times, w.idx)
		case ColIP:
			w.idx = appendVisitors(&w.raw, w.ips, w.domIDs, w.agentIDs, &w.ipScratch, &w.visitors, w.idx)
			w.addrRows = slices.Grow(w.addrRows[:0], len(w.ipScratch.sorted))[:len(w.ipScratch.sorted)]
			clear(w.addrRows)
			for _, a := range w.idx {
				w.addrRows[a]++
			}
		case ColDomain, ColUserAgent:
			// Format 3 keeps domain and user-agent ids in the IP column's
			// combinations: these columns are empty, zero bytes on disk
			// (an encrypted segment seals no unit for them).
			m.cols[c] = colMeta{}
			continue
		case ColPath:
			var distinct []string
			w.idx, distinct = appendPaths(&w.raw, w.paths, &w.pathScratch, w.idx, w.basePaths)
			if blk == 0 {
				w.basePaths = basePaths(distinct)
			}
		}
		w.comp = w.comp[:0]
		for i := range w.raw.ends {
			enc := w.enc
			if w.raw.isQuick(i) {
				enc = w.encQuick
			}
			w.comp = enc.EncodeAll(w.raw.stream(i), w.comp)
		}
		// Sealed after compression: ciphertext does not compress, and the
		// compressed length is all a sealed column tells about its data.
		stored := w.seal(w.comp, unitColumn, blk<<3|uint32(c))
		m.cols[c] = colMeta{clen: uint32(len(stored)), rlen: uint32(len(w.raw.buf)), crc: crc(stored)}
		w.write(stored)
	}
	for len(w.domainBlocks) < len(w.domains) {
		w.domainBlocks = append(w.domainBlocks, nil)
	}
	for _, id := range w.domIDs {
		addPosting(&w.domainBlocks[id], blk)
	}
	// The IP index takes one lookup per distinct address of the block,
	// not one per row.
	for k, a := range w.ipScratch.sorted {
		id, ok := w.ipIDs[a]
		if !ok {
			id = uint32(len(w.ipAddrs))
			w.ipIDs[a] = id
			w.ipAddrs = append(w.ipAddrs, a)
			w.ipBlocks = append(w.ipBlocks, nil)
			w.ipRows = append(w.ipRows, nil)
		}
		w.ipBlocks[id] = append(w.ipBlocks[id], blk)
		w.ipRows[id] = append(w.ipRows[id], w.addrRows[k])
	}
	w.blocks = append(w.blocks, m)
	w.times, w.ips, w.domIDs, w.agentIDs = w.times[:0], w.ips[:0], w.domIDs[:0], w.agentIDs[:0]
	clear(w.paths) // drop references to the caller's strings
	w.paths, w.pathBytes = w.paths[:0], 0
}

func addPosting(list *[]uint32, blk uint32) {
	if n := len(*list); n == 0 || (*list)[n-1] != blk {
		*list = append(*list, blk)
	}
}

// Close writes the last block and the footer, fsyncs the file and renames it
// into place. On error nothing is left at the final path.
func (w *Writer) Close() (Info, error) {
	defer w.releaseBuf()
	if w.done {
		return Info{}, errors.New("segment writer: close after close")
	}
	w.flushBlock()
	for len(w.domainBlocks) < len(w.domains) {
		w.domainBlocks = append(w.domainBlocks, nil)
	}
	w.writeFooter()
	if w.err != nil {
		w.Abort()
		return Info{}, w.err
	}
	w.done = true
	if err := w.f.Commit(); err != nil {
		return Info{}, fmt.Errorf("segment writer: commit %s: %w", w.path, err)
	}
	info := Info{Records: w.records, Blocks: len(w.blocks), Bytes: w.off, Numbers: w.numbers()}
	if len(w.blocks) > 0 {
		info.MinTime = time.UnixMilli(w.blocks[0].minT).UTC()
		info.MaxTime = time.UnixMilli(w.blocks[len(w.blocks)-1].maxT).UTC()
	}
	return info, nil
}

// Abort discards the file. It is safe to call after Close.
func (w *Writer) Abort() {
	w.releaseBuf()
	if w.done {
		return
	}
	w.done = true
	w.f.Abort()
}

// writeFooter writes the IP index pages, the domain postings and the
// address filter, then the meta section that locates them (footer.go
// encodes it) and the trailer.
func (w *Writer) writeFooter() {
	if w.err != nil {
		return
	}
	f := footer{
		footerOff: w.off, records: w.records, blocks: w.blocks,
		domains: w.domains, uas: w.uas, numIPs: len(w.ipAddrs),
		domainRows: w.domainRows, uaRows: w.uaRows,
	}
	w.inFooter = true

	// IP index: distinct addresses in key order, in compressed pages.
	order := make([]uint32, len(w.ipAddrs))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int { return w.ipAddrs[a].Compare(w.ipAddrs[b]) })
	var page, prevKey, key []byte
	for start := 0; start < len(order); start += w.opts.IPPageEntries {
		ids := order[start:min(start+w.opts.IPPageEntries, len(order))]
		page, prevKey = page[:0], prevKey[:0]
		var first []byte
		for i, id := range ids {
			key = appendKey(key[:0], w.ipAddrs[id])
			if i == 0 {
				first = slices.Clone(key)
			}
			shared := sharedPrefix(string(prevKey), string(key))
			page = binary.AppendUvarint(page, uint64(shared))
			page = binary.AppendUvarint(page, uint64(len(key)-shared))
			page = append(page, key[shared:]...)
			page = appendPostingList(page, w.ipBlocks[id])
			// Version 2: the rows of each posting's block that hold the
			// address, so that a count or a limited search of an address
			// knows how many rows a block will give without decoding it.
			for _, n := range w.ipRows[id] {
				page = binary.AppendUvarint(page, uint64(n))
			}
			prevKey = append(prevKey[:0], key...)
		}
		w.comp = w.enc.EncodeAll(page, w.comp[:0])
		stored := w.seal(w.comp, unitIPPage, uint32(len(f.ipPages)))
		f.ipPages = append(f.ipPages, ipPage{entries: len(ids), first: first, off: w.off,
			clen: len(stored), rlen: len(page), crc: crc(stored)})
		w.write(stored)
	}

	// Domain → blocks: a list or a bitmap, whichever is smaller, uncompressed
	// so that one domain's entry is one small read.
	var post []byte
	for _, blocks := range w.domainBlocks {
		post = appendDomainPosting(post[:0], blocks, len(w.blocks))
		f.domPost = append(f.domPost, postingRef{off: w.off, n: len(post), crc: crc(post)})
		w.write(post)
	}
	// Version 2: the address filter (see bloom.go), uncompressed in the
	// footer so that a lookup tests bits of the mapped file in place.
	nets := map[string]struct{}{}
	for _, a := range w.ipAddrs {
		nets[string(appendNetKey(key[:0], a))] = struct{}{}
	}
	filter := make([]byte, bloomBytes(len(w.ipAddrs)+len(nets)))
	mix := w.mix()
	for _, a := range w.ipAddrs {
		key = appendKey(key[:0], a)
		bloomAdd(filter, key, mix)
	}
	for k := range nets {
		bloomAdd(filter, []byte(k), mix)
	}
	f.filterOff, f.filterLen = w.off, len(filter)
	w.write(filter)

	meta := f.appendMeta(nil, Version)
	metaOff := w.off
	var hdr [4]byte
	binary.LittleEndian.PutUint32(hdr[:], uint32(len(meta)))
	if len(meta) > maxMetaRaw {
		w.err = fmt.Errorf("segment writer: footer of %d bytes is too large", len(meta))
		return
	}
	w.write(hdr[:])
	w.comp = w.enc.EncodeAll(meta, w.comp[:0])
	w.write(w.seal(w.comp, unitMeta, 0))

	tr := trailer{footerOff: uint64(f.footerOff), metaOff: uint64(metaOff), footerCRC: w.footerCRC, version: Version}
	if w.fc != nil {
		tr.flags = flagEncrypted
	}
	w.write(tr.append(make([]byte, 0, trailerSize)))
}

// seal returns what the writer stores for a unit about to be written at
// the current offset: comp itself in a plain segment, its sealed form
// (keyed by the offset, the unit's kind and index) in an encrypted one.
func (w *Writer) seal(comp []byte, kind byte, index uint32) []byte {
	if w.fc == nil {
		return comp
	}
	w.sealed = w.fc.Seal(w.sealed[:0], comp, uint64(w.off), kind, index)
	return w.sealed
}

// mix returns the address filter's keyed permutation, nil when plain.
func (w *Writer) mix() func(uint64) uint64 {
	if w.fc == nil {
		return nil
	}
	return w.fc.Mix
}

// appendPostingList writes ascending block numbers as a uvarint count, the
// first block, then the gaps to each next one.
func appendPostingList(b []byte, blocks []uint32) []byte {
	b = binary.AppendUvarint(b, uint64(len(blocks)))
	prev := uint32(0)
	for i, blk := range blocks {
		if i == 0 {
			b = binary.AppendUvarint(b, uint64(blk))
		} else {
			b = binary.AppendUvarint(b, uint64(blk-prev))
		}
		prev = blk
	}
	return b
}

const (
	postingList   = 0
	postingBitmap = 1
)

func appendDomainPosting(b []byte, blocks []uint32, numBlocks int) []byte {
	list := appendPostingList(nil, blocks)
	bitmapLen := (numBlocks + 7) / 8
	if len(list) <= bitmapLen {
		return append(append(b, postingList), list...)
	}
	b = append(b, postingBitmap)
	bm := make([]byte, bitmapLen)
	for _, blk := range blocks {
		bm[blk/8] |= 1 << (blk % 8)
	}
	return append(b, bm...)
}

// Write writes recs as one segment at path, in time order (stably, so equal
// times keep their order); recs itself is not reordered, since the store
// flushes heads that searches may be reading.
func Write(path string, recs []record.Record, opts Options) (Info, error) {
	return WriteRuns(path, [][]record.Record{recs}, nil, opts)
}

// Known is a record's domain and user agent as its caller numbers them,
// for Writer.AddKnown: the store's head numbers the strings it shares.
type Known struct{ Domain, UserAgent uint32 }

// WriteRuns is Write of the records of runs one after the other (a head's
// tail, kept in chunks). known, unless nil, holds each record's numbers
// (Writer.AddKnown) in runs of the same lengths.
func WriteRuns(path string, runs [][]record.Record, known [][]Known, opts Options) (Info, error) {
	w, err := NewWriter(path, opts)
	if err != nil {
		return Info{}, err
	}
	return writeSorted(w, runs, known)
}

// WriteMemory is Write into memory: it returns the segment's bytes, for
// OpenBytes.
func WriteMemory(name string, recs []record.Record, opts Options) ([]byte, Info, error) {
	return WriteMemoryRuns(name, [][]record.Record{recs}, nil, opts)
}

// WriteMemoryRuns is WriteMemory of the records of runs one after the
// other, with their numbers as in WriteRuns.
func WriteMemoryRuns(name string, runs [][]record.Record, known [][]Known, opts Options) ([]byte, Info, error) {
	w, err := NewMemoryWriter(name, opts)
	if err != nil {
		return nil, Info{}, err
	}
	n := 0
	for _, run := range runs {
		n += len(run)
	}
	m := w.f.(*memSink)
	m.buf = slices.Grow(m.buf, n*memBytesPerRecord+4096)
	info, err := writeSorted(w, runs, known)
	if err != nil {
		return nil, Info{}, err
	}
	return w.Bytes(), info, nil
}

// writeSorted adds the records of runs to w in stable time order (equal
// times in the order of runs, then of positions), with their numbers in
// known unless it is nil, and closes it.
func writeSorted(w *Writer, runs [][]record.Record, known [][]Known) (Info, error) {
	if known != nil && len(known) != len(runs) {
		w.Abort()
		return Info{}, errors.New("segment writer: numbers for a different number of runs")
	}
	for i := range known {
		if len(known[i]) != len(runs[i]) {
			w.Abort()
			return Info{}, fmt.Errorf("segment writer: %d numbers for run %d of %d records", len(known[i]), i, len(runs[i]))
		}
	}
	add := func(run, pos int) error {
		if known != nil {
			n := known[run][pos]
			return w.AddKnown(&runs[run][pos], n.Domain, n.UserAgent)
		}
		return w.Add(&runs[run][pos])
	}
	var err error
	if keys, ok := packedKeys(runs); ok {
		slices.Sort(keys)
		for _, k := range keys {
			if err = add(int(k>>packPos&(1<<packRunBits-1)), int(k&(1<<packPos-1))); err != nil {
				break
			}
		}
	} else {
		err = sortedKeys(runs, add)
	}
	if err != nil {
		w.Abort()
		return Info{}, err
	}
	return w.Close()
}

// The bits of a packed sort key (packedKeys): the time since the earliest
// record's, then the run, then the position in the run.
const (
	packPos     = 25 // up to 32M records per run
	packRunBits = 12 // up to 4096 runs
	packTimeBit = packPos + packRunBits
)

// packedKeys returns one number per record of runs that sorts like the
// record's (time, run, position): a seal's records lie within a day, whose
// milliseconds fit in the 27 bits above run and position, and slices.Sort
// of plain numbers took a third of the time of sortedKeys' comparisons of
// structs. ok is false when the records do not fit (more runs or records,
// or a longer span of time): sortedKeys sorts them then.
func packedKeys(runs [][]record.Record) (keys []uint64, ok bool) {
	if len(runs) > 1<<packRunBits {
		return nil, false
	}
	n := 0
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, run := range runs {
		if len(run) > 1<<packPos {
			return nil, false
		}
		n += len(run)
		for i := range run {
			ms := run[i].Time.UnixMilli()
			lo, hi = min(lo, ms), max(hi, ms)
		}
	}
	if n > 0 && uint64(hi-lo) >= 1<<(64-packTimeBit) {
		return nil, false
	}
	keys = make([]uint64, 0, n)
	for ri, run := range runs {
		for i := range run {
			keys = append(keys, uint64(run[i].Time.UnixMilli()-lo)<<packTimeBit|uint64(ri)<<packPos|uint64(i))
		}
	}
	return keys, true
}

// sortedKeys calls add for each record of runs in (time, run, position)
// order, for runs packedKeys cannot number. It sorts keys rather than a
// copy of the records: 16 bytes per record instead of 96. The run and
// position make the order stable.
func sortedKeys(runs [][]record.Record, add func(run, pos int) error) error {
	type key struct {
		ms       int64
		run, pos int32
	}
	n := 0
	for _, run := range runs {
		n += len(run)
	}
	keys := make([]key, 0, n)
	for ri, run := range runs {
		for i := range run {
			keys = append(keys, key{run[i].Time.UnixMilli(), int32(ri), int32(i)})
		}
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.ms, b.ms), cmp.Compare(a.run, b.run), cmp.Compare(a.pos, b.pos))
	})
	for _, k := range keys {
		if err := add(int(k.run), int(k.pos)); err != nil {
			return err
		}
	}
	return nil
}
