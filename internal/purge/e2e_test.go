package purge

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/objstore"
	"github.com/retentiond/retentiond/internal/objstore/weedtest"
	"github.com/retentiond/retentiond/internal/record"
)

// TestE2EBucketPurge runs the bucket step against a real SeaweedFS with
// versioning on (RTD_TEST_E2E=1): two nodes' objects, overwritten versions
// and delete markers under expired days are all gone after the purge (a
// second DeleteAll of each prefix, which lists every version, finds
// nothing), a held day and the unexpired days stay; the other node's run
// for the same cutoff is a no-op; a shorter retention destroys more; and
// with the store killed the local copies are still destroyed while the
// bucket's failure names the store, and the next run after the restart
// finishes the job.
func TestE2EBucketPurge(t *testing.T) {
	srv := weedtest.Start(t)
	srv.EnableVersioning()
	ctx := context.Background()
	b, err := objstore.New(srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	put := func(day, node, file string, size int) {
		t.Helper()
		key := objstore.SegmentKey(ts(t, day), node, file)
		if _, err := b.Put(ctx, key, bytes.NewReader(make([]byte, size)), int64(size)); err != nil {
			t.Fatal(err)
		}
	}
	days := []string{"2024-02-26", "2024-02-27", "2024-02-29", "2024-06-01", "2025-06-01"}
	for _, d := range days {
		put(d, "a", "part-1.seg", 1000)
		put(d, "a", "part-1.seg", 1200) // a second version
		put(d, "b", "part-1.seg", 500)
		put(d, "b", "part-0.seg", 300)
		if err := b.Delete(ctx, objstore.SegmentKey(ts(t, d), "b", "part-0.seg")); err != nil { // a delete marker
			t.Fatal(err)
		}
	}
	left := func(day string) int {
		t.Helper()
		objs, err := b.List(ctx, objstore.DayPrefix(ts(t, day)))
		if err != nil {
			t.Fatal(err)
		}
		return len(objs)
	}

	a := newNode(t, "a", b, Options{Holds: holdSet{"2024-02-26": {"hold-1"}}})
	a.store.ingest(ts(t, "2024-02-29"), 5)
	rep, err := a.s.RunNow(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Remote
	if r == nil || !r.Versioned || len(r.Days) != 2 || len(r.Held) != 1 || r.Error != "" {
		t.Fatalf("remote report %+v", r)
	}
	for _, d := range r.Days {
		// Per day: 2 + 1 + 1 versions of objects and one delete marker.
		if !d.Verified || d.Objects != 4 || d.Bytes != 3000 || d.Markers != 1 {
			t.Errorf("day %s: %+v", record.DayString(d.Day), d)
		}
		// The proof, independently: every version under the prefix is gone.
		again, err := b.DeleteAll(ctx, objstore.DayPrefix(d.Day))
		if err != nil || again.Objects+again.Markers != 0 || !again.Verified {
			t.Errorf("day %s after the purge: %+v, %v", record.DayString(d.Day), again, err)
		}
	}
	for _, d := range []string{"2024-02-26", "2024-06-01", "2025-06-01"} {
		if left(d) == 0 {
			t.Errorf("day %s (held or not expired) was deleted", d)
		}
	}
	if a.store.has(ts(t, "2024-02-29")) {
		t.Error("the local copy was kept")
	}
	if _, err := b.Stat(ctx, objstore.LeaseKey()); err == nil {
		t.Error("the lease was not released")
	}

	// Node b, same cutoff: the bucket is left alone.
	nb := newNode(t, "b", b, Options{})
	if rep, err := nb.s.RunNow(ctx, false); err != nil || rep.Remote.Skipped != SkipAlreadyDone || rep.Remote.By != "a" {
		t.Fatalf("node b: %+v, %v", rep.Remote, err)
	}

	// A shorter retention on node b: 2024-06-01 has expired too. The held
	// day is no longer held on b (holds are per node): gone as well.
	short := newHarness(t, "1y", Options{Bucket: b, Node: "b"})
	short.clock.Set(ts(t, remoteNow))
	if rep, err := short.s.RunNow(ctx, false); err != nil || len(rep.Remote.Days) != 2 {
		t.Fatalf("shorter retention: %+v, %v", rep.Remote, err)
	}
	for _, d := range []string{"2024-02-26", "2024-06-01"} {
		if n := left(d); n != 0 {
			t.Errorf("day %s: %d objects left after the shorter retention's purge", d, n)
		}
	}
	if left("2025-06-01") == 0 {
		t.Error("an unexpired day was deleted")
	}

	// The store killed: local copies go, the bucket step fails naming the
	// store, and the next run after the restart destroys the expired day.
	put("2025-02-01", "a", "part-1.seg", 100)
	srv.Stop()
	a.clock.Set(ts(t, "2027-02-03T00:05:00Z"))
	a.store.ingest(ts(t, "2025-02-01"), 5)
	rep, err = a.s.RunNow(ctx, false)
	if err == nil || !strings.Contains(err.Error(), srv.Endpoint) || a.store.has(ts(t, "2025-02-01")) {
		t.Fatalf("store down: %v", err)
	}
	if got := a.mustMetric(t, "retentiond_purge_remote_errors_total"); got != 1 {
		t.Fatalf("errors = %v", got)
	}
	srv.Restart()
	a.clock.Add(time.Hour)
	if rep, err = a.s.RunNow(ctx, false); err != nil || len(rep.Remote.Days) != 1 || left("2025-02-01") != 0 {
		t.Fatalf("after the restart: %+v, %v", rep.Remote, err)
	}
}
