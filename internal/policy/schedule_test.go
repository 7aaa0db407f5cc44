package policy

import (
	"strings"
	"testing"
	"time"
)

func TestParseSchedule(t *testing.T) {
	from := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ok := []struct{ spec, next string }{
		{DefaultSchedule, "2026-03-02T00:05:00Z"},
		{"@daily", "2026-03-02T00:00:00Z"},
		{"*/15 * * * *", "2026-03-01T12:15:00Z"},
		{"TZ=Europe/Amsterdam 0 3 * * 1-5", "2026-03-02T02:00:00Z"},
	}
	for _, c := range ok {
		s, err := ParseSchedule(c.spec)
		if err != nil {
			t.Errorf("ParseSchedule(%q) = %v", c.spec, err)
			continue
		}
		if got := s.Next(from).UTC().Format(time.RFC3339); got != c.next {
			t.Errorf("%q: next after %s = %s, want %s", c.spec, from.Format(time.RFC3339), got, c.next)
		}
	}
	// Six fields (with seconds) are not the dialect.
	for _, spec := range []string{"", "5 0 * *", "0 5 0 * * *", "CRON_TZ=Mars/Olympus 5 0 * * *", "@fortnightly"} {
		if _, err := ParseSchedule(spec); err == nil || !strings.Contains(err.Error(), "is not a cron schedule") {
			t.Errorf("ParseSchedule(%q) = %v, want a 'not a cron schedule' error", spec, err)
		}
	}
}
