package purge

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/retentiond/retentiond/internal/policy"
	"github.com/retentiond/retentiond/internal/record"
)

var bg = context.Background()

// TestSimulatedThreeYears ingests every day for three years and purges daily
// at 00:05 UTC on a simulated clock. After every run no stored day is past
// the rule, no unexpired day is gone, and the counters add up.
func TestSimulatedThreeYears(t *testing.T) {
	for _, ret := range []string{"2y", "730d"} {
		t.Run(ret, func(t *testing.T) {
			h := newHarness(t, ret, Options{})
			p := h.s.policy
			first := ts(t, "2024-01-01") // the window holds 29 February 2024
			end := first.AddDate(3, 0, 0)
			var ingested []time.Time
			var wantDays, wantRecords, wantBytes, runs float64
			for day := first; day.Before(end); day = day.AddDate(0, 0, 1) {
				n := 1 + int(day.Unix()/86400)%7
				h.store.ingest(day, n)
				ingested = append(ingested, day)

				now := day.AddDate(0, 0, 1).Add(5 * time.Minute) // the next 00:05 UTC
				h.clock.Set(now)
				want := h.s.Plan(now)
				rep, err := h.s.RunNow(bg, false)
				if err != nil {
					t.Fatalf("run at %s: %v", now, err)
				}
				runs++
				if len(rep.Days) != len(want) {
					t.Fatalf("run at %s destroyed %d days, plan said %d", now, len(rep.Days), len(want))
				}
				for _, d := range rep.Days {
					wantDays++
					wantRecords += float64(d.Records)
					wantBytes += float64(d.Bytes)
				}
				// No stored day violates the rule; every destroyed day had
				// expired (and stays expired, as the simulated clock only moves
				// forward); nothing else vanished.
				days := h.store.Days()
				for _, d := range days {
					if p.Expired(d.Day, now) {
						t.Fatalf("at %s day %s is past retention but kept", now.Format(time.RFC3339), d.Day.Format(time.DateOnly))
					}
				}
				for _, d := range rep.Days {
					if !p.Expired(d.Day, now) {
						t.Fatalf("at %s day %s was destroyed before it expired", now.Format(time.RFC3339), d.Day.Format(time.DateOnly))
					}
				}
				if len(days)+len(h.store.deleted) != len(ingested) {
					t.Fatalf("at %s: %d kept + %d destroyed != %d ingested", now, len(days), len(h.store.deleted), len(ingested))
				}
				// Once the window is full, the oldest stored day is exactly the
				// first day the policy keeps (what ingest and search use).
				if now.After(first.AddDate(2, 0, 2)) && !days[0].Day.Equal(p.Oldest(now)) {
					t.Fatalf("at %s oldest stored day %s, policy keeps from %s", now, days[0].Day, p.Oldest(now))
				}
				if got := testutil.ToFloat64(h.s.m.days); got != wantDays {
					t.Fatalf("at %s purged_days_total = %v, want %v", now, got, wantDays)
				}
				if got := testutil.ToFloat64(h.s.m.lastSuccess); got != float64(now.Unix()) {
					t.Fatalf("last success = %v, want %v", got, now.Unix())
				}
			}
			if got := testutil.ToFloat64(h.s.m.records); got != wantRecords {
				t.Errorf("purged_records_total = %v, want %v", got, wantRecords)
			}
			if got := testutil.ToFloat64(h.s.m.bytes); got != wantBytes {
				t.Errorf("purged_bytes_total = %v, want %v", got, wantBytes)
			}
			if got := h.mustMetric(t, "retentiond_purge_runs_total", "result", ResultSuccess); got != runs {
				t.Errorf("runs_total{success} = %v, want %v", got, runs)
			}
			if got := h.mustMetric(t, "retentiond_purge_runs_total", "result", ResultFailure); got != 0 {
				t.Errorf("runs_total{failure} = %v", got)
			}
			if got := float64(len(h.store.deleted)); got != wantDays {
				t.Errorf("store saw %v deletions, counter %v", got, wantDays)
			}
			if got := h.mustMetric(t, "retentiond_purge_duration_seconds"); got != runs {
				t.Errorf("duration histogram has %v samples, want %v", got, runs)
			}
			// The gauges read the store at scrape time.
			days := h.store.Days()
			var bytes int64
			for _, d := range days {
				bytes += d.Bytes
			}
			if got := h.mustMetric(t, "retentiond_stored_days"); got != float64(len(days)) {
				t.Errorf("stored_days = %v, want %d", got, len(days))
			}
			if got := h.mustMetric(t, "retentiond_storage_bytes"); got != float64(bytes) {
				t.Errorf("storage_bytes = %v, want %d", got, bytes)
			}
			if got := h.mustMetric(t, "retentiond_oldest_record_timestamp_seconds"); got != unixSeconds(days[0].MinTime) {
				t.Errorf("oldest_record = %v, want %v", got, unixSeconds(days[0].MinTime))
			}
			if got := h.mustMetric(t, "retentiond_oldest_day_expiry_timestamp_seconds"); got != unixSeconds(p.ExpiresAt(days[0].Day)) {
				t.Errorf("oldest_day_expiry = %v", got)
			}
			if got := h.mustMetric(t, "retentiond_retention_seconds"); got != p.Seconds(h.clock.Now()) {
				t.Errorf("retention_seconds = %v", got)
			}
			// Three years of daily runs destroyed every day older than the window.
			if want := len(ingested) - len(days); float64(want) != wantDays {
				t.Errorf("%d days ingested, %d kept, %v destroyed", len(ingested), len(days), wantDays)
			}
		})
	}
}

// TestLeapDayRun shows the leap-day rule in two consecutive daily runs.
func TestLeapDayRun(t *testing.T) {
	h := newHarness(t, "2y", Options{})
	for d := ts(t, "2024-02-27"); d.Before(ts(t, "2024-03-04")); d = d.AddDate(0, 0, 1) {
		h.store.ingest(d, 3)
	}
	runAt := func(now string) []string {
		h.clock.Set(ts(t, now))
		rep, err := h.s.RunNow(bg, false)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range rep.Days {
			out = append(out, record.DayString(d.Day))
		}
		return out
	}
	steps := []struct{ now, want string }{
		{"2026-02-28T00:05:00Z", "2024-02-27"},
		{"2026-03-01T00:05:00Z", "2024-02-28"},
		{"2026-03-01T23:59:59.999Z", ""},
		{"2026-03-02T00:05:00Z", "2024-02-29 2024-03-01"}, // both expire at 2026-03-02T00:00Z
		{"2026-03-03T00:05:00Z", "2024-03-02"},
	}
	for _, s := range steps {
		if got := strings.Join(runAt(s.now), " "); got != s.want {
			t.Errorf("run at %s destroyed [%s], want [%s]", s.now, got, s.want)
		}
	}
}

// TestCatchUp is 40 simulated days of downtime: the start-up run destroys
// every day that expired meanwhile, also when MaxDaysPerRun is lower, if the
// start-up run is exempt.
func TestCatchUp(t *testing.T) {
	setup := func(t *testing.T, opts Options) (*harness, time.Time) {
		h := newHarness(t, "2y", opts)
		// Two years and a bit of normal operation with daily purges.
		first := ts(t, "2024-06-01")
		var day time.Time
		for day = first; day.Before(first.AddDate(2, 0, 10)); day = day.AddDate(0, 0, 1) {
			h.store.ingest(day, 5)
			h.clock.Set(day.AddDate(0, 0, 1).Add(5 * time.Minute))
			if _, err := h.s.RunNow(bg, false); err != nil {
				t.Fatal(err)
			}
		}
		// Down for 40 days: no ingest, no runs; restart at 07:00.
		restart := day.AddDate(0, 0, 40).Add(7 * time.Hour)
		h.clock.Set(restart)
		if n := len(h.s.Plan(restart)); n != 40 {
			t.Fatalf("after 40 days of downtime %d days have expired, want 40", n)
		}
		return h, restart
	}
	check := func(t *testing.T, h *harness, now time.Time) {
		t.Helper()
		for _, d := range h.store.Days() {
			if h.s.policy.Expired(d.Day, now) {
				t.Errorf("day %s is past retention after the catch-up", d.Day.Format(time.DateOnly))
			}
		}
	}

	t.Run("no limit", func(t *testing.T) {
		h, now := setup(t, Options{})
		before := testutil.ToFloat64(h.s.m.days)
		rep, err := h.s.RunStartup(bg)
		if err != nil || len(rep.Days) != 40 || !rep.Startup || rep.Result != ResultSuccess {
			t.Fatalf("start-up run: %d days, %+v, %v", len(rep.Days), rep.Result, err)
		}
		if got := testutil.ToFloat64(h.s.m.days) - before; got != 40 {
			t.Errorf("purged_days_total grew by %v, want 40", got)
		}
		check(t, h, now)
	})
	t.Run("limit with start-up exemption", func(t *testing.T) {
		h, now := setup(t, Options{MaxDaysPerRun: 7, StartupIgnoresLimit: true})
		rep, err := h.s.RunStartup(bg)
		if err != nil || len(rep.Days) != 40 {
			t.Fatalf("start-up run: %d days, %v", len(rep.Days), err)
		}
		check(t, h, now)
	})
	t.Run("limit without exemption refuses, force overrides", func(t *testing.T) {
		h, now := setup(t, Options{MaxDaysPerRun: 7})
		kept := len(h.store.Days())
		rep, err := h.s.RunStartup(bg)
		if !errors.Is(err, ErrRefused) || rep.Result != ResultRefused || len(rep.Days) != 40 {
			t.Fatalf("start-up run: result %q, %d days, err %v; want refused", rep.Result, len(rep.Days), err)
		}
		if !strings.Contains(err.Error(), "40 days have expired, more than purge.max_days_per_run (7)") {
			t.Errorf("refusal message: %v", err)
		}
		if len(h.store.Days()) != kept {
			t.Fatal("a refused run destroyed data")
		}
		if got := h.mustMetric(t, "retentiond_purge_runs_total", "result", ResultRefused); got != 1 {
			t.Errorf("runs_total{refused} = %v", got)
		}
		// A refused run is not a success: the last-success alert will fire.
		if got := h.mustMetric(t, "retentiond_purge_last_success_timestamp_seconds"); got >= float64(now.Unix()) {
			t.Errorf("last success moved to %v on a refused run", got)
		}
		rep, err = h.s.Run(bg, RunOptions{Force: true})
		if err != nil || len(rep.Days) != 40 {
			t.Fatalf("forced run: %d days, %v", len(rep.Days), err)
		}
		check(t, h, now)
	})
}

// TestForwardClockJump: a clock that jumps a year ahead would destroy a
// year of data; with a limit the scheduled run refuses.
func TestForwardClockJump(t *testing.T) {
	h := newHarness(t, "2y", Options{MaxDaysPerRun: 3})
	for d := ts(t, "2024-01-01"); d.Before(ts(t, "2026-01-01")); d = d.AddDate(0, 0, 1) {
		h.store.ingest(d, 1)
	}
	h.clock.Set(ts(t, "2026-01-02T00:05:00Z"))
	if rep, err := h.s.RunNow(bg, false); err != nil || len(rep.Days) != 1 {
		t.Fatalf("normal run: %d days, %v", len(rep.Days), err)
	}
	kept := len(h.store.Days())
	h.clock.Set(ts(t, "2027-01-02T00:05:00Z"))
	h.s.scheduledRun()
	if len(h.store.Days()) != kept {
		t.Fatalf("forward jump destroyed %d days", kept-len(h.store.Days()))
	}
	if got := h.mustMetric(t, "retentiond_purge_runs_total", "result", ResultRefused); got != 1 {
		t.Errorf("runs_total{refused} = %v", got)
	}
}

// TestClockBackwards: a clock earlier than at the previous run is counted and
// logged, and the run proceeds (it can only purge less).
func TestClockBackwards(t *testing.T) {
	h := newHarness(t, "2y", Options{})
	for d := ts(t, "2024-01-01"); d.Before(ts(t, "2024-01-10")); d = d.AddDate(0, 0, 1) {
		h.store.ingest(d, 1)
	}
	h.clock.Set(ts(t, "2026-01-05T00:05:00Z"))
	if _, err := h.s.RunNow(bg, false); err != nil {
		t.Fatal(err)
	}
	kept := len(h.store.Days())
	h.clock.Set(ts(t, "2025-06-01T00:05:00Z"))
	rep, err := h.s.RunNow(bg, false)
	if err != nil || rep.Result != ResultSuccess || len(rep.Days) != 0 || len(h.store.Days()) != kept {
		t.Fatalf("backwards run: %+v, %v", rep, err)
	}
	if got := testutil.ToFloat64(h.s.m.clockSkew); got != 1 {
		t.Errorf("clock_skew_detected_total = %v, want 1", got)
	}
	// Forward again: no skew, and the purge catches up.
	h.clock.Set(ts(t, "2026-01-07T00:05:00Z"))
	if rep, err := h.s.RunNow(bg, false); err != nil || len(rep.Days) != 2 {
		t.Fatalf("forward run: %d days, %v", len(rep.Days), err)
	}
	if got := testutil.ToFloat64(h.s.m.clockSkew); got != 1 {
		t.Errorf("clock_skew_detected_total = %v after a forward run", got)
	}
}

// TestPartialFailure: one day that cannot be deleted does not keep the other
// expired days, and makes the run a failure.
func TestPartialFailure(t *testing.T) {
	h := newHarness(t, "1d", Options{})
	for d := ts(t, "2026-01-01"); d.Before(ts(t, "2026-01-06")); d = d.AddDate(0, 0, 1) {
		h.store.ingest(d, 2)
	}
	h.store.fail[ts(t, "2026-01-02").Unix()] = errors.New("delete day 2026-01-02: remove: input/output error")
	// The files of 2026-01-03 go, but cleaning its WAL fails afterwards.
	h.store.failAfter[ts(t, "2026-01-03").Unix()] = errors.New("delete day 2026-01-03: flush wal: disk full")
	h.clock.Set(ts(t, "2026-01-05T00:05:00Z")) // 01, 02, 03 have expired
	rep, err := h.s.RunNow(bg, false)
	if err == nil || !strings.Contains(err.Error(), "2026-01-02") || !strings.Contains(err.Error(), "flush wal") {
		t.Fatalf("err = %v", err)
	}
	if rep.Result != ResultFailure || len(rep.Days) != 2 || rep.Records != 4 {
		t.Fatalf("report: result %q, %d days, %d records", rep.Result, len(rep.Days), rep.Records)
	}
	if h.store.has(ts(t, "2026-01-01")) || h.store.has(ts(t, "2026-01-03")) || !h.store.has(ts(t, "2026-01-04")) {
		t.Error("wrong days destroyed")
	}
	if got := testutil.ToFloat64(h.s.m.days); got != 2 {
		t.Errorf("purged_days_total = %v, want 2", got)
	}
	if got := h.mustMetric(t, "retentiond_purge_runs_total", "result", ResultFailure); got != 1 {
		t.Errorf("runs_total{failure} = %v", got)
	}
	if got := h.mustMetric(t, "retentiond_purge_last_success_timestamp_seconds"); got != 0 {
		t.Errorf("last success = %v after a failed run", got)
	}
	// The next run finishes the job.
	delete(h.store.fail, ts(t, "2026-01-02").Unix())
	if rep, err := h.s.RunNow(bg, false); err != nil || len(rep.Days) != 1 {
		t.Fatalf("retry: %d days, %v", len(rep.Days), err)
	}
}

func TestExtraPurgeables(t *testing.T) {
	var gotNow time.Time
	audit := PurgeFunc(func(ctx context.Context, now time.Time) (PurgeStats, error) {
		gotNow = now
		return PurgeStats{Name: "audit", Items: 3, Bytes: 300}, nil
	})
	broken := PurgeFunc(func(ctx context.Context, now time.Time) (PurgeStats, error) {
		return PurgeStats{Name: "exports"}, errors.New("permission denied")
	})
	h := newHarness(t, "1d", Options{Extra: []Purgeable{audit, broken}})
	h.store.ingest(ts(t, "2026-01-01"), 1)
	now := ts(t, "2026-01-03T00:05:00Z")
	h.clock.Set(now)
	rep, err := h.s.RunNow(bg, false)
	if err == nil || !strings.Contains(err.Error(), "purge exports: permission denied") {
		t.Fatalf("err = %v", err)
	}
	if !gotNow.Equal(now) || len(rep.Days) != 1 || len(rep.Extra) != 2 || rep.Extra[0].Items != 3 {
		t.Fatalf("report %+v, extra saw now=%s", rep, gotNow)
	}
	if got := h.mustMetric(t, "retentiond_purge_extra_items_total", "name", "audit"); got != 3 {
		t.Errorf("extra_items_total{audit} = %v", got)
	}
	if got := h.mustMetric(t, "retentiond_purge_extra_failures_total", "name", "exports"); got != 1 {
		t.Errorf("extra_failures_total{exports} = %v", got)
	}
	// Dry runs never call the extras.
	gotNow = time.Time{}
	if _, err := h.s.RunNow(bg, true); err != nil || !gotNow.IsZero() {
		t.Errorf("dry run: %v, extra called: %v", err, !gotNow.IsZero())
	}
}

func TestDryRun(t *testing.T) {
	h := newHarness(t, "1d", Options{})
	for d := ts(t, "2026-01-01"); d.Before(ts(t, "2026-01-05")); d = d.AddDate(0, 0, 1) {
		h.store.ingest(d, 2)
	}
	h.clock.Set(ts(t, "2026-01-04T00:05:00Z"))
	rep, err := h.s.RunNow(bg, true)
	if err != nil || !rep.DryRun || len(rep.Days) != 2 || rep.Records != 4 || rep.Bytes != 400 || rep.Result != "" {
		t.Fatalf("dry run: %+v, %v", rep, err)
	}
	if !rep.NextExpiry.Equal(ts(t, "2026-01-05")) {
		t.Errorf("next expiry = %s, want 2026-01-05 (2026-01-03 + 1d + 1d)", rep.NextExpiry)
	}
	if len(h.store.Days()) != 4 || len(h.store.deleted) != 0 {
		t.Error("dry run destroyed data")
	}
	if got := h.mustMetric(t, "retentiond_purge_runs_total", "result", ResultSuccess); got != 0 {
		t.Errorf("a dry run counted as a run: %v", got)
	}
}

// TestNoOverlap: scheduled, manual and start-up runs never overlap. A
// scheduled run that finds one in progress is skipped; a manual one waits.
func TestNoOverlap(t *testing.T) {
	h := newHarness(t, "1d", Options{})
	for d := ts(t, "2026-01-01"); d.Before(ts(t, "2026-01-05")); d = d.AddDate(0, 0, 1) {
		h.store.ingest(d, 1)
	}
	h.clock.Set(ts(t, "2026-01-04T00:05:00Z")) // 01 and 02 have expired
	block := make(chan struct{})
	entered := make(chan time.Time, 10)
	h.store.block, h.store.entered = block, entered

	first := make(chan error, 1)
	go func() { _, err := h.s.RunStartup(bg); first <- err }()
	<-entered // the start-up run is inside DeleteDay

	h.s.scheduledRun() // returns at once: skipped
	select {
	case d := <-entered:
		t.Fatalf("a scheduled run overlapped the start-up run (deleting %s)", d)
	default:
	}
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, err := h.s.RunNow(ctx, false); !errors.Is(err, context.Canceled) {
		t.Fatalf("manual run with a cancelled context while busy: %v", err)
	}
	if rep, err := h.s.RunNow(bg, true); err != nil || len(rep.Days) != 2 {
		t.Fatalf("dry run while busy: %+v, %v", rep, err)
	}
	second := make(chan error, 1)
	go func() { _, err := h.s.RunNow(bg, false); second <- err }()

	close(block)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if h.store.maxInflight != 1 {
		t.Errorf("%d deletions were in flight at once", h.store.maxInflight)
	}
	if got := h.mustMetric(t, "retentiond_purge_runs_total", "result", ResultSuccess); got != 2 {
		t.Errorf("runs_total{success} = %v, want 2 (start-up and manual; the scheduled one was skipped)", got)
	}
}

// TestConcurrentRuns hammers the scheduler from many goroutines (run with
// -race): deletions never overlap and every expired day goes exactly once.
func TestConcurrentRuns(t *testing.T) {
	h := newHarness(t, "1d", Options{})
	for d := ts(t, "2025-01-01"); d.Before(ts(t, "2026-01-01")); d = d.AddDate(0, 0, 1) {
		h.store.ingest(d, 1)
	}
	h.clock.Set(ts(t, "2026-01-01T00:05:00Z"))
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			switch i % 4 {
			case 0:
				h.s.scheduledRun()
			case 1:
				_, _ = h.s.RunNow(bg, true)
			default:
				if _, err := h.s.RunNow(bg, false); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if h.store.maxInflight != 1 {
		t.Errorf("%d deletions in flight at once", h.store.maxInflight)
	}
	if got := testutil.ToFloat64(h.s.m.days); got != 364 || len(h.store.deleted) != 364 {
		t.Errorf("purged_days_total = %v, deletions %d, want 364", got, len(h.store.deleted))
	}
}

// TestStop: Stop cancels a run that waits for a search, waits for it, and
// refuses later runs.
func TestStop(t *testing.T) {
	h := newHarness(t, "1d", Options{})
	h.store.ingest(ts(t, "2026-01-01"), 1)
	h.clock.Set(ts(t, "2026-01-04T00:05:00Z"))
	h.store.block = make(chan struct{}) // a search holds the day and never ends
	h.store.entered = make(chan time.Time, 1)
	h.s.Start()
	done := make(chan error, 1)
	go func() { _, err := h.s.RunNow(bg, false); done <- err }()
	<-h.store.entered
	stopped := h.s.Stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("run during Stop: %v", err)
	}
	<-stopped.Done()
	if !h.store.has(ts(t, "2026-01-01")) {
		t.Error("the day was deleted although its deletion was cancelled")
	}
	if _, err := h.s.RunNow(bg, false); !errors.Is(err, ErrStopped) {
		t.Errorf("run after Stop: %v", err)
	}
}

func TestSchedule(t *testing.T) {
	from := ts(t, "2026-11-21T18:00:00Z")
	cases := []struct{ spec, next string }{
		{policy.DefaultSchedule, "2026-11-22T00:05:00Z"},
		{"@daily", "2026-11-22T00:00:00Z"},
		{"0 3 * * *", "2026-11-22T03:00:00Z"},
		{"CRON_TZ=Europe/Amsterdam 30 3 * * *", "2026-11-22T02:30:00Z"}, // CET is UTC+1 in November
		{"*/15 * * * *", "2026-11-21T18:15:00Z"},
	}
	for _, c := range cases {
		s, err := policy.ParseSchedule(c.spec)
		if err != nil {
			t.Fatalf("%q: %v", c.spec, err)
		}
		if got := s.Next(from); !got.Equal(ts(t, c.next)) {
			t.Errorf("%q: next after %s = %s, want %s", c.spec, from, got.UTC(), c.next)
		}
	}
	for _, bad := range []string{"5 0 * *", "0 5 0 * * *", "CRON_TZ=Mars/Olympus 5 0 * * *", "@sometimes"} {
		if _, err := NewScheduler(Options{Policy: Policy{Retention: Retention{Years: 2}}, Store: newFakeStore(), Schedule: bad}); err == nil || !strings.Contains(err.Error(), policy.DefaultSchedule) {
			t.Errorf("NewScheduler with schedule %q: err = %v, want one showing the default as an example", bad, err)
		}
	}
	h := newHarness(t, "2y", Options{})
	before := time.Now()
	h.s.Start()
	next := h.s.Next()
	if next.UTC().Hour() != 0 || next.UTC().Minute() != 5 || !next.After(before) || next.Sub(before) > 24*time.Hour {
		t.Errorf("default schedule: next run %s", next)
	}
}

func TestNewSchedulerChecks(t *testing.T) {
	ok := Policy{Retention: Retention{Years: 2}}
	cases := []struct {
		name string
		opts Options
		msg  string
	}{
		{"no store", Options{Policy: ok}, "no store"},
		{"no retention", Options{Store: newFakeStore()}, "must be positive"},
		{"negative retention", Options{Store: newFakeStore(), Policy: Policy{Retention: Retention{Days: -1}}}, "must be positive"},
		{"negative limit", Options{Store: newFakeStore(), Policy: ok, MaxDaysPerRun: -1}, "0 (no limit)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := NewScheduler(c.opts); err == nil || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("err = %v, want %q", err, c.msg)
			}
		})
	}
	// Registering twice on one registry is an error, not a panic.
	h := newHarness(t, "2y", Options{})
	if _, err := NewScheduler(Options{Store: h.store, Policy: ok, Registerer: h.reg}); err == nil {
		t.Error("second registration succeeded")
	}
}
