package purge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/retentiond/retentiond/internal/objstore"
	"github.com/retentiond/retentiond/internal/record"
)

// The bucket step of a purge (docs/retention.md, "Purge covers the bucket").
//
// Every node of a cluster runs the same schedule against the same bucket,
// so the step is made safe to run from all of them:
//
//   - One node at a time: the node creates the lease object (LeaseKey) with
//     PutIfAbsent (If-None-Match: *). A node that finds a live lease leaves
//     the bucket alone for this run. A lease whose expiry has passed (its
//     holder crashed) is taken over by deleting it and creating it again.
//     Two nodes can both see the same expired lease, and the second delete
//     can remove the first node's fresh lease, so for one run both may purge
//     the bucket. That is harmless: DeleteAll of a prefix is idempotent (a
//     version already gone is not an error), both delete the same expired
//     days, and the run record is created with PutIfAbsent, so it is
//     written once.
//   - A purge another node already ran is a no-op: a successful step leaves
//     a run record at PurgeRunKey(cutoff), and a node that finds it for its
//     own cutoff skips the bucket (it still deletes its local copies).
//   - Every version: DeleteAll removes every object, version and delete
//     marker under the day's prefix and lists it again; only a prefix found
//     empty counts as destroyed. A versioned bucket whose credentials may not
//     delete versions fails with an error that says how to configure it.

// DefaultLeaseTTL is how long a purge lease is valid unless renewed. The
// holder renews it while it works, so it bounds only how long a crashed
// holder keeps the other nodes from purging the bucket.
const DefaultLeaseTTL = time.Hour

// Reasons the bucket step was skipped (RemoteReport.Skipped, and the reason
// label of retentiond_purge_remote_skipped_total).
const (
	// SkipLeaseHeld: another node holds a live purge lease and is purging
	// the bucket.
	SkipLeaseHeld = "lease_held"
	// SkipAlreadyDone: a run record for this cutoff exists; another node (or
	// this one, earlier) already purged the bucket up to it.
	SkipAlreadyDone = "already_done"
)

// RemoteReport is what the bucket step of one run did. It never names
// record contents: days, counts, node names and the store's name only.
type RemoteReport struct {
	// Store names the bucket (endpoint and bucket, never credentials).
	Store string
	// Node is the node that ran the step.
	Node string
	// Versioned is what the bucket said about versioning at the start.
	Versioned bool
	// Skipped is SkipLeaseHeld or SkipAlreadyDone when the step left the
	// bucket alone; empty when it ran (or failed).
	Skipped string
	// By is the node holding the lease (SkipLeaseHeld) or the node that
	// recorded the run (SkipAlreadyDone); At is the lease's expiry or the
	// recorded run's time.
	By string
	At time.Time
	// Days are the days whose prefix was deleted and listed again, oldest
	// first (a day that failed is in Remaining instead).
	Days []RemoteDay
	// Held are the expired days in the bucket that legal holds kept.
	Held []HeldDay
	// Objects, Bytes and Markers total Days.
	Objects int64
	Bytes   int64
	Markers int64
	// Remaining are the expired, unheld days still in the bucket after the
	// step (a failure, a stop, a refusal); the next run retries them.
	Remaining []time.Time
	// Error is the step's error, naming the store; empty on success.
	Error string
}

// RemoteDay is one day destroyed in the bucket.
type RemoteDay struct {
	Day     time.Time
	Objects int   // objects and versions deleted
	Bytes   int64 // their sizes
	Markers int   // delete markers removed
	// Verified: the day's prefix was listed again (objects and versions)
	// and found empty.
	Verified bool
}

// leaseRecord is the lease object's body.
type leaseRecord struct {
	Node     string    `json:"node"`
	Acquired time.Time `json:"acquired"`
	Expires  time.Time `json:"expires"`
}

// runRecord is the body of the run record at PurgeRunKey(cutoff): the proof,
// kept in the bucket itself, that the bucket was purged up to cutoff.
type runRecord struct {
	Node     string    `json:"node"`
	Time     time.Time `json:"time"`
	Cutoff   string    `json:"cutoff"`
	Days     []string  `json:"days"`
	Objects  int64     `json:"objects"`
	Bytes    int64     `json:"bytes"`
	Markers  int64     `json:"markers"`
	Verified bool      `json:"verified"`
}

// errLeaseHeld is returned by acquire when another node holds a live lease.
type errLeaseHeld struct {
	node    string
	expires time.Time
}

func (e *errLeaseHeld) Error() string {
	return fmt.Sprintf("purge lease held by node %s until %s", e.node, e.expires.Format(time.RFC3339))
}

// versionHint is what an operator must change when a versioned bucket does
// not let the daemon delete versions.
const versionHint = "the bucket keeps versions and a purge must delete every version of an expired day: " +
	"grant the daemon's key s3:DeleteObjectVersion and s3:ListBucketVersions on the bucket, " +
	"or disable versioning (suspend it and delete the versions already kept)"

// remoteStep is the bucket step of one run, from preparation (before the
// local deletions, so that the run's guard counts the bucket's days too)
// to the release of the lease.
type remoteStep struct {
	s      *Scheduler
	b      objstore.Bucket
	now    time.Time
	cutoff time.Time
	rep    RemoteReport
	lease  *leaseRecord // non-nil while this node holds the lease
	// expired are the expired, unheld days listed in the bucket, oldest
	// first: what destroy deletes.
	expired []time.Time
	failed  error
}

// prepareRemote checks versioning, takes the lease, looks for a run record
// of this cutoff and lists the bucket's expired days. It never fails the
// run by itself: an error is kept in the step (and the run's local deletions
// go ahead), a skip leaves nothing to destroy.
func (s *Scheduler) prepareRemote(ctx context.Context, now time.Time, holdsErr error) *remoteStep {
	r := &remoteStep{s: s, b: s.bucket, now: now, cutoff: s.policy.Oldest(now),
		rep: RemoteReport{Store: s.bucket.String(), Node: s.node}}
	if holdsErr != nil {
		// A hold placed on another node may cover an expired day: without
		// the cluster's holds, nothing in the bucket is destroyed.
		r.fail(fmt.Errorf("purge of the bucket: %w", holdsErr))
		return r
	}
	versioned, err := r.b.Versioned(ctx)
	if err != nil {
		r.fail(fmt.Errorf("purge of the bucket: check versioning: %w", err))
		return r
	}
	r.rep.Versioned = versioned
	if s.versioned.Swap(boolState(versioned)) != boolState(versioned) {
		s.log.Info("purge: bucket versioning checked", "store", r.rep.Store, "versioned", versioned)
	}
	if err := r.acquire(ctx); err != nil {
		var held *errLeaseHeld
		if errors.As(err, &held) {
			r.skip(SkipLeaseHeld, held.node, held.expires)
			return r
		}
		r.fail(fmt.Errorf("purge of the bucket: take the lease: %w", err))
		return r
	}
	done, err := r.recorded(ctx)
	if err != nil {
		r.fail(fmt.Errorf("purge of the bucket: read the run record: %w", err))
		return r
	}
	if done != nil {
		r.skip(SkipAlreadyDone, done.Node, done.Time)
		r.release(ctx)
		return r
	}
	days, err := listDays(ctx, r.b)
	if err != nil {
		r.fail(fmt.Errorf("purge of the bucket: list days: %w", err))
		return r
	}
	for _, d := range days {
		if !s.policy.Expired(d, now) {
			continue
		}
		if s.holds != nil {
			if ids := s.holds.HeldBy(d); len(ids) > 0 {
				r.rep.Held = append(r.rep.Held, HeldDay{Holds: slices.Clone(ids)})
				r.rep.Held[len(r.rep.Held)-1].Day = d
				continue
			}
		}
		r.expired = append(r.expired, d)
	}
	r.rep.Remaining = slices.Clone(r.expired)
	return r
}

// boolState maps a bool to the scheduler's tri-state memory of it (0 is
// "not checked yet").
func boolState(b bool) int32 {
	if b {
		return 2
	}
	return 1
}

// skip records that the step leaves the bucket alone this run.
func (r *remoteStep) skip(reason, by string, at time.Time) {
	r.rep.Skipped, r.rep.By, r.rep.At = reason, by, at
	r.s.m.remote.skipped.WithLabelValues(reason).Inc()
	switch reason {
	case SkipLeaseHeld:
		r.s.log.Info("purge of the bucket skipped: another node holds the purge lease",
			"store", r.rep.Store, "holder", by, "lease_expires", at.Format(time.RFC3339))
	case SkipAlreadyDone:
		r.s.log.Info("purge of the bucket skipped: already purged up to this cutoff",
			"store", r.rep.Store, "by", by, "at", at.Format(time.RFC3339), "cutoff", record.DayString(r.cutoff))
	}
}

// fail records the step's error and counts it. Only the first error is
// kept: later ones are consequences (a lease that cannot be released after
// the store went away).
func (r *remoteStep) fail(err error) {
	r.s.m.remote.errors.Inc()
	if r.failed == nil {
		r.failed = err
		r.rep.Error = err.Error()
	}
}

// report returns a copy of the step's report for the run's Report; nil
// for a nil step (no bucket).
func (r *remoteStep) report() *RemoteReport {
	if r == nil {
		return nil
	}
	c := r.rep
	c.Days, c.Held, c.Remaining = slices.Clone(c.Days), slices.Clone(c.Held), slices.Clone(c.Remaining)
	return &c
}

// err is the step's error, for the run's joined error.
func (r *remoteStep) err() error { return r.failed }

// destroy deletes each expired day's prefix in the bucket, every version,
// oldest first, renewing the lease as it goes, then records the run. It
// stops at ctx's end and after three failures in a row (the store is down:
// the next run retries); a single failing day does not keep the others.
func (r *remoteStep) destroy(ctx context.Context) {
	if r.lease == nil || r.failed != nil {
		return
	}
	var remaining []time.Time
	streak := 0
	for i, d := range r.expired {
		if err := ctx.Err(); err != nil {
			r.fail(fmt.Errorf("purge of the bucket stopped before day %s: %w", record.DayString(d), err))
			remaining = append(remaining, r.expired[i:]...)
			break
		}
		if streak >= 3 {
			remaining = append(remaining, r.expired[i:]...)
			break
		}
		if err := r.renew(ctx); err != nil {
			r.fail(fmt.Errorf("purge of the bucket: renew the lease: %w", err))
			remaining = append(remaining, r.expired[i:]...)
			break
		}
		res, err := r.b.DeleteAll(ctx, objstore.DayPrefix(d))
		r.count(res)
		if err != nil || !res.Verified {
			if err == nil {
				err = errors.New("the prefix was not listed again empty")
			}
			streak++
			remaining = append(remaining, d)
			r.fail(r.explain(fmt.Errorf("purge of the bucket: day %s: %w", record.DayString(d), err)))
			continue
		}
		streak = 0
		r.rep.Days = append(r.rep.Days, RemoteDay{Day: d, Objects: res.Objects, Bytes: res.Bytes,
			Markers: res.Markers, Verified: true})
		r.s.m.remote.days.Inc()
	}
	r.rep.Remaining = remaining
	if r.failed == nil {
		r.record(ctx)
	}
}

// count adds what one DeleteAll destroyed, a failed one's part too, to the
// report and the metrics.
func (r *remoteStep) count(res objstore.DeleteResult) {
	r.rep.Objects += int64(res.Objects)
	r.rep.Bytes += res.Bytes
	r.rep.Markers += int64(res.Markers)
	r.s.m.remote.objects.Add(float64(res.Objects))
	r.s.m.remote.bytes.Add(float64(res.Bytes))
	r.s.m.remote.markers.Add(float64(res.Markers))
}

// explain adds to a deletion error on a versioned bucket how to configure
// the bucket, when the store refused the deletion (as opposed to not
// answering): without permission to delete versions every purge would fail
// the same way, and the operator has to change the bucket or the key.
func (r *remoteStep) explain(err error) error {
	if r.rep.Versioned && refused(err) {
		return fmt.Errorf("%w; %s", err, versionHint)
	}
	return err
}

// refused reports whether err is the store's refusal of an operation
// (access denied, not allowed, not implemented) rather than a failure to
// reach it.
func refused(err error) bool {
	var se *objstore.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case "AccessDenied", "MethodNotAllowed", "NotImplemented", "InvalidRequest":
		return true
	}
	return se.Status == 403 || se.Status == 405 || se.Status == 501
}

// record writes the run record for the cutoff, so that the other nodes'
// runs for the same cutoff leave the bucket alone. A record that already
// exists (a node that took over the same expired lease) is fine.
func (r *remoteStep) record(ctx context.Context) {
	rec := runRecord{Node: r.s.node, Time: r.now, Cutoff: record.DayString(r.cutoff), Days: []string{},
		Objects: r.rep.Objects, Bytes: r.rep.Bytes, Markers: r.rep.Markers, Verified: true}
	for _, d := range r.rep.Days {
		rec.Days = append(rec.Days, record.DayString(d.Day))
	}
	b, err := json.Marshal(rec)
	if err != nil {
		r.fail(fmt.Errorf("purge of the bucket: encode the run record: %w", err))
		return
	}
	if err := r.b.PutIfAbsent(ctx, objstore.PurgeRunKey(r.cutoff), b); err != nil && !errors.Is(err, objstore.ErrExists) {
		r.fail(fmt.Errorf("purge of the bucket: write the run record: %w", err))
		return
	}
	r.pruneRecords(ctx)
}

// runRecordsKept is how long run records stay in the bucket, counted back
// from the current cutoff. They only coordinate the nodes (the signed
// reports are the audit trail), and a node whose clock lags by more than
// this would at worst purge the bucket once more, which is idempotent.
const runRecordsKept = 30 * 24 * time.Hour

// pruneRecords deletes the run records (every version) whose cutoff is more
// than runRecordsKept before this run's, so that they do not pile up one a
// day for ever. A failure is logged only: the records hold no log data and
// the next run prunes again.
func (r *remoteStep) pruneRecords(ctx context.Context) {
	root := runsRoot()
	objs, err := r.b.List(ctx, root)
	if err == nil {
		for _, o := range objs {
			d, perr := record.ParseDay(strings.TrimPrefix(o.Key, root))
			if perr != nil || objstore.PurgeRunKey(d) != o.Key || !d.Before(r.cutoff.Add(-runRecordsKept)) {
				continue
			}
			if _, err = r.b.DeleteAll(ctx, o.Key); err != nil {
				break
			}
		}
	}
	if err != nil {
		r.s.log.Warn("purge: could not prune old run records in the bucket; the next run retries",
			"store", r.rep.Store, "err", err)
	}
}

// recorded returns the run record of this cutoff, or nil if there is none.
func (r *remoteStep) recorded(ctx context.Context) (*runRecord, error) {
	var buf bytes.Buffer
	if _, err := r.b.Get(ctx, objstore.PurgeRunKey(r.cutoff), &buf); err != nil {
		if errors.Is(err, objstore.ErrNotFound) {
			return nil, nil
		}
		return nil, err
	}
	var rec runRecord
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		// A record nobody can read proves nothing: purge again (idempotent).
		r.s.log.Warn("purge: unreadable run record in the bucket; purging again", "store", r.rep.Store,
			"cutoff", record.DayString(r.cutoff), "err", err)
		return nil, nil
	}
	return &rec, nil
}

// acquire takes the purge lease: create it if absent; if present and
// expired, take it over (delete, create again). errLeaseHeld when another
// node holds a live one.
func (r *remoteStep) acquire(ctx context.Context) error {
	key := objstore.LeaseKey()
	mine := leaseRecord{Node: r.s.node, Acquired: r.now, Expires: r.now.Add(r.s.leaseTTL)}
	body, err := json.Marshal(mine)
	if err != nil {
		return err
	}
	// Two attempts: the second after taking over an expired lease, or after
	// the holder released it between our create and our read.
	for attempt := 0; attempt < 2; attempt++ {
		err := r.b.PutIfAbsent(ctx, key, body)
		if err == nil {
			r.lease = &mine
			return nil
		}
		if !errors.Is(err, objstore.ErrExists) {
			return err
		}
		cur, err := r.readLease(ctx)
		switch {
		case errors.Is(err, objstore.ErrNotFound):
			continue
		case err != nil:
			return err
		case cur != nil && cur.Expires.After(r.now):
			if cur.Node == r.s.node {
				// Our own lease from a run that did not release it (the
				// daemon was killed): it is ours to take over.
				r.s.log.Warn("purge: taking over this node's own unreleased purge lease", "store", r.rep.Store)
			} else {
				return &errLeaseHeld{node: cur.Node, expires: cur.Expires}
			}
		}
		holder, expired := "(unreadable)", time.Time{}
		if cur != nil {
			holder, expired = cur.Node, cur.Expires
		}
		r.s.log.Warn("purge: taking over an expired purge lease", "store", r.rep.Store,
			"holder", holder, "expired", expired.Format(time.RFC3339))
		if err := r.b.Delete(ctx, key); err != nil && !errors.Is(err, objstore.ErrNotFound) {
			return err
		}
	}
	cur, err := r.readLease(ctx)
	if err == nil && cur != nil {
		return &errLeaseHeld{node: cur.Node, expires: cur.Expires}
	}
	return errors.New("purge lease: lost the race to create it twice")
}

// readLease reads the lease object; nil (no error) when its body is not a
// lease, which is then treated as expired.
func (r *remoteStep) readLease(ctx context.Context) (*leaseRecord, error) {
	var buf bytes.Buffer
	if _, err := r.b.Get(ctx, objstore.LeaseKey(), &buf); err != nil {
		return nil, err
	}
	var l leaseRecord
	if err := json.Unmarshal(buf.Bytes(), &l); err != nil || l.Expires.IsZero() {
		return nil, nil
	}
	return &l, nil
}

// renew extends the lease when less than half of its time is left, so a
// long run (the first purge of a large bucket) keeps it. Only the holder
// writes it, and only while it is live, so a plain PUT cannot overwrite
// another node's lease.
func (r *remoteStep) renew(ctx context.Context) error {
	now := r.s.now().UTC()
	if r.lease.Expires.Sub(now) > r.s.leaseTTL/2 {
		return nil
	}
	next := leaseRecord{Node: r.s.node, Acquired: r.lease.Acquired, Expires: now.Add(r.s.leaseTTL)}
	body, err := json.Marshal(next)
	if err != nil {
		return err
	}
	if _, err := r.b.Put(ctx, objstore.LeaseKey(), bytes.NewReader(body), int64(len(body))); err != nil {
		return err
	}
	r.lease = &next
	return nil
}

// release deletes the lease if this node still holds it. A failure is
// logged, not counted as a failed purge: the lease expires by itself.
func (r *remoteStep) release(ctx context.Context) {
	if r.lease == nil {
		return
	}
	defer func() { r.lease = nil }()
	// The run's context may be cancelled (Stop): the release still gets a
	// short chance, so that the other nodes need not wait for the expiry.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	cur, err := r.readLease(ctx)
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		return // already gone (taken over and released)
	case err == nil && cur != nil && cur.Node != r.s.node:
		return // taken over (our lease had expired): not ours to delete
	case err == nil:
		err = r.b.Delete(ctx, objstore.LeaseKey())
	}
	if err != nil {
		r.s.log.Warn("purge: could not release the purge lease; it expires by itself", "store", r.rep.Store,
			"expires", r.lease.Expires.Format(time.RFC3339), "err", err)
	}
}

// logAttrs are the log attributes of the step for the run's line.
func (r *remoteStep) logAttrs() []any {
	a := []any{"remote_store", r.rep.Store}
	switch {
	case r.rep.Skipped != "":
		a = append(a, "remote_skipped", r.rep.Skipped, "remote_by", r.rep.By)
	default:
		a = append(a, "remote_days", len(r.rep.Days), "remote_objects", r.rep.Objects, "remote_bytes", r.rep.Bytes,
			"remote_delete_markers", r.rep.Markers)
	}
	if len(r.rep.Remaining) > 0 {
		a = append(a, "remote_expired_days_left", len(r.rep.Remaining),
			"remote_oldest_day_left", record.DayString(r.rep.Remaining[0]))
	}
	if len(r.rep.Held) > 0 {
		a = append(a, "remote_held_days", len(r.rep.Held))
	}
	return a
}

// listDays lists the days present in the bucket (any node's), oldest
// first. A key under a day's prefix that is not a segment key (an object a
// tool put there) still makes the day present, so that the purge destroys
// it with the rest of the day.
func listDays(ctx context.Context, b objstore.Bucket) ([]time.Time, error) {
	root := daysRoot()
	objs, err := b.List(ctx, root)
	if err != nil {
		return nil, err
	}
	seen := map[time.Time]bool{}
	var days []time.Time
	for _, o := range objs {
		d, _, _, ok := objstore.ParseSegmentKey(o.Key)
		if !ok {
			if d, ok = dayOfKey(root, o.Key); !ok {
				continue
			}
		}
		if !seen[d] {
			seen[d] = true
			days = append(days, d)
		}
	}
	slices.SortFunc(days, time.Time.Compare)
	return days, nil
}

// daysRoot is the prefix all days share ("days/"), taken from
// objstore.DayPrefix so that the layout stays written in one place.
func daysRoot() string {
	d := time.Unix(0, 0).UTC()
	return strings.TrimSuffix(objstore.DayPrefix(d), record.DayString(d)+"/")
}

// runsRoot is the prefix of the run records ("purges/"), taken from
// objstore.PurgeRunKey for the same reason.
func runsRoot() string {
	d := time.Unix(0, 0).UTC()
	return strings.TrimSuffix(objstore.PurgeRunKey(d), record.DayString(d))
}

// dayOfKey returns the day of a key under root whose first element is a
// day, whatever follows it.
func dayOfKey(root, key string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(key, root)
	if !ok {
		return time.Time{}, false
	}
	elem, _, found := strings.Cut(rest, "/")
	if !found {
		return time.Time{}, false
	}
	d, err := record.ParseDay(elem)
	if err != nil || !strings.HasPrefix(key, objstore.DayPrefix(d)) {
		return time.Time{}, false
	}
	return d, true
}
