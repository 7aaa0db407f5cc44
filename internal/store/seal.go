package store

import (
	"context"
	"fmt"
	"time"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
)

// Sealing turns the tail of a head into an in-memory part: the records,
// sorted by time and encoded as a segment in memory (segment.WriteMemory),
// with the same block index, dictionaries and address filter as a file.
// This is VictoriaLogs' in-memory part, for the same two reasons: a search
// over fresh data uses the indexes instead of matching every unflushed
// record (an investigator of a live incident searches exactly that data),
// and a sealed record takes 10-20 bytes instead of the 150-300 of a
// record.Record in a slice, so storage.head_max_bytes holds ten times more
// records between flushes and memory stays low. The records stay durable in
// the WAL as before; a flush merges a head's parts and tail into the part
// file.
const (
	// defaultSealRows (Options.SealRows) seals a tail as soon as it holds
	// this many records: the most a search ever matches one by one per day.
	defaultSealRows = 1 << 16
	// A tail of a sixteenth of SealRows is sealed once it is sealAge old, so
	// that a slower stream is indexed within seconds too; a smaller tail is
	// cheap to scan and not worth a part of its own.
	sealAge = 2 * time.Second
	// sealIdle seals such a tail sooner, once no record has joined it for
	// this long: a shipper catching up on old days moves on from each day
	// in well under a second, and each day it left kept its tail, at ten
	// times a part's memory per record, for sealAge. Under the peer
	// benchmark (5M records over 10 days) those tails took the head past
	// half its bound, so that a flush ran in the middle of the ingest.
	sealIdle = 250 * time.Millisecond
	// sealLevel is the zstd level of in-memory parts: the fastest, since a
	// part lives only until the next flush re-encodes it.
	sealLevel = 1
	// sealIPPageEntries is the IP index page size of in-memory parts. A
	// search of an address looks it up in every part of the day's head,
	// which with pages of a file's 1,024 addresses (a page decompressed and
	// half of it scanned) cost 2.8-3.8 times the same lookup in the day's
	// one flushed file (BenchmarkFreshData, 10 parts); pages of 64 cost
	// a sixteenth of that and a few KiB more per part.
	sealIPPageEntries = 64
	// maxMemParts is how many parts a head keeps before sealing merges them
	// into one, so that a search and the flush's merge visit a bounded
	// number of sources.
	maxMemParts = 32
)

// sealOptions are the segment options of in-memory parts.
var sealOptions = segment.Options{Level: sealLevel, IPPageEntries: sealIPPageEntries}

// memPart is a sealed run of a head.
type memPart struct {
	r     *segment.Reader
	n     int64 // records
	bytes int64 // accounted memory: the encoded bytes and the parsed footer
}

func (s *Store) kickSeal() {
	select {
	case s.sealKick <- struct{}{}:
	default:
	}
}

// sealLoop seals heads in the background, apart from the flush and merge
// loop so that a long merge never keeps fresh data unindexed.
func (s *Store) sealLoop() {
	defer close(s.sealDone)
	tick := time.NewTicker(sealIdle / 2)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.sealKick:
		case <-tick.C:
		}
		if err := s.sealDue(); err != nil {
			s.log.Warn("sealing the head failed; its records stay in the tail", "err", err)
		}
	}
}

// sealDue seals every head whose tail is due. Appends go on meanwhile,
// into the tail beyond the sealed prefix, and so does a flush: sealing must
// not wait for one (a flush of a big head takes seconds, and a tail left
// growing meanwhile takes ten times the memory of its parts). It changes a
// head only under s.mu and only while the head is still current: a flush
// freezes heads under s.mu too, and a frozen head is never changed, so an
// encoding that lost that race is dropped and the flush writes the tail.
// sealMu lets one sealing run at a time.
func (s *Store) sealDue() error {
	s.sealMu.Lock()
	defer s.sealMu.Unlock()
	type job struct {
		key  int64
		h    *head
		recs Records
	}
	var jobs []job
	now := s.opts.Now()
	s.mu.Lock()
	for key, h := range s.heads {
		n := h.tail.Len()
		if n >= s.opts.SealRows || n >= s.opts.SealRows/16 && (now.Sub(h.tailSince) >= sealAge || now.Sub(h.lastAdd) >= sealIdle) {
			jobs = append(jobs, job{key, h, h.tail.prefix(n)})
		}
	}
	s.mu.Unlock()
	for _, j := range jobs {
		p, err := sealPart(j.key, j.h.space, []Records{j.recs}, nil)
		if err != nil {
			return err
		}
		s.mu.Lock()
		if s.heads[j.key] != j.h { // frozen by a flush or dropped by DeleteDay meanwhile
			s.mu.Unlock()
			continue
		}
		h := j.h
		n := j.recs.Len()
		freed := h.tailBytes(n)
		// The records that arrived while this was sealed stay where they
		// are: the tail lets go of the chunks it no longer needs, which
		// the tails reuse unless a snapshot may still read them (its
		// view of a tail holds the tail's chunks until it is released).
		// The decision is taken under s.mu, where snapshots take their
		// views; the clearing (up to 6 MiB) is done after it, since nothing
		// can reach the dropped chunks any more and appends wait on s.mu.
		old := h.tail
		var gone int
		h.tail, gone = h.tail.dropChunks(n)
		if len(s.readers) > 0 {
			gone = 0
		}
		s.recycledChunks += gone
		h.tailSince = now
		h.parts = append(h.parts, p)
		delta := p.bytes - freed
		h.bytes += delta
		s.headBytes += delta
		var compact []*memPart
		if len(h.parts) > maxMemParts {
			compact = h.parts
		}
		s.mu.Unlock()
		old.recycle(gone)
		s.m.sealed.Add(float64(n))
		if compact != nil {
			if err := s.compactParts(j.key, h, compact); err != nil {
				return err
			}
		}
	}
	return nil
}

// compactParts merges a head's parts into one, outside s.mu: the parts are
// immutable, and the head's part list only grows meanwhile (under sealMu,
// only this function shrinks it); a head frozen meanwhile is left as it is.
func (s *Store) compactParts(key int64, h *head, parts []*memPart) error {
	p, err := sealPart(key, h.space, nil, parts)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.heads[key] != h {
		return nil
	}
	var freed int64
	for _, q := range parts {
		freed += q.bytes
	}
	h.parts = append([]*memPart{p}, h.parts[len(parts):]...)
	h.bytes += p.bytes - freed
	s.headBytes += p.bytes - freed
	return nil
}

// sealPart encodes record runs and existing parts into one in-memory part.
// The runs' records carry the numbers of the head whose numbering is space
// (Records.addKnown); the part keeps them beside its dictionaries
// (segment.Numbers) when every source was numbered so.
func sealPart(key int64, space uint64, runs []Records, parts []*memPart) (*memPart, error) {
	name := fmt.Sprintf("memory part of %s", record.DayString(time.Unix(key, 0)))
	opts := sealOptions
	var b []byte
	var info segment.Info
	if len(parts) == 0 && len(runs) == 1 {
		var err error
		if b, info, err = segment.WriteMemoryRuns(name, runs[0].Chunks(), runs[0].knownChunks(), opts); err != nil {
			return nil, fmt.Errorf("seal head: %w", err)
		}
	} else {
		srcs, err := partReaders(name, space, runs, parts)
		if err != nil {
			return nil, err
		}
		w, err := segment.NewMemoryWriter(name, opts)
		if err != nil {
			return nil, fmt.Errorf("seal head: %w", err)
		}
		if err := mergeInto(context.Background(), w, srcs); err != nil {
			w.Abort()
			return nil, fmt.Errorf("seal head: %w", err)
		}
		if info, err = w.Close(); err != nil {
			return nil, fmt.Errorf("seal head: %w", err)
		}
		if commonSpace(srcs) != space {
			// The merge numbered the strings its own way (mergeWithout).
			info.Numbers = nil
		}
		b = w.Bytes()
	}
	nums := info.Numbers
	if nums != nil {
		nums.Space = space
	}
	// A search of a domain looks it up in every part of the day's head:
	// the parts sort their domains for it.
	r, err := segment.OpenBytes(b, name, segment.OpenOptions{IndexDomains: true, Numbers: nums})
	if err != nil {
		return nil, fmt.Errorf("seal head: %w", err)
	}
	// The parsed footer (dictionaries, block table) roughly doubles what
	// the encoded bytes take; the numbers take 4 bytes per entry.
	bytes := 2*int64(len(b)) + 4096
	if nums != nil {
		bytes += 4 * int64(len(nums.Domains)+len(nums.UserAgents))
	}
	return &memPart{r: r, n: info.Records, bytes: bytes}, nil
}

// partReaders returns readers over parts followed by each run encoded as a
// part of its own, in that order (so that equal times keep arrival order
// in a merge: parts are older than the runs). The runs carry the numbers
// of the head whose numbering is space.
func partReaders(name string, space uint64, runs []Records, parts []*memPart) ([]*segment.Reader, error) {
	srcs := make([]*segment.Reader, 0, len(parts)+len(runs))
	for _, p := range parts {
		srcs = append(srcs, p.r)
	}
	for _, run := range runs {
		if run.Len() == 0 {
			continue
		}
		b, info, err := segment.WriteMemoryRuns(name, run.Chunks(), run.knownChunks(), sealOptions)
		if err != nil {
			return nil, fmt.Errorf("seal head: %w", err)
		}
		if info.Numbers != nil {
			info.Numbers.Space = space
		}
		r, err := segment.OpenBytes(b, name, segment.OpenOptions{Numbers: info.Numbers})
		if err != nil {
			return nil, fmt.Errorf("seal head: %w", err)
		}
		srcs = append(srcs, r)
	}
	return srcs, nil
}

// restorePartsLocked gives the sealed parts of a frozen head back to the
// day's head after a failed flush, as insertLocked does for its tail.
// s.mu must be held.
func (s *Store) restorePartsLocked(key int64, parts []*memPart) {
	h := s.heads[key]
	if h == nil {
		h = s.newHead()
		s.heads[key] = h
	}
	if s.headBytes == 0 && s.oldestHead.IsZero() {
		s.oldestHead = s.opts.Now()
	}
	for _, p := range parts {
		info := p.r.Info()
		lo, hi := info.MinTime.UnixMilli(), info.MaxTime.UnixMilli()
		if h.n == 0 || lo < h.minTime {
			h.minTime = lo
		}
		if h.n == 0 || hi > h.maxTime {
			h.maxTime = hi
		}
		h.parts = append(h.parts, p)
		h.n += p.n
		h.bytes += p.bytes
		s.headBytes += p.bytes
	}
	s.walDirty = true
}
