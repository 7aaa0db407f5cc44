package record

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The binary form of a record is what batches of records hold: the plain
// form below, which peers of a cluster exchange and earlier versions wrote to
// the write-ahead log, and the shared-string form the WAL holds now
// (sharedbatch.go). It is not a search format (segments are columnar); it
// only has to be compact, cheap to encode on the ingest path and unambiguous
// to decode:
//
//	uvarint  unix milliseconds
//	byte     IP length (4 or 16), then the address bytes
//	uvarint  len(domain), domain bytes
//	uvarint  len(path), path bytes
//	uvarint  len(user agent), user agent bytes
//
// A batch is a uvarint record count followed by that many records. The WAL
// writes the shared-string form of a batch instead (AppendSharedBatch),
// which DecodeBatch reads too.

// ErrCorrupt is returned (wrapped) when a binary record cannot be decoded.
var ErrCorrupt = errors.New("corrupt record encoding")

// AppendBinary appends the binary form of r to b.
func AppendBinary(b []byte, r *Record) []byte {
	b = appendTimeIP(b, r)
	for _, s := range [...]string{r.Domain, r.Path, r.UserAgent} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// AppendBatch appends the binary form of a batch of records to b.
func AppendBatch(b []byte, recs []Record) []byte {
	b = binary.AppendUvarint(b, uint64(len(recs)))
	for i := range recs {
		b = AppendBinary(b, &recs[i])
	}
	return b
}

// DecodeBinary decodes one record from the front of b and returns the rest.
func DecodeBinary(b []byte) (Record, []byte, error) {
	r, b, err := decodeTimeIP(b)
	if err != nil {
		return r, nil, err
	}
	var fields [3]string
	for i := range fields {
		var ok bool
		if fields[i], b, ok = cutString(b); !ok {
			return r, nil, fmt.Errorf("string field %d: %w", i, ErrCorrupt)
		}
	}
	r.Domain, r.Path, r.UserAgent = fields[0], fields[1], fields[2]
	return r, b, nil
}

// cutString decodes a uvarint length and that many bytes from the front of
// b, the form both batch forms write a string in, and returns the rest; ok
// is false when b is too short.
func cutString(b []byte) (s string, rest []byte, ok bool) {
	l, n := binary.Uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) {
		return "", nil, false
	}
	return string(b[n : n+int(l)]), b[n+int(l):], true
}

// DecodeBatch decodes a batch written by AppendBatch or AppendSharedBatch
// (sharedbatch.go). Trailing bytes are an error.
func DecodeBatch(b []byte) ([]Record, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, fmt.Errorf("batch count: %w", ErrCorrupt)
	}
	b = b[k:]
	if n == sharedBatchMark {
		return decodeSharedBatch(b)
	}
	// Each record takes at least 8 bytes, which bounds a hostile count.
	if n > uint64(len(b)/8+1) {
		return nil, fmt.Errorf("batch count %d exceeds payload: %w", n, ErrCorrupt)
	}
	recs := make([]Record, 0, n)
	for i := uint64(0); i < n; i++ {
		r, rest, err := DecodeBinary(b)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		recs = append(recs, r)
		b = rest
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%d trailing bytes: %w", len(b), ErrCorrupt)
	}
	return recs, nil
}
