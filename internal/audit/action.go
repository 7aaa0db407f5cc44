package audit

import (
	"fmt"
	"time"
)

// Events of administrative actions recorded with Do.
const (
	EventHold    = "hold"    // a legal hold placed, released or purged (internal/hold)
	EventErasure = "erasure" // the erasure of an address (internal/erasure)
)

// Do records an administrative action (a legal hold, an erasure) the way
// Guard records a search: an allowed line, fsynced before run is called,
// so that nothing happens unaudited (if the line cannot be written, run is
// not called and Do returns the error), then a done line with the count
// run returns, or an error line with its error. run is given the seq of
// the allowed line, for a report to refer to. e names the event,
// endpoint, case, reason and actor; its outcome is set here.
func (l *Log) Do(e Entry, run func(seq int64) (count int64, err error)) error {
	e.Outcome = OutcomeAllowed
	e.Count = -1
	start := l.now()
	seq, err := l.Append(e)
	if err != nil {
		return fmt.Errorf("the audit log cannot be written, so nothing was done: %w", err)
	}
	count, runErr := run(seq)
	e.Outcome, e.Ref, e.Count, e.Duration = OutcomeDone, seq, count, l.now().Sub(start)
	if runErr != nil {
		e.Outcome, e.Error = OutcomeError, runErr.Error()
	}
	e.Time = time.Time{}
	if _, err := l.Append(e); err != nil {
		// The allowed line is durable; only the outcome is lost. Say so.
		l.log.Error("audit completion line not written", "event", e.Event, "ref", seq, "err", err)
	}
	return runErr
}
