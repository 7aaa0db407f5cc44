package policy

import (
	"fmt"

	"github.com/robfig/cron/v3"
)

// DefaultSchedule runs the purge daily at 00:05 UTC. Days are UTC days and
// expire at a UTC midnight, so a run shortly after midnight destroys each day
// within minutes of the moment it expires; the five minutes leave room for a
// slightly fast clock on this host or on the shippers, and keep the run away
// from the midnight burst of log rotation. The purge scheduler reads a
// schedule without CRON_TZ= in UTC too.
const DefaultSchedule = "CRON_TZ=UTC 5 0 * * *"

// ScheduleHint says how to write a schedule, for messages that explain a
// rejected value.
const ScheduleHint = `write five fields "minute hour day-of-month month day-of-week" with an optional CRON_TZ= prefix, e.g. "` +
	DefaultSchedule + `", or a descriptor such as "@daily"`

// scheduleParser is the cron dialect of purge.schedule: five fields (minute
// hour day-of-month month day-of-week) or a descriptor such as @daily, with
// an optional CRON_TZ= (or TZ=) prefix.
var scheduleParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a purge.schedule value in the one dialect the config
// check and the purge scheduler share.
func ParseSchedule(spec string) (cron.Schedule, error) {
	s, err := scheduleParser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("%q is not a cron schedule (%w)", spec, err)
	}
	return s, nil
}
