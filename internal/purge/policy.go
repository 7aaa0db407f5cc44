// Package purge keeps retentiond's promise that records are "stored for the
// retention, then destroyed automatically". It has three parts that are kept
// apart on purpose:
//
//   - Policy, a pure function of (day, now, retention) that decides what has
//     expired. It has no clock and no I/O, so it can be tested exhaustively.
//   - The executor (Scheduler.Run), which asks a Store which days exist,
//     applies the policy and destroys the expired days. It decides from the
//     data, never from "since the last run", so a missed run, long downtime
//     or a restored old disk correct themselves on the next run.
//   - The schedule (robfig/cron) and the start-up run, which never overlap,
//     plus the metrics an auditor and an on-call engineer read to see that the
//     promise was kept.
//
// The rule: UTC day D is destroyed once now >= start(D) + retention + 1 day.
// Retention is counted in calendar units with time.AddDate, so that "two
// years" means two calendar years across leap days.
package purge

import (
	"time"

	"github.com/retentiond/retentiond/internal/policy"
	"github.com/retentiond/retentiond/internal/record"
)

// Retention is policy.Retention, the retention grammar and its calendar
// arithmetic, which the config check shares. The alias lets a Policy be
// written as Policy{Retention: Retention{Years: 2}} inside this package.
type Retention = policy.Retention

// Policy decides which days have expired. It is a pure value: every method is
// a function of its arguments, with no clock and no I/O.
type Policy struct {
	Retention Retention
}

// ExpiresAt returns the instant at which the UTC day holding day is to be
// destroyed: start(D) + retention + 1 day, in UTC. The extra day means the
// last record of the day (23:59:59.999) has been kept for at least the whole
// retention, and no record is kept for more than retention + 1 day (plus the
// delay until the next scheduled run).
//
// Example: 2024-02-29 with 2y expires at 2026-03-02T00:00:00Z, because
// AddDate normalises 2026-02-29 to 2026-03-01 and the day after that begins
// at 2026-03-02T00:00:00Z.
func (p Policy) ExpiresAt(day time.Time) time.Time {
	return p.Retention.AddTo(record.Day(day)).AddDate(0, 0, 1)
}

// Expired reports whether the UTC day holding day is to be destroyed at now:
// now >= ExpiresAt(day). A clock that went backwards only makes it report
// false for longer; it never makes an unexpired day expire.
func (p Policy) Expired(day, now time.Time) bool {
	return !now.Before(p.ExpiresAt(day))
}

// Oldest returns the start of the oldest UTC day that has not expired at now.
// Every record before it belongs to an expired day: ingest must reject it and
// search must never return it, even when a purge is late.
func (p Policy) Oldest(now time.Time) time.Time {
	// Subtracting the retention gives a first guess; AddDate's normalisation
	// of 29 February can put it a day off, so walk to the exact boundary with
	// the policy itself. Expiry is in day order (see Retention), so the
	// unexpired days are exactly those from the boundary on. Each loop runs
	// at most twice.
	d := record.Day(p.Retention.SubFrom(now))
	for p.Expired(d, now) {
		d = d.AddDate(0, 0, 1)
	}
	for {
		prev := d.AddDate(0, 0, -1)
		if p.Expired(prev, now) {
			return d
		}
		d = prev
	}
}

// IngestWindow returns the times ingest accepts at now: a record with time t
// is accepted when oldest <= t <= newest. oldest is Oldest(now), the start of
// the oldest day not yet expired (older records would be destroyed at once);
// newest is now + maxFuture, so that a far-future timestamp cannot escape the
// purge.
func (p Policy) IngestWindow(now time.Time, maxFuture time.Duration) (oldest, newest time.Time) {
	return p.Oldest(now), now.Add(maxFuture).UTC()
}

// Seconds returns the retention as a duration ending at now, in seconds:
// now minus (now - retention). For a day count it is constant; for years it
// depends on now (2y is 730 or 731 days depending on whether a 29
// February lies inside the window), which is why the metric
// retentiond_retention_seconds is computed at every scrape.
func (p Policy) Seconds(now time.Time) float64 {
	now = now.UTC()
	return now.Sub(p.Retention.SubFrom(now)).Seconds()
}
