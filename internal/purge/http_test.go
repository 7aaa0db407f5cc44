package purge

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/store"
)

func TestHandler(t *testing.T) {
	h := newHarness(t, "2y", Options{MaxDaysPerRun: 3})
	for d := ts(t, "2024-02-27"); d.Before(ts(t, "2024-03-05")); d = d.AddDate(0, 0, 1) {
		h.store.ingest(d, 10)
	}
	h.clock.Set(ts(t, "2026-03-02T00:05:00Z")) // 27 Feb .. 1 Mar 2024 have expired (4 days)
	do := func(method, query string) (int, map[string]any, []byte) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.s.ServeHTTP(rec, httptest.NewRequest(method, "/api/v1/admin/purge"+query, nil))
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s %s: body %q: %v", method, query, rec.Body, err)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("content type %q", ct)
		}
		return rec.Code, body, rec.Body.Bytes()
	}

	cases := []struct {
		name, method, query string
		status              int
		errPart             string
	}{
		{"GET is not allowed", "GET", "?dry_run=true", http.StatusMethodNotAllowed, "use POST"},
		{"bad dry_run", "POST", "?dry_run=maybe", http.StatusBadRequest, `dry_run: "maybe" is not true or false`},
		{"bad force", "POST", "?force=yes", http.StatusBadRequest, "force:"},
		{"over the limit is refused", "POST", "?dry_run=false", http.StatusConflict, "more than purge.max_days_per_run (3)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body, _ := do(c.method, c.query)
			if code != c.status || !strings.Contains(body["error"].(string), c.errPart) {
				t.Errorf("%d %v, want %d with %q", code, body, c.status, c.errPart)
			}
		})
	}
	if len(h.store.deleted) != 0 {
		t.Fatal("a refused or bad request destroyed data")
	}

	code, body, raw := do("POST", "?dry_run=true")
	if code != 200 || body["dry_run"] != true || len(body["days"].([]any)) != 4 || body["records"] != 40.0 {
		t.Fatalf("dry run: %d %s", code, raw)
	}
	day0 := body["days"].([]any)[0].(map[string]any)
	if day0["day"] != "2024-02-27" || day0["expires_at"] != "2026-02-28T00:00:00Z" || day0["bytes"] != 1000.0 {
		t.Errorf("first day: %v", day0)
	}
	var rep Report
	if err := json.Unmarshal(raw, &rep); err != nil || len(rep.Days) != 4 || rep.Retention != (Retention{Years: 2}) ||
		!rep.Days[2].Day.Equal(ts(t, "2024-02-29")) || !rep.NextExpiry.Equal(ts(t, "2026-03-03")) {
		t.Fatalf("decode report: %+v, %v", rep, err)
	}

	code, body, raw = do("POST", "?dry_run=false&force=true")
	if code != 200 || body["result"] != "success" || len(body["days"].([]any)) != 4 || len(h.store.deleted) != 4 {
		t.Fatalf("forced run: %d %s", code, raw)
	}
	// Nothing left to do: an empty list, not null.
	code, _, raw = do("POST", "")
	if code != 200 || !strings.Contains(string(raw), `"days":[]`) {
		t.Fatalf("empty run: %d %s", code, raw)
	}

	h.store.fail[ts(t, "2024-03-02").Unix()] = errors.New("delete day 2024-03-02: remove: input/output error")
	h.clock.Set(ts(t, "2026-03-03T00:05:00Z"))
	code, body, raw = do("POST", "?dry_run=0")
	if code != 500 || !strings.Contains(body["error"].(string), "input/output error") || body["report"] == nil {
		t.Fatalf("failed run: %d %s", code, raw)
	}

	<-h.s.Stop().Done()
	if code, _, raw := do("POST", "?dry_run=true"); code != http.StatusServiceUnavailable {
		t.Fatalf("after Stop: %d %s", code, raw)
	}
}

func TestReportJSONRoundTrip(t *testing.T) {
	in := Report{
		Result: ResultFailure, Startup: true, Now: ts(t, "2026-03-02T00:05:00Z"), Retention: Retention{Days: 730},
		Days:    []store.DayInfo{{Day: ts(t, "2024-02-29"), Records: 7, Bytes: 700, KeyID: "14a4a079a7d85847"}},
		Records: 7, Bytes: 700, Duration: 1500 * time.Millisecond,
		Extra: []PurgeStats{{Name: "audit", Items: 2, Bytes: 20}},
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Report
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Result != in.Result || !out.Now.Equal(in.Now) || out.Retention != in.Retention || out.Duration != in.Duration ||
		out.Records != 7 || len(out.Extra) != 1 || out.Extra[0] != in.Extra[0] || !out.NextExpiry.IsZero() || !out.Startup ||
		len(out.Days) != 1 || out.Days[0].KeyID != "14a4a079a7d85847" || !strings.Contains(string(b), `"key_id":"14a4a079a7d85847"`) {
		t.Errorf("round trip: %+v from %s", out, b)
	}
	if err := json.Unmarshal([]byte(`{"retention":"2w"}`), &out); err == nil {
		t.Error("a report with a bad retention decoded")
	}
	if err := json.Unmarshal([]byte(`{"retention":"2y","days":[{"day":"2026-13-01"}]}`), &out); err == nil {
		t.Error("a report with a bad day decoded")
	}
}
