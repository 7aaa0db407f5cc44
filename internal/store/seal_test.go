package store

import (
	"context"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/fsutil"
	"github.com/retentiond/retentiond/internal/record"
)

// shuffledBatch is batch(lo, hi) in a random order, so that sealing and
// flushing must sort.
func shuffledBatch(rng *rand.Rand, lo, hi int) []record.Record {
	recs := batch(lo, hi)
	rng.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
	return recs
}

// TestSealedHead: a head sealed into in-memory parts keeps every record
// searchable exactly once, in far less accounted memory; a failed flush
// gives the parts back; the part file it then writes is sorted and holds
// every record once; a restart (WAL replay) agrees.
func TestSealedHead(t *testing.T) {
	dir := t.TempDir()
	var in fsutil.Injector
	reg := prometheus.NewRegistry()
	s := openFaulty(t, dir, &in, reg, func(o *Options) { o.SealRows = 256 })
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	const total = 256 * 40 // more seals than maxMemParts: compaction runs
	for lo := 0; lo < total; lo += 256 {
		if err := s.Append(ctx, shuffledBatch(rng, lo, lo+256)); err != nil {
			t.Fatal(err)
		}
		// The background loop may have sealed the batch already (it is
		// kicked at SealRows); either way, after sealDue no tail is left and
		// the head is accounted at far less than its records as structs.
		if err := s.sealDue(); err != nil {
			t.Fatal(err)
		}
		if b, asRecords := s.headBytesNow(), int64(lo+256)*recordOverhead; b >= asRecords/2 {
			t.Fatalf("%d sealed records are accounted at %d bytes, as structs at least %d", lo+256, b, asRecords)
		}
	}
	snap, err := s.Snapshot(base, base.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	parts, tail := len(snap.Days[0].Segments), len(snap.Days[0].Head)
	snap.Release()
	if parts == 0 || parts > maxMemParts || tail != 0 {
		t.Fatalf("after sealing: %d parts (want 1..%d) and a tail of %d", parts, maxMemParts, tail)
	}
	if got := collect(t, s, base, base.AddDate(0, 0, 1)); !slices.Equal(got, seqRange(0, total)) {
		t.Fatalf("sealed head holds %d records, want %d once each", len(got), total)
	}
	if g := metricValue(t, reg, "retentiond_store_sealed_records_total"); g < total {
		t.Fatalf("retentiond_store_sealed_records_total = %v, want at least %d", g, total)
	}
	// A tail beside the parts, then a flush that fails: nothing is lost
	// or doubled, in the head or after the retry.
	if err := s.Append(ctx, shuffledBatch(rng, total, total+100)); err != nil {
		t.Fatal(err)
	}
	in.Add(fsutil.Rule{Op: fsutil.OpWrite, Path: "/days/", Err: syscall.ENOSPC})
	if err := s.Flush(); err == nil {
		t.Fatal("flush under ENOSPC succeeded")
	}
	if got := collect(t, s, base, base.AddDate(0, 0, 1)); !slices.Equal(got, seqRange(0, total+100)) {
		t.Fatalf("after a failed flush: %d records, want %d once each", len(got), total+100)
	}
	in.Clear()
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if b := s.headBytesNow(); b != 0 {
		t.Fatalf("head holds %d bytes after a flush", b)
	}
	snap, err = s.Snapshot(base, base.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	for _, sr := range snap.Days[0].Segments {
		last := time.Time{}
		for r, err := range sr.Iter() {
			if err != nil {
				t.Fatal(err)
			}
			if r.Time.Before(last) {
				t.Fatalf("%s: %s after %s: the flushed part is not sorted", sr.Path(), r.Time, last)
			}
			last = r.Time
		}
	}
	snap.Release()
	if got := collect(t, s, base, base.AddDate(0, 0, 1)); !slices.Equal(got, seqRange(0, total+100)) {
		t.Fatalf("after the flush: %d records, want %d once each", len(got), total+100)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openFaulty(t, dir, &in, prometheus.NewRegistry(), nil)
	defer s.Close()
	if got := collect(t, s, base, base.AddDate(0, 0, 1)); !slices.Equal(got, seqRange(0, total+100)) {
		t.Fatalf("after reopening: %d records, want %d once each", len(got), total+100)
	}
}

// TestSealedHeadWithoutFlush: records sealed but never flushed are
// replayed from the WAL after a restart without a clean close.
func TestSealedHeadWithoutFlush(t *testing.T) {
	src := t.TempDir()
	var in fsutil.Injector
	s := openFaulty(t, src, &in, prometheus.NewRegistry(), func(o *Options) { o.SealRows = 128 })
	if err := s.Append(context.Background(), batch(0, 1000)); err != nil {
		t.Fatal(err)
	}
	if err := s.sealDue(); err != nil {
		t.Fatal(err)
	}
	// A copy of the directory as a crash would leave it: WAL, no flush.
	dst := t.TempDir()
	copyTree(t, src, dst)
	s.Close()
	r := openFaulty(t, dst, &in, prometheus.NewRegistry(), nil)
	defer r.Close()
	if got := collect(t, r, base, base.AddDate(0, 0, 1)); !slices.Equal(got, seqRange(0, 1000)) {
		t.Fatalf("after a crash with a sealed head: %d records, want 1000", len(got))
	}
}

// headBytesNow is the accounted memory of the heads (for tests).
func (s *Store) headBytesNow() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.headBytes + s.frozenBytes
}

// TestTailGrowsOnceAfterASeal: after a seal of n records, the day's next
// tail starts small and, once past its first 1024 records, grows at once to
// room for 2n, so a busy head fills it without append copying it again
// and again (15% of the daemon's ingest CPU in issue 15's profile), while a
// head that receives little keeps a small tail.
func TestTailGrowsOnceAfterASeal(t *testing.T) {
	const sealRows = 8192
	s := openFaulty(t, t.TempDir(), &fsutil.Injector{}, prometheus.NewRegistry(), func(o *Options) { o.SealRows = sealRows })
	ctx := context.Background()
	if err := s.Append(ctx, batch(0, sealRows)); err != nil {
		t.Fatal(err)
	}
	if err := s.sealDue(); err != nil {
		t.Fatal(err)
	}
	tail := func() (n, capacity int) {
		s.mu.Lock()
		defer s.mu.Unlock()
		h := s.heads[record.Day(base).Unix()]
		return len(h.recs), cap(h.recs)
	}
	n, last := tail()
	if n != 0 || last > 1024 {
		t.Fatalf("after sealing %d records the tail holds %d with room for %d, want an empty small tail", sealRows, n, last)
	}
	// Up to just below sealRows, so that the background sealer is not
	// kicked meanwhile.
	grows, added := 0, 0
	for lo := sealRows; lo < 2*sealRows-100; lo += 100 {
		if err := s.Append(ctx, batch(lo, lo+100)); err != nil {
			t.Fatal(err)
		}
		added += 100
		if _, c := tail(); c != last {
			grows, last = grows+1, c
		}
	}
	if n, c := tail(); n != added || c != 2*sealRows || grows != 1 {
		t.Fatalf("a tail of %d records has room for %d after %d growths; want room for %d after 1", n, c, grows, 2*sealRows)
	}
}
