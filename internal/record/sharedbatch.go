package record

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// A shared-string batch is the WAL's form of a batch (AppendSharedBatch):
// a request's records repeat a few thousand domains and user agents, a
// hundred bytes and more each, and writing every one of them out again
// for every record made the WAL four times the size of the records' own
// new bytes, and its writes a tenth of the daemon's CPU. Each domain and
// user agent is written once per batch; later records refer to it:
//
//	uvarint  sharedBatchMark (no plain batch count reaches it)
//	uvarint  record count
//	per record:
//	  uvarint  unix milliseconds
//	  byte     IP length (4 or 16), then the address bytes
//	  str      domain
//	  uvarint  len(path), path bytes
//	  str      user agent
//	str := uvarint v; v even: a string of v/2 bytes follows, and becomes
//	       the batch's next table entry; v odd: table entry (v-1)/2, which
//	       an earlier str of the batch defined.
//
// The encoder finds repeats by where a string's bytes lie, not by hashing
// them (strTable): the ingest's parser hands over one string per distinct
// value of a request. A repeat it misses is written out again as a new
// entry, which costs bytes, never correctness.

// sharedBatchMark starts a shared-string batch. A plain batch starts with
// its record count, and a plain record takes at least 8 bytes, so a plain
// count at or above this would need a payload of 8 TiB (WAL payloads are
// at most 64 MiB): the two forms cannot be mistaken for each other.
const sharedBatchMark = 1 << 40

// strTableSize is the number of slots of a strTable, a power of two.
const strTableSize = 4096

// strTable finds, for one batch being encoded, the table entry of a string
// written earlier in the batch by the address and length of its bytes:
// equal address and length mean equal bytes while the batch's records
// (which hold the strings) are alive, as they are during the encoding.
// An entry of an earlier batch is told apart by gen; addresses are kept as
// numbers, so a pooled table keeps no string alive.
type strTable struct {
	gen   uint32
	slots [strTableSize]strSlot
}

type strSlot struct {
	addr  uintptr
	len   int
	gen   uint32
	entry uint32
}

var strTables = sync.Pool{New: func() any { return new(strTable) }}

// AppendSharedBatch appends recs to b as a shared-string batch. DecodeBatch
// decodes it as it does a plain one (AppendBatch).
func AppendSharedBatch(b []byte, recs []Record) []byte {
	t := strTables.Get().(*strTable)
	t.gen++
	if t.gen == 0 { // wrapped: no slot may look current
		t.slots = [strTableSize]strSlot{}
		t.gen = 1
	}
	var entries uint32
	str := func(b []byte, s string) []byte {
		if len(s) > 0 {
			addr := StringAddr(s)
			sl := &t.slots[AddrSlot(addr, strTableSize)]
			if sl.gen == t.gen && sl.addr == addr && sl.len == len(s) {
				return binary.AppendUvarint(b, uint64(sl.entry)<<1|1)
			}
			*sl = strSlot{addr: addr, len: len(s), gen: t.gen, entry: entries}
		}
		entries++
		b = binary.AppendUvarint(b, uint64(len(s))<<1)
		return append(b, s...)
	}
	b = binary.AppendUvarint(b, sharedBatchMark)
	b = binary.AppendUvarint(b, uint64(len(recs)))
	for i := range recs {
		r := &recs[i]
		b = appendTimeIP(b, r)
		b = str(b, r.Domain)
		b = binary.AppendUvarint(b, uint64(len(r.Path)))
		b = append(b, r.Path...)
		b = str(b, r.UserAgent)
	}
	strTables.Put(t)
	return b
}

// decodeSharedBatch decodes the records of a shared-string batch, b being
// what follows its mark.
func decodeSharedBatch(b []byte) ([]Record, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, fmt.Errorf("batch count: %w", ErrCorrupt)
	}
	b = b[k:]
	// Each record takes at least 9 bytes, which bounds a hostile count.
	if n > uint64(len(b)/9+1) {
		return nil, fmt.Errorf("batch count %d exceeds payload: %w", n, ErrCorrupt)
	}
	recs := make([]Record, 0, n)
	var table []string
	str := func(what string) (string, error) {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			return "", fmt.Errorf("%s: %w", what, ErrCorrupt)
		}
		b = b[k:]
		if v&1 == 1 {
			if v>>1 >= uint64(len(table)) {
				return "", fmt.Errorf("%s: entry %d of %d: %w", what, v>>1, len(table), ErrCorrupt)
			}
			return table[v>>1], nil
		}
		if v>>1 > uint64(len(b)) {
			return "", fmt.Errorf("%s: %w", what, ErrCorrupt)
		}
		s := string(b[:v>>1])
		b = b[v>>1:]
		table = append(table, s)
		return s, nil
	}
	for i := uint64(0); i < n; i++ {
		var r Record
		var err error
		if r, b, err = decodeTimeIP(b); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		if r.Domain, err = str("domain"); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		var ok bool
		if r.Path, b, ok = cutString(b); !ok {
			return nil, fmt.Errorf("record %d: path: %w", i, ErrCorrupt)
		}
		if r.UserAgent, err = str("user agent"); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		recs = append(recs, r)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%d trailing bytes: %w", len(b), ErrCorrupt)
	}
	return recs, nil
}

// appendTimeIP appends r's time and address as both batch forms hold them.
func appendTimeIP(b []byte, r *Record) []byte {
	b = binary.AppendUvarint(b, uint64(r.Time.UnixMilli()))
	if r.IP.Is4() {
		a := r.IP.As4()
		b = append(b, 4)
		return append(b, a[:]...)
	}
	a := r.IP.As16()
	b = append(b, 16)
	return append(b, a[:]...)
}

// decodeTimeIP decodes what appendTimeIP wrote from the front of b and
// returns the rest.
func decodeTimeIP(b []byte) (Record, []byte, error) {
	var r Record
	ms, n := binary.Uvarint(b)
	if n <= 0 {
		return r, nil, fmt.Errorf("time: %w", ErrCorrupt)
	}
	b = b[n:]
	r.Time = time.UnixMilli(int64(ms)).UTC()
	if len(b) < 1 {
		return r, nil, fmt.Errorf("ip length: %w", ErrCorrupt)
	}
	switch l := b[0]; {
	case l == 4 && len(b) >= 5:
		r.IP = netip.AddrFrom4([4]byte(b[1:5]))
		return r, b[5:], nil
	case l == 16 && len(b) >= 17:
		r.IP = netip.AddrFrom16([16]byte(b[1:17]))
		return r, b[17:], nil
	default:
		return r, nil, fmt.Errorf("ip: %w", ErrCorrupt)
	}
}
