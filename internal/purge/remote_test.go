package purge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/objstore"
	"github.com/retentiond/retentiond/internal/policy"
	"github.com/retentiond/retentiond/internal/record"
)

// The purge clock of these tests: with a 2y retention, days up to
// 2024-03-01 have expired and the cutoff is 2024-03-02.
const remoteNow = "2026-03-02T00:05:00Z"

// newNode is one node of a cluster: its own store and clock, the shared
// bucket.
func newNode(t *testing.T, node string, b objstore.Bucket, opts Options) *harness {
	t.Helper()
	opts.Bucket, opts.Node = b, node
	h := newHarness(t, "2y", opts)
	h.clock.Set(ts(t, remoteNow))
	return h
}

// TestRemoteDestroysExpiredDays checks the bucket step on an unversioned
// and a versioned bucket: every expired day's prefix is gone, every version
// and delete marker with it, from every node, including a day no local
// store holds; held and unexpired days stay; the report and metrics say what
// was deleted, with the proof; the run record is written and the lease
// released.
func TestRemoteDestroysExpiredDays(t *testing.T) {
	for _, versioned := range []bool{false, true} {
		t.Run(map[bool]string{false: "unversioned", true: "versioned"}[versioned], func(t *testing.T) {
			b := newFakeBucket("logs", versioned)
			for _, d := range []string{"2024-02-26", "2024-02-27", "2024-02-29", "2024-03-02"} {
				b.seed(ts(t, d), "a", 100)
				b.seed(ts(t, d), "b", 10)
			}
			var reports []Report
			h := newNode(t, "a", b, Options{Holds: holdSet{"2024-02-26": {"hold-1"}},
				OnReport: func(r Report) { reports = append(reports, r) }})
			h.store.ingest(ts(t, "2024-02-29"), 5) // the local copy of an expired day
			h.store.ingest(ts(t, "2024-03-02"), 5)

			rep, err := h.s.RunNow(bg, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Days) != 1 || h.store.has(ts(t, "2024-02-29")) {
				t.Fatalf("local: %+v", rep.Days)
			}
			for _, d := range []string{"2024-02-27", "2024-02-29"} {
				if n := b.versions(objstore.DayPrefix(ts(t, d))); n != 0 {
					t.Errorf("day %s: %d objects or versions left in the bucket", d, n)
				}
			}
			for _, d := range []string{"2024-02-26", "2024-03-02"} {
				if n := b.versions(objstore.DayPrefix(ts(t, d))); n == 0 {
					t.Errorf("day %s (held or not expired) was deleted from the bucket", d)
				}
			}
			// Per day: an object of each node; versioned, each also has an
			// older version and a deleted object (a version and a marker).
			objects, bytes, markers := 2, int64(110), 0
			if versioned {
				objects, bytes, markers = 6, 330, 2
			}
			r := rep.Remote
			if r == nil || r.Error != "" || r.Skipped != "" || r.Versioned != versioned || len(r.Days) != 2 ||
				len(r.Held) != 1 || record.DayString(r.Held[0].Day) != "2024-02-26" || len(r.Remaining) != 0 {
				t.Fatalf("remote report %+v", r)
			}
			for _, d := range r.Days {
				if !d.Verified || d.Objects != objects || d.Bytes != bytes || d.Markers != markers {
					t.Errorf("day %s: %+v", record.DayString(d.Day), d)
				}
			}
			if r.Objects != 2*int64(objects) || r.Bytes != 2*bytes || r.Markers != 2*int64(markers) {
				t.Errorf("totals: %d objects, %d bytes, %d markers", r.Objects, r.Bytes, r.Markers)
			}
			for name, want := range map[string]float64{
				"retentiond_purge_remote_prefixes_deleted_total":       2,
				"retentiond_purge_remote_objects_deleted_total":        float64(2 * objects),
				"retentiond_purge_remote_bytes_deleted_total":          float64(2 * bytes),
				"retentiond_purge_remote_delete_markers_deleted_total": float64(2 * markers),
				"retentiond_purge_remote_errors_total":                 0,
			} {
				if got := h.mustMetric(t, name); got != want {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
			var rec runRecord
			if err := json.Unmarshal(b.read(objstore.PurgeRunKey(ts(t, "2024-03-02"))), &rec); err != nil ||
				rec.Node != "a" || !rec.Verified || strings.Join(rec.Days, ",") != "2024-02-27,2024-02-29" {
				t.Fatalf("run record %+v, %v", rec, err)
			}
			if b.read(objstore.LeaseKey()) != nil {
				t.Fatal("the lease was not released")
			}
			// The signed report (OnReport) carries the per-day proof.
			if len(reports) != 1 || reports[0].Remote == nil {
				t.Fatalf("reports: %+v", reports)
			}
			j, err := json.Marshal(reports[0])
			if err != nil {
				t.Fatal(err)
			}
			var wire struct {
				Remote remoteJSON `json:"remote"`
			}
			if err := json.Unmarshal(j, &wire); err != nil || len(wire.Remote.Days) != 2 ||
				wire.Remote.Days[0].Proof != proofEmpty || wire.Remote.Days[0].Prefix != "days/2024-02-27/" {
				t.Fatalf("report JSON: %s", j)
			}
			var back Report
			if err := json.Unmarshal(j, &back); err != nil || back.Remote == nil ||
				len(back.Remote.Days) != 2 || back.Remote.Objects != r.Objects || len(back.Remote.Held) != 1 {
				t.Fatalf("report round trip: %+v, %v", back.Remote, err)
			}
		})
	}
}

// TestRemoteSecondNodeNoop checks that a node running the purge for a
// cutoff another node already ran leaves the bucket alone (a day put back
// into the bucket meanwhile shows that it did not even list it) but still
// deletes its own local copies.
func TestRemoteSecondNodeNoop(t *testing.T) {
	b := newFakeBucket("logs", true)
	b.seed(ts(t, "2024-02-27"), "a", 10)
	a := newNode(t, "a", b, Options{})
	if _, err := a.s.RunNow(bg, false); err != nil {
		t.Fatal(err)
	}
	if b.deleteAlls != 1 {
		t.Fatalf("node a: %d DeleteAll calls", b.deleteAlls)
	}
	b.seed(ts(t, "2024-02-28"), "b", 10)
	n := newNode(t, "b", b, Options{})
	n.store.ingest(ts(t, "2024-02-28"), 3)
	rep, err := n.s.RunNow(bg, false)
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Remote; r == nil || r.Skipped != SkipAlreadyDone || r.By != "a" || len(r.Days) != 0 {
		t.Fatalf("node b remote: %+v", rep.Remote)
	}
	if b.deleteAlls != 1 || b.versions(objstore.DayPrefix(ts(t, "2024-02-28"))) == 0 {
		t.Fatal("node b touched the bucket")
	}
	if len(rep.Days) != 1 || n.store.has(ts(t, "2024-02-28")) {
		t.Fatalf("node b did not delete its local copy: %+v", rep.Days)
	}
	if got := n.mustMetric(t, "retentiond_purge_remote_skipped_total", "reason", SkipAlreadyDone); got != 1 {
		t.Fatalf("skipped = %v", got)
	}
	if b.read(objstore.LeaseKey()) != nil {
		t.Fatal("node b did not release the lease")
	}
	// The next day's cutoff is a new purge: node b runs it.
	n.clock.Add(24 * time.Hour)
	if rep, err := n.s.RunNow(bg, false); err != nil || rep.Remote.Skipped != "" || len(rep.Remote.Days) != 1 {
		t.Fatalf("next cutoff: %+v, %v", rep.Remote, err)
	}
}

// TestRemoteLease checks the lease: a live lease of another node makes this
// node skip the bucket (and say so in its status); an expired one (its
// holder crashed) is taken over.
func TestRemoteLease(t *testing.T) {
	now := ts(t, remoteNow)
	for _, tc := range []struct {
		name    string
		expires time.Time
		skipped bool
	}{
		{"live lease skips", now.Add(10 * time.Minute), true},
		{"expired lease is taken over", now.Add(-time.Minute), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newFakeBucket("logs", false)
			b.seed(ts(t, "2024-02-27"), "b", 10)
			lease, _ := json.Marshal(leaseRecord{Node: "b", Acquired: now.Add(-time.Hour), Expires: tc.expires})
			if err := b.PutIfAbsent(bg, objstore.LeaseKey(), lease); err != nil {
				t.Fatal(err)
			}
			h := newNode(t, "a", b, Options{})
			h.store.ingest(ts(t, "2024-02-27"), 3)
			rep, err := h.s.RunNow(bg, false)
			if err != nil {
				t.Fatal(err)
			}
			if h.store.has(ts(t, "2024-02-27")) {
				t.Fatal("the local copy was kept")
			}
			left := b.versions(objstore.DayPrefix(ts(t, "2024-02-27")))
			if tc.skipped {
				if rep.Remote.Skipped != SkipLeaseHeld || rep.Remote.By != "b" || left == 0 {
					t.Fatalf("remote %+v, %d left", rep.Remote, left)
				}
				if !bytes.Equal(b.read(objstore.LeaseKey()), lease) {
					t.Fatal("node a changed node b's live lease")
				}
				rec := httptest.NewRecorder()
				h.s.ServeStatus(rec, httptest.NewRequest("GET", "/", nil))
				if !strings.Contains(rec.Body.String(), "node b holds the purge lease") {
					t.Fatalf("status: %s", rec.Body)
				}
				return
			}
			if rep.Remote.Skipped != "" || len(rep.Remote.Days) != 1 || left != 0 {
				t.Fatalf("remote %+v, %d left", rep.Remote, left)
			}
			if b.read(objstore.LeaseKey()) != nil {
				t.Fatal("the taken-over lease was not released")
			}
		})
	}
}

// TestRemoteLeaseRenewed checks that a run longer than half the lease's
// time renews it, so that no other node takes it over mid-run.
func TestRemoteLeaseRenewed(t *testing.T) {
	b := newFakeBucket("logs", false)
	for _, d := range []string{"2024-02-26", "2024-02-27", "2024-02-28"} {
		b.seed(ts(t, d), "a", 10)
	}
	h := newNode(t, "a", b, Options{LeaseTTL: time.Hour})
	var seen []time.Time
	b.onDeleteAll = func() {
		var l leaseRecord
		_ = json.Unmarshal(b.read(objstore.LeaseKey()), &l)
		seen = append(seen, l.Expires)
		h.clock.Add(40 * time.Minute) // each day takes 40 minutes
	}
	if _, err := h.s.RunNow(bg, false); err != nil {
		t.Fatal(err)
	}
	now := ts(t, remoteNow)
	// Day 1 runs under the first lease; before day 2 only 20 minutes of it
	// are left (under half), so it is renewed to the clock then + 1h, and
	// again before day 3.
	want := []time.Time{now.Add(time.Hour), now.Add(40*time.Minute + time.Hour), now.Add(80*time.Minute + time.Hour)}
	if len(seen) != 3 {
		t.Fatalf("lease expiries seen: %v", seen)
	}
	for i := range want {
		if !seen[i].Equal(want[i]) {
			t.Errorf("day %d: lease expires %s, want %s", i, seen[i], want[i])
		}
	}
}

// TestRemoteUnreachable checks the store down during a purge: the local
// copies are still deleted, the run fails with an error naming the store,
// the failure is counted and the status says expired days remain in the
// bucket; the next run, with the store back, destroys them.
func TestRemoteUnreachable(t *testing.T) {
	b := newFakeBucket("logs", false)
	b.seed(ts(t, "2024-02-27"), "a", 10)
	h := newNode(t, "a", b, Options{})
	h.store.ingest(ts(t, "2024-02-27"), 3)
	b.setDown(true)
	rep, err := h.s.RunNow(bg, false)
	if err == nil || !strings.Contains(err.Error(), b.String()) || rep.Result != ResultFailure {
		t.Fatalf("run with the store down: %v (result %q)", err, rep.Result)
	}
	if h.store.has(ts(t, "2024-02-27")) || len(rep.Days) != 1 {
		t.Fatal("the local copy was kept because the store was down")
	}
	if got := h.mustMetric(t, "retentiond_purge_remote_errors_total"); got != 1 {
		t.Fatalf("errors = %v", got)
	}
	if got := h.mustMetric(t, "retentiond_purge_remote_failing"); got != 1 {
		t.Fatalf("failing = %v", got)
	}
	rec := httptest.NewRecorder()
	h.s.ServeStatus(rec, httptest.NewRequest("GET", "/", nil))
	if !strings.Contains(rec.Body.String(), "expired days remain in the bucket") {
		t.Fatalf("status: %s", rec.Body)
	}

	b.setDown(false)
	h.clock.Add(time.Hour) // the same cutoff: no run record was written
	rep, err = h.s.RunNow(bg, false)
	if err != nil || len(rep.Remote.Days) != 1 || b.versions(objstore.DayPrefix(ts(t, "2024-02-27"))) != 0 {
		t.Fatalf("retry: %+v, %v", rep.Remote, err)
	}
	if got := h.mustMetric(t, "retentiond_purge_remote_errors_total"); got != 1 {
		t.Fatalf("errors after the retry = %v", got)
	}
	if got := h.mustMetric(t, "retentiond_purge_remote_failing"); got != 0 {
		t.Fatalf("failing after the retry = %v", got)
	}
}

// TestRemoteVersionsNotDeletable checks a versioned bucket whose key may
// not delete versions: the run fails with an error that says how to
// configure the bucket, the day stays listed as remaining, and no run
// record claims it done.
func TestRemoteVersionsNotDeletable(t *testing.T) {
	b := newFakeBucket("logs", true)
	b.denyVersions = true
	b.seed(ts(t, "2024-02-27"), "a", 10)
	h := newNode(t, "a", b, Options{})
	rep, err := h.s.RunNow(bg, false)
	if err == nil || !strings.Contains(err.Error(), "s3:DeleteObjectVersion") ||
		!strings.Contains(err.Error(), "suspend") {
		t.Fatalf("err = %v", err)
	}
	if len(rep.Remote.Remaining) != 1 || !rep.Remote.Versioned ||
		b.read(objstore.PurgeRunKey(ts(t, "2024-03-02"))) != nil || b.read(objstore.LeaseKey()) != nil {
		t.Fatalf("remote %+v", rep.Remote)
	}
}

// TestRemoteGuard checks that purge.max_days_per_run counts the bucket's
// expired days: a clock jump must not empty the bucket either.
func TestRemoteGuard(t *testing.T) {
	b := newFakeBucket("logs", false)
	for _, d := range []string{"2024-02-26", "2024-02-27", "2024-02-28"} {
		b.seed(ts(t, d), "b", 10)
	}
	h := newNode(t, "a", b, Options{MaxDaysPerRun: 2})
	rep, err := h.s.RunNow(bg, false)
	if !errors.Is(err, ErrRefused) || rep.Remote == nil || len(rep.Remote.Remaining) != 3 || b.deleteAlls != 0 {
		t.Fatalf("refused run: %+v, %v", rep.Remote, err)
	}
	if b.read(objstore.LeaseKey()) != nil {
		t.Fatal("a refused run kept the lease")
	}
	if _, err := h.s.Run(context.Background(), RunOptions{Force: true}); err != nil || b.deleteAlls != 3 {
		t.Fatalf("forced run: %v, %d DeleteAll", err, b.deleteAlls)
	}
}

// TestRemoteNeedsNode checks that a bucket without a valid node name is
// refused at construction: the lease and the run record name the node.
func TestRemoteNeedsNode(t *testing.T) {
	_, err := NewScheduler(Options{Policy: Policy{Retention: policy.MustParseRetention("2y")}, Store: newFakeStore(),
		Bucket: newFakeBucket("logs", false)})
	if err == nil || !strings.Contains(err.Error(), "node") {
		t.Fatalf("err = %v", err)
	}
}

// TestRemoteRunRecordsPruned checks that a successful bucket step removes
// run records more than 30 days older than its cutoff, every version, and
// keeps the younger ones.
func TestRemoteRunRecordsPruned(t *testing.T) {
	b := newFakeBucket("logs", true)
	old, young := objstore.PurgeRunKey(ts(t, "2024-01-31")), objstore.PurgeRunKey(ts(t, "2024-02-01"))
	for _, k := range []string{old, young} {
		if err := b.PutIfAbsent(bg, k, []byte(`{"node":"b"}`)); err != nil {
			t.Fatal(err)
		}
	}
	h := newNode(t, "a", b, Options{}) // cutoff 2024-03-02: 2024-01-31 is 31 days before
	if _, err := h.s.RunNow(bg, false); err != nil {
		t.Fatal(err)
	}
	if b.versions(old) != 0 || b.read(young) == nil || b.read(objstore.PurgeRunKey(ts(t, "2024-03-02"))) == nil {
		t.Fatalf("old: %d versions, young: %q", b.versions(old), b.read(young))
	}
}
