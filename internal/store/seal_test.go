package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/fsutil"
	"github.com/retentiond/retentiond/internal/loggen"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/testkit"
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
	parts, tail := len(snap.Days[0].Segments), snap.Days[0].Head.Len()
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

// TestTailRecordsNeverMove: records appended to a head's tail stay where
// they were written through growth and seals (the tail grows by chunks and
// a seal drops whole chunks), so a busy head never copies its tail (the
// copies were 11% of the daemon's ingest CPU in issue 15's profile), and a
// snapshot's view keeps its records while the tail changes.
func TestTailRecordsNeverMove(t *testing.T) {
	const sealRows = 3 * recordChunk
	// A clock that stands still: only a full tail is sealed, when the
	// test says so.
	stopped := time.Now()
	s := openFaulty(t, t.TempDir(), &fsutil.Injector{}, prometheus.NewRegistry(), func(o *Options) {
		o.SealRows, o.Now = sealRows, func() time.Time { return stopped }
	})
	ctx := context.Background()
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	tail := func() Records {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.heads[record.Day(base).Unix()].tail.view()
	}
	if err := s.Append(ctx, batch(0, 100)); err != nil {
		t.Fatal(err)
	}
	first := tail()
	if got := len(first.chunks); got != 1 || cap(first.chunks[0]) >= recordChunk {
		t.Fatalf("a tail of 100 records has %d chunks of room for %d records, want one small chunk", got, cap(first.chunks[0]))
	}
	// Past the first chunk: from there on records never move.
	if err := s.Append(ctx, batch(100, recordChunk+10)); err != nil {
		t.Fatal(err)
	}
	// A search's view of the tail, through a snapshot: the seal below must
	// not give its chunks to the tails that grow after it.
	snap, err := s.Snapshot(base, base.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	held := snap.Days[0].Head
	where := held.At(recordChunk + 5)
	// Up to one record short of a full tail, which would kick the sealer.
	for lo := recordChunk + 10; lo < sealRows-1; lo += 1000 {
		if err := s.Append(ctx, batch(lo, min(lo+1000, sealRows-1))); err != nil {
			t.Fatal(err)
		}
	}
	now := tail()
	if now.Len() != sealRows-1 || now.At(recordChunk+5) != where {
		t.Fatalf("after %d more appends record %d moved (tail of %d)", sealRows-recordChunk-11, recordChunk+5, now.Len())
	}
	if err := s.Append(ctx, batch(sealRows-1, sealRows)); err != nil {
		t.Fatal(err)
	}
	if err := s.sealDue(); err != nil { // waits for the kicked sealer, if it came first
		t.Fatal(err)
	}
	if err := s.Append(ctx, batch(sealRows, sealRows+7)); err != nil {
		t.Fatal(err)
	}
	after := tail()
	if after.Len() != 7 || !after.At(0).Time.Equal(at(sealRows)) {
		t.Fatalf("after the seal the tail holds %d records, first at %s", after.Len(), after.At(0).Time)
	}
	// The views taken before still see what they saw.
	if held.Len() != recordChunk+10 || held.At(recordChunk+5) != where || *where != *now.At(recordChunk + 5) {
		t.Fatal("a view taken before the seal changed")
	}
	for i := range held.Len() {
		if !held.At(i).Time.Equal(at(i)) {
			t.Fatalf("view record %d is at %s, want %s", i, held.At(i).Time, at(i))
		}
	}
	recycled := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.recycledChunks
	}
	if n := recycled(); n != 0 {
		t.Fatalf("a seal under a live snapshot gave %d of its chunks for reuse", n)
	}
	// Once no snapshot is left, a seal gives the chunks it emptied back.
	snap.Release()
	for lo := sealRows + 7; lo < 2*sealRows; lo += 1000 {
		if err := s.Append(ctx, batch(lo, min(lo+1000, 2*sealRows))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.sealDue(); err != nil {
		t.Fatal(err)
	}
	if n := recycled(); n < 2 {
		t.Fatalf("a seal without snapshots gave %d chunks for reuse, want at least 2", n)
	}
	if got := collect(t, s, base, base.AddDate(0, 0, 1)); !slices.Equal(got, seqRange(0, 2*sealRows)) {
		t.Fatalf("after seals that reused chunks: %d records, want %d", len(got), 2*sealRows)
	}
}

// TestSealKeepsEveryField: records of many domains and user agents, sealed
// (the head hands its numbers for them to the part's writer) and then
// flushed (the merge hands its sources' ids), read back with every field as
// they were appended. Records that only differ by a path share no number
// a wrong one could hide behind: a writer given the wrong number for a
// string writes another domain or user agent.
func TestSealKeepsEveryField(t *testing.T) {
	s := openFaulty(t, t.TempDir(), &fsutil.Injector{}, prometheus.NewRegistry(), func(o *Options) { o.SealRows = 512 })
	g := loggen.New(loggen.Options{Seed: 5, Start: base, Days: 1, Total: 6000, Vhosts: 300, UserAgents: 200})
	var want []string
	key := func(r record.Record) string {
		return fmt.Sprintf("%d %s %s %q %s", r.Time.UnixMilli(), r.Domain, r.Path, r.UserAgent, r.IP)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for !g.Done() {
		var b []record.Record
		for len(b) < 700 && !g.Done() {
			b = append(b, g.Next())
		}
		rng.Shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
		if err := s.Append(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		for _, r := range b {
			want = append(want, key(r))
		}
		if err := s.sealDue(); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(want)
	read := func(stage string) {
		snap, err := s.Snapshot(base, base.AddDate(0, 0, 1))
		if err != nil {
			t.Fatal(err)
		}
		defer snap.Release()
		var got []string
		for _, v := range snap.Days {
			for r := range v.Head.All() {
				got = append(got, key(r))
			}
			for _, sr := range v.Segments {
				for r, err := range sr.Iter() {
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, key(r))
				}
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: %d records read back, %d appended, or fields differ", stage, len(got), len(want))
		}
	}
	// Every part numbers its strings as the head does (segment.Numbers),
	// so that a search keeps its answers by number across the parts.
	numbered := func(stage string) {
		s.mu.Lock()
		h := s.heads[base.Unix()]
		names := slices.Clone(h.names)
		parts := slices.Clone(h.parts)
		s.mu.Unlock()
		if len(parts) < 2 {
			t.Fatalf("%s: %d parts", stage, len(parts))
		}
		for i, p := range parts {
			n := p.r.Numbers()
			if n == nil || n.Space != h.space {
				t.Fatalf("%s: part %d has numbers %v, want the head's (space %d)", stage, i, n, h.space)
			}
			for _, c := range []struct {
				dict []string
				nums []uint32
			}{{p.r.Domains(), n.Domains}, {p.r.UserAgents(), n.UserAgents}} {
				for id, num := range c.nums {
					if int(num) >= len(names) || names[num] != c.dict[id] {
						t.Fatalf("%s: part %d numbers %q as %d", stage, i, c.dict[id], num)
					}
				}
			}
		}
	}
	read("sealed")
	numbered("sealed")
	// A compaction merges the parts by their numbers and keeps them.
	s.mu.Lock()
	h := s.heads[base.Unix()]
	parts := slices.Clone(h.parts[:len(h.parts)-1])
	s.mu.Unlock()
	if err := s.compactParts(base.Unix(), h, parts); err != nil {
		t.Fatal(err)
	}
	read("compacted")
	numbered("compacted")
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	read("flushed")
}

// TestSealMixedNumberings: parts of two heads (a failed flush gives the
// frozen head's parts back to a new head) number their strings
// differently, so a part merged from both must not claim either numbering,
// and its records must come out whole.
func TestSealMixedNumberings(t *testing.T) {
	g := loggen.New(loggen.Options{Seed: 8, Start: base, Days: 1, Total: 2000, Vhosts: 50, UserAgents: 40})
	var parts []*memPart
	var want []record.Record
	for k := range 2 {
		h := newHead()
		for range 1000 {
			r := g.Next()
			h.add(r)
			want = append(want, r)
		}
		p, err := sealPart(base.Unix(), h.space, []Records{h.tail}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := p.r.Numbers(); n == nil || n.Space != h.space {
			t.Fatalf("head %d: part numbered %v, want space %d", k, n, h.space)
		}
		parts = append(parts, p)
	}
	p, err := sealPart(base.Unix(), parts[0].r.Numbers().Space, nil, parts)
	if err != nil {
		t.Fatal(err)
	}
	if n := p.r.Numbers(); n != nil {
		t.Fatalf("a part merged from two numberings claims space %d", n.Space)
	}
	var got []record.Record
	for r, err := range p.r.Iter() {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	key := func(r record.Record) string {
		return fmt.Sprintf("%d %s %s %q %s", r.Time.UnixMilli(), r.Domain, r.Path, r.UserAgent, r.IP)
	}
	gk, wk := make([]string, len(got)), make([]string, len(want))
	for i := range got {
		gk[i] = key(got[i])
	}
	for i := range want {
		wk[i] = key(want[i])
	}
	slices.Sort(gk)
	slices.Sort(wk)
	if !slices.Equal(gk, wk) {
		t.Fatalf("%d records merged, %d sealed, or fields differ", len(got), len(want))
	}
}

// TestIdleTailIsSealed: a tail of at least SealRows/16 records that no
// record joins for sealIdle is sealed then, well before sealAge, and a
// smaller one is not (it is cheap to scan).
func TestIdleTailIsSealed(t *testing.T) {
	clk := testkit.NewClock(base.Add(12 * time.Hour))
	s := openFaulty(t, t.TempDir(), &fsutil.Injector{}, prometheus.NewRegistry(), func(o *Options) {
		o.SealRows, o.Now = 1024, clk.Now
	})
	defer s.Close()
	state := func() (parts, tail int) {
		s.mu.Lock()
		defer s.mu.Unlock()
		h := s.heads[base.Unix()]
		return len(h.parts), h.tail.Len()
	}
	step := func(d time.Duration, wantParts, wantTail int) {
		t.Helper()
		clk.Add(d)
		if err := s.sealDue(); err != nil {
			t.Fatal(err)
		}
		if p, n := state(); p != wantParts || n != wantTail {
			t.Fatalf("%d parts and a tail of %d, want %d and %d", p, n, wantParts, wantTail)
		}
	}
	if err := s.Append(context.Background(), batch(0, 40)); err != nil {
		t.Fatal(err)
	}
	step(sealIdle+time.Millisecond, 0, 40) // below SealRows/16: left in the tail
	if err := s.Append(context.Background(), batch(40, 100)); err != nil {
		t.Fatal(err)
	}
	step(sealIdle-10*time.Millisecond, 0, 100) // still joined recently
	if err := s.Append(context.Background(), batch(100, 110)); err != nil {
		t.Fatal(err)
	}
	step(sealIdle-10*time.Millisecond, 0, 110)
	step(20*time.Millisecond, 1, 0) // idle for sealIdle, long before sealAge
	if got := collect(t, s, base, base.AddDate(0, 0, 1)); !slices.Equal(got, seqRange(0, 110)) {
		t.Fatalf("after sealing an idle tail: %d records, want 110", len(got))
	}
}
