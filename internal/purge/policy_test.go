package purge

import (
	"math/rand/v2"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/policy"
)

func ts(t *testing.T, s string) time.Time {
	t.Helper()
	for _, layout := range []string{time.RFC3339Nano, time.DateOnly} {
		if v, err := time.Parse(layout, s); err == nil {
			return v
		}
	}
	t.Fatalf("bad test time %q", s)
	return time.Time{}
}

// TestExpiresAt pins the destruction instant of a day: start(D) + retention
// + 1 day, with AddDate's normalisation of 29 February. The expectations are
// worked out by hand in the comments.
func TestExpiresAt(t *testing.T) {
	cases := []struct {
		name, ret, day, want string
	}{
		// 2026-02-29 does not exist; AddDate makes it 2026-03-01, plus a day.
		{"leap day +2y", "2y", "2024-02-29", "2026-03-02T00:00:00Z"},
		{"day before leap day +2y", "2y", "2024-02-28", "2026-03-01T00:00:00Z"},
		// 1 March 2024 ties with 29 February: both expire at the same instant.
		{"day after leap day +2y", "2y", "2024-03-01", "2026-03-02T00:00:00Z"},
		{"non-leap 28 Feb +2y", "2y", "2023-02-28", "2025-03-01T00:00:00Z"},
		{"28 Feb into a leap year", "2y", "2026-02-28", "2028-02-29T00:00:00Z"},
		{"1 Mar into a leap year", "2y", "2026-03-01", "2028-03-02T00:00:00Z"},
		{"leap day +4y lands on a leap day", "4y", "2024-02-29", "2028-03-01T00:00:00Z"},
		{"leap day +3y", "3y", "2024-02-29", "2027-03-02T00:00:00Z"},
		// 2024-02-29 + 366 days = 2025-03-01, + 365 = 2026-03-01 (731 days).
		{"leap day +730d", "730d", "2024-02-29", "2026-03-01T00:00:00Z"},
		// 2024 has 366 days: 2024-01-01 + 731 d = 2026-01-01.
		{"window with leap day, 730d", "730d", "2024-01-01", "2026-01-01T00:00:00Z"},
		{"window with leap day, 2y", "2y", "2024-01-01", "2026-01-02T00:00:00Z"},
		// No 29 February inside: 2y and 730d agree.
		{"window without leap day, 730d", "730d", "2025-01-01", "2027-01-02T00:00:00Z"},
		{"window without leap day, 2y", "2y", "2025-01-01", "2027-01-02T00:00:00Z"},
		{"year end 2y", "2y", "2024-12-31", "2027-01-01T00:00:00Z"},
		{"year end 2y, next year", "2y", "2025-12-31", "2028-01-01T00:00:00Z"},
		{"millennium year end", "2y", "1999-12-31", "2002-01-01T00:00:00Z"},
		{"one day", "1d", "2026-11-21", "2026-11-23T00:00:00Z"},
		{"one year", "1y", "2026-11-21", "2027-11-22T00:00:00Z"},
		{"last ms of the day counts as the day", "2y", "2024-02-29T23:59:59.999Z", "2026-03-02T00:00:00Z"},
		// 00:30 +02:00 on 1 March is 22:30 UTC on 29 February.
		{"non-UTC input is bucketed by UTC day", "2y", "2024-03-01T00:30:00+02:00", "2026-03-02T00:00:00Z"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := Policy{Retention: policy.MustParseRetention(c.ret)}
			got := p.ExpiresAt(ts(t, c.day))
			if want := ts(t, c.want); !got.Equal(want) || got.Location() != time.UTC {
				t.Errorf("ExpiresAt(%s) with %s = %s, want %s", c.day, c.ret, got.Format(time.RFC3339Nano), c.want)
			}
		})
	}
}

// TestExpired is the policy table: day boundaries to the millisecond, leap
// days, year ends, 2y against 730d and clocks that went backwards.
func TestExpired(t *testing.T) {
	cases := []struct {
		name, ret, day, now string
		want                bool
	}{
		{"leap day, 1 ms before", "2y", "2024-02-29", "2026-03-01T23:59:59.999Z", false},
		{"leap day, at", "2y", "2024-02-29", "2026-03-02T00:00:00Z", true},
		{"leap day, 1 ms after", "2y", "2024-02-29", "2026-03-02T00:00:00.001Z", true},
		{"leap day, naive AddDate(2) instant is too early", "2y", "2024-02-29", "2026-03-01T00:00:00Z", false},
		{"leap day 730d, 1 ms before", "730d", "2024-02-29", "2026-02-28T23:59:59.999Z", false},
		{"leap day 730d, at", "730d", "2024-02-29", "2026-03-01T00:00:00Z", true},
		{"leap day 2y at the 730d instant", "2y", "2024-02-29", "2026-03-01T00:00:00Z", false},
		{"2y vs 730d: 730d expires 2024-01-01 a day earlier", "730d", "2024-01-01", "2026-01-01T00:00:00Z", true},
		{"2y vs 730d: 2y keeps 2024-01-01 that day", "2y", "2024-01-01", "2026-01-01T23:59:59.999Z", false},
		{"28 Feb, 1 ms before", "2y", "2024-02-28", "2026-02-28T23:59:59.999Z", false},
		{"28 Feb, at", "2y", "2024-02-28", "2026-03-01T00:00:00Z", true},
		{"into leap year, 1 ms before", "2y", "2026-02-28", "2028-02-28T23:59:59.999Z", false},
		{"into leap year, at 29 Feb", "2y", "2026-02-28", "2028-02-29T00:00:00Z", true},
		{"year end, 1 ms before", "2y", "2024-12-31", "2026-12-31T23:59:59.999Z", false},
		{"year end, at", "2y", "2024-12-31", "2027-01-01T00:00:00Z", true},
		{"year end, 1 ms after", "2y", "2024-12-31", "2027-01-01T00:00:00.001Z", true},
		{"new year's day, 1 ms before", "2y", "2025-01-01", "2027-01-01T23:59:59.999Z", false},
		{"new year's day, at", "2y", "2025-01-01", "2027-01-02T00:00:00Z", true},
		{"ordinary day, exactly 2 years later is not yet", "2y", "2026-11-21", "2028-11-21T12:00:00Z", false},
		{"ordinary day, one day more", "2y", "2026-11-21", "2028-11-22T00:00:00Z", true},
		{"day given as its last ms", "2y", "2024-02-29T23:59:59.999Z", "2026-03-01T23:59:59.999Z", false},
		{"day given as its last ms, at", "2y", "2024-02-29T23:59:59.999Z", "2026-03-02T00:00:00Z", true},
		{"now in +01:00, 1 ms before", "2y", "2024-02-29", "2026-03-02T00:59:59.999+01:00", false},
		{"now in +01:00, at", "2y", "2024-02-29", "2026-03-02T01:00:00+01:00", true},
		{"now in -05:00 on the previous local day", "2y", "2024-02-29", "2026-03-01T19:00:00-05:00", true},
		{"1d, 1 ms before", "1d", "2026-11-20", "2026-11-21T23:59:59.999Z", false},
		{"1d, at", "1d", "2026-11-20", "2026-11-22T00:00:00Z", true},
		{"today is never expired", "1d", "2026-11-21", "2026-11-21T23:59:59.999Z", false},
		{"clock backwards: now before the day", "2y", "2024-02-29", "2020-01-01T00:00:00Z", false},
		{"clock backwards: zero time", "2y", "2024-02-29", "0001-01-01T00:00:00Z", false},
		{"clock backwards: a year before expiry", "2y", "2024-02-29", "2025-03-02T00:00:00Z", false},
		{"far future clock expires everything", "2y", "2024-02-29", "2100-01-01T00:00:00Z", true},
		{"long retention", "10y", "2016-02-29", "2026-03-01T23:59:59.999Z", false},
		{"long retention, at", "10y", "2016-02-29", "2026-03-02T00:00:00Z", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := Policy{Retention: policy.MustParseRetention(c.ret)}
			if got := p.Expired(ts(t, c.day), ts(t, c.now)); got != c.want {
				t.Errorf("Expired(%s, %s) with %s = %v, want %v (expires at %s)", c.day, c.now, c.ret, got, c.want,
					p.ExpiresAt(ts(t, c.day)).Format(time.RFC3339Nano))
			}
		})
	}
	if len(cases) < 30 {
		t.Errorf("only %d policy cases", len(cases))
	}
}

// TestRetentionBounds checks the promise behind the rule for random records:
// a record at time t is never destroyed before t + retention and never kept
// longer than t + retention + 1 day (before the schedule delay).
func TestRetentionBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	start := ts(t, "2020-01-01").UnixMilli()
	span := ts(t, "2040-01-01").UnixMilli() - start
	for _, ret := range []string{"1d", "730d", "1y", "2y", "3y", "4y"} {
		p := Policy{Retention: policy.MustParseRetention(ret)}
		for range 20000 {
			rec := time.UnixMilli(start + rng.Int64N(span)).UTC()
			kept := p.Retention.AddTo(rec)
			exp := p.ExpiresAt(rec)
			if exp.Before(kept) || exp.Sub(kept) > 24*time.Hour {
				t.Fatalf("%s: record %s: kept until %s, destroyed at %s", ret, rec.Format(time.RFC3339Nano),
					kept.Format(time.RFC3339Nano), exp.Format(time.RFC3339Nano))
			}
			if p.Expired(rec, exp.Add(-time.Millisecond)) || !p.Expired(rec, exp) {
				t.Fatalf("%s: record %s: Expired disagrees with ExpiresAt %s", ret, rec, exp)
			}
		}
	}
}

// TestExpiryInDayOrder checks that a younger day never expires before an
// older one, for every day of 2020-2040; the executor and Oldest rely on it.
func TestExpiryInDayOrder(t *testing.T) {
	for _, ret := range []string{"1d", "730d", "1y", "2y", "3y", "4y", "100y"} {
		p := Policy{Retention: policy.MustParseRetention(ret)}
		prev := p.ExpiresAt(ts(t, "2019-12-31"))
		for d := ts(t, "2020-01-01"); d.Year() < 2040; d = d.AddDate(0, 0, 1) {
			e := p.ExpiresAt(d)
			if e.Before(prev) {
				t.Fatalf("%s: %s expires at %s, before the previous day (%s)", ret, d.Format(time.DateOnly), e, prev)
			}
			prev = e
		}
	}
}

func TestOldestAndIngestWindow(t *testing.T) {
	cases := []struct {
		name, ret, now, oldest string
	}{
		// Both 29 Feb and 1 Mar 2024 expire at 2026-03-02T00:00Z.
		{"leap day and 1 Mar expire together", "2y", "2026-03-02T00:00:00Z", "2024-03-02"},
		{"1 ms before the leap day expires", "2y", "2026-03-01T23:59:59.999Z", "2024-02-29"},
		{"29 Feb 2028: days up to 28 Feb 2026 have expired", "2y", "2028-02-29T12:00:00Z", "2026-03-01"},
		{"730d over a leap day", "730d", "2026-03-01T00:00:00Z", "2024-03-01"},
		{"ordinary day", "2y", "2026-11-21T18:00:00Z", "2024-11-21"},
		{"year end", "2y", "2027-01-01T00:00:00Z", "2025-01-01"},
		{"1d keeps yesterday", "1d", "2026-11-21T18:00:00Z", "2026-11-20"},
		{"non-UTC now", "2y", "2026-11-22T00:30:00+01:00", "2024-11-21"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := Policy{Retention: policy.MustParseRetention(c.ret)}
			now := ts(t, c.now)
			oldest, newest := p.IngestWindow(now, 10*time.Minute)
			if want := ts(t, c.oldest); !oldest.Equal(want) {
				t.Errorf("oldest = %s, want %s", oldest.Format(time.RFC3339), c.oldest)
			}
			if p.Expired(oldest, now) || !p.Expired(oldest.Add(-time.Millisecond), now) {
				t.Errorf("oldest %s is not the boundary between expired and kept days", oldest)
			}
			if !newest.Equal(now.Add(10 * time.Minute)) {
				t.Errorf("newest = %s, want now + 10m", newest)
			}
		})
	}
	// The boundary is exact for every hour over four years, for both kinds.
	for _, ret := range []string{"2y", "730d"} {
		p := Policy{Retention: policy.MustParseRetention(ret)}
		for now := ts(t, "2026-01-01"); now.Year() < 2030; now = now.Add(7 * time.Hour) {
			o := p.Oldest(now)
			if p.Expired(o, now) || !p.Expired(o.AddDate(0, 0, -1), now) || !o.Equal(o.Truncate(24*time.Hour)) {
				t.Fatalf("%s at %s: Oldest = %s is not the first kept day", ret, now, o)
			}
		}
	}
}

// TestSeconds checks the retention gauge: 2y is 731 days when the window
// ending now contains a 29 February, 730 otherwise; 730d is always 730 days.
func TestSeconds(t *testing.T) {
	const day = 86400.0
	cases := []struct {
		ret, now string
		days     float64
	}{
		{"2y", "2026-02-28T12:00:00Z", 731}, // back to 2024-02-28 12:00, across 29 Feb 2024
		{"2y", "2026-03-01T00:00:00Z", 730}, // back to 2024-03-01
		{"2y", "2025-11-21T00:00:00Z", 731},
		{"2y", "2028-03-01T00:00:00Z", 731},
		{"730d", "2025-11-21T00:00:00Z", 730},
		{"1d", "2026-11-21T05:00:00Z", 1},
	}
	for _, c := range cases {
		p := Policy{Retention: policy.MustParseRetention(c.ret)}
		if got := p.Seconds(ts(t, c.now)); got != c.days*day {
			t.Errorf("%s at %s: %v s = %v days, want %v", c.ret, c.now, got, got/day, c.days)
		}
	}
}

// TestDocExamples checks the worked examples in docs/retention.md against
// the code, so the documentation cannot drift from the rule.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/retention.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile(`(?m)^\| (\d+[yd]) \| (\d{4}-\d\d-\d\d) \| (\S+Z) \|`).FindAllStringSubmatch(string(doc), -1)
	if len(rows) < 8 {
		t.Fatalf("found %d worked examples in docs/retention.md", len(rows))
	}
	for _, r := range rows {
		p := Policy{Retention: policy.MustParseRetention(r[1])}
		if got := p.ExpiresAt(ts(t, r[2])).Format(time.RFC3339); got != r[3] {
			t.Errorf("docs say %s + %s is destroyed at %s; the code says %s", r[2], r[1], r[3], got)
		}
	}
}
