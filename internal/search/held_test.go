package search

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/record"
)

// TestHeldDayOnlyForItsCase checks the legal-hold rule of issue 19: a day
// past the retention that a hold keeps is read by a request of the holding
// case only; every other request, and the same request for an expired day
// that is not held, treats it as destroyed.
func TestHeldDayOnlyForItsCase(t *testing.T) {
	src, all := dataset(t, 2000)
	cutoff := start.AddDate(0, 0, 2) // days 0 and 1 are past the retention
	held := start                    // day 0 is held for INC-42
	h := NewHandler(Options{Source: src, Now: func() time.Time { return start.AddDate(0, 0, 5) },
		Retention: func(time.Time) time.Time { return cutoff },
		Held: func(r *http.Request) (time.Time, func(time.Time) bool) {
			if r.URL.Query().Get("case") != "INC-42" {
				return time.Time{}, func(time.Time) bool { return false }
			}
			return held, func(d time.Time) bool { return record.Day(d).Equal(held) }
		}})
	var onHeld, unexpired int64
	for _, r := range all {
		switch d := record.Day(r.Time); {
		case d.Equal(held):
			onHeld++
		case !d.Before(cutoff):
			unexpired++
		}
	}
	if onHeld == 0 || unexpired == 0 || onHeld+unexpired == int64(len(all)) {
		t.Fatalf("the data set does not exercise the rule: %d held, %d unexpired of %d", onHeld, unexpired, len(all))
	}
	for _, tt := range []struct {
		name, query string
		want        int64
	}{
		{"holding case", "?case=INC-42&from=2026-03-01", onHeld + unexpired},
		{"other case", "?case=INC-7&from=2026-03-01", unexpired},
		{"no case", "?from=2026-03-01", unexpired},
		{"holding case, only the expired unheld day", "?case=INC-42&from=2026-03-28&to=2026-03-29", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeCount(rec, httptest.NewRequest("GET", "/api/v1/count"+tt.query, nil))
			var c struct{ Count int64 }
			if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &c) != nil || c.Count != tt.want {
				t.Fatalf("%d %s, want count %d", rec.Code, rec.Body, tt.want)
			}
		})
	}
}
