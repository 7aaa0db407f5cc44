package purge

import (
	"net/http"
	"time"

	"github.com/retentiond/retentiond/internal/httpx"
	"github.com/retentiond/retentiond/internal/record"
)

// lastRun is the outcome of the previous real (not dry) run.
type lastRun struct {
	rep Report
	err error
}

// ServeCutoff serves GET /api/v1/retention: the retention and the cutoff
// (the start of the oldest day not yet expired). Records before the cutoff
// were destroyed on schedule, or will be at the next run, and no search
// returns them; the console uses it to bound its time picker. Any
// authenticated caller may read it.
func (s *Scheduler) ServeCutoff(w http.ResponseWriter, r *http.Request) {
	now := s.now().UTC()
	cut := s.policy.Oldest(now)
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"retention": s.policy.Retention.String(), "now": now,
		"cutoff": cut, "cutoff_day": record.DayString(cut)})
}

// statusDay is one stored day in the retention status.
type statusDay struct {
	Day       string     `json:"day"`
	Records   int64      `json:"records"`
	Bytes     int64      `json:"bytes"`
	MinTime   *time.Time `json:"min_time,omitempty"`
	ExpiresAt time.Time  `json:"expires_at"`
}

// ServeStatus serves GET /api/v1/admin/retention for a DPO or auditor:
// the cutoff, every stored day with its size and expiry, the oldest stored
// record, the next scheduled run, the next expiry, and the report of the
// previous run since the daemon started (null before the first). Mount it
// behind an admin-role check: it discloses volumes, not records.
func (s *Scheduler) ServeStatus(w http.ResponseWriter, r *http.Request) {
	now := s.now().UTC()
	days := s.store.Days()
	out := map[string]any{"retention": s.policy.Retention.String(), "now": now,
		"cutoff": s.policy.Oldest(now), "schedule": s.spec}
	list := make([]statusDay, 0, len(days))
	var records, bytes int64
	var oldest time.Time
	for _, d := range days {
		list = append(list, statusDay{Day: record.DayString(d.Day), Records: d.Records, Bytes: d.Bytes,
			MinTime: timePtr(d.MinTime), ExpiresAt: s.policy.ExpiresAt(d.Day)})
		records += d.Records
		bytes += d.Bytes
		if !d.MinTime.IsZero() && (oldest.IsZero() || d.MinTime.Before(oldest)) {
			oldest = d.MinTime
		}
	}
	out["days"], out["days_stored"], out["records"], out["bytes"] = list, len(list), records, bytes
	out["oldest_record"] = timePtr(oldest)
	out["next_run"] = timePtr(s.Next())
	out["next_expiry"] = timePtr(s.policy.nextExpiry(days, now))
	if l := s.last.Load(); l != nil {
		out["last_run"] = l.rep
		if l.err != nil {
			out["last_error"] = l.err.Error()
		}
	} else {
		out["last_run"] = nil
	}
	if s.bucket != nil {
		out["bucket"] = s.bucketStatus()
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// bucketStatus is the status of the bucket's purge as the previous run
// left it: what it did or why it did nothing, and whether expired days
// remain in the bucket (a failed step is retried by the next run).
func (s *Scheduler) bucketStatus() map[string]any {
	b := map[string]any{"store": s.bucket.String(), "node": s.node}
	l := s.last.Load()
	if l == nil || l.rep.Remote == nil {
		b["state"] = "no run yet"
		return b
	}
	r := l.rep.Remote
	switch {
	case r.Error != "":
		b["state"] = "failed: expired days remain in the bucket until a purge run succeeds"
		b["error"] = r.Error
	case len(r.Remaining) > 0:
		b["state"] = "incomplete: expired days remain in the bucket until the next run"
	case r.Skipped == SkipLeaseHeld:
		b["state"] = "skipped: node " + r.By + " holds the purge lease and is purging the bucket"
	case r.Skipped == SkipAlreadyDone:
		b["state"] = "skipped: node " + r.By + " already purged the bucket up to this cutoff"
	default:
		b["state"] = "purged"
	}
	rem := make([]string, 0, len(r.Remaining))
	for _, d := range r.Remaining {
		rem = append(rem, record.DayString(d))
	}
	b["expired_days_remaining"] = rem
	b["versioned"] = r.Versioned
	return b
}
