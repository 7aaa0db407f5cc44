package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/retentiond/retentiond/internal/record"
)

// maxRetentionNumber bounds the number in a retention so that the calendar
// arithmetic stays far inside time.Time's range.
const maxRetentionNumber = 99999

// RetentionHint says how to write a retention, for messages that explain a
// rejected value.
const RetentionHint = `write whole calendar years or days, e.g. "2y" (two calendar years) or "730d"`

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

// Validate returns nil when r is a retention ParseRetention could return: one
// positive part within bounds. A value built in code is checked with it.
func (r Retention) Validate() error {
	if r.Years < 0 || r.Days < 0 || r.Years > maxRetentionNumber || r.Days > maxRetentionNumber || (r.Years != 0) == (r.Days != 0) {
		return &retentionError{fmt.Sprintf("retention %s: must be positive, in years or in days (not both), at most %d", r, maxRetentionNumber)}
	}
	return nil
}

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

// AddTo adds the retention to t in calendar units. AddDate normalises a date
// that does not exist: 29 February + 2 years becomes 1 March.
func (r Retention) AddTo(t time.Time) time.Time { return t.AddDate(r.Years, 0, r.Days) }

// SubFrom subtracts the retention from t in calendar units.
func (r Retention) SubFrom(t time.Time) time.Time { return t.AddDate(-r.Years, 0, -r.Days) }
