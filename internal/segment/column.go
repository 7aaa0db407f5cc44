package segment

import (
	"encoding/binary"
	"net/netip"
	"slices"
)

// Column encodings (before zstd). Each one is chosen so that zstd sees long
// runs of similar bytes; docs/format.md has the measurements behind them.

// parts is a column's raw bytes cut into streams. Each stream is compressed
// as its own zstd frame (the frames are concatenated, which zstd decodes as
// the concatenation of their contents): lengths, text and indexes have very
// different statistics, and separate entropy tables measurably beat one.
type parts struct {
	buf  []byte
	ends []int
}

func (p *parts) reset() { p.buf, p.ends = p.buf[:0], p.ends[:0] }
func (p *parts) cut()   { p.ends = append(p.ends, len(p.buf)) }
func (p *parts) stream(i int) []byte {
	start := 0
	if i > 0 {
		start = p.ends[i-1]
	}
	return p.buf[start:p.ends[i]]
}

// appendUints writes small unsigned integers as fixed-width big-endian
// numbers, byte-transposed: a width byte (0-4, the bytes the largest value
// needs), then the most significant byte of every value, then the next
// byte, and so on. The high planes are then mostly zeros or long runs, which
// zstd shrinks to almost nothing, and the low plane gets its own statistics.
func appendUints(b []byte, vals []uint32) []byte {
	var maxV uint32
	for _, v := range vals {
		maxV = max(maxV, v)
	}
	width := 0
	for maxV > 0 {
		width++
		maxV >>= 8
	}
	b = append(b, byte(width))
	for plane := width - 1; plane >= 0; plane-- {
		for _, v := range vals {
			b = append(b, byte(v>>(8*plane)))
		}
	}
	return b
}

// readUints reads n values written by appendUints; each must be below limit.
func (d *dec) readUints(what string, n int, limit int) []uint32 {
	w := d.bytes(what+" width", 1)
	if w == nil || w[0] > 4 {
		d.fail(what + " width")
		return nil
	}
	width := int(w[0])
	planes := d.bytes(what, width*n)
	if d.err != nil {
		return nil
	}
	out := make([]uint32, n)
	for plane := 0; plane < width; plane++ {
		for i, c := range planes[plane*n : (plane+1)*n] {
			out[i] = out[i]<<8 | uint32(c)
		}
	}
	for _, v := range out {
		if uint64(v) >= uint64(limit) {
			d.fail(what + " out of range")
			return nil
		}
	}
	return out
}

// appendTimes writes each time as the uvarint delta from the previous one; the
// first delta is from the block's minimum time, which the footer holds.
func appendTimes(p *parts, times []int64) {
	prev := times[0]
	for _, t := range times {
		p.buf = binary.AppendUvarint(p.buf, uint64(t-prev))
		prev = t
	}
	p.cut()
}

func decodeTimes(raw []byte, rows int, minT, maxT int64) ([]int64, error) {
	d := dec{b: raw}
	out := make([]int64, rows)
	t := minT
	for i := range out {
		delta := d.uvarint("time delta")
		if delta > uint64(maxT-t) {
			d.fail("time delta")
			break
		}
		t += int64(delta)
		out[i] = t
	}
	if d.err == nil && t != maxT {
		d.fail("block maximum time")
	}
	return out, d.done("time column")
}

// appendIPs writes a per-block dictionary of the distinct addresses (IPv4 ones
// first, each family sorted and byte-transposed: all first bytes, then all
// second bytes, ...) followed by one uvarint dictionary index per row.
// Visitors repeat within a block, and sorted transposed planes compress far
// better than interleaved addresses.
func appendIPs(p *parts, ips []netip.Addr, scratch map[netip.Addr]uint32, idx []uint32) []uint32 {
	b := p.buf
	clear(scratch)
	var v4, v6 []netip.Addr
	for _, a := range ips {
		if _, ok := scratch[a]; ok {
			continue
		}
		scratch[a] = 0
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	slices.SortFunc(v4, netip.Addr.Compare)
	slices.SortFunc(v6, netip.Addr.Compare)
	b = binary.AppendUvarint(b, uint64(len(v4)))
	b = binary.AppendUvarint(b, uint64(len(v6)))
	for j := 0; j < 4; j++ {
		for _, a := range v4 {
			b = append(b, a.As4()[j])
		}
	}
	for j := 0; j < 16; j++ {
		for _, a := range v6 {
			b = append(b, a.As16()[j])
		}
	}
	for i, a := range v4 {
		scratch[a] = uint32(i)
	}
	for i, a := range v6 {
		scratch[a] = uint32(len(v4) + i)
	}
	p.buf = b
	p.cut()
	idx = idx[:0]
	for _, a := range ips {
		idx = append(idx, scratch[a])
	}
	p.buf = appendUints(p.buf, idx)
	p.cut()
	return idx
}

func decodeIPs(raw []byte, rows int) ([]netip.Addr, error) {
	d := dec{b: raw}
	n4 := d.count("ipv4 count", uint64(rows))
	n6 := d.count("ipv6 count", uint64(rows))
	p4 := d.bytes("ipv4 addresses", 4*n4)
	p6 := d.bytes("ipv6 addresses", 16*n6)
	if d.err != nil {
		return nil, d.err
	}
	dict := make([]netip.Addr, n4+n6)
	for i := 0; i < n4; i++ {
		dict[i] = netip.AddrFrom4([4]byte{p4[i], p4[n4+i], p4[2*n4+i], p4[3*n4+i]})
	}
	for i := 0; i < n6; i++ {
		var a [16]byte
		for j := range a {
			a[j] = p6[j*n6+i]
		}
		dict[n4+i] = netip.AddrFrom16(a)
	}
	idx := d.readUints("ip index", rows, len(dict))
	if d.err != nil {
		return nil, d.err
	}
	out := make([]netip.Addr, rows)
	for i, j := range idx {
		out[i] = dict[j]
	}
	return out, d.done("ip column")
}

// appendIDs writes dictionary ids (domain or user agent) as uvarints. Ids are
// assigned in order of first appearance in the segment, so busy sites and
// common browsers get small ids. (Byte-transposed fixed-width ids were
// measured 6% larger for these day-global ids.)
func appendIDs(p *parts, ids []uint32) {
	for _, id := range ids {
		p.buf = binary.AppendUvarint(p.buf, uint64(id))
	}
	p.cut()
}

func decodeIDs(raw []byte, rows int, n int, what string) ([]uint32, error) {
	d := dec{b: raw}
	out := make([]uint32, rows)
	// The label is built once: concatenating it per row cost a fifth of a
	// count query's CPU.
	label := what + " id"
	for i := range out {
		if n == 0 {
			d.fail(label + " (empty dictionary)")
			break
		}
		out[i] = uint32(d.count(label, uint64(n-1)))
	}
	return out, d.done(what + " column")
}

// appendPaths writes a per-block dictionary of the distinct paths, sorted and
// front-coded (shared-prefix lengths, suffix lengths, then all suffix bytes),
// followed by one uvarint dictionary index per row. Popular pages repeat
// within a block, and sorting puts the paths of one site's trees next to each
// other, which is what makes them compress.
func appendPaths(p *parts, paths []string, scratch map[string]uint32, idx []uint32) []uint32 {
	b := p.buf
	clear(scratch)
	var distinct []string
	for _, p := range paths {
		if _, ok := scratch[p]; !ok {
			scratch[p] = 0
			distinct = append(distinct, p)
		}
	}
	slices.Sort(distinct)
	b = binary.AppendUvarint(b, uint64(len(distinct)))
	prev := ""
	for _, s := range distinct {
		b = binary.AppendUvarint(b, uint64(sharedPrefix(prev, s)))
		prev = s
	}
	p.buf = b
	p.cut()
	prev = ""
	for _, s := range distinct {
		p.buf = binary.AppendUvarint(p.buf, uint64(len(s)-sharedPrefix(prev, s)))
		prev = s
	}
	p.cut()
	prev = ""
	for i, s := range distinct {
		p.buf = append(p.buf, s[sharedPrefix(prev, s):]...)
		prev = s
		scratch[s] = uint32(i)
	}
	p.cut()
	idx = idx[:0]
	for _, s := range paths {
		idx = append(idx, scratch[s])
	}
	p.buf = appendUints(p.buf, idx)
	p.cut()
	return idx
}

func sharedPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// decodePaths decodes the path column into one string per row; every row's
// path is a substring of the block's dictionary arena (see decodePathDict).
func decodePaths(raw []byte, rows int) ([]string, error) {
	dict, idx, err := decodePathDict(raw, rows)
	if err != nil {
		return nil, err
	}
	out := make([]string, rows)
	for i, j := range idx {
		out[i] = dict[j]
	}
	return out, nil
}

// decodePathDict decodes the path column's front-coded dictionary of distinct
// paths (rebuilt into one arena, so the dictionary is one allocation) and the
// per-row indexes into it. Search uses it directly to test a path term once
// per distinct path.
func decodePathDict(raw []byte, rows int) ([]string, []uint32, error) {
	d := dec{b: raw}
	n := d.count("path count", uint64(rows))
	shared := make([]int, n)
	for i := range shared {
		shared[i] = d.count("path prefix length", maxFieldLen)
	}
	suffix := make([]int, n)
	total := 0
	for i := range suffix {
		suffix[i] = d.count("path suffix length", maxFieldLen)
		total += suffix[i]
	}
	suffixes := d.bytes("path bytes", total)
	if d.err != nil {
		return nil, nil, d.err
	}
	var arena []byte
	bounds := make([]int, n+1)
	prevStart, prevLen := 0, 0
	for i := 0; i < n; i++ {
		if shared[i] > prevLen || len(arena)+shared[i]+suffix[i] > maxRawColumn {
			d.fail("path prefix length")
			return nil, nil, d.err
		}
		start := len(arena)
		arena = append(arena, arena[prevStart:prevStart+shared[i]]...)
		arena = append(arena, suffixes[:suffix[i]]...)
		suffixes = suffixes[suffix[i]:]
		prevStart, prevLen = start, len(arena)-start
		bounds[i+1] = len(arena)
	}
	all := string(arena)
	dict := make([]string, n)
	for i := range dict {
		dict[i] = all[bounds[i]:bounds[i+1]]
	}
	idx := d.readUints("path index", rows, n)
	if d.err != nil {
		return nil, nil, d.err
	}
	return dict, idx, d.done("path column")
}
