package segment

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/retentiond/retentiond/internal/keys"
)

// BlockView is one block decoded in dictionary form, into buffers that are
// reused from block to block. A search decodes hundreds of blocks per query,
// and per-row values (a netip.Addr or a string per row) cost more in
// allocation and garbage collection than the decoding itself. The dictionary
// form lets a filter test each distinct address or path once, look rows up
// by index, and materialise only the rows that match.
//
// Columns are decoded on demand: DecodeBlock decodes only the requested
// columns that the view does not already hold for that block, so a filter
// can read one column, drop the block when no row matches, and read the
// output columns only for blocks with a match. All slices are valid until
// the view decodes another block.
//
// CRCs are checked when a column is decoded. Values of the id and
// path-index columns are checked against their dictionaries when they are
// read (a few rows, or the whole column), so those accessors return errors:
// a value out of range, which only a forged checksum or a writer bug can
// produce, is a *CorruptionError naming the column.
type BlockView struct {
	// Block is the block number, Rows its row count; Have the columns
	// decoded so far.
	Block, Rows int
	Have        Columns

	Times []int64 // unix milliseconds, per row (ColTime)
	// IPIdx holds per row an index into the block's address dictionary
	// (ColIP): the distinct addresses, IPv4 ascending then IPv6
	// ascending, read with NumIPs, IPAt and IPRange.
	IPIdx []uint32
	ips   ipDict

	// The domain and user-agent id columns and the path index are kept as
	// byte planes: DomainIDs and friends merge a whole column for a
	// filter, DomainID and friends read single rows for output.
	dom, ua uintCol
	domRaw  []byte
	uaRaw   []byte

	r       *Reader // the reader whose block the view holds
	paths   pathDict
	raw     []byte // decompressed column bytes
	open    []byte // an encrypted segment's column, opened (still compressed)
	scratch []uint32
}

// NumPaths returns the number of distinct paths of the block (ColPath).
func (v *BlockView) NumPaths() int { return v.paths.len() }

// pathBytes returns distinct path j without copying (the first call
// rebuilds every path of the block; EachPath and PathsOfRows do not). The
// bytes are overwritten when the view decodes another block.
func (v *BlockView) pathBytes(j int) []byte { return v.paths.bytes(j) }

// Path returns distinct path j as a new string, safe to keep.
func (v *BlockView) Path(j int) string { return string(v.paths.bytes(j)) }

// EachPath calls fn with every distinct path of the block in dictionary
// order (ColPath), rebuilding them one after the other in one buffer; the
// bytes are valid only during the call. Filters use it to test each path
// once.
func (v *BlockView) EachPath(fn func(j int, path []byte)) { v.paths.walk(fn) }

// NumBasePaths returns how many of the block's distinct paths are block
// 0's (format 4; 0 in block 0 and in older formats): its entries 0 to
// NumBasePaths()-1 are Reader.EachBasePath's.
func (v *BlockView) NumBasePaths() int { return v.paths.nBase }

// EachOwnPath is EachPath over the entries after block 0's only, so that a
// filter tests block 0's paths once per segment (Reader.EachBasePath).
func (v *BlockView) EachOwnPath(fn func(j int, path []byte)) { v.paths.walkOwn(fn) }

// DomainIDs returns every row's domain id, an index into Reader.Domains
// (ColDomain).
func (v *BlockView) DomainIDs() ([]uint32, error) { return v.check(ColDomain, v.dom.values) }

// UserAgentIDs returns every row's user-agent id, an index into
// Reader.UserAgents (ColUserAgent).
func (v *BlockView) UserAgentIDs() ([]uint32, error) { return v.check(ColUserAgent, v.ua.values) }

// PathIdx returns every row's index into the block's path dictionary
// (ColPath).
func (v *BlockView) PathIdx() ([]uint32, error) { return v.check(ColPath, v.paths.idx.values) }

// DomainID returns row i's domain id without merging the column (ColDomain).
func (v *BlockView) DomainID(i int) (uint32, error) { return v.checkAt(ColDomain, &v.dom, i) }

// UserAgentID returns row i's user-agent id without merging the column
// (ColUserAgent).
func (v *BlockView) UserAgentID(i int) (uint32, error) { return v.checkAt(ColUserAgent, &v.ua, i) }

// PathsOfRows returns the paths of the given rows as new strings, reading
// only those rows' indexes and rebuilding the dictionary only up to the
// largest of them (ColPath).
func (v *BlockView) PathsOfRows(rows []int) ([]string, error) {
	want := make([]uint32, len(rows))
	for k, i := range rows {
		j, err := v.checkAt(ColPath, &v.paths.idx, i)
		if err != nil {
			return nil, err
		}
		want[k] = j
	}
	return v.paths.strings(want), nil
}

// check runs a whole-column accessor and reports its failure as
// corruption of that column.
func (v *BlockView) check(col Columns, f func() ([]uint32, error)) ([]uint32, error) {
	vals, err := f()
	if err != nil {
		return nil, v.corrupt(col, err)
	}
	return vals, nil
}

func (v *BlockView) checkAt(col Columns, u *uintCol, i int) (uint32, error) {
	x, err := u.at(i)
	if err != nil {
		return 0, v.corrupt(col, err)
	}
	return x, nil
}

// corrupt reports err as damage in column col of the view's block.
func (v *BlockView) corrupt(col Columns, err error) error {
	if v.r.version >= 3 && col&(ColDomain|ColUserAgent) != 0 {
		col = ColIP // format 3 keeps these ids in the IP column
	}
	b := &v.r.blocks[v.Block]
	off := b.off
	c := 0
	for ; Columns(1)<<c != col; c++ {
		off += int64(b.cols[c].clen)
	}
	return v.r.corrupt(off, "block %d %s column: %w", v.Block, columnNames[c], err)
}

// IP returns row i's address (ColIP).
func (v *BlockView) IP(i int) netip.Addr { return v.ips.at(int(v.IPIdx[i])) }

// NumIPs returns the number of distinct addresses of the block (ColIP).
func (v *BlockView) NumIPs() int { return v.ips.len() }

// IPAt returns distinct address k (ColIP).
func (v *BlockView) IPAt(k int) netip.Addr { return v.ips.at(k) }

// IPRange returns the dictionary indexes [lo, hi) of the block's addresses
// in p, with netip.Prefix.Contains semantics, by binary search: no address
// is built (ColIP).
func (v *BlockView) IPRange(p netip.Prefix) (lo, hi int) { return v.ips.prefixRange(p) }

// DecodeBlock decodes the requested columns of block i into v, keeping the
// columns v already holds for block i of this reader. Each column's CRC32C is checked
// before it is decoded; damage is a *CorruptionError with the column's
// offset. Each block counts once per view in r.decoded.
func (r *Reader) DecodeBlock(i int, cols Columns, v *BlockView) error {
	if i < 0 || i >= len(r.blocks) {
		return fmt.Errorf("segment %s: block %d out of range [0, %d)", r.path, i, len(r.blocks))
	}
	if cols&ColAll == 0 {
		return nil
	}
	b := &r.blocks[i]
	if v.r != r || v.Block != i || v.Have == 0 {
		v.r, v.Block, v.Rows, v.Have = r, i, b.rows, 0
		r.decoded.Add(1)
	}
	todo := cols & ColAll &^ v.Have
	if r.version >= 3 && todo&(ColDomain|ColUserAgent) != 0 {
		// Format 3 keeps the domain and user-agent ids in the IP
		// column; their own columns are empty.
		todo = (todo | ColIP) &^ (ColDomain | ColUserAgent) &^ v.Have
	}
	if todo == 0 {
		return nil
	}
	// Read the span from the first to the last wanted column at once:
	// columns are adjacent, and one read of a few KiB more beats a system
	// call per column.
	var colOff [numColumns + 1]int64
	colOff[0] = b.off
	first, last := -1, 0
	for c := 0; c < numColumns; c++ {
		colOff[c+1] = colOff[c] + int64(b.cols[c].clen)
		if todo&(1<<c) != 0 {
			if first < 0 {
				first = c
			}
			last = c
		}
	}
	span, err := r.readAt(colOff[first], colOff[last+1]-colOff[first])
	if err != nil {
		return err
	}
	for c := first; c <= last; c++ {
		col := Columns(1) << c
		if todo&col == 0 {
			continue
		}
		cm, off := b.cols[c], colOff[c]
		comp, err := r.openColumn(v.open[:0], span[off-colOff[first]:colOff[c+1]-colOff[first]], off, i, c, cm.crc)
		if err != nil {
			v.Have = 0
			return err
		}
		if r.fc != nil {
			v.open = comp
		}
		// Columns read lazily keep their own buffers: they are read after
		// other columns have been decoded.
		dst := &v.raw
		switch col {
		case ColPath:
			dst = &v.paths.raw
		case ColDomain:
			dst = &v.domRaw
		case ColUserAgent:
			dst = &v.uaRaw
		case ColIP:
			dst = &v.ips.raw
		}
		*dst, err = decompressInto(*dst, comp, int(cm.rlen))
		var base *pathDict
		if err == nil && col == ColPath && r.version >= 4 && i > 0 && basePathCount(*dst) > 0 {
			// Block 0's paths, shared by this block: damage there is
			// reported at block 0's offset.
			if base, err = r.basePathDict(); err != nil {
				v.Have = 0
				return err
			}
		}
		if err == nil {
			err = r.decodeColumn(v, col, *dst, b, base)
		}
		if err != nil {
			v.Have = 0 // a half-decoded column must not be used
			return r.corrupt(off, "block %d %s column: %w", i, columnNames[c], err)
		}
		v.Have |= col
		if col == ColIP && r.version >= 3 {
			v.Have |= ColDomain | ColUserAgent
		}
	}
	return nil
}

// openColumn checks the CRC32C of column c of block i, stored at off, and
// opens it when the segment is encrypted (into buf, reused). It returns
// the column's compressed bytes.
func (r *Reader) openColumn(buf, comp []byte, off int64, i, c int, want uint32) ([]byte, error) {
	if got := crc(comp); got != want {
		return nil, r.corrupt(off, "block %d %s column: %w (crc32c %08x, footer says %08x)",
			i, columnNames[c], ErrChecksum, got, want)
	}
	if r.fc == nil {
		return comp, nil
	}
	out, err := r.fc.Open(buf, comp, uint64(off), unitColumn, uint32(i)<<3|uint32(c))
	if errors.Is(err, keys.ErrDestroyed) {
		// Not damage: the purge destroyed the day under the read.
		return nil, fmt.Errorf("segment %s: %w", r.path, err)
	}
	if err != nil {
		return nil, r.corrupt(off, "block %d %s column: %w", i, columnNames[c], err)
	}
	return out, nil
}

func (r *Reader) decodeColumn(v *BlockView, c Columns, raw []byte, b *blockMeta, base *pathDict) (err error) {
	if r.version == 1 {
		switch c {
		case ColTime:
			v.Times, err = decodeTimesV1(v.Times, raw, b.rows, b.minT, b.maxT)
			return err
		case ColDomain:
			ids, err := decodeIDsV1(v.dom.all, raw, b.rows, len(r.domains), "domain")
			v.dom.preset(ids, "domain id")
			return err
		case ColUserAgent:
			ids, err := decodeIDsV1(v.ua.all, raw, b.rows, len(r.uas), "user agent")
			v.ua.preset(ids, "user agent id")
			return err
		}
	}
	switch c {
	case ColTime:
		v.Times, v.scratch, err = decodeTimes(v.Times, raw, b.rows, b.minT, b.maxT, v.scratch)
	case ColIP:
		err = v.ips.decode(raw, b.rows, r.version, len(r.domains), len(r.uas), &v.dom, &v.ua)
		v.IPIdx = v.ips.idx
	case ColDomain:
		err = decodeIDs(&v.dom, raw, b.rows, len(r.domains), "domain")
	case ColUserAgent:
		err = decodeIDs(&v.ua, raw, b.rows, len(r.uas), "user agent")
	case ColPath:
		err = v.paths.decode(raw, b.rows, r.version, base)
	}
	return err
}

// ReadBlock decodes the requested columns of block i into per-row slices
// owned by the caller. It is the simple form of DecodeBlock, for callers
// that keep the rows (verification, tests); a merge reads through a Cursor.
func (r *Reader) ReadBlock(i int, cols Columns) (*Block, error) {
	v := &BlockView{}
	if err := r.DecodeBlock(i, cols, v); err != nil {
		return nil, err
	}
	out := &Block{}
	var err error
	// Only the columns asked for: format 3 decodes the domain and
	// user-agent ids with the IP column.
	have := v.Have & cols
	if have&ColTime != 0 {
		out.Times = v.Times
	}
	if have&ColIP != 0 {
		out.IPs = make([]netip.Addr, v.Rows)
		dict := v.ips.addrs()
		for j, k := range v.IPIdx {
			out.IPs[j] = dict[k]
		}
	}
	if have&ColDomain != 0 {
		if out.DomainIDs, err = v.DomainIDs(); err != nil {
			return nil, err
		}
	}
	if have&ColUserAgent != 0 {
		if out.UserAgentIDs, err = v.UserAgentIDs(); err != nil {
			return nil, err
		}
	}
	if have&ColPath != 0 {
		idx, err := v.PathIdx()
		if err != nil {
			return nil, err
		}
		// One string for the whole dictionary (and one for block 0's
		// paths it shares); rows share substrings of them.
		p := &v.paths
		p.build()
		all, base := string(p.arena), ""
		if p.nBase > 0 {
			base = string(p.base.arena)
		}
		out.Paths = make([]string, v.Rows)
		for j, k := range idx {
			out.Paths[j] = p.pathIn(int(k), all, base)
		}
	}
	return out, nil
}
