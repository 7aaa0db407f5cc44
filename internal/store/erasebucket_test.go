package store

import (
	"bytes"
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/objstore"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
	"github.com/retentiond/retentiond/internal/testkit"
)

// bytesSource is a segment.Source over an object's bytes (a version kept
// by memBucket), so a test can read every record of every version.
type bytesSource struct {
	name string
	b    []byte
}

func (s bytesSource) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(s.b).ReadAt(p, off)
}
func (s bytesSource) Size() int64  { return int64(len(s.b)) }
func (s bytesSource) Name() string { return s.name }

// bucketHolding returns the keys of which some version, current or kept,
// holds a record of addr (read record by record) or its 4 bytes anywhere.
func bucketHolding(t *testing.T, b *memBucket, addr netip.Addr) []string {
	t.Helper()
	var out []string
	for key, vs := range b.versions() {
		for _, v := range vs {
			hit := bytes.Contains(v, addr.AsSlice())
			r, err := segment.OpenSource(bytesSource{key, v}, segment.OpenOptions{})
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			for rec, err := range r.Iter() {
				if err != nil {
					t.Fatalf("%s: %v", key, err)
				}
				hit = hit || rec.IP == addr
			}
			r.Close()
			if hit {
				out = append(out, key)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestEraseReachesTheBucket: an erasure on a node with a bucket removes
// the address from the node's uploaded days too: from a day uploaded and
// kept locally, and from an evicted day (only in the bucket) that late
// records have reached since. Afterwards no object and no version holds
// the address, each day has one object of the node whose name supersedes
// the old ones, the other records are intact and counted exactly once by
// the node, by the node after a restart, and by a node that only has the
// bucket.
func TestEraseReachesTheBucket(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(base.Add(4 * 24 * time.Hour))
	b := newMemBucket()
	dir := t.TempDir()
	cache := 1 << 30
	mod := func(o *Options) { o.LocalCacheBytes = int64(cache); o.SupersededGrace = time.Hour }
	s, _ := openNode(t, dir, "n1", b, clk, mod)
	defer func() { s.Close() }()
	d1, d2, d3 := base, base.AddDate(0, 0, 1), base.AddDate(0, 0, 2)
	target := netip.MustParseAddr("192.0.2.7") // seq%250 == 7, not a multiple of 3
	// d1 and d2 evicted, then d3 uploaded and kept.
	s.opts.LocalCacheBytes = 1
	archiveDays(t, s, clk, append(dayRecs(d1, 0, 600), dayRecs(d2, 600, 1200)...))
	if err := s.UploadPending(ctx); err != nil {
		t.Fatal(err)
	}
	s.opts.LocalCacheBytes = int64(cache)
	archiveDays(t, s, clk, dayRecs(d3, 1200, 1800))
	// Late records of evicted d1, flushed into a part beside its object.
	late := []record.Record{rec(d1.Add(time.Hour), 1807), rec(d1.Add(2*time.Hour), 1810)}
	if err := s.Append(ctx, late); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.UploadPending(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(dayFiles(t, dir, d1)) + len(dayFiles(t, dir, d2)); got != 1 {
		t.Fatalf("%d local files of d1 and d2, want the late part only", got)
	}
	if len(dayFiles(t, dir, d3)) != 1 {
		t.Fatal("d3 has no local file")
	}
	before := b.keys()
	if held := bucketHolding(t, b, target); len(held) != 3 {
		t.Fatalf("before the erasure %v hold the address, want all 3 objects: the check proves nothing", held)
	}
	var want []int
	for i := range 1811 {
		if (i < 1800 || i == 1807 || i == 1810) && rec(base, i).IP != target {
			want = append(want, i)
		}
	}

	res, err := s.Erase(ctx, Erasure{Prefix: netip.PrefixFrom(target, 32)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Pending) != 0 || len(res.UploadPending) != 0 {
		t.Fatalf("pending %v, uploads pending %v", res.Pending, res.UploadPending)
	}
	if len(res.Days) != 3 || len(res.Destroyed) != 3 {
		t.Fatalf("erased days %+v, destroyed %+v: want 3 of each", res.Days, res.Destroyed)
	}
	if held := bucketHolding(t, b, target); len(held) != 0 {
		t.Fatalf("after the erasure %v still hold the address (a current object or a kept version)", held)
	}
	after := b.keys()
	if len(after) != 3 {
		t.Fatalf("bucket holds %v, want one object per day", after)
	}
	for i, k := range after {
		if slices.Contains(before, k) {
			t.Fatalf("%s survived the erasure", k)
		}
		o, p := newRemoteObj(objstore.ObjectInfo{Key: k}), newRemoteObj(objstore.ObjectInfo{Key: before[i]})
		if o == nil || p == nil || o.key != p.key || !o.newer(p) {
			t.Fatalf("%s does not supersede %s", k, before[i])
		}
	}
	if got := collect(t, s, base, base.AddDate(0, 0, 4)); !slices.Equal(got, want) {
		t.Fatalf("after the erasure %d records, want %d", len(got), len(want))
	}
	l := readLedger(t, dir)
	if len(l.Days) != 3 || len(l.Superseded) != 0 {
		t.Fatalf("ledger %+v: want the three new objects, nothing left to delete", l)
	}
	for ds, e := range l.Days {
		if !slices.Contains(after, e.Key) || !strings.Contains(e.Key, ds) {
			t.Fatalf("ledger day %s names %s, not its new object", ds, e.Key)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, _ = openNode(t, dir, "n1", b, clk, mod)
	if err := s.ListBucket(ctx); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, s, base, base.AddDate(0, 0, 4)); !slices.Equal(got, want) {
		t.Fatalf("after a restart %d records, want %d", len(got), len(want))
	}
	other, _ := openNode(t, t.TempDir(), "n9", b, clk, nil)
	defer other.Close()
	if err := other.ListBucket(ctx); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, other, base, base.AddDate(0, 0, 4)); !slices.Equal(got, want) {
		t.Fatalf("from the bucket alone %d records, want %d", len(got), len(want))
	}
}

// TestEraseWithTheBucketDown: with the bucket unreachable an erasure of an
// uploaded day still rewrites the local file, but names the old object as
// pending (never a silent success); the next upload round destroys it
// and uploads the rewrite. An evicted day cannot be read at all: the
// erasure fails and says why.
func TestEraseWithTheBucketDown(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(base.Add(3 * 24 * time.Hour))
	b := newMemBucket()
	s, _ := openNode(t, t.TempDir(), "n1", b, clk, func(o *Options) { o.LocalCacheBytes = 1 << 30 })
	defer s.Close()
	target := netip.MustParseAddr("192.0.2.7")
	archiveDays(t, s, clk, dayRecs(base, 0, 600))
	if err := s.UploadPending(ctx); err != nil {
		t.Fatal(err)
	}
	old := b.keys()
	b.setDown(true)
	res, err := s.Erase(ctx, Erasure{Prefix: netip.PrefixFrom(target, 32)})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := range 600 {
		if rec(base, i).IP == target {
			n++
		}
	}
	if len(res.Pending) == 0 || len(res.UploadPending) != 1 || res.Records != int64(n) {
		t.Fatalf("result %+v: want the old object pending, the upload pending and %d records", res, n)
	}
	if !slices.ContainsFunc(res.Pending, func(o ErasedObject) bool { return o.Key == old[0] && o.Err != nil }) {
		t.Fatalf("pending %+v does not name %s", res.Pending, old[0])
	}
	b.setDown(false)
	if err := s.UploadPending(ctx); err != nil {
		t.Fatal(err)
	}
	if held := bucketHolding(t, b, target); len(held) != 0 {
		t.Fatalf("after the store came back %v still hold the address", held)
	}
	if k := b.keys(); len(k) != 1 || k[0] == old[0] {
		t.Fatalf("bucket holds %v, want the rewrite only", k)
	}

	// Evicted, with the bucket down: the erasure cannot read the day.
	s.opts.LocalCacheBytes = 1
	if err := s.UploadPending(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, []record.Record{rec(base.Add(time.Hour), 1007)}); err != nil {
		t.Fatal(err)
	}
	b.setDown(true)
	if _, err := s.Erase(ctx, Erasure{Prefix: netip.PrefixFrom(target, 32)}); err == nil || !strings.Contains(err.Error(), "cannot be read") {
		t.Fatalf("erasure of an evicted day with the bucket down: %v", err)
	}
	b.setDown(false)
}

// TestForeignSealedObjectIsAnError: with encryption, a node's objects are
// sealed under its own day keys. Another node (with keys of its own, or
// none) cannot read them: its listing and a snapshot of the day fail with
// an error naming the day and the node that holds the key, never an
// empty answer. The node that uploaded them erases in them as usual.
func TestForeignSealedObjectIsAnError(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(base.Add(3 * 24 * time.Hour))
	b := newMemBucket()
	dir1 := t.TempDir()
	n1, _ := openNode(t, dir1, "n1", b, clk, func(o *Options) { o.Keys = openRing(t, dir1); o.LocalCacheBytes = 1 })
	defer n1.Close()
	archiveDays(t, n1, clk, dayRecs(base, 0, 600))
	if err := n1.UploadPending(ctx); err != nil {
		t.Fatal(err)
	}
	if len(dayFiles(t, dir1, base)) != 0 {
		t.Fatal("the day was not evicted")
	}
	for _, tc := range []struct {
		name string
		keys bool
	}{{"other node with its own keys", true}, {"other node without encryption", false}} {
		t.Run(tc.name, func(t *testing.T) {
			dir2 := t.TempDir()
			n2, _ := openNode(t, dir2, "n2", b, clk, func(o *Options) {
				if tc.keys {
					o.Keys = openRing(t, dir2)
				}
			})
			defer n2.Close()
			for what, err := range map[string]error{"listing": n2.ListBucket(ctx), "snapshot": snapshotErr(n2)} {
				if err == nil {
					t.Fatalf("%s of a day sealed under another node's key: no error", what)
				}
				for _, want := range []string{"2026-11-20", "node n1", "shared day keys"} {
					if !strings.Contains(err.Error(), want) {
						t.Fatalf("%s error %q does not say %q", what, err, want)
					}
				}
			}
		})
	}

	// The uploading node reads and erases its own sealed object.
	target := netip.MustParseAddr("192.0.2.7")
	res, err := n1.Erase(ctx, Erasure{Prefix: netip.PrefixFrom(target, 32)})
	if err != nil || res.Records == 0 || len(res.Destroyed) != 1 || len(res.Pending) != 0 {
		t.Fatalf("erasure on the encrypted node: %+v, %v", res, err)
	}
	var want []int
	for i := range 600 {
		if rec(base, i).IP != target {
			want = append(want, i)
		}
	}
	if got := collect(t, n1, base, base.AddDate(0, 0, 1)); !slices.Equal(got, want) {
		t.Fatalf("after the erasure %d records, want %d", len(got), len(want))
	}
}

func snapshotErr(s *Store) error {
	snap, err := s.Snapshot(base, base.AddDate(0, 0, 1))
	if err == nil {
		snap.Release()
	}
	return err
}

// TestErasedObjectLeavesOtherCaches: a node that read another node's object
// through its range cache drops the cached pages once its listing finds the
// object replaced by an erasure, so the erased records do not outlive the
// object in its cache.
func TestErasedObjectLeavesOtherCaches(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(base.Add(4 * 24 * time.Hour))
	b := newMemBucket()
	a, _ := openNode(t, t.TempDir(), "node-a", b, clk, nil)
	defer a.Close()
	archiveDays(t, a, clk, dayRecs(base, 0, 600))
	if err := a.UploadPending(ctx); err != nil {
		t.Fatal(err)
	}
	old := mustList(t, b)
	if len(old) != 1 {
		t.Fatalf("bucket holds %d objects, want 1", len(old))
	}
	cache, err := objstore.NewCache(t.TempDir(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := openNode(t, t.TempDir(), "node-c", b, clk, func(o *Options) { o.Cache = cache })
	defer c.Close()
	if err := c.ListBucket(ctx); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, c, base, base.AddDate(0, 0, 1)); len(got) != 600 {
		t.Fatalf("node c reads %d records, want 600", len(got))
	}
	if _, err := a.Erase(ctx, Erasure{Prefix: netip.PrefixFrom(netip.MustParseAddr("192.0.2.7"), 32)}); err != nil {
		t.Fatal(err)
	}
	if err := c.ListBucket(ctx); err != nil {
		t.Fatal(err)
	}
	if n := cache.Invalidate(b, old[0].Key); n != 0 {
		t.Fatalf("node c's cache still held %d pages of the erased object %s after its listing", n, old[0].Key)
	}
	if got := collect(t, c, base, base.AddDate(0, 0, 1)); len(got) >= 600 || len(got) == 0 {
		t.Fatalf("node c reads %d records after the erasure, want fewer than 600", len(got))
	}
}
