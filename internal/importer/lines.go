package importer

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
)

// lineReader splits a stream into lines of at most max bytes and keeps, for
// exactly the bytes handed out so far, their count and their SHA-256. The
// ledger identifies "what was imported" by that pair, so hashing follows
// consumed lines, never the bufio read-ahead.
//
// A line longer than max is not returned: its bytes are consumed (and
// hashed) up to its newline and Next reports it as too long, so one hostile
// line costs neither memory nor the lines after it.
type lineReader struct {
	br     *bufio.Reader
	max    int
	h      hash.Hash
	offset int64 // bytes consumed (hashed) so far
	line   int64 // number of the line last returned (1-based)
	err    error
}

// errLineTooLong reports a line over the maximum; the reader has already
// skipped past it.
var errLineTooLong = errors.New("line too long")

func newLineReader(r io.Reader, max int) *lineReader {
	// ReadSlice needs the whole line in the buffer; 4 KiB more than the
	// maximum leaves room for the newline and a CR.
	return &lineReader{br: bufio.NewReaderSize(r, max+4096), max: max, h: sha256.New()}
}

// Next returns the next line without its line terminator (LF or CRLF). The
// slice is valid until the next call. At the end of the input it returns
// io.EOF; a final line without a newline is still returned first. A line
// longer than max yields errLineTooLong (with a nil line) and the reader
// moves on; other errors are sticky.
func (lr *lineReader) Next() ([]byte, error) {
	if lr.err != nil {
		return nil, lr.err
	}
	chunk, err := lr.br.ReadSlice('\n')
	lr.consume(chunk)
	switch {
	case err == nil:
		lr.line++
		if len(chunk)-1 > lr.max {
			return nil, errLineTooLong
		}
		return trimEOL(chunk), nil
	case errors.Is(err, bufio.ErrBufferFull):
		lr.line++
		for errors.Is(err, bufio.ErrBufferFull) {
			chunk, err = lr.br.ReadSlice('\n')
			lr.consume(chunk)
		}
		if err != nil && err != io.EOF {
			lr.err = err
			return nil, err
		}
		return nil, errLineTooLong
	case err == io.EOF:
		if len(chunk) == 0 {
			lr.err = io.EOF
			return nil, io.EOF
		}
		lr.line++
		if len(chunk) > lr.max {
			return nil, errLineTooLong
		}
		return trimEOL(chunk), nil
	default:
		lr.err = err
		return nil, err
	}
}

func (lr *lineReader) consume(b []byte) {
	if len(b) > 0 {
		lr.h.Write(b)
		lr.offset += int64(len(b))
	}
}

// Sum returns the SHA-256 of every byte consumed so far, without disturbing
// the running hash.
func (lr *lineReader) Sum() [32]byte {
	var s [32]byte
	lr.h.Sum(s[:0])
	return s
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}
