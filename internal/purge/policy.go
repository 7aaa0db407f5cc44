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
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/retentiond/retentiond/internal/record"
)

// maxRetentionNumber bounds the number in a retention so that the calendar
// arithmetic stays far inside time.Time's range; it matches the five digits
// the config package accepts.
const maxRetentionNumber = 99999

// Retention is a retention period in calendar years or in days. Years are
// calendar years (time.AddDate), not multiples of 365 days: 2y kept from 29
// February 2024 ends on 1 March 2026, 730d ends on 28 February 2026.
//
// Months are deliberately not offered. AddDate normalises 31 January + 1
// month to 3 March (2 March in a leap year) while 1 February + 1 month is 1
// March, so a month retention would destroy a younger day before an older
// one. Years only normalise 29 February, to 1 March, which ties with 1 March
// and never overtakes it, so expiry stays in day order.
type Retention struct {
	Years int
	Days  int
}

// ErrRetention matches every ParseRetention error with errors.Is.
var ErrRetention = errors.New("invalid retention")

// retentionError is a ParseRetention error. Its message is written for the
// operator who typed the value, so it carries no "invalid retention" prefix;
// errors.Is(err, ErrRetention) still identifies it.
type retentionError struct{ msg string }

func (e *retentionError) Error() string        { return e.msg }
func (e *retentionError) Is(target error) bool { return target == ErrRetention }

// ParseRetention parses "2y" (calendar years) or "730d" (days). The number
// must be between 1 and 99999 without leading zeros; surrounding spaces are
// ignored, nothing else is.
func ParseRetention(s string) (Retention, error) {
	fail := func(why string) (Retention, error) {
		return Retention{}, &retentionError{fmt.Sprintf("retention %q: %s", record.Shorten(s), why)}
	}
	t := strings.TrimSpace(s)
	const hint = "use a number of years (2y) or days (730d)"
	if len(t) < 2 {
		return fail(hint)
	}
	unit := t[len(t)-1]
	digits := t[:len(t)-1]
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return fail(hint)
		}
	}
	if unit == 'm' {
		return fail(hint + "; months are not supported because month ends make a younger day expire before an older one")
	}
	if unit != 'y' && unit != 'd' || digits[0] == '0' && len(digits) > 1 {
		return fail(hint)
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n > maxRetentionNumber || len(digits) > 5 {
		return fail(fmt.Sprintf("the number must be at most %d", maxRetentionNumber))
	}
	if n == 0 {
		return fail("must be longer than zero, or every record would be destroyed at once; " + hint)
	}
	if unit == 'y' {
		return Retention{Years: n}, nil
	}
	return Retention{Days: n}, nil
}

// MustParseRetention is ParseRetention for constants in code and tests; it
// panics on a malformed literal, which is a programming error.
func MustParseRetention(s string) Retention {
	r, err := ParseRetention(s)
	if err != nil {
		panic(err)
	}
	return r
}

// String returns the retention in the form ParseRetention reads ("2y").
func (r Retention) String() string {
	switch {
	case r.Days == 0 && r.Years != 0:
		return strconv.Itoa(r.Years) + "y"
	case r.Years == 0:
		return strconv.Itoa(r.Days) + "d"
	}
	// A mixed value can only be built in code; show both parts.
	return fmt.Sprintf("%dy%dd", r.Years, r.Days)
}

// IsZero reports whether r is the zero value, which is not a valid retention.
func (r Retention) IsZero() bool { return r == Retention{} }

// MarshalText implements encoding.TextMarshaler.
func (r Retention) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseRetention, so a
// Retention can be decoded straight from configuration.
func (r *Retention) UnmarshalText(b []byte) error {
	v, err := ParseRetention(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// addTo adds the retention to t in calendar units. AddDate normalises a date
// that does not exist: 29 February + 2 years becomes 1 March.
func (r Retention) addTo(t time.Time) time.Time { return t.AddDate(r.Years, 0, r.Days) }

// subFrom subtracts the retention from t in calendar units.
func (r Retention) subFrom(t time.Time) time.Time { return t.AddDate(-r.Years, 0, -r.Days) }

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
	return p.Retention.addTo(record.Day(day)).AddDate(0, 0, 1)
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
	d := record.Day(p.Retention.subFrom(now))
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
	return now.Sub(p.Retention.subFrom(now)).Seconds()
}
