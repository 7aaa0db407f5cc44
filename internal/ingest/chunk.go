package ingest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/retentiond/retentiond/internal/parse"
	"github.com/retentiond/retentiond/internal/record"
)

// An HTTP body is parsed and stored in chunks rather than whole, so that the
// memory one request takes is a chunk, not its body. The body is split into
// items (lines, or the elements of a JSON array); up to ChunkBytes of them are
// copied into the chunk's buffer; then head memory is reserved for what they
// can become, they are parsed, and the records are stored before the next
// chunk is read. They are made durable together, with one fsync, before the
// request is answered (DeferredReservation), whatever the answer.

// Reservation is memory set aside for one chunk's records; see Admitter.
type Reservation interface {
	// Append stores the records durably within the reservation.
	Append(ctx context.Context, recs []record.Record) error
	// Release gives back what the records did not use.
	Release()
}

// DeferredReservation is a Reservation that can store a chunk's records
// without waiting for them to be durable: AppendNoSync writes them, and
// Syncer.Sync on the Sink makes every record appended so far durable. When
// both are there (a *store.Store), HTTP ingest syncs once per request,
// before it answers, instead of once per chunk of about ChunkBytes: the
// peer benchmark's 100 requests of 50,000 lines cost 1,343 fsyncs, about
// 7 % of the daemon's CPU and more of the requests' time.
type DeferredReservation interface {
	Reservation
	AppendNoSync(ctx context.Context, recs []record.Record) error
}

// Syncer is implemented by a Sink whose records appended without waiting
// (DeferredReservation) become durable when Sync returns nil. An error
// means they may be lost: the request answers that nothing since its last
// Sync was stored.
type Syncer interface {
	Sync() error
}

// Admitter is implemented by a Sink that bounds the memory of records on
// their way in. HTTP ingest reserves memory for each chunk of a body before
// it parses it, and waits for room rather than failing. Options.Admitter
// names it (Admit adapts a *store.Store); a Sink that implements Admitter
// itself is used as one (tests do); without one, chunks are stored without
// reservations.
type Admitter interface {
	// Reserve sets aside n bytes, waiting until there is room or ctx ends.
	Reserve(ctx context.Context, n int64) (Reservation, error)
	// ReserveLimit is the most one Reserve may ask for.
	ReserveLimit() int64
	// ReserveFor is what Reserve must be asked for n records whose text
	// fields take textBytes together.
	ReserveFor(n int, textBytes int64) int64
}

// Reserver is a memory-bounding store whose Reserve returns its own
// reservation type R: *store.Store, whose Reserve returns a
// *store.Reservation. Admit turns it into an Admitter, so that ingest knows
// the store only by its behaviour and does not import it.
type Reserver[R Reservation] interface {
	Reserve(ctx context.Context, n int64) (R, error)
	ReserveLimit() int64
	ReserveFor(n int, textBytes int64) int64
}

// Admit adapts a Reserver (a *store.Store) to an Admitter.
func Admit[R Reservation](s Reserver[R]) Admitter { return admitter[R]{s} }

type admitter[R Reservation] struct{ Reserver[R] }

func (a admitter[R]) Reserve(ctx context.Context, n int64) (Reservation, error) {
	r, err := a.Reserver.Reserve(ctx, n)
	if err != nil {
		return nil, err // not a Reservation holding a nil R
	}
	return r, nil
}

// item is one line or array element of a chunk: buf[off:end] of the chunk,
// or an error found while splitting (too long, broken array).
type item struct {
	line     int
	off, end int
	err      error
}

// chunker collects items into chunks and parses and stores each full chunk.
type chunker struct {
	h      *Handler
	ctx    context.Context
	input  string
	parse  func(line []byte) (record.Record, error)
	domain string // the default domain, which records may copy
	now    time.Time
	limit  int64 // largest reservation; 0 without an Admitter

	buf   []byte
	items []item
	recs  []record.Record
	ans   *Answer

	// started says that some records of the request are stored: from then
	// on a store that is out of memory is waited for (up to MidBodyWait)
	// rather than answered with 429, which would make the client resend
	// what is already stored.
	started bool
	// next is the first line not yet stored or rejected: where a client
	// resumes after an error.
	next int
	// unsynced says that records were appended without waiting for
	// durability (DeferredReservation) since the last sync, which then
	// left accepted records stored and synced lines before line
	// syncedNext.
	unsynced           bool
	synced, syncedNext int
	// syncer is the Sink as a Syncer, nil if it is none.
	syncer Syncer
}

// chunkBuffers are a chunker's buffers, kept between requests: grown anew
// for every request they were an eighth of what the daemon allocated under
// issue 15's peer benchmark, and each allocation is paid again by the
// garbage collector, which the head's memory limit makes run often.
type chunkBuffers struct {
	buf   []byte
	items []item
	recs  []record.Record
}

// chunkPool holds chunkBuffers of finished requests.
var chunkPool sync.Pool

// takeBuffers gives c the buffers of a finished request, if there is one.
func (c *chunker) takeBuffers() {
	if b, ok := chunkPool.Get().(*chunkBuffers); ok {
		c.buf, c.items, c.recs = b.buf[:0], b.items[:0], b.recs[:0]
	}
}

// releaseBuffers hands c's buffers to the next request. Nothing in them
// is referenced once the request is answered: the parser copies what it
// keeps out of buf, and the store copies the records.
func (c *chunker) releaseBuffers() {
	clear(c.items[:cap(c.items)]) // the errors of rejected lines
	clear(c.recs[:cap(c.recs)])   // the records' strings
	chunkPool.Put(&chunkBuffers{buf: c.buf[:0], items: c.items[:0], recs: c.recs[:0]})
	c.buf, c.items, c.recs = nil, nil, nil
}

// errStore wraps a failure to reserve memory or store a chunk, as opposed
// to a failure to read the body.
type errStore struct{ err error }

func (e *errStore) Error() string { return e.err.Error() }
func (e *errStore) Unwrap() error { return e.err }

// cost is what Reserve is asked for a chunk of n items and b bytes.
func (c *chunker) cost(n int, b int) int64 {
	return c.h.adm.ReserveFor(n, int64(b)+int64(n)*int64(len(c.domain)))
}

// add copies one item into the chunk, storing the chunk first if the item
// would not fit.
func (c *chunker) add(line int, data []byte, err error) error {
	if err == nil && c.limit > 0 && c.cost(1, len(data)) > c.limit {
		// One line that alone needs more than a reservation may hold: a
		// very small storage.head_max_bytes next to a large max_line_bytes.
		err = fmt.Errorf("%w: %d bytes need more memory than storage.head_max_bytes allows at once", errTooLong, len(data))
	}
	if err == nil {
		full := len(c.buf)+len(data) > c.h.opts.ChunkBytes || len(c.items) >= c.h.opts.ChunkRecords ||
			(c.limit > 0 && c.cost(len(c.items)+1, len(c.buf)+len(data)) > c.limit)
		if full && len(c.items) > 0 {
			if err := c.flush(); err != nil {
				return err
			}
		}
		off := len(c.buf)
		c.buf = append(c.buf, data...)
		c.items = append(c.items, item{line: line, off: off, end: len(c.buf)})
		return nil
	}
	c.items = append(c.items, item{line: line, err: err})
	return nil
}

// flush reserves memory for the chunk, parses it and stores its records.
func (c *chunker) flush() error {
	if len(c.items) == 0 {
		return nil
	}
	var res Reservation
	if c.limit > 0 {
		wait := c.h.opts.QueueTimeout
		if c.started {
			wait = c.h.opts.MidBodyWait
		}
		ctx, cancel := context.WithTimeout(c.ctx, wait)
		var err error
		res, err = c.h.adm.Reserve(ctx, c.cost(len(c.items), len(c.buf)))
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && c.ctx.Err() == nil {
				c.h.m.refused.WithLabelValues(c.input, "memory").Inc()
				err = fmt.Errorf("%w: no head memory within %s", errSaturated, wait)
			}
			return &errStore{err}
		}
		defer res.Release()
	}
	c.recs = c.recs[:0]
	win := c.h.opts.windowAt(c.now)
	for _, it := range c.items {
		var rec record.Record
		err := it.err
		if err == nil {
			rec, err = c.parse(c.buf[it.off:it.end])
		}
		if err == nil {
			err = win.check(&rec)
		}
		if err != nil {
			c.ans.reject(it.line, err)
			c.h.m.reject(c.input, err)
			continue
		}
		c.recs = append(c.recs, rec)
	}
	last := c.items[len(c.items)-1].line
	c.buf, c.items = c.buf[:0], c.items[:0]
	if len(c.recs) > 0 {
		var err error
		dr, deferred := res.(DeferredReservation)
		switch {
		case deferred && c.syncer != nil:
			err = dr.AppendNoSync(c.ctx, c.recs)
			c.unsynced = true
		case res != nil:
			err = res.Append(c.ctx, c.recs)
		default:
			err = c.h.opts.Sink.Append(c.ctx, c.recs)
		}
		if err != nil {
			return &errStore{err}
		}
		c.started = true
		c.ans.Accepted += len(c.recs)
		c.h.m.records.WithLabelValues(c.input, "accepted").Add(float64(len(c.recs)))
	}
	c.next = last + 1
	clear(c.recs) // let the strings go; the store holds its own copies
	return nil
}

// sync makes the records the request appended without waiting durable,
// before it is answered. If that fails they may be lost, and the answer
// goes back to what the last sync made durable: the accepted count and the
// line to resume at.
func (c *chunker) sync() error {
	if !c.unsynced {
		return nil
	}
	c.unsynced = false
	if err := c.syncer.Sync(); err != nil {
		c.ans.Accepted, c.next = c.synced, c.syncedNext
		return &errStore{err}
	}
	c.synced, c.syncedNext = c.ans.Accepted, c.next
	return nil
}

// eachElement splits a JSON array (br is at its '[') into its elements
// without decoding them: each one is handed to emit as its bytes, to be
// parsed with the chunk, so an array is read with the memory of one chunk
// whatever its length. An element over MaxLineBytes is rejected and skipped
// without costing the ones after it. Line numbers are the 1-based positions
// of the elements.
func (h *Handler) eachElement(br *bufio.Reader, emit func(int, []byte, error) error) error {
	if _, err := br.ReadByte(); err != nil { // the '['
		return err
	}
	var buf []byte
	for i := 1; ; i++ {
		c, err := nextNonSpace(br)
		if errors.Is(err, io.EOF) || (err == nil && c == ']') {
			return nil // a missing ']' at the end is forgiven, as a trailing ','
		}
		if err != nil {
			return err
		}
		var tooLong bool
		buf, tooLong, err = h.readElement(br, c, buf[:0])
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF):
			return emit(i, nil, &parse.SyntaxError{Column: len(buf) + 1, Msg: "invalid JSON array element: unexpected end of the body"})
		case err != nil:
			return err
		case tooLong:
			err = emit(i, nil, fmt.Errorf("%w: array element of more than %d bytes", errTooLong, h.opts.MaxLineBytes))
		default:
			err = emit(i, buf, nil)
		}
		if err != nil {
			return err
		}
		c, err = nextNonSpace(br)
		switch {
		case errors.Is(err, io.EOF) || (err == nil && c == ']'):
			return nil
		case err != nil:
			return err
		case c != ',':
			// Without the separator the rest cannot be split reliably.
			return emit(i+1, nil, &parse.SyntaxError{Column: 1, Msg: fmt.Sprintf("invalid JSON array: expected ',' or ']' after element %d, got %q", i, c)})
		}
	}
}

// readElement reads one array element that starts with first: an object,
// array or string up to its matching end, anything else (a number or a
// literal) up to the next separator. It only tracks nesting and strings;
// ParseJSON checks the syntax. Bytes beyond MaxLineBytes are not kept.
func (h *Handler) readElement(br *bufio.Reader, first byte, buf []byte) ([]byte, bool, error) {
	tooLong := false
	keep := func(b byte) {
		if len(buf) >= h.opts.MaxLineBytes {
			tooLong = true
			return
		}
		buf = append(buf, b)
	}
	keep(first)
	if first != '{' && first != '[' && first != '"' {
		for {
			b, err := br.ReadByte()
			if err == io.EOF {
				return buf, tooLong, nil
			}
			if err != nil {
				return buf, tooLong, err
			}
			if b == ',' || b == ']' || isJSONSpace(b) {
				return buf, tooLong, br.UnreadByte()
			}
			keep(b)
		}
	}
	depth, inStr, esc := 1, first == '"', false
	if inStr {
		depth = 0
	}
	for depth > 0 || inStr {
		b, err := br.ReadByte()
		if err == io.EOF {
			return buf, tooLong, io.ErrUnexpectedEOF
		}
		if err != nil {
			return buf, tooLong, err
		}
		keep(b)
		switch {
		case esc:
			esc = false
		case inStr:
			switch b {
			case '\\':
				esc = true
			case '"':
				inStr = false
			}
		case b == '"':
			inStr = true
		case b == '{' || b == '[':
			depth++
		case b == '}' || b == ']':
			depth--
		}
	}
	return buf, tooLong, nil
}

func isJSONSpace(b byte) bool { return b == ' ' || b == '\n' || b == '\r' || b == '\t' }

func nextNonSpace(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil || !isJSONSpace(b) {
			return b, err
		}
	}
}
