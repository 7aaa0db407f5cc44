package purge

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
)

func TestServeStatus(t *testing.T) {
	h := newHarness(t, "2y", Options{})
	h.store.ingest(ts(t, "2024-02-28"), 5) // expired at 2026-03-01: destroyed by the run below
	h.store.ingest(ts(t, "2024-03-02"), 7)
	h.store.ingest(ts(t, "2024-03-03"), 11)
	h.clock.Set(ts(t, "2026-03-02T00:05:00Z"))
	get := func(serve func(w *httptest.ResponseRecorder)) map[string]any {
		t.Helper()
		rec := httptest.NewRecorder()
		serve(rec)
		var v map[string]any
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &v) != nil {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		return v
	}
	status := func() map[string]any {
		return get(func(w *httptest.ResponseRecorder) { h.s.ServeStatus(w, httptest.NewRequest("GET", "/", nil)) })
	}
	v := status()
	if v["last_run"] != nil || v["days_stored"].(float64) != 3 || v["records"].(float64) != 23 ||
		v["oldest_record"] != "2024-02-28T00:01:00Z" || v["cutoff"] != "2024-03-02T00:00:00Z" {
		t.Fatalf("before a run: %v", v)
	}
	if _, err := h.s.Run(context.Background(), RunOptions{}); err != nil {
		t.Fatal(err)
	}
	v = status()
	last, _ := v["last_run"].(map[string]any)
	if last == nil || last["result"] != ResultSuccess || last["records"].(float64) != 5 ||
		v["days_stored"].(float64) != 2 || v["oldest_record"] != "2024-03-02T00:01:00Z" || v["next_expiry"] != "2026-03-03T00:00:00Z" {
		t.Fatalf("after a run: %v", v)
	}
	c := get(func(w *httptest.ResponseRecorder) { h.s.ServeCutoff(w, httptest.NewRequest("GET", "/", nil)) })
	if c["cutoff"] != "2024-03-02T00:00:00Z" || c["cutoff_day"] != "2024-03-02" || c["retention"] != "2y" {
		t.Fatalf("cutoff: %v", c)
	}
}
