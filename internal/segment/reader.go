package segment

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math"
	"math/bits"
	"net/netip"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/retentiond/retentiond/internal/fsutil"
	"github.com/retentiond/retentiond/internal/keys"
	"github.com/retentiond/retentiond/internal/record"
)

// BlockMeta describes one block without decoding it.
type BlockMeta struct {
	MinTime, MaxTime int64 // unix milliseconds of the block's first and last row
	Rows             int
}

// Block holds the decoded columns of one block, in time order. Columns that
// were not requested are nil. DomainIDs and UserAgentIDs index
// Reader.Domains and Reader.UserAgents.
type Block struct {
	Times        []int64 // unix milliseconds
	IPs          []netip.Addr
	DomainIDs    []uint32
	UserAgentIDs []uint32
	Paths        []string
}

// Reader is an open segment file. All its methods except Close are safe
// for concurrent use; the footer is parsed once by Open and immutable
// afterwards, and blocks and index pages are read from the read-only
// mapping of the file. Close must not race with reads (the store closes a
// segment only once no snapshot holds it).
type Reader struct {
	data    []byte // the file, mapped read-only; nil after Close or when src is set
	src     Source // a segment read by ranges (object storage); nil for a mapped file
	mapped  bool   // data is a mapping that Close unmaps (not OpenBytes' memory)
	closed  atomic.Bool
	path    string
	size    int64
	version byte
	// footer is the parsed footer: blocks, dictionaries, index locations,
	// and (format 2) the rows per dictionary entry.
	footer
	// filter is the address filter (format 2; nil for v1 files), a slice
	// of the mapped footer.
	filter []byte
	// fc opens the sealed units of an encrypted segment; nil when plain.
	fc  *keys.FileCipher
	mix func(uint64) uint64 // the filter's keyed permutation; nil when plain

	// decoded counts blocks decoded (once per view) and pagesRead the IP
	// index pages lookups read, so that this package's tests can prove an
	// index spared them. Other packages' tests observe reads through a
	// Source (OpenSource).
	decoded   atomic.Int64
	pagesRead atomic.Int64

	// domainOrder lists the domain ids sorted by name (DomainID); nil
	// unless the reader was opened with OpenOptions.IndexDomains.
	domainOrder []uint32

	// numbers are the caller's numbers for the dictionary entries
	// (OpenOptions.Numbers); nil when none.
	numbers *Numbers

	// domainsLower is set once (domainsOnce) to whether every domain of
	// the dictionary is in record.LowerDomain form.
	domainsOnce  sync.Once
	domainsLower bool

	// basePaths is block 0's path dictionary (format 4, pathdict.go),
	// nil until a block that shares it is decoded, and again after
	// eviction.
	basePaths atomic.Pointer[pathDict]
}

// Open opens a segment, validating its header, trailer and footer checksum.
// Block contents are checked by ReadBlock. Damage is reported as a
// *CorruptionError.
//
// The file is mapped read-only into memory and its descriptor closed: a
// segment is immutable once written, block reads then cost no system call
// and no copy (a search reads hundreds of columns), and 730 open days hold
// no file descriptors. A removed file's blocks stay readable through the
// mapping until Close, exactly as they would through an open descriptor.
// fsutil.Map does the mapping (on systems without mmap it reads the file
// into memory instead).
func Open(path string) (*Reader, error) { return OpenWith(path, OpenOptions{}) }

// KeySource gives the key of a day: *keys.Ring is one.
type KeySource interface {
	Lookup(day time.Time) (*keys.DayKey, error)
}

// OpenOptions tune OpenWith.
type OpenOptions struct {
	// Keys gives the day key of an encrypted segment. Without it, plain
	// segments open and encrypted ones fail with ErrNoKeys.
	Keys KeySource
	// IndexDomains sorts the domain dictionary's ids by name at open, so
	// that DomainID (a search's exact domain term) is a binary search
	// instead of a pass over the dictionary. It costs 4 bytes per domain
	// and the sort, and pays off for a reader searched often for its
	// size: a day's head holds many in-memory parts, and a domain search
	// of the day looked through every part's whole dictionary.
	IndexDomains bool
	// Numbers, when set, are the caller's numbers for the segment's
	// dictionary entries (Info.Numbers of its writer), which Reader.Numbers
	// gives back. Open fails if they do not fit the dictionaries.
	Numbers *Numbers
}

// OpenWith is Open with options. A missing key (keys.ErrNoKey), a
// destroyed one (keys.ErrDestroyed) or a key other than the one the file
// was sealed under is an error but not a *CorruptionError: the file is
// intact, it needs a key.
func OpenWith(path string, opts OpenOptions) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open segment: %w", err)
	}
	defer f.Close() // the mapping outlives the descriptor
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open segment: %w", err)
	}
	r := &Reader{path: path, size: fi.Size()}
	if r.size < headerSize+trailerSize {
		return nil, r.corrupt(0, "file of %d bytes is too short", r.size)
	}
	if r.size > math.MaxInt {
		return nil, fmt.Errorf("open segment %s: file of %d bytes is too large to map", path, r.size)
	}
	r.data, err = fsutil.Map(f, int(r.size))
	if err != nil {
		return nil, fmt.Errorf("open segment: %w", err)
	}
	r.mapped = true
	if err := r.load(opts); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Source is a segment that is not a local file: an object in a bucket read
// with range requests. ReadAt has io.ReaderAt's contract; Size is the
// object's length; Name is what errors call it (never a credential).
type Source interface {
	io.ReaderAt
	Size() int64
	Name() string
}

// OpenSource opens a segment read through src instead of a mapping: every
// block, index page and the footer are fetched by range when first needed,
// so a search over a remote day reads the few ranges its index points to,
// not the whole object. The footer is read and checked once here.
func OpenSource(src Source, opts OpenOptions) (*Reader, error) {
	r := &Reader{path: src.Name(), size: src.Size(), src: src}
	if r.size < headerSize+trailerSize {
		return nil, r.corrupt(0, "file of %d bytes is too short", r.size)
	}
	if err := r.load(opts); err != nil {
		return nil, err
	}
	return r, nil
}

// OpenBytes opens a segment held in memory (WriteMemory's result), checked
// like a file. b must not change while the reader is in use; name is what
// errors call it.
func OpenBytes(b []byte, name string, opts OpenOptions) (*Reader, error) {
	r := &Reader{path: name, size: int64(len(b)), data: b}
	if r.size < headerSize+trailerSize {
		return nil, r.corrupt(0, "segment of %d bytes is too short", r.size)
	}
	if err := r.load(opts); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Reader) corrupt(off int64, format string, args ...any) error {
	return &CorruptionError{File: r.path, Offset: off, Err: fmt.Errorf(format, args...)}
}

// readAt returns the n bytes at off. They are the mapped file itself,
// read-only (the capacity is cut so that an append copies).
func (r *Reader) readAt(off int64, n int64) ([]byte, error) {
	if r.src != nil {
		return r.readSource(off, n)
	}
	if r.data == nil {
		return nil, fmt.Errorf("segment %s: read after close", r.path)
	}
	if off < 0 || n < 0 || off > int64(len(r.data))-n {
		return nil, r.corrupt(off, "truncated: %d bytes at %d beyond the end of a %d-byte file", n, off, len(r.data))
	}
	return r.data[off : off+n : off+n], nil
}

// readSource reads the n bytes at off from a remote source into a fresh
// buffer (the caller may keep it: nothing else refers to it).
func (r *Reader) readSource(off, n int64) ([]byte, error) {
	if r.closed.Load() {
		return nil, fmt.Errorf("segment %s: read after close", r.path)
	}
	if off < 0 || n < 0 || off > r.size-n {
		return nil, r.corrupt(off, "truncated: %d bytes at %d beyond the end of a %d-byte object", n, off, r.size)
	}
	buf := make([]byte, n)
	if _, err := r.src.ReadAt(buf, off); err != nil {
		return nil, fmt.Errorf("segment %s: read %d bytes at %d: %w", r.path, n, off, err)
	}
	return buf, nil
}

// load parses the header and footer of the segment as every Open does,
// sorts the domains and keeps the caller's numbers when opts ask for it.
func (r *Reader) load(opts OpenOptions) error {
	if err := r.loadFooter(opts.Keys); err != nil {
		return err
	}
	if opts.IndexDomains {
		r.indexDomains()
	}
	return r.setNumbers(opts.Numbers)
}

func (r *Reader) loadFooter(ks KeySource) error {
	h, err := r.readAt(0, headerSize)
	if err != nil {
		return err
	}
	if string(h[:4]) != magic {
		return r.corrupt(0, "bad magic %q", h[:4])
	}
	if h[4] < MinVersion || h[4] > Version {
		return r.corrupt(4, "unsupported format version %d (this build reads %d to %d)", h[4], MinVersion, Version)
	}
	r.version = h[4]
	flags := h[5]
	if h[5]&^flagEncrypted != 0 || h[6] != 0 || h[7] != 0 || (flags != 0 && r.version < 2) {
		return r.corrupt(5, "reserved header bytes are not zero")
	}
	dataOff := int64(headerSize)
	if flags&flagEncrypted != 0 {
		if err := r.openKey(ks); err != nil {
			return err
		}
		dataOff += encHeaderSize
	}
	tOff := r.size - trailerSize
	t, err := r.readAt(tOff, trailerSize)
	if err != nil {
		return err
	}
	tr, bad, err := parseTrailer(t, r.version, flags)
	if err != nil {
		return r.corrupt(tOff+int64(bad), "%w", err)
	}
	footerOff, metaOff := tr.footerOff, tr.metaOff
	if footerOff < uint64(dataOff) || footerOff > metaOff || metaOff+4 > uint64(tOff) || uint64(tOff)-footerOff > math.MaxInt32 {
		return r.corrupt(tOff, "footer offsets %d/%d out of range", footerOff, metaOff)
	}
	footerBytes, err := r.readAt(int64(footerOff), tOff-int64(footerOff))
	if err != nil {
		return err
	}
	if got, want := crc(footerBytes), tr.footerCRC; got != want {
		return r.corrupt(int64(footerOff), "footer: %w (crc32c %08x, trailer says %08x)", ErrChecksum, got, want)
	}
	metaRel := int64(metaOff - footerOff)
	metaLen := binary.LittleEndian.Uint32(footerBytes[metaRel:])
	if metaLen > maxMetaRaw {
		return r.corrupt(int64(metaOff), "meta section of %d bytes is too large", metaLen)
	}
	metaComp := footerBytes[metaRel+4:]
	if r.fc != nil {
		if metaComp, err = r.fc.Open(nil, metaComp, metaOff+4, unitMeta, 0); err != nil {
			return r.corrupt(int64(metaOff), "meta section: %w", err)
		}
	}
	meta, err := decompress(metaComp, int(metaLen))
	if err != nil {
		return r.corrupt(int64(metaOff), "meta section: %w", err)
	}
	if r.footer, err = parseMeta(meta, r.version, dataOff, int64(footerOff), metaRel); err != nil {
		return r.corrupt(int64(metaOff), "meta section: %w", err)
	}
	if r.version >= 2 {
		// Covered by the footer CRC checked above; used in place.
		rel := r.filterOff - int64(footerOff)
		r.filter = footerBytes[rel : rel+int64(r.filterLen) : rel+int64(r.filterLen)]
	}
	return nil
}

// openKey reads an encrypted segment's key header (key id, day, salt) and
// prepares the file's cipher with the day's key from ks.
func (r *Reader) openKey(ks KeySource) error {
	eh, err := r.readAt(headerSize, encHeaderSize)
	if err != nil {
		return err
	}
	id := keys.ID(eh[:8])
	day := time.Unix(int64(binary.LittleEndian.Uint64(eh[8:16])), 0).UTC()
	if !day.Equal(record.Day(day)) {
		return r.corrupt(headerSize+8, "key header: day is not a midnight UTC")
	}
	if ks == nil {
		return fmt.Errorf("open segment %s (key %s of day %s): %w", r.path, id, record.DayString(day), ErrNoKeys)
	}
	k, err := ks.Lookup(day)
	if err != nil {
		return fmt.Errorf("open segment %s (key %s): %w", r.path, id, err)
	}
	if k.ID() != id {
		return fmt.Errorf("open segment %s: sealed under key %s, the key directory holds key %s for day %s: %w",
			r.path, id, k.ID(), record.DayString(day), keys.ErrNoKey)
	}
	var salt [keys.SaltSize]byte
	copy(salt[:], eh[16:])
	if r.fc, err = k.OpenFile(salt); err != nil {
		return fmt.Errorf("open segment %s: %w", r.path, err)
	}
	r.mix = r.fc.Mix
	return nil
}

// KeyID returns the id of the day key an encrypted segment is sealed
// under; ok is false for a plain segment.
func (r *Reader) KeyID() (id keys.ID, ok bool) {
	if r.fc == nil {
		return id, false
	}
	return r.fc.KeyID(), true
}

// Version returns the segment's format version.
func (r *Reader) Version() int { return int(r.version) }

// DomainRows returns, per domain id, how many rows hold that domain, or nil
// for a format-1 segment that does not store it. The slice is shared;
// callers must not modify it.
func (r *Reader) DomainRows() []uint64 { return r.domainRows }

// UserAgentRows is DomainRows for the user-agent dictionary.
func (r *Reader) UserAgentRows() []uint64 { return r.uaRows }

// Path returns the file name the reader was opened with.
func (r *Reader) Path() string { return r.path }

// Info summarises the segment.
func (r *Reader) Info() Info {
	info := Info{Records: r.records, Blocks: len(r.blocks), Bytes: r.size}
	if len(r.blocks) > 0 {
		info.MinTime = time.UnixMilli(r.blocks[0].minT).UTC()
		info.MaxTime = time.UnixMilli(r.blocks[len(r.blocks)-1].maxT).UTC()
	}
	return info
}

// Close unmaps the file. Reads after Close fail with an error.
func (r *Reader) Close() error {
	r.dropBasePaths()
	if r.src != nil {
		r.closed.Store(true)
		return nil
	}
	if r.data == nil {
		return nil
	}
	data := r.data
	r.data = nil
	if !r.mapped {
		return nil
	}
	if err := fsutil.Unmap(data); err != nil {
		return fmt.Errorf("close segment %s: %w", r.path, err)
	}
	return nil
}

// NumBlocks returns the number of blocks.
func (r *Reader) NumBlocks() int { return len(r.blocks) }

// Block returns the metadata of block i.
func (r *Reader) Block(i int) BlockMeta {
	b := r.blocks[i]
	return BlockMeta{MinTime: b.minT, MaxTime: b.maxT, Rows: b.rows}
}

// Domains returns the domain dictionary: a row's domain id indexes it. The
// slice is shared; callers must not modify it.
func (r *Reader) Domains() []string { return r.domains }

// DomainsLowerCase reports whether every domain of the dictionary is
// already in record.LowerDomain form, as ingest stores them since one
// host-name rule serves ingest and queries. A search then compares stored
// names as they are instead of lower-casing each for every term: a domain
// count spent most of its CPU lower-casing the dictionaries. Computed once,
// on first use (older files may hold non-ASCII names an ASCII-only rule
// kept).
func (r *Reader) DomainsLowerCase() bool {
	r.domainsOnce.Do(func() {
		r.domainsLower = true
		for _, d := range r.domains {
			if record.LowerDomain(d) != d {
				r.domainsLower = false
				break
			}
		}
	})
	return r.domainsLower
}

// UserAgents returns the user-agent dictionary: a row's user-agent id indexes
// it. The slice is shared; callers must not modify it.
func (r *Reader) UserAgents() []string { return r.uas }

// Iter yields every record in time order, block by block, decoding one block
// at a time. After an error it stops.
func (r *Reader) Iter() iter.Seq2[record.Record, error] {
	return func(yield func(record.Record, error) bool) {
		c := r.Cursor()
		for {
			rec, ok, err := c.Next()
			if err != nil {
				yield(record.Record{}, err)
				return
			}
			if !ok || !yield(rec, nil) {
				return
			}
		}
	}
}

// Cursor returns a cursor over every record in time order, as Iter yields
// them, for a caller that pulls from several segments at once: a merge
// that pulled from Iter through iter.Pull paid a coroutine switch per
// record.
func (r *Reader) Cursor() *Cursor { return &Cursor{r: r} }

// Cursor reads a segment's records in time order, decoding one block at a
// time (Reader.Cursor) into buffers it reuses from block to block: a merge
// reads every block of its sources, and ReadBlock's fresh slices per block
// were a third of what the daemon allocated (the flush's merge, and the
// seal's compactions).
type Cursor struct {
	r    *Reader
	blk  int       // the next block to read
	v    BlockView // the block being read
	rows int       // rows of v (0 before the first block)
	i    int       // the next row of v
	// The block's id columns and path indexes, per row.
	doms, uas, pathIdx []uint32
	// own holds the block's own paths and base block 0's (format 4), each
	// as one string that rows take substrings of: a row's path must
	// outlive the view's buffers (a merge's writer keeps it until its own
	// block is written). base is copied once per segment, not per block.
	own, base string
	baseOf    *pathDict
}

// Next returns the next record, false at the end. After an error the
// cursor is at its end.
func (c *Cursor) Next() (record.Record, bool, error) {
	row, ok, err := c.NextRow()
	return row.Record, ok, err
}

// Row is a record with its domain's and user agent's ids in its segment's
// dictionaries (Domains, UserAgents).
type Row struct {
	Record            record.Record
	Domain, UserAgent uint32
}

// NextRow is Next with the record's dictionary ids, which a merge hands
// to Writer.AddKnown.
func (c *Cursor) NextRow() (Row, bool, error) {
	r := c.r
	for c.i >= c.rows {
		if c.blk >= len(r.blocks) {
			return Row{}, false, nil
		}
		if err := c.load(c.blk); err != nil {
			c.blk, c.rows = len(r.blocks), 0
			return Row{}, false, err
		}
		c.blk++
		c.i = 0
	}
	j := c.i
	c.i++
	dom, ua := c.doms[j], c.uas[j]
	return Row{
		Record: record.Record{
			Time:      time.UnixMilli(c.v.Times[j]).UTC(),
			Domain:    r.domains[dom],
			Path:      c.v.paths.pathIn(int(c.pathIdx[j]), c.own, c.base),
			UserAgent: r.uas[ua],
			IP:        c.v.IP(j),
		},
		Domain: dom, UserAgent: ua,
	}, true, nil
}

// load decodes block i into the cursor's view.
func (c *Cursor) load(i int) error {
	v := &c.v
	if err := c.r.DecodeBlock(i, ColAll, v); err != nil {
		return err
	}
	var err error
	if c.doms, err = v.DomainIDs(); err != nil {
		return err
	}
	if c.uas, err = v.UserAgentIDs(); err != nil {
		return err
	}
	if c.pathIdx, err = v.PathIdx(); err != nil {
		return err
	}
	p := &v.paths
	p.build()
	c.own = string(p.arena)
	if p.nBase > 0 && p.base != c.baseOf {
		c.base, c.baseOf = string(p.base.arena), p.base
	}
	c.rows = v.Rows
	return nil
}

// allBlocks is the answer of an index lookup whose index bytes turned out to
// be damaged: every block. It costs a full scan but never hides a row; the
// damage is logged (without any record contents) so an operator can act.
func (r *Reader) allBlocks(off int64, err error) []int {
	slog.Warn("segment index unreadable, scanning all blocks", "file", r.path, "offset", off, "err", err)
	out := make([]int, len(r.blocks))
	for i := range out {
		out[i] = i
	}
	return out
}

// mayHoldIP reports whether the segment may hold a, from its address
// filter: false is certain, true is wrong about 1% of the time for an
// absent address (and always true for format 1, which has no filter).
func (r *Reader) mayHoldIP(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	return bloomMayContain(r.filter, appendKey(nil, a.WithZone("")), r.mix)
}

// MayHoldPrefix reports whether the segment may hold an address in p
// (netip.Prefix.Contains semantics): false is certain. The filter answers
// for single addresses, IPv4 prefixes of /24 or longer and IPv6 prefixes
// of /48 or longer; for wider prefixes, and format-1 segments, the answer
// is always true.
func (r *Reader) MayHoldPrefix(p netip.Prefix) bool {
	if !p.IsValid() {
		return false
	}
	a := p.Addr()
	switch {
	case r.filter == nil:
		return true
	case p.IsSingleIP():
		return r.mayHoldIP(a)
	case a.Is4() && p.Bits() >= bloomNet4Bits, !a.Is4() && p.Bits() >= bloomNet6Bits:
		return bloomMayContain(r.filter, appendNetKey(nil, a), r.mix)
	}
	return true
}

// blocksForIP returns the ascending numbers of the blocks that hold a.
func (r *Reader) blocksForIP(a netip.Addr) []int {
	if !a.IsValid() {
		return nil
	}
	blocks, _ := r.BlockRowsForPrefix(netip.PrefixFrom(a.WithZone(""), a.BitLen()), false)
	return blocks
}

// BlocksForPrefix returns the ascending numbers of the blocks that hold any
// address in p, with netip.Prefix.Contains semantics: an IPv4 prefix matches
// IPv4 addresses only, an IPv6 prefix (including ::ffff:0:0/96) IPv6 ones
// only. The matching index entries are one contiguous range.
func (r *Reader) BlocksForPrefix(p netip.Prefix) []int {
	blocks, _ := r.BlockRowsForPrefix(p, false)
	return blocks
}

// BlockRowsForPrefix is BlocksForPrefix that also returns, when withRows is
// set, how many rows of each of those blocks hold an address in p. rows is
// nil for a format-1 segment, which does not store them, and when the
// index could not be read (the answer is then every block).
func (r *Reader) BlockRowsForPrefix(p netip.Prefix, withRows bool) (blocks, rows []int) {
	if !p.IsValid() {
		return nil, nil
	}
	if !r.MayHoldPrefix(p) {
		return nil, nil // the address filter rules the prefix out
	}
	lo, hi := prefixBounds(p)
	return r.blocksForKeys(lo, hi, withRows && r.version >= 2)
}

// blocksForKeys unions the postings of every index key in [lo, hi], and
// sums their row counts per block when withRows is set.
func (r *Reader) blocksForKeys(lo, hi []byte, withRows bool) (blocks, rows []int) {
	if len(r.ipPages) == 0 {
		return nil, nil
	}
	// The first page that can hold lo is the last one whose first key is <= lo.
	start := sort.Search(len(r.ipPages), func(i int) bool { return bytes.Compare(r.ipPages[i].first, lo) > 0 }) - 1
	start = max(start, 0)
	seen := make([]uint64, (len(r.blocks)+63)/64)
	var counts []int
	if withRows {
		counts = make([]int, len(r.blocks))
	}
	for pi := start; pi < len(r.ipPages) && bytes.Compare(r.ipPages[pi].first, hi) <= 0; pi++ {
		if err := r.scanIPPage(pi, lo, hi, seen, counts); err != nil {
			return r.allBlocks(r.ipPages[pi].off, err), nil
		}
	}
	blocks = bitmapToList(seen)
	if withRows {
		rows = make([]int, len(blocks))
		for i, b := range blocks {
			rows[i] = counts[b]
		}
	}
	return blocks, rows
}

// scanIPPage marks the blocks of every key of page pi in [lo, hi] in
// seen, and adds their row counts to counts (format 2) when it is not nil.
func (r *Reader) scanIPPage(pi int, lo, hi []byte, seen []uint64, counts []int) error {
	p := &r.ipPages[pi]
	r.pagesRead.Add(1)
	comp, err := r.readAt(p.off, int64(p.clen))
	if err != nil {
		return err
	}
	if crc(comp) != p.crc {
		return ErrChecksum
	}
	if r.fc != nil {
		if comp, err = r.fc.Open(nil, comp, uint64(p.off), unitIPPage, uint32(pi)); err != nil {
			return err
		}
	}
	raw, err := decompress(comp, p.rlen)
	if err != nil {
		return err
	}
	d := dec{b: raw}
	key := make([]byte, 0, 17)
	var postings []int
	for e := 0; e < p.entries; e++ {
		shared := d.count("ip key prefix", uint64(len(key)))
		suffix := d.bytes("ip key", d.count("ip key length", 17))
		key = append(key[:shared], suffix...)
		n := d.count("ip posting count", uint64(len(r.blocks)))
		if d.err != nil || !validKey(key) {
			return fmt.Errorf("%w: ip index entry", errMalformed)
		}
		in := bytes.Compare(key, lo) >= 0 && bytes.Compare(key, hi) <= 0
		postings = postings[:0]
		blk := uint64(0)
		for j := 0; j < n; j++ {
			delta := d.uvarint("ip posting")
			if j > 0 && delta == 0 {
				d.fail("ip posting order")
			}
			blk += delta
			if d.err != nil || blk >= uint64(len(r.blocks)) {
				return fmt.Errorf("%w: ip posting", errMalformed)
			}
			if in {
				seen[blk/64] |= 1 << (blk % 64)
			}
			postings = append(postings, int(blk))
		}
		if r.version >= 2 {
			for _, b := range postings {
				rows := d.count("ip posting rows", uint64(r.blocks[b].rows))
				if d.err != nil || rows == 0 {
					return fmt.Errorf("%w: ip posting rows", errMalformed)
				}
				if in && counts != nil {
					counts[b] += rows
				}
			}
		}
		if bytes.Compare(key, hi) > 0 {
			return nil
		}
	}
	return d.done("ip index page")
}

// BlocksForDomains returns the ascending numbers of the blocks that hold any
// of the given domain ids. Ids outside the dictionary match nothing.
func (r *Reader) BlocksForDomains(ids []uint32) []int {
	seen := make([]uint64, (len(r.blocks)+63)/64)
	for _, id := range ids {
		if int(id) >= len(r.domPost) {
			continue
		}
		p := r.domPost[id]
		if err := r.scanDomainPosting(p, seen); err != nil {
			return r.allBlocks(p.off, err)
		}
	}
	return bitmapToList(seen)
}

func (r *Reader) scanDomainPosting(p postingRef, seen []uint64) error {
	b, err := r.readAt(p.off, int64(p.n))
	if err != nil {
		return err
	}
	if crc(b) != p.crc {
		return ErrChecksum
	}
	if len(b) == 0 {
		return fmt.Errorf("%w: empty domain posting", errMalformed)
	}
	switch b[0] {
	case postingList:
		d := dec{b: b[1:]}
		n := d.count("domain posting count", uint64(len(r.blocks)))
		blk := uint64(0)
		for j := 0; j < n; j++ {
			delta := d.uvarint("domain posting")
			if j > 0 && delta == 0 {
				d.fail("domain posting order")
			}
			blk += delta
			if d.err != nil || blk >= uint64(len(r.blocks)) {
				return fmt.Errorf("%w: domain posting", errMalformed)
			}
			seen[blk/64] |= 1 << (blk % 64)
		}
		return d.done("domain posting")
	case postingBitmap:
		if len(b)-1 != (len(r.blocks)+7)/8 {
			return fmt.Errorf("%w: domain bitmap length", errMalformed)
		}
		for blk := range r.blocks {
			if b[1+blk/8]&(1<<(blk%8)) != 0 {
				seen[blk/64] |= 1 << (blk % 64)
			}
		}
		return nil
	}
	return fmt.Errorf("%w: domain posting kind %d", errMalformed, b[0])
}

func bitmapToList(seen []uint64) []int {
	var out []int
	for w, b := range seen {
		for b != 0 {
			tz := bits.TrailingZeros64(b)
			out = append(out, w*64+tz)
			b &^= 1 << tz
		}
	}
	return out
}
