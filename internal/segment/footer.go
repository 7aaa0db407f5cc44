package segment

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
)

// footer is what a segment's footer says about the file: the block table,
// the dictionaries, and where the IP index pages, the domain postings and
// the address filter lie. The writer fills one and encodes its meta section
// with appendMeta; Open decodes it with parseMeta. Both live in this file,
// next to the trailer's, so that the layout is written down once in code
// (docs/format.md is its prose form) and a new format version changes the
// two directions side by side.
//
// All offsets are file offsets; the meta section stores them relative to
// footerOff.
type footer struct {
	footerOff int64 // where the footer starts: the end of the last block
	records   int64
	blocks    []blockMeta
	domains   []string
	uas       []string
	numIPs    int // distinct addresses in the IP index
	ipPages   []ipPage
	domPost   []postingRef // per domain id

	// Format 2.
	domainRows []uint64 // per domain id: rows that hold it
	uaRows     []uint64 // per user-agent id: rows that hold it
	filterOff  int64    // the address filter (bloom.go)
	filterLen  int
}

// ipPage locates one compressed page of the IP index.
type ipPage struct {
	entries    int
	first      []byte // first key of the page
	off        int64  // file offset
	clen, rlen int
	crc        uint32
}

// postingRef locates one domain's posting (list or bitmap of blocks).
type postingRef struct {
	off int64 // file offset
	n   int
	crc uint32
}

// appendMeta appends the meta section of format version to b, uncompressed.
func (f *footer) appendMeta(b []byte, version byte) []byte {
	rel := func(off int64) uint64 { return uint64(off - f.footerOff) }
	b = binary.AppendUvarint(b, uint64(f.records))
	b = binary.AppendUvarint(b, uint64(len(f.blocks)))
	for _, blk := range f.blocks {
		b = binary.AppendUvarint(b, uint64(blk.rows))
		b = binary.AppendUvarint(b, uint64(blk.minT))
		b = binary.AppendUvarint(b, uint64(blk.maxT-blk.minT))
		for _, c := range blk.cols {
			b = binary.AppendUvarint(b, uint64(c.clen))
			b = binary.AppendUvarint(b, uint64(c.rlen))
			b = binary.LittleEndian.AppendUint32(b, c.crc)
		}
	}
	for _, dict := range [][]string{f.domains, f.uas} {
		b = binary.AppendUvarint(b, uint64(len(dict)))
		for _, s := range dict {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
	}
	b = binary.AppendUvarint(b, uint64(f.numIPs))
	b = binary.AppendUvarint(b, uint64(len(f.ipPages)))
	for _, p := range f.ipPages {
		b = binary.AppendUvarint(b, uint64(p.entries))
		b = binary.AppendUvarint(b, uint64(len(p.first)))
		b = append(b, p.first...)
		b = binary.AppendUvarint(b, rel(p.off))
		b = binary.AppendUvarint(b, uint64(p.clen))
		b = binary.AppendUvarint(b, uint64(p.rlen))
		b = binary.LittleEndian.AppendUint32(b, p.crc)
	}
	for _, p := range f.domPost {
		b = binary.AppendUvarint(b, rel(p.off))
		b = binary.AppendUvarint(b, uint64(p.n))
		b = binary.LittleEndian.AppendUint32(b, p.crc)
	}
	if version >= 2 {
		for _, counts := range [][]uint64{f.domainRows, f.uaRows} {
			for _, n := range counts {
				b = binary.AppendUvarint(b, n)
			}
		}
		b = binary.AppendUvarint(b, rel(f.filterOff))
		b = binary.AppendUvarint(b, uint64(f.filterLen))
	}
	return b
}

// parseMeta decodes the meta section of a segment of format version whose
// blocks start at dataOff (after the header), whose footer starts at
// footerOff and whose meta section starts metaRel bytes into the footer. It checks that everything the section points at lies where it
// should: blocks tile the bytes between header and footer, index pages,
// postings and the filter lie inside the footer before the meta section.
func parseMeta(meta []byte, version byte, dataOff, footerOff, metaRel int64) (footer, error) {
	f := footer{footerOff: footerOff}
	d := dec{b: meta}
	f.records = int64(d.uvarint("record count"))
	nBlocks := d.count("block count", uint64(len(meta)))
	f.blocks = make([]blockMeta, 0, nBlocks)
	off := dataOff
	var total int64
	prevMax := int64(0)
	for i := 0; i < nBlocks && d.err == nil; i++ {
		b := blockMeta{off: off}
		b.rows = d.count("block rows", MaxBlockRows)
		minT := d.uvarint("block min time")
		span := d.uvarint("block time span")
		if b.rows == 0 || minT > math.MaxInt64/2 || span > math.MaxInt64/2 {
			d.fail("block header")
			break
		}
		b.minT, b.maxT = int64(minT), int64(minT+span)
		if i > 0 && b.minT < prevMax {
			return f, fmt.Errorf("%w: block %d starts before block %d ends", errMalformed, i, i-1)
		}
		prevMax = b.maxT
		for c := range b.cols {
			b.cols[c] = colMeta{
				clen: uint32(d.count("column length", maxRawColumn)),
				rlen: uint32(d.count("column raw length", maxRawColumn)),
				crc:  d.u32("column crc"),
			}
			off += int64(b.cols[c].clen)
		}
		// Every stored byte must be covered by a checksum that some read
		// checks: format 3 never reads the (empty) domain and user-agent
		// columns, so they must hold nothing.
		if version >= 3 && (b.cols[2] != colMeta{} || b.cols[3] != colMeta{}) {
			return f, fmt.Errorf("%w: block %d has domain or user-agent column bytes (format 3 keeps them in the ip column)", errMalformed, i)
		}
		total += int64(b.rows)
		f.blocks = append(f.blocks, b)
	}
	if d.err == nil && (off != footerOff || total != f.records) {
		return f, fmt.Errorf("%w: blocks cover %d bytes and %d rows, want %d bytes and %d rows",
			errMalformed, off-dataOff, total, footerOff-dataOff, f.records)
	}
	for _, dict := range []*[]string{&f.domains, &f.uas} {
		n := d.count("dictionary size", uint64(len(meta)))
		*dict = make([]string, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			*dict = append(*dict, string(d.bytes("dictionary entry", d.count("dictionary entry length", maxFieldLen))))
		}
	}
	f.numIPs = d.count("ip count", uint64(max(f.records, 0))) // distinct IPs <= records; IP pages are outside the meta section
	nPages := d.count("ip page count", uint64(len(meta)))
	f.ipPages = make([]ipPage, 0, nPages)
	entries := 0
	for i := 0; i < nPages && d.err == nil; i++ {
		p := ipPage{entries: d.count("ip page entries", ipPageEntries)}
		p.first = d.bytes("ip page first key", d.count("ip page key length", 17))
		rel := d.count("ip page offset", uint64(metaRel))
		p.clen = d.count("ip page length", uint64(metaRel))
		p.rlen = d.count("ip page raw length", maxRawColumn)
		p.crc = d.u32("ip page crc")
		p.off = footerOff + int64(rel)
		if d.err != nil {
			break
		}
		if p.entries == 0 || !validKey(p.first) || int64(rel+p.clen) > metaRel ||
			(i > 0 && bytes.Compare(f.ipPages[i-1].first, p.first) >= 0) {
			d.fail("ip page")
			break
		}
		entries += p.entries
		f.ipPages = append(f.ipPages, p)
	}
	if d.err == nil && entries != f.numIPs {
		d.fail("ip page entry count")
	}
	f.domPost = make([]postingRef, 0, len(f.domains))
	for i := 0; i < len(f.domains) && d.err == nil; i++ {
		rel := d.count("domain posting offset", uint64(metaRel))
		n := d.count("domain posting length", uint64(metaRel))
		c := d.u32("domain posting crc")
		if d.err == nil && int64(rel+n) > metaRel {
			d.fail("domain posting range")
		}
		f.domPost = append(f.domPost, postingRef{off: footerOff + int64(rel), n: n, crc: c})
	}
	if version >= 2 && d.err == nil {
		f.domainRows = readCounts(&d, "domain", len(f.domains), f.records)
		f.uaRows = readCounts(&d, "user agent", len(f.uas), f.records)
		rel := d.count("address filter offset", uint64(metaRel))
		n := d.count("address filter length", bloomMaxBytes)
		if d.err == nil && (int64(rel+n) > metaRel || n < 8 || n%8 != 0) {
			d.fail("address filter range")
		}
		f.filterOff, f.filterLen = footerOff+int64(rel), n
	}
	return f, d.done("meta section")
}

// readCounts reads n row counts that must add up to records.
func readCounts(d *dec, what string, n int, records int64) []uint64 {
	out := make([]uint64, n)
	var sum uint64
	for i := range out {
		out[i] = uint64(d.count(what+" row count", uint64(records)))
		sum += out[i]
	}
	if d.err == nil && sum != uint64(records) {
		d.fail(what + " row counts (sum)")
	}
	return out
}

// trailer is the fixed-size end of a segment file: where the footer and its
// meta section start, the CRC32C of the footer, the format version and the
// header's flags, and the magic again.
type trailer struct {
	footerOff, metaOff uint64
	footerCRC          uint32
	version            byte
	flags              byte
}

// append appends the trailer's trailerSize bytes to b.
func (t trailer) append(b []byte) []byte {
	b = binary.LittleEndian.AppendUint64(b, t.footerOff)
	b = binary.LittleEndian.AppendUint64(b, t.metaOff)
	b = binary.LittleEndian.AppendUint32(b, t.footerCRC)
	b = append(b, t.version, t.flags, 0, 0)
	return append(b, magic...)
}

// parseTrailer decodes the trailerSize bytes b of a file whose header says
// version and flags. On error it returns the offset within b of the bad
// bytes.
func parseTrailer(b []byte, version, flags byte) (trailer, int, error) {
	if string(b[24:]) != magic {
		return trailer{}, 24, fmt.Errorf("bad trailer magic %q", b[24:])
	}
	if b[20] != version || b[21] != flags || b[22] != 0 || b[23] != 0 {
		return trailer{}, 20, fmt.Errorf("trailer version %d flags %d do not match header", b[20], b[21])
	}
	return trailer{
		footerOff: binary.LittleEndian.Uint64(b[0:]),
		metaOff:   binary.LittleEndian.Uint64(b[8:]),
		footerCRC: binary.LittleEndian.Uint32(b[16:]),
		version:   b[20],
		flags:     b[21],
	}, 0, nil
}
