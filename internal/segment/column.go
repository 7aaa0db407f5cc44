package segment

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strings"
)

// Column encodings (before zstd). Each one is chosen so that zstd sees long
// runs of similar bytes; docs/format.md has the measurements behind them.

// parts is a column's raw bytes cut into streams. Each stream is compressed
// as its own zstd frame (the frames are concatenated, which zstd decodes as
// the concatenation of their contents): lengths, text and indexes have very
// different statistics, and separate entropy tables measurably beat one.
//
// A stream cut with cutQuick is compressed at no more than quickLevel
// whatever the writer's level: for these streams the level-7 encoder found
// almost nothing more than level 3, at 1.5-1.7 times the time (the address
// bytes and the combination lists of the IP column, the path suffix bytes;
// 0.0-0.8 % of each stream on loggen and Apache data, against 3-31 % for
// the time deltas and the path lengths and indexes; docs/format.md).
type parts struct {
	buf   []byte
	ends  []int
	quick uint64 // bit i: stream i was cut with cutQuick
}

func (p *parts) reset() { p.buf, p.ends, p.quick = p.buf[:0], p.ends[:0], 0 }
func (p *parts) cut()   { p.ends = append(p.ends, len(p.buf)) }

// cutQuick ends a stream that is compressed at quickLevel at most.
// A column has a handful of streams; one past the 64th would simply be
// compressed at the writer's level.
func (p *parts) cutQuick() {
	if n := len(p.ends); n < 64 {
		p.quick |= 1 << uint(n)
	}
	p.cut()
}

// isQuick reports whether stream i was cut with cutQuick.
func (p *parts) isQuick(i int) bool { return i < 64 && p.quick&(1<<uint(i)) != 0 }

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

// readUints reads n values written by appendUints from b into dst (reused
// when large enough); each must be below limit. It returns the values and the
// bytes after them. limit is a uint64 because a time delta's limit,
// math.MaxUint32, does not fit an int on 32-bit platforms.
func readUints(dst []uint32, b []byte, what string, n int, limit uint64) ([]uint32, []byte, error) {
	if len(b) < 1 || b[0] > 4 {
		return nil, nil, malformed(what + " width")
	}
	width := int(b[0])
	b = b[1:]
	if width*n > len(b) {
		return nil, nil, malformed(what)
	}
	out, err := mergeUints(dst, width, b[:width*n], n, limit, what)
	return out, b[width*n:], err
}

// mergeUints merges n values from their width byte planes into dst
// (reused when large enough); each must be below limit.
func mergeUints(dst []uint32, width int, b []byte, n int, limit uint64, what string) ([]uint32, error) {
	out := grow(dst, n)
	// Specialised loops for the common widths: this merge runs for every
	// row of every index and id column a search reads.
	var or uint32
	switch width {
	case 0:
		clear(out)
	case 1:
		for i, c := range b[:n] {
			out[i] = uint32(c)
			or |= uint32(c)
		}
	case 2:
		p0, p1 := b[:n], b[n:2*n]
		for i := range out {
			v := uint32(p0[i])<<8 | uint32(p1[i])
			out[i] = v
			or |= v
		}
	default:
		clear(out)
		for plane := 0; plane < width; plane++ {
			for i, c := range b[plane*n : (plane+1)*n] {
				out[i] = out[i]<<8 | uint32(c)
			}
		}
		for _, v := range out {
			or |= v
		}
	}
	// Every value is below limit unless the bitwise OR of all of them
	// reaches it; only then is each value checked.
	if uint64(or) >= limit {
		for _, v := range out {
			if uint64(v) >= limit {
				return nil, malformed(what + " out of range")
			}
		}
	}
	return out, nil
}

// uintCol is a stream of byte-transposed uints kept as its planes, so
// that a few rows are read in O(width) each and the whole column is merged
// (and validated) only when asked. A search returning a handful of rows of
// a block reads their ids this way instead of merging 8192 of them.
type uintCol struct {
	what   string
	width  int
	n      int
	limit  int
	planes []byte
	all    []uint32 // the merged values, once merged is set
	merged bool
	// Format 3: the values are table[rows[i]] (see via).
	table, rows []uint32
}

// set points u at the stream at the start of b and returns the bytes after
// it.
func (u *uintCol) set(b []byte, what string, n, limit int) ([]byte, error) {
	if len(b) < 1 || b[0] > 4 {
		return nil, malformed(what + " width")
	}
	width := int(b[0])
	if width*n > len(b)-1 {
		return nil, malformed(what)
	}
	u.what, u.width, u.n, u.limit, u.merged, u.table = what, width, n, limit, false, nil
	u.planes = b[1 : 1+width*n]
	return b[1+width*n:], nil
}

// preset makes u hold already decoded values (format-1 columns).
func (u *uintCol) preset(vals []uint32, what string) {
	u.what, u.n, u.all, u.merged, u.table = what, len(vals), vals, true, nil
}

// via makes row i's value table[rows[i]] (format 3's domain and
// user-agent ids, kept in the IP column's combinations). Both were
// checked when decoded: every rows value indexes table, every table value
// is below the limit.
func (u *uintCol) via(table, rows []uint32, what string) {
	u.what, u.n, u.table, u.rows, u.merged = what, len(rows), table, rows, false
}

// at returns value i, checked against the limit.
func (u *uintCol) at(i int) (uint32, error) {
	if u.merged {
		return u.all[i], nil
	}
	if u.table != nil {
		return u.table[u.rows[i]], nil
	}
	var v uint32
	for p := 0; p < u.width; p++ {
		v = v<<8 | uint32(u.planes[p*u.n+i])
	}
	if uint64(v) >= uint64(u.limit) {
		return 0, malformed(u.what + " out of range")
	}
	return v, nil
}

// values merges and validates every value once.
func (u *uintCol) values() ([]uint32, error) {
	if u.merged {
		return u.all, nil
	}
	if u.table != nil {
		u.all = grow(u.all, u.n)
		for i, v := range u.rows {
			u.all[i] = u.table[v]
		}
		u.merged = true
		return u.all, nil
	}
	all, err := mergeUints(u.all, u.width, u.planes, u.n, uint64(u.limit), u.what)
	if err != nil {
		return nil, err
	}
	u.all, u.merged = all, true
	return all, nil
}

// grow returns s resized to n elements, reusing its array when it is large
// enough. Decoders write every element, so stale contents do not matter.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

func malformed(what string) error { return fmt.Errorf("%w: bad %s", errMalformed, what) }

// uvarintAt decodes the uvarint at b[pos:] and returns it with the position
// after it, or n = -1. Most values in columns fit one byte, so that case is
// tested inline before the general decoder; this loop is the hottest code of
// a search.
func uvarintAt(b []byte, pos int) (v uint64, next int) {
	if pos < len(b) && b[pos] < 0x80 {
		return uint64(b[pos]), pos + 1
	}
	if pos >= len(b) {
		return 0, -1
	}
	v, n := binary.Uvarint(b[pos:])
	if n <= 0 {
		return 0, -1
	}
	return v, pos + n
}

// appendTimes writes each time as its delta from the previous one, the
// first from the block's minimum time (which the footer holds), as
// byte-transposed uints. Fixed-width planes decode without a branch per row
// (a prefix sum over the merged planes), several times faster than varints,
// at about the same size after zstd.
func appendTimes(p *parts, times []int64, scratch []uint32) []uint32 {
	scratch = scratch[:0]
	prev := times[0]
	for _, t := range times {
		scratch = append(scratch, uint32(t-prev))
		prev = t
	}
	p.buf = appendUints(p.buf, scratch)
	p.cut()
	return scratch
}

// decodeTimes decodes a time column into dst (reused when large enough).
func decodeTimes(dst []int64, raw []byte, rows int, minT, maxT int64, scratch []uint32) ([]int64, []uint32, error) {
	deltas, rest, err := readUints(scratch, raw, "time delta", rows, math.MaxUint32)
	if err != nil {
		return nil, scratch, err
	}
	if len(rest) != 0 {
		return nil, deltas, malformed("time column (trailing bytes)")
	}
	out := grow(dst, rows)
	t := minT
	for i, d := range deltas {
		t += int64(d)
		out[i] = t
	}
	if t != maxT || rows == 0 {
		return nil, deltas, malformed("block maximum time")
	}
	return out, deltas, nil
}

// appendIPs writes the block's address dictionary (IPv4 addresses first,
// each family sorted and byte-transposed: all first bytes, then all second
// bytes, ...) and returns each row's index into it in idx. Visitors repeat
// within a block, and sorted transposed planes compress far better than
// interleaved addresses.
func appendIPs(p *parts, ips []netip.Addr, sc *ipScratch, idx []uint32) []uint32 {
	// One map lookup per run of rows: each address gets a provisional
	// number in order of first appearance, and the rows' numbers are
	// turned into dictionary positions once the distinct addresses are
	// sorted (a second lookup per row was a third of this function).
	// IPv4 addresses, most of them, are looked up as numbers: a map keyed
	// by netip.Addr hashes its whole 24-byte struct through the generic
	// map code, which took twice as long.
	if sc.ids == nil {
		sc.ids, sc.ids4 = make(map[netip.Addr]uint32), make(map[uint32]uint32)
	}
	clear(sc.ids)
	clear(sc.ids4)
	seen := sc.seen[:0]
	idx = idx[:0]
	for i, a := range ips {
		// Rows come in runs of one visitor's requests: a row with the
		// previous row's address needs no map lookup.
		if i > 0 && a == ips[i-1] {
			idx = append(idx, idx[i-1])
			continue
		}
		var id uint32
		var ok bool
		if a.Is4() {
			k := a.As4()
			k4 := binary.BigEndian.Uint32(k[:])
			if id, ok = sc.ids4[k4]; !ok {
				id = uint32(len(seen))
				sc.ids4[k4] = id
				seen = append(seen, a)
			}
		} else if id, ok = sc.ids[a]; !ok {
			id = uint32(len(seen))
			sc.ids[a] = id
			seen = append(seen, a)
		}
		idx = append(idx, id)
	}
	// Addr.Compare orders by length first: IPv4 addresses, ascending,
	// then IPv6 addresses, ascending.
	order := sc.order[:0]
	for i := range seen {
		order = append(order, uint32(i))
	}
	slices.SortFunc(order, func(x, y uint32) int { return seen[x].Compare(seen[y]) })
	rank := slices.Grow(sc.rank[:0], len(seen))[:len(seen)]
	sorted := sc.sorted[:0]
	n4 := 0
	for k, o := range order {
		rank[o] = uint32(k)
		a := seen[o]
		sorted = append(sorted, a)
		if a.Is4() {
			n4++
		}
	}
	v4, v6 := sorted[:n4], sorted[n4:]
	b := p.buf
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
	p.buf = b
	p.cutQuick()
	for i, id := range idx {
		idx[i] = rank[id]
	}
	sc.seen, sc.order, sc.rank, sc.sorted = seen, order, rank, sorted
	return idx
}

// ipScratch is the writer's scratch for appendIPs. After a call, sorted
// holds the block's distinct addresses in dictionary order, which the
// returned row indexes point into.
type ipScratch struct {
	ids    map[netip.Addr]uint32 // IPv6 (and any other) addresses
	ids4   map[uint32]uint32     // IPv4 addresses, as numbers
	seen   []netip.Addr          // in order of first appearance
	order  []uint32
	rank   []uint32
	sorted []netip.Addr
}

// visitor is one distinct (address, domain, user agent) combination of a
// block: the address as an index into the block's address dictionary, the
// domain and user agent as segment dictionary ids.
type visitor struct{ ip, dom, ua uint32 }

// visitors is the writer's scratch for appendVisitors.
type visitors struct {
	ids                 map[visitor]uint32 // combinations whose ids do not pack
	packed              map[uint64]uint32  // the others, packed into a number
	ip, dom, ua, perRow []uint32
}

// appendVisitors writes the IP column of format 3: the address dictionary
// (appendIPs), then the block's distinct (address, domain, user agent)
// combinations in order of first appearance as three uints streams behind
// their count, then per row the index of its combination. A visitor's
// requests to one site with one browser come in runs, so a block holds a
// few combinations per address: the combination index replaces the three
// per-row columns of format 2 (the address index, the domain and the
// user-agent id) and measured 1.8 bytes per record smaller
// (docs/format.md). It returns each row's address index.
func appendVisitors(p *parts, ips []netip.Addr, dom, ua []uint32, sc *ipScratch, v *visitors, idx []uint32) []uint32 {
	idx = appendIPs(p, ips, sc, idx)
	if v.ids == nil {
		v.ids, v.packed = make(map[visitor]uint32), make(map[uint64]uint32)
	}
	clear(v.ids)
	clear(v.packed)
	v.ip, v.dom, v.ua, v.perRow = v.ip[:0], v.dom[:0], v.ua[:0], v.perRow[:0]
	var prev visitor
	for i, a := range idx {
		k := visitor{a, dom[i], ua[i]}
		if i > 0 && k == prev {
			// The previous row's visitor: rows come in runs of one
			// visitor's requests (five rows a run on loggen days).
			v.perRow = append(v.perRow, v.perRow[i-1])
			continue
		}
		prev = k
		// A combination whose ids fit in 64 bits (an address index is
		// below MaxBlockRows, 16 bits; ids below 2^24 each) is looked up
		// as one number, which the map does without the generic hashing
		// of a struct key; the rest, in a flood of distinct user agents,
		// as the struct. A combination always goes to the same map.
		var id uint32
		var ok bool
		if k.ip < 1<<16 && k.dom < 1<<24 && k.ua < 1<<24 {
			pk := uint64(k.ip)<<48 | uint64(k.dom)<<24 | uint64(k.ua)
			if id, ok = v.packed[pk]; !ok {
				id = uint32(len(v.ip))
				v.packed[pk] = id
			}
		} else if id, ok = v.ids[k]; !ok {
			id = uint32(len(v.ip))
			v.ids[k] = id
		}
		if !ok {
			v.ip, v.dom, v.ua = append(v.ip, k.ip), append(v.dom, k.dom), append(v.ua, k.ua)
		}
		v.perRow = append(v.perRow, id)
	}
	p.buf = binary.AppendUvarint(p.buf, uint64(len(v.ip)))
	p.buf = appendUints(p.buf, v.ip)
	p.cutQuick()
	p.buf = appendUints(p.buf, v.dom)
	p.cutQuick()
	p.buf = appendUints(p.buf, v.ua)
	p.cutQuick()
	// The per-row combination index gained 2.7 % at the full level on
	// Apache data.
	p.buf = appendUints(p.buf, v.perRow)
	p.cut()
	return idx
}

// ipDict is a decoded IP column: the block's distinct addresses kept as
// their byte planes (IPv4 ascending, then IPv6 ascending) and one index
// per row. An address is built only when asked for: a filter by one
// prefix finds its range of the sorted dictionary by binary search over
// the planes, and only the returned rows' addresses are built.
type ipDict struct {
	raw    []byte // the decompressed column; p4 and p6 point into it
	n4, n6 int
	p4, p6 []byte // 4 planes of n4 bytes, 16 planes of n6 bytes
	idx    []uint32
	all    []netip.Addr // every address, once built
	built  bool

	// Format 3: the block's (address, domain, user agent) combinations
	// and each row's combination (appendVisitors).
	vip, vdom, vua, perRow []uint32
}

// decode parses the column of a segment of the given format version and
// merges the row indexes. From format 3 on the column also holds each
// row's domain and user-agent id (ids below nDom and nUA), which decode
// points dom and ua at; they are read from the combinations only when
// asked for.
func (d *ipDict) decode(raw []byte, rows int, version byte, nDom, nUA int, dom, ua *uintCol) error {
	r := dec{b: raw}
	n4 := r.count("ipv4 count", uint64(rows))
	n6 := r.count("ipv6 count", uint64(rows))
	p4 := r.bytes("ipv4 addresses", 4*n4)
	p6 := r.bytes("ipv6 addresses", 16*n6)
	if r.err != nil {
		return r.err
	}
	var (
		idx  []uint32
		rest []byte
		err  error
	)
	if version < 3 {
		idx, rest, err = readUints(d.idx, r.b, "ip index", rows, uint64(n4+n6))
	} else {
		idx, rest, err = d.decodeVisitors(r.b, rows, uint64(n4+n6), nDom, nUA)
		if err == nil {
			dom.via(d.vdom, d.perRow, "domain id")
			ua.via(d.vua, d.perRow, "user agent id")
		}
	}
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return malformed("ip column (trailing bytes)")
	}
	d.n4, d.n6, d.p4, d.p6, d.idx, d.built = n4, n6, p4, p6, idx, false
	return nil
}

// decodeVisitors reads format 3's combinations and per-row combination
// indexes from b, each checked against its limit, and returns every row's
// address index (below nIPs) and the bytes after them.
func (d *ipDict) decodeVisitors(b []byte, rows int, nIPs uint64, nDom, nUA int) (idx []uint32, rest []byte, err error) {
	r := dec{b: b}
	n := r.count("visitor count", uint64(rows))
	if r.err != nil {
		return nil, nil, r.err
	}
	if d.vip, rest, err = readUints(d.vip, r.b, "visitor address", n, nIPs); err != nil {
		return nil, nil, err
	}
	if d.vdom, rest, err = readUints(d.vdom, rest, "visitor domain id", n, uint64(nDom)); err != nil {
		return nil, nil, err
	}
	if d.vua, rest, err = readUints(d.vua, rest, "visitor user agent id", n, uint64(nUA)); err != nil {
		return nil, nil, err
	}
	if d.perRow, rest, err = readUints(d.perRow, rest, "visitor index", rows, uint64(n)); err != nil {
		return nil, nil, err
	}
	idx = grow(d.idx, rows)
	for i, v := range d.perRow {
		idx[i] = d.vip[v]
	}
	return idx, rest, nil
}

func (d *ipDict) len() int { return d.n4 + d.n6 }

// at builds address k of the dictionary.
func (d *ipDict) at(k int) netip.Addr {
	if k < d.n4 {
		n := d.n4
		return netip.AddrFrom4([4]byte{d.p4[k], d.p4[n+k], d.p4[2*n+k], d.p4[3*n+k]})
	}
	k -= d.n4
	var a [16]byte
	for j := range a {
		a[j] = d.p6[j*d.n6+k]
	}
	return netip.AddrFrom16(a)
}

// addrs builds every address once.
func (d *ipDict) addrs() []netip.Addr {
	if !d.built {
		d.all = grow(d.all, d.len())
		for k := range d.all {
			d.all[k] = d.at(k)
		}
		d.built = true
	}
	return d.all
}

// key writes dictionary entry k's index key (family byte and address
// bytes, see appendKey) into buf.
func (d *ipDict) key(k int, buf []byte) []byte {
	if k < d.n4 {
		n := d.n4
		return append(buf[:0], 4, d.p4[k], d.p4[n+k], d.p4[2*n+k], d.p4[3*n+k])
	}
	k -= d.n4
	buf = append(buf[:0], 6)
	for j := 0; j < 16; j++ {
		buf = append(buf, d.p6[j*d.n6+k])
	}
	return buf
}

// prefixRange returns the dictionary indexes [lo, hi) of the addresses in
// p (netip.Prefix.Contains semantics): keys sort like the dictionary, so
// they are one contiguous run.
func (d *ipDict) prefixRange(p netip.Prefix) (lo, hi int) {
	if !p.IsValid() {
		return 0, 0
	}
	first, last := prefixBounds(p)
	var buf [17]byte
	n := d.len()
	lo = sort.Search(n, func(k int) bool { return bytes.Compare(d.key(k, buf[:0]), first) >= 0 })
	hi = sort.Search(n, func(k int) bool { return bytes.Compare(d.key(k, buf[:0]), last) > 0 })
	return lo, max(lo, hi)
}

// decodeIDs points u at a dictionary-id column (domain or user agent);
// every id must be below n.
func decodeIDs(u *uintCol, raw []byte, rows int, n int, what string) error {
	rest, err := u.set(raw, what+" id", rows, n)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return malformed(what + " column (trailing bytes)")
	}
	return nil
}

// appendPaths writes a per-block dictionary of the distinct paths, sorted and
// front-coded (shared-prefix lengths, suffix lengths, then all suffix bytes),
// followed by one dictionary index per row. Popular pages repeat within a
// block, and sorting puts the paths of one site's trees next to each other,
// which is what makes them compress. Paths in base (block 0's dictionary,
// format 4; nil in block 0) are not repeated: their rows index base, and the
// block's own paths are numbered after it. It returns the rows' indexes and
// the block's own distinct paths.
func appendPaths(p *parts, paths []string, sc *pathScratch, idx []uint32, base map[string]uint32) ([]uint32, []string) {
	// As in appendIPs, one lookup per run of rows: a row whose path is
	// in base takes its index at once; the block's own paths get a
	// provisional number (marked by ownPath) in order of first
	// appearance, replaced by the sorted position once they are sorted.
	const ownPath = 1 << 31
	if sc.ids == nil {
		sc.ids = make(map[string]uint32)
	}
	clear(sc.ids)
	seen := sc.seen[:0]
	idx = idx[:0]
	for i, s := range paths {
		if i > 0 && s == paths[i-1] {
			idx = append(idx, idx[i-1])
			continue
		}
		if v, ok := base[s]; ok {
			idx = append(idx, v)
			continue
		}
		id, ok := sc.ids[s]
		if !ok {
			id = uint32(len(seen))
			sc.ids[s] = id
			seen = append(seen, s)
		}
		idx = append(idx, ownPath|id)
	}
	// The paths are sorted with their first eight bytes as a number
	// beside them: most comparisons end there, without following two
	// string pointers (sorting indexes into seen by strings.Compare was
	// a third of this function).
	order := sc.order[:0]
	for i, s := range seen {
		order = append(order, pathKey{prefix: prefix8(s), s: s, id: uint32(i)})
	}
	slices.SortFunc(order, func(x, y pathKey) int {
		if x.prefix != y.prefix {
			if x.prefix < y.prefix {
				return -1
			}
			return 1
		}
		return strings.Compare(x.s, y.s)
	})
	rank := slices.Grow(sc.rank[:0], len(seen))[:len(seen)]
	distinct := sc.sorted[:0]
	for k, o := range order {
		rank[o.id] = uint32(k)
		distinct = append(distinct, o.s)
	}
	clear(order) // it holds the paths too
	// Format 4: the number of block 0's paths this block's indexes may
	// refer to (0 in block 0), before the block's own.
	nBase := len(base)
	b := p.buf
	b = binary.AppendUvarint(b, uint64(nBase))
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
	for _, s := range distinct {
		p.buf = append(p.buf, s[sharedPrefix(prev, s):]...)
		prev = s
	}
	p.cutQuick()
	for i, v := range idx {
		if v&ownPath != 0 {
			idx[i] = uint32(nBase) + rank[v&^ownPath]
		}
	}
	p.buf = appendUints(p.buf, idx)
	p.cut()
	clear(seen) // the returned distinct paths are the only ones kept
	sc.seen, sc.order, sc.rank, sc.sorted = seen, order, rank, distinct
	return idx, distinct
}

// pathScratch is the writer's scratch for appendPaths. The distinct paths
// appendPaths returns live in it until its next call.
type pathScratch struct {
	ids    map[string]uint32
	seen   []string // the block's own paths in order of first appearance
	order  []pathKey
	rank   []uint32
	sorted []string
}

// pathKey is a path of a block being sorted: prefix orders paths as their
// first eight bytes do (prefix8), and id is its number in order of first
// appearance.
type pathKey struct {
	prefix uint64
	s      string
	id     uint32
}

// prefix8 returns s's first eight bytes as a big-endian number, padded
// with zero bytes: prefix8(a) < prefix8(b) implies a < b, and equal
// numbers leave the order to the whole strings (a shorter string padded
// with zeros ties with one that has those zeros).
func prefix8(s string) uint64 {
	if len(s) >= 8 {
		return binary.BigEndian.Uint64([]byte(s[:8]))
	}
	var b [8]byte
	copy(b[:], s)
	return binary.BigEndian.Uint64(b[:])
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

// pathDict is a decoded path column in dictionary form: the block's
// distinct paths (sorted, front-coded) and one index per row. Decoding
// checks the lengths and reads the indexes; the paths themselves are
// rebuilt only as needed: walk visits them in order through one buffer,
// strings rebuilds a few, and the arena with every path is built only for
// random access (bytes). A search that returns a handful of rows of a
// block copies only the suffix bytes up to its last wanted path instead
// of every path. Its buffers are reused from block to block.
type pathDict struct {
	// base is block 0's dictionary (format 4), whose first nBase entries
	// are this block's entries 0 to nBase-1; the block's own follow.
	base     *pathDict
	nBase    int
	raw      []byte // the decompressed column; suffixes points into it
	shared   []int  // per path: bytes shared with the previous path
	suffix   []int  // per path: length of its own bytes
	suffixes []byte // every path's own bytes, concatenated
	idx      uintCol
	arena    []byte // every path, when built
	ends     []int  // path j is arena[ends[j-1]:ends[j]] (ends[-1] = 0)
	built    bool   // arena and ends are valid
	walkBuf  []byte
}

func (p *pathDict) len() int { return p.nBase + len(p.shared) }

// basePathCount reads how many of block 0's paths a format-4 path column
// shares (its first uvarint); 0 when it cannot tell, which decode then
// rejects.
func basePathCount(raw []byte) int {
	n, k := binary.Uvarint(raw)
	if k <= 0 || n > MaxBlockRows {
		return 0
	}
	return int(n)
}

// decode reads the front-coded dictionary's lengths, checks them, and
// reads the row indexes. raw must stay untouched while p is in use. From
// format 4 on the column first says how many of block 0's paths it shares:
// base must then be block 0's dictionary, built, with that many entries.
func (p *pathDict) decode(raw []byte, rows int, version byte, base *pathDict) error {
	p.built = false
	p.base, p.nBase = nil, 0
	d := dec{b: raw}
	if version >= 4 {
		nb := d.count("shared path count", MaxBlockRows)
		if d.err != nil {
			return d.err
		}
		if nb > 0 {
			if base == nil || nb != len(base.ends) {
				return malformed("shared path count")
			}
			p.base, p.nBase = base, nb
		}
	}
	n := d.count("path count", uint64(rows))
	if d.err != nil {
		return d.err
	}
	var pos int
	var err error
	if p.shared, pos, err = readLengths(p.shared, d.b, 0, n, "path prefix length"); err != nil {
		return err
	}
	if p.suffix, pos, err = readLengths(p.suffix, d.b, pos, n, "path suffix length"); err != nil {
		return err
	}
	total, prevLen, arena := 0, 0, 0
	for i, sh := range p.shared {
		total += p.suffix[i]
		// A path shares at most the whole previous path, and no path is
		// longer than maxFieldLen.
		if sh > prevLen || sh+p.suffix[i] > maxFieldLen || total > len(d.b)-pos {
			return malformed("path prefix length")
		}
		prevLen = sh + p.suffix[i]
		// The rebuilt dictionary must fit the reader's column limit too.
		if arena += prevLen; arena > maxRawColumn {
			return malformed("path dictionary size")
		}
	}
	if total > len(d.b)-pos {
		return malformed("path bytes")
	}
	p.suffixes = d.b[pos : pos+total]
	rest, err := p.idx.set(d.b[pos+total:], "path index", rows, p.nBase+n)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return malformed("path column (trailing bytes)")
	}
	return nil
}

// readLengths reads n uvarint lengths, each at most maxFieldLen, from b at
// pos into dst (reused when large enough), and returns the position after
// them.
func readLengths(dst []int, b []byte, pos, n int, what string) ([]int, int, error) {
	dst = grow(dst, n)
	for i := range dst {
		var v uint64
		v, pos = uvarintAt(b, pos)
		if pos < 0 || v > maxFieldLen {
			return nil, 0, malformed(what)
		}
		dst[i] = int(v)
	}
	return dst, pos, nil
}

// walk calls fn with each path in dictionary order; the bytes are valid
// only during the call.
func (p *pathDict) walk(fn func(j int, path []byte)) {
	for j := range p.nBase {
		fn(j, p.base.entry(j))
	}
	p.walkOwn(fn)
}

// walkOwn is walk over the block's own paths only (format 4: those after
// block 0's).
func (p *pathDict) walkOwn(fn func(j int, path []byte)) {
	buf, sfx := p.walkBuf[:0], p.suffixes
	for j, sh := range p.shared {
		n := p.suffix[j]
		buf = append(buf[:sh], sfx[:n]...)
		sfx = sfx[n:]
		fn(p.nBase+j, buf)
	}
	p.walkBuf = buf
}

// strings returns the paths with the given dictionary indexes as new
// strings, in the order asked, walking the dictionary once up to the
// largest index.
func (p *pathDict) strings(want []uint32) []string {
	out := make([]string, len(want))
	if len(want) == 0 {
		return out
	}
	order := make([]int, len(want))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return int(want[a]) - int(want[b]) })
	k := 0
	for prev := -1; k < len(order) && int(want[order[k]]) < p.nBase; k++ {
		// Block 0's paths (format 4), in index order: one string each.
		if w := int(want[order[k]]); w != prev {
			out[order[k]], prev = string(p.base.entry(w)), w
		} else {
			out[order[k]] = out[order[k-1]]
		}
	}
	if k == len(order) {
		return out
	}
	last := int(want[order[len(order)-1]]) - p.nBase
	buf, sfx := p.walkBuf[:0], p.suffixes
	for j := 0; j <= last; j++ {
		n := p.suffix[j]
		buf = append(buf[:p.shared[j]], sfx[:n]...)
		sfx = sfx[n:]
		var s string
		for k < len(order) && int(want[order[k]])-p.nBase == j {
			if s == "" {
				s = string(buf)
			}
			out[order[k]] = s
			k++
		}
	}
	p.walkBuf = buf
	return out
}

// build rebuilds every path of the block's own into the arena, for random
// access (block 0's, format 4, are in base's arena).
func (p *pathDict) build() {
	if p.built {
		return
	}
	arena := p.arena[:0]
	p.ends = grow(p.ends, len(p.shared))
	prevStart, sfx := 0, p.suffixes
	for j, sh := range p.shared {
		start := len(arena)
		arena = append(arena, arena[prevStart:prevStart+sh]...)
		arena = append(arena, sfx[:p.suffix[j]]...)
		sfx = sfx[p.suffix[j]:]
		prevStart = start
		p.ends[j] = len(arena)
	}
	p.arena, p.built = arena, true
}

// pathIn returns path k of the block (as its rows index them: block 0's
// shared paths first) as a substring of own, the block's built arena as a
// string, or of base, block 0's: rows of a block share two strings instead
// of one allocation each.
func (p *pathDict) pathIn(k int, own, base string) string {
	d, s := p, own
	if k < p.nBase {
		d, s = p.base, base
	} else {
		k -= p.nBase
	}
	start := 0
	if k > 0 {
		start = d.ends[k-1]
	}
	return s[start:d.ends[k]]
}

func (p *pathDict) bytes(j int) []byte {
	if j < p.nBase {
		return p.base.entry(j)
	}
	p.build()
	return p.entry(j - p.nBase)
}
