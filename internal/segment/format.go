package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/retentiond/retentiond/internal/keys"
)

// Version is the format version this package writes. The reader also reads
// every older version still within a retention period (see MinVersion).
const Version = 4

// MinVersion is the oldest format version the reader accepts. Version 1
// lacks the per-entry row counts of version 2; readers of it answer counts
// by scanning. Version 2 stores domain and user-agent ids per row in their
// own columns; version 3 in the IP column's (address, domain, user agent)
// combinations. In version 4 the blocks after the first share the first
// block's path dictionary instead of repeating its paths (pathdict.go).
const MinVersion = 1

// Layout constants. docs/format.md is the prose form of these.
const (
	magic       = "RDSG" // "retentiond segment", at both ends of the file
	headerSize  = 8      // magic, version, 3 reserved zero bytes
	trailerSize = 28     // footer offset, meta offset, footer CRC, version, 3 reserved, magic
	numColumns  = 5

	// DefaultBlockRows is the block size when Options.BlockRows is 0.
	DefaultBlockRows = 8192
	// MaxBlockRows bounds Options.BlockRows; the reader rejects larger blocks,
	// which bounds what a hostile file can make it allocate.
	MaxBlockRows = 1 << 16
	// DefaultLevel is the zstd level when Options.Level is 0. Segments are
	// written once and read many times, and the level-7 encoder ("better")
	// measurably shrinks the path column at a modest encode cost.
	DefaultLevel = 7
	// ArchiveLevel is the zstd level for a segment that will be read for
	// years and never rewritten: a closed day's final merge. It is the
	// default level. Levels 11 and up use klauspost's "best" encoder,
	// which measured 2% smaller files in format 2 and 2.2% in format 3
	// (41.3 vs 42.2 MB for 5M loggen records over 10 days) but no faster
	// searches in format 3 (BenchmarkSearch5M, every query within noise),
	// at 1.6 times the encoding CPU and a 34 MB match table that stays
	// live while a day is archived: that table alone put the daemon's peak
	// memory above VictoriaLogs' in issue 15's peer benchmark. The store
	// still tells a day's final file by its name (.archive.seg), not by
	// its level.
	ArchiveLevel = DefaultLevel
	// quickLevel caps the level of the streams that gain next to nothing
	// from a higher one (parts.cutQuick): zstd level 3, klauspost's
	// "default" encoder.
	quickLevel = 3

	// maxFieldLen bounds one path, user agent or domain. It is far above the
	// record package's limits; it only guarantees the reader's size limits.
	maxFieldLen = 1 << 20
	// blockPathBudget closes a block early when its paths add up to this many
	// bytes, so that a block of huge paths still decodes in bounded memory.
	blockPathBudget = 4 << 20
	// maxRawColumn is the largest decoded column the reader accepts.
	maxRawColumn = 64 << 20
	// maxMetaRaw is the largest decoded meta section the reader accepts.
	maxMetaRaw = 1 << 30
	// ipPageEntries is the number of IP index entries per compressed page,
	// and the most a page may hold (Options.IPPageEntries).
	ipPageEntries = 1024
)

// Encryption (docs/format.md, "Encrypted segments"). Bit 0 of the header's
// flags byte (offset 5, repeated in the trailer) marks a segment whose
// columns, IP index pages and meta section are sealed with AES-256-GCM
// under its day's key (keys.FileCipher); the header then continues with
// the key id, the day and the file's salt, and the blocks start after it.
const (
	flagEncrypted = 1
	encHeaderSize = 8 + 8 + keys.SaltSize // key id, day (unix seconds), salt

	// The kinds of sealed units, part of each unit's nonce and
	// associated data.
	unitColumn = 1 // index: block << 3 | column
	unitIPPage = 2 // index: page number
	unitMeta   = 3 // index: 0
)

// ErrNoKeys is wrapped by Open for an encrypted segment when no key ring
// was given: it is not damage, the file needs its day's key.
var ErrNoKeys = errors.New("segment is encrypted and no key ring was given")

// Columns selects the columns ReadBlock decodes.
type Columns uint8

// The columns of a block, in their on-disk order.
const (
	ColTime Columns = 1 << iota
	ColIP
	ColDomain
	ColUserAgent
	ColPath
	// ColAll selects every column.
	ColAll = ColTime | ColIP | ColDomain | ColUserAgent | ColPath
)

var columnNames = [numColumns]string{"time", "ip", "domain", "user_agent", "path"}

// ErrChecksum is wrapped in a CorruptionError when stored bytes do not match
// their CRC32C.
var ErrChecksum = errors.New("checksum mismatch")

// errMalformed is wrapped in a CorruptionError when checksummed bytes do not
// decode; it points at a bug in a writer or at a forged checksum.
var errMalformed = errors.New("malformed data")

// CorruptionError reports bytes of a segment file that cannot be trusted. The
// offset is the start of the smallest checksummed unit that failed (a column,
// an index page, the footer), so an operator can locate the damage.
type CorruptionError struct {
	File   string
	Offset int64
	Err    error
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("segment %s: corrupt at offset %d: %v", e.File, e.Offset, e.Err)
}

func (e *CorruptionError) Unwrap() error { return e.Err }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// zstd encoders and decoders are expensive to build, so one of each is shared
// by every Writer and Reader: EncodeAll and DecodeAll are safe for concurrent
// use and keep their own internal pools of state.
var (
	encMu    sync.Mutex
	encoders = map[zstd.EncoderLevel]*zstd.Encoder{}

	decOnce sync.Once
	decoder *zstd.Decoder
	decErr  error
)

func encoderFor(level int) (*zstd.Encoder, error) {
	l := zstd.EncoderLevelFromZstd(level)
	encMu.Lock()
	defer encMu.Unlock()
	if e := encoders[l]; e != nil {
		return e, nil
	}
	// Our own CRC32C covers every frame, so zstd's checksum would be 4
	// wasted bytes per column. One encoder state per level, with a 2 MiB
	// window: the store's flushes and merges write one segment at a time,
	// a column frame is rarely over a few hundred KiB, and zstd's defaults
	// (one state per CPU, an 8 MiB window) cost 50 MiB per CPU at the archive
	// level, memory that storage.head_max_bytes does not bound.
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(l), zstd.WithEncoderCRC(false),
		zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(2<<20))
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	encoders[l] = e
	return e, nil
}

// decompress decodes a zstd frame that must expand to exactly rawLen bytes.
// The output is capped at rawLen, so a forged frame header cannot make it
// allocate more than the (already bounded) declared size.
func decompress(src []byte, rawLen int) ([]byte, error) {
	return decompressInto(nil, src, rawLen)
}

// decompressInto is decompress writing into dst, reused when its capacity
// is at least rawLen.
func decompressInto(dst, src []byte, rawLen int) ([]byte, error) {
	decOnce.Do(func() {
		decoder, decErr = zstd.NewReader(nil, zstd.WithDecodeAllCapLimit(true),
			zstd.WithDecoderMaxMemory(maxMetaRaw), zstd.WithDecoderConcurrency(0))
	})
	if decErr != nil {
		return nil, fmt.Errorf("zstd decoder: %w", decErr)
	}
	// The slack lets the decoder use its fast copies, which may write up
	// to 16 bytes past the end of the output; with an exact-size buffer it
	// falls back to bounds-exact copies (measured 15% slower on columns).
	limit := rawLen + decodeSlack
	if cap(dst) < limit {
		dst = make([]byte, 0, limit)
	}
	out, err := decoder.DecodeAll(src, dst[:0:limit])
	if err != nil {
		return nil, fmt.Errorf("%w: zstd: %w", errMalformed, err)
	}
	if len(out) != rawLen {
		return nil, fmt.Errorf("%w: decoded %d bytes, want %d", errMalformed, len(out), rawLen)
	}
	return out, nil
}

// decodeSlack is the spare output capacity decompressInto gives zstd.
const decodeSlack = 64

// IP index keys: a family byte (4 or 6) followed by the 4 or 16 address
// bytes. Byte-wise order of keys is netip.Addr.Compare order (all IPv4 before
// all IPv6), so a prefix of either family is one contiguous key range.
func appendKey(b []byte, a netip.Addr) []byte {
	if a.Is4() {
		v := a.As4()
		return append(append(b, 4), v[:]...)
	}
	v := a.As16()
	return append(append(b, 6), v[:]...)
}

func validKey(k []byte) bool {
	return (len(k) == 5 && k[0] == 4) || (len(k) == 17 && k[0] == 6)
}

// prefixBounds returns the first and last key covered by p.
func prefixBounds(p netip.Prefix) (lo, hi []byte) {
	p = p.Masked()
	lo = appendKey(nil, p.Addr())
	hi = append([]byte(nil), lo...)
	bits := p.Bits()
	for i := 1; i < len(hi); i++ {
		first := (i - 1) * 8 // first address bit held by byte i
		switch {
		case first >= bits:
			hi[i] = 0xff
		case first+8 > bits:
			hi[i] |= 0xff >> (bits - first)
		}
	}
	return lo, hi
}

// dec is a bounds-checked reader of the varint encodings used in columns and
// the footer. The first failure sticks; callers check err once at the end.
type dec struct {
	b   []byte
	err error
}

func (d *dec) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", errMalformed, what)
	}
	d.b = nil
}

func (d *dec) uvarint(what string) uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a uvarint that must be at most max.
func (d *dec) count(what string, max uint64) int {
	v := d.uvarint(what)
	if v > max {
		d.fail(what)
		return 0
	}
	return int(v)
}

func (d *dec) bytes(what string, n int) []byte {
	if n < 0 || n > len(d.b) {
		d.fail(what)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) u32(what string) uint32 {
	v := d.bytes(what, 4)
	if v == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(v)
}

func (d *dec) done(what string) error {
	if d.err == nil && len(d.b) != 0 {
		d.fail(what + " (trailing bytes)")
	}
	return d.err
}
