package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/retentiond/retentiond/internal/keys"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
	"github.com/retentiond/retentiond/internal/wal"
)

// head holds one day's unflushed records: sealed in-memory parts (seal.go)
// and the tail of records that arrived since, in arrival order. The tail
// is only ever appended to (sealing drops a prefix of it), so a snapshot
// may keep reading a view of it while new records arrive (Records).
type head struct {
	tail  Records    // not yet sealed
	parts []*memPart // sealed runs of the head, oldest first
	n     int64      // records in parts and tail
	// intern numbers the domain and user-agent strings the head shares
	// (names[i] is string i): records keep the shared strings, and the
	// numbers go with them in the tail (Records.addKnown) so that the
	// seal's writer finds each string's id without hashing it again.
	intern map[string]uint32
	names  []string
	// space names this head's numbering for its parts
	// (segment.Numbers.Space): unique in the process, never 0.
	space   uint64
	bytes   int64 // accounted memory of parts and tail
	minTime int64
	maxTime int64
	// tailSince is when the oldest record of the tail arrived: a tail that
	// stops growing is sealed after sealAge all the same.
	tailSince time.Time
	// lastAdd is when a record last joined the tail: a tail nothing joins
	// any more is sealed after sealIdle.
	lastAdd time.Time
	// lastDom and lastUA are the numbers of the last record's domain and
	// user agent (add).
	lastDom, lastUA uint32
	// shares, when set, is the store's cache of numbers by string
	// address (shareCache); nil numbers every string through intern.
	shares *shareCache
}

func newHead() *head {
	return &head{intern: make(map[string]uint32), space: headSpaces.Add(1)}
}

// shareCache remembers, by the address and length of a string's bytes,
// which head number (head.space and number) the string took last. The
// ingest's parser hands over one string per distinct domain and user agent
// of a request (parse.Interner), so a request's repeats of a string arrive
// with the same address, and a lookup by address skips hashing and
// comparing the bytes in head.intern: those were a third of a record's
// insert under the store's lock, user agents being a hundred bytes and
// more. Two strings with the same address and length hold the same bytes,
// because an entry keeps its string alive (the address cannot be reused)
// and strings do not change. A miss, or a slot taken by another string,
// only costs the lookup in head.intern. One cache serves all of a store's
// heads, under s.mu: it costs a fixed 128 KiB, and keeps alive at most
// shareCacheSize strings of up to shareCacheMaxLen bytes (1 MiB), whether
// or not their heads are still there.
type shareCache struct {
	e [shareCacheSize]shareEntry
}

// shareEntry is one slot of a shareCache.
type shareEntry struct {
	s     string // kept alive, so that its address cannot be reused
	space uint64 // head.space of the head that numbered s, 0 for none
	num   uint32
}

const (
	shareCacheSize   = 4096 // slots; a power of two
	shareCacheMaxLen = 256  // longer strings are not cached
)

// slot returns the entry for a string whose bytes lie at addr
// (record.StringAddr).
func (c *shareCache) slot(addr uintptr) *shareEntry {
	return &c.e[record.AddrSlot(addr, shareCacheSize)]
}

// newHead returns a new head of the store, numbering its strings through
// the store's shareCache.
func (s *Store) newHead() *head {
	h := newHead()
	h.shares = &s.shares
	return h
}

// headSpaces numbers the heads' numberings (head.space).
var headSpaces atomic.Uint64

// recordOverhead is what a record takes in the head besides its strings'
// bytes: the 96-byte struct (string headers included) and its 8 bytes of
// numbers (segment.Known) in slices that keep up to a quarter of their
// capacity unused after they grow, and the rounding of the path's
// allocation to a size class. Measured against the Go heap it
// keeps the head's real memory within a few percent of headBytes, so that
// storage.head_max_bytes bounds memory, not an optimistic figure.
const recordOverhead = 136

func (h *head) add(r record.Record) int64 {
	n := int64(recordOverhead + len(r.Path))
	var k segment.Known
	var added int64
	r.Domain, k.Domain, added = h.share(r.Domain, h.lastDom)
	n += added
	r.UserAgent, k.UserAgent, added = h.share(r.UserAgent, h.lastUA)
	n += added
	h.lastDom, h.lastUA = k.Domain, k.UserAgent
	ms := r.Time.UnixMilli()
	if h.n == 0 || ms < h.minTime {
		h.minTime = ms
	}
	if h.n == 0 || ms > h.maxTime {
		h.maxTime = ms
	}
	h.tail.addKnown(r, k)
	h.n++
	h.bytes += n
	return n
}

// share returns the head's shared copy of s and its number, and the
// bytes a new string adds. A visitor's requests come in runs: a record
// with the previous record's string (number last) takes it without a map
// lookup.
func (h *head) share(s string, last uint32) (string, uint32, int64) {
	if h.n > 0 && s == h.names[last] {
		return h.names[last], last, 0
	}
	var e *shareEntry
	var addr uintptr
	if h.shares != nil && len(s) > 0 && len(s) <= shareCacheMaxLen {
		addr = record.StringAddr(s)
		e = h.shares.slot(addr)
		if e.space == h.space && len(e.s) == len(s) && record.StringAddr(e.s) == addr {
			return h.names[e.num], e.num, 0
		}
	}
	id, ok := h.intern[s]
	var added int64
	if !ok {
		id = uint32(len(h.names))
		h.intern[s] = id
		h.names = append(h.names, s)
		added = int64(len(s)) + 48
	}
	if e != nil {
		*e = shareEntry{s: s, space: h.space, num: id}
	}
	return h.names[id], id, added
}

// tailBytes is what the first n records of the tail were accounted at by
// add, less their interned strings (which stay in the head's intern map).
func (h *head) tailBytes(n int) int64 {
	var b int64
	for i := range n {
		b += int64(recordOverhead + len(h.tail.At(i).Path))
	}
	return b
}

// insertLocked adds a record to its day's head at time now (one reading
// of the clock for a whole batch). s.mu must be held.
func (s *Store) insertLocked(r record.Record, now time.Time) {
	key := record.Day(r.Time).Unix()
	h := s.heads[key]
	if h == nil {
		h = s.newHead()
		s.heads[key] = h
	}
	if s.headBytes == 0 && s.oldestHead.IsZero() {
		s.oldestHead = now
	}
	if h.tail.Len() == 0 {
		h.tailSince = now
	}
	h.lastAdd = now
	s.headBytes += h.add(r)
	s.walDirty = true
	if h.tail.Len() == s.opts.SealRows {
		s.kickSeal()
	}
}

// Append stores recs durably: it returns nil only after their WAL record is
// fsynced, so the caller may acknowledge them. Records must already be
// normalised (record.Normalize). Having stored nothing, it returns ErrBusy
// when unflushed records exceed their memory bound, ErrTooLarge when the
// batch alone exceeds it, and an error wrapping ErrFailed if the WAL write or
// fsync failed (that batch is not replayed later either; see docs/wal.md).
// A batch of any size is accepted: one larger than a WAL frame is written as
// several frames in one write and one fsync.
func (s *Store) Append(ctx context.Context, recs []record.Record) error {
	return s.append(ctx, recs, true)
}

// AppendNoSync is Append without waiting for the WAL's fsync: it returns
// once recs are written to the WAL and in the head, and they are durable
// only once a later Sync (or Append, or a flush) returns without error. The
// caller acknowledges them only after that. HTTP ingest appends a request's
// chunks this way and syncs once before it answers: one fsync per request
// instead of one per chunk of about 1 MiB, which in issue 15's peer
// benchmark were 1,343 fsyncs for 100 requests and about 7 % of the
// daemon's CPU. The records are searchable before they are durable; a crash
// meanwhile loses only records no client was told were stored.
func (s *Store) AppendNoSync(ctx context.Context, recs []record.Record) error {
	return s.append(ctx, recs, false)
}

// Sync makes every record appended so far durable (see AppendNoSync). It
// returns an error wrapping ErrFailed, and fails the store, if the WAL's
// fsync failed: the records written since the previous one are then cut
// from the WAL and must not be acknowledged.
func (s *Store) Sync() error {
	if err := s.wal.Sync(); err != nil {
		return s.walFailed("sync wal", err)
	}
	return nil
}

// walFailed wraps an error of the WAL from what. Only a real write or fsync
// failure fails the store; anything else (the WAL closing under a
// shutdown) is only this caller's error.
func (s *Store) walFailed(what string, err error) error {
	if errors.Is(err, wal.ErrFailed) {
		s.fail(err)
		return fmt.Errorf("%w: %s: %w", ErrFailed, what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (s *Store) append(ctx context.Context, recs []record.Record, sync bool) error {
	if len(recs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	est := estimate(recs)
	if est > s.opts.HeadMaxBytes {
		return fmt.Errorf("%w: %d records need about %d bytes, the bound is %d", ErrTooLarge, len(recs), est, s.opts.HeadMaxBytes)
	}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return ErrClosed
	case s.failed != nil:
		err := s.failed
		s.mu.Unlock()
		return fmt.Errorf("%w: %w", ErrFailed, err)
	}
	if s.headBytes+s.frozenBytes+s.reserved+est > s.opts.HeadMaxBytes {
		s.mu.Unlock()
		s.m.busy.Inc()
		s.kickFlush()
		return ErrBusy
	}
	s.reserved += est
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.reserved -= est
		s.mu.Unlock()
	}()

	frames, err := s.frames(recs)
	if err != nil {
		return err
	}
	s.appendMu.RLock()
	defer s.appendMu.RUnlock()
	if sync {
		_, err = s.wal.AppendAll(frames)
	} else {
		_, err = s.wal.Write(frames)
	}
	// The WAL copied the frames into its own buffer before it answered.
	releaseFrames(frames)
	if err != nil {
		return s.walFailed("append to wal", err)
	}
	s.mu.Lock()
	// The records move from the reservation into the head in one step, so
	// they are never counted twice against the bound (the deferred release
	// then gives back nothing).
	s.reserved -= est
	est = 0
	now := s.opts.Now()
	for _, r := range recs {
		s.insertLocked(r, now)
	}
	over := s.headBytes >= s.opts.HeadMaxBytes/2
	s.mu.Unlock()
	s.m.appended.Add(float64(len(recs)))
	if over {
		s.kickFlush()
	}
	return nil
}

// frames encodes recs as WAL payloads. With encryption, a frame holds
// records of one day only, sealed under that day's key (created here for
// a new day, durably, before any of its records is written), so that
// destroying the key also makes the day's WAL records unreadable.
func (s *Store) frames(recs []record.Record) ([][]byte, error) {
	if s.opts.Keys == nil {
		return encodeFrames(recs, wal.MaxPayload, 0, 0), nil
	}
	// Almost every batch holds records of one day; only one that spans
	// midnight (or a backfill) is split, which costs a copy.
	first := record.Day(recs[0].Time)
	byDay := map[int64][]record.Record{first.Unix(): recs}
	order := []int64{first.Unix()}
	for i := range recs {
		if !record.Day(recs[i].Time).Equal(first) {
			byDay, order = map[int64][]record.Record{}, nil
			for _, r := range recs {
				k := record.Day(r.Time).Unix()
				if _, ok := byDay[k]; !ok {
					order = append(order, k)
				}
				byDay[k] = append(byDay[k], r)
			}
			break
		}
	}
	var frames [][]byte
	for _, k := range order {
		key, err := s.opts.Keys.KeyFor(time.Unix(k, 0))
		if err != nil {
			return nil, fmt.Errorf("append: %w", err)
		}
		for _, f := range encodeFrames(byDay[k], wal.MaxPayload-keys.FrameOverhead, keys.FrameHeaderSize, keys.Overhead) {
			sealed, err := key.SealFrameInPlace(f)
			if err != nil {
				return nil, fmt.Errorf("append: %w", err)
			}
			frames = append(frames, sealed)
		}
	}
	return frames, nil
}

// encodeFrames encodes recs as WAL payloads of at most max bytes each, in
// order. A record's encoding is far below a frame (its fields are bounded by
// record's limits), so every payload holds at least one record. Each
// payload starts after head bytes of room and has the capacity for tail
// more bytes (a sealed frame's header and tag, keys.SealFrameInPlace).
func encodeFrames(recs []record.Record, max, head, tail int) [][]byte {
	// The upper bound of one record's encoding: uvarint time, IP, and three
	// uvarint lengths (or table references), each string in full; and of a
	// batch's start, its mark and count. The bound ignores that a shared-
	// string batch writes a repeated string once (record.AppendSharedBatch),
	// so a frame holds fewer records than would fit, never more.
	bound := func(r *record.Record) int {
		return binary.MaxVarintLen64 + 17 + 3*binary.MaxVarintLen32 + len(r.Domain) + len(r.Path) + len(r.UserAgent)
	}
	const start0 = 2 * binary.MaxVarintLen64
	var frames [][]byte
	start, size := 0, start0
	for i := range recs {
		n := bound(&recs[i])
		if i > start && size+n > max {
			frames = append(frames, record.AppendSharedBatch(newFrame(head, head+size+tail), recs[start:i]))
			start, size = i, start0
		}
		size += n
	}
	return append(frames, record.AppendSharedBatch(newFrame(head, head+size+tail), recs[start:]))
}

// framePool recycles the buffers of large WAL frames (*[]byte). Batches
// of thousands of records, as HTTP chunks are, each took a new buffer of
// up to a MiB: a fifth of what the daemon allocated under issue 15's peer
// benchmark, paid again by the garbage collector. Small frames (a syslog
// line) are not worth a pooled buffer of that size.
var framePool sync.Pool

// minPooledFrame and maxPooledFrame bound the frame capacities kept in
// framePool: a frame of a rare huge batch (up to wal.MaxPayload) is left
// to the collector rather than kept for batches that never need it.
const (
	minPooledFrame = 64 << 10
	maxPooledFrame = 4 << 20
)

// newFrame returns a frame buffer of length head (zeroed room for a
// sealed frame's header) and capacity at least n.
func newFrame(head, n int) []byte {
	if n >= minPooledFrame && n <= maxPooledFrame {
		if p, ok := framePool.Get().(*[]byte); ok && cap(*p) >= n {
			b := (*p)[:head]
			clear(b)
			return b
		}
	}
	return make([]byte, head, n)
}

// releaseFrames returns frames' buffers to framePool once nothing refers
// to them any more.
func releaseFrames(frames [][]byte) {
	for _, f := range frames {
		if cap(f) >= minPooledFrame && cap(f) <= maxPooledFrame {
			f = f[:0]
			framePool.Put(&f)
		}
	}
}

// estimate is an upper bound of what recs add to the head (interning of
// domains and user agents only makes the real figure smaller).
func estimate(recs []record.Record) int64 {
	var n int64
	for i := range recs {
		n += int64(recordOverhead + 96 + len(recs[i].Path) + len(recs[i].Domain) + len(recs[i].UserAgent))
	}
	return n
}

// dropHeadLocked forgets the unflushed records of day key. They stay in the
// WAL until the next flush, which walDirty forces. s.mu must be held.
func (s *Store) dropHeadLocked(key int64) {
	if h := s.heads[key]; h != nil {
		s.headBytes -= h.bytes
		delete(s.heads, key)
	}
}
