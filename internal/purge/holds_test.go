package purge

import (
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/record"
)

// holdSet is a Holds that keeps the listed days.
type holdSet map[string][]string

func (h holdSet) HeldBy(d time.Time) []string { return h[record.DayString(d)] }

// TestHeldDaysInRunAndMetrics checks that a run keeps the held days, lists
// them in its report (also a dry run), that the state gauges report them as
// held instead of as a late purge (which would fire
// RetentiondRetentionExceeded), and that OnReport gets every real run.
func TestHeldDaysInRunAndMetrics(t *testing.T) {
	holds := holdSet{"2024-02-28": {"hold-1", "hold-2"}}
	var got []Report
	h := newHarness(t, "2y", Options{Holds: holds, OnReport: func(r Report) { got = append(got, r) }})
	for d := ts(t, "2024-02-27"); d.Before(ts(t, "2024-03-05")); d = d.AddDate(0, 0, 1) {
		h.store.ingest(d, 10)
	}
	h.clock.Set(ts(t, "2026-03-02T00:05:00Z"))
	dry, err := h.s.RunNow(bg, true)
	if err != nil || len(dry.Days) != 3 || len(dry.Held) != 1 {
		t.Fatalf("dry run: %d days, %d held, %v", len(dry.Days), len(dry.Held), err)
	}
	if len(got) != 0 {
		t.Fatal("a dry run was reported")
	}
	rep, err := h.s.RunNow(bg, false)
	if err != nil || len(rep.Days) != 3 || len(rep.Held) != 1 || rep.Trigger != TriggerManual {
		t.Fatalf("run: %+v, %v", rep, err)
	}
	if d := rep.Held[0]; record.DayString(d.Day) != "2024-02-28" || len(d.Holds) != 2 || d.Records != 10 {
		t.Fatalf("held %+v", d)
	}
	if len(got) != 1 || !got[0].OldestBefore.Equal(ts(t, "2024-02-27T00:01:00Z")) || !got[0].OldestAfter.Equal(ts(t, "2024-02-28T00:01:00Z")) {
		t.Fatalf("OnReport: %+v", got)
	}
	for _, d := range h.store.deleted {
		if record.DayString(d) == "2024-02-28" {
			t.Fatal("the held day was deleted")
		}
	}
	if v, ok := h.metric(t, "retentiond_held_days"); !ok || v != 1 {
		t.Errorf("retentiond_held_days = %v, %v", v, ok)
	}
	if v, ok := h.metric(t, "retentiond_oldest_held_day_timestamp_seconds"); !ok || v != float64(ts(t, "2024-02-28").Unix()) {
		t.Errorf("oldest held day = %v, %v", v, ok)
	}
	// The oldest day outside the hold is 2024-03-02, not yet expired.
	if v, _ := h.metric(t, "retentiond_oldest_day_expiry_timestamp_seconds"); v != float64(ts(t, "2026-03-03").Unix()) {
		t.Errorf("oldest expiry %v counts the held day", time.Unix(int64(v), 0).UTC())
	}
	if v, _ := h.metric(t, "retentiond_oldest_record_timestamp_seconds"); v != float64(ts(t, "2024-03-02T00:01:00Z").Unix()) {
		t.Errorf("oldest record %v counts the held day", time.Unix(int64(v), 0).UTC())
	}
	delete(holds, "2024-02-28")
	rep, err = h.s.RunNow(bg, false)
	if err != nil || len(rep.Days) != 1 || len(rep.Held) != 0 {
		t.Fatalf("run after release: %+v, %v", rep, err)
	}
	if v, ok := h.metric(t, "retentiond_held_days"); !ok || v != 0 {
		t.Errorf("after release retentiond_held_days = %v", v)
	}
	if _, ok := h.metric(t, "retentiond_oldest_held_day_timestamp_seconds"); ok {
		t.Error("oldest held day still exposed with no held day")
	}
}
