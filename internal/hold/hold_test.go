package hold

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/retentiond/retentiond/internal/audit"
	"github.com/retentiond/retentiond/internal/policy"
	"github.com/retentiond/retentiond/internal/purge"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/store"
	"github.com/retentiond/retentiond/internal/testkit"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func day(t *testing.T, s string) time.Time {
	t.Helper()
	d, err := record.ParseDay(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func openReg(t *testing.T, dir string, clk *testkit.Clock, reg prometheus.Registerer) (*Registry, *audit.Log) {
	t.Helper()
	al, err := audit.Open(filepath.Join(dir, "audit"), audit.Options{Now: clk.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	r, err := Open(filepath.Join(dir, DirName), Options{Audit: al, Now: clk.Now, Logger: quiet, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return r, al
}

var admin = Actor{Token: "alice", Source: "127.0.0.1"}

func TestAddValidation(t *testing.T) {
	clk := testkit.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	r, _ := openReg(t, t.TempDir(), clk, nil)
	ok := Request{Case: "INC-42", From: "2024-02-27", To: "2024-02-28", Reason: "fraud", Until: "2027-06-01"}
	tests := []struct {
		name string
		mod  func(*Request)
	}{
		{"no case", func(q *Request) { q.Case = " " }},
		{"no reason", func(q *Request) { q.Reason = "" }},
		{"bidi in case", func(q *Request) { q.Case = "INC\u202e-42" }},
		{"bad day", func(q *Request) { q.From = "2024-13-01" }},
		{"to before from", func(q *Request) { q.To = "2024-02-26" }},
		{"until past", func(q *Request) { q.Until = "2026-03-01" }},
		{"no until", func(q *Request) { q.Until = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := ok
			tt.mod(&q)
			if _, err := r.Add(q, admin); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Add = %v, want ErrInvalid", err)
			}
		})
	}
	if len(r.List()) != 0 {
		t.Fatal("a refused hold was stored")
	}
	if _, err := r.Add(ok, admin); err != nil {
		t.Fatal(err)
	}
	r.opts.CaseCheck = func(id string) error { return errors.New("case is closed") }
	if _, err := r.Add(ok, admin); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Add with a closed case = %v", err)
	}
}

// TestHeldDaySurvivesPurge is the proof on the real store: a held
// day survives a purge that destroys its neighbours, is searchable past
// the retention only under its case, and goes at the first purge after the
// release; the hold survives a restart and is itself purged once released.
func TestHeldDaySurvivesPurge(t *testing.T) {
	dir := t.TempDir()
	clk := testkit.NewClock(time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC))
	st, err := store.Open(filepath.Join(dir, "data"), store.Options{Now: clk.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var recs []record.Record
	for _, d := range []string{"2024-02-27", "2024-02-28", "2024-02-29"} {
		for i := range 3 {
			recs = append(recs, record.Record{Time: day(t, d).Add(time.Duration(i) * time.Hour), Domain: "shop.example.nl",
				Path: "/p", UserAgent: "ua", IP: netip.MustParseAddr("192.0.2.1")})
		}
	}
	if err := st.Append(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	r, al := openReg(t, dir, clk, nil)
	h, err := r.Add(Request{Case: "INC-42", From: "2024-02-28", To: "2024-02-28", Reason: "fraud case", Until: "2026-06-01"}, admin)
	if err != nil {
		t.Fatal(err)
	}

	newSched := func(reg *Registry, reports *[]purge.Report) *purge.Scheduler {
		s, err := purge.NewScheduler(purge.Options{
			Store: st, Policy: purge.Policy{Retention: policy.Retention{Days: 30}}, Now: clk.Now, Logger: quiet,
			Holds: reg, Extra: []purge.Purgeable{purge.PurgeFunc(func(ctx context.Context, now time.Time) (purge.PurgeStats, error) {
				n, err := reg.Purge(ctx, now)
				return purge.PurgeStats{Name: "holds", Items: int64(n)}, err
			})},
			OnReport: func(rep purge.Report) { *reports = append(*reports, rep) },
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	var reports []purge.Report
	sched := newSched(r, &reports)
	// 2024-04-01: all three days are past the 30-day retention.
	clk.Set(time.Date(2024, 4, 1, 0, 5, 0, 0, time.UTC))
	rep, err := sched.RunNow(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	var destroyed []string
	for _, d := range rep.Days {
		destroyed = append(destroyed, record.DayString(d.Day))
	}
	if strings.Join(destroyed, ",") != "2024-02-27,2024-02-29" {
		t.Fatalf("destroyed %v, want the held day's two neighbours", destroyed)
	}
	if len(rep.Held) != 1 || record.DayString(rep.Held[0].Day) != "2024-02-28" || rep.Held[0].Records != 3 ||
		!slices.Equal(rep.Held[0].Holds, []string{h.ID}) {
		t.Fatalf("report's held days %+v", rep.Held)
	}
	if len(reports) != 1 || rep.OldestBefore.IsZero() || !rep.OldestAfter.Equal(day(t, "2024-02-28")) {
		t.Fatalf("OnReport got %d reports; oldest before %v after %v", len(reports), rep.OldestBefore, rep.OldestAfter)
	}
	if b, _ := json.Marshal(rep); !bytes.Contains(b, []byte(`"holds":["`+h.ID+`"]`)) {
		t.Fatalf("report JSON does not name the hold: %s", b)
	}
	if got := st.Days(); len(got) != 1 || record.DayString(got[0].Day) != "2024-02-28" {
		t.Fatalf("stored days %+v", got)
	}

	// Past the retention, only the holding case sees the day.
	earliest, held := r.ForCase("INC-42")
	if !earliest.Equal(day(t, "2024-02-28")) || !held(day(t, "2024-02-28").Add(time.Hour)) || held(day(t, "2024-02-29")) {
		t.Fatalf("ForCase(INC-42) = %v", earliest)
	}
	if earliest, held := r.ForCase("INC-7"); !earliest.IsZero() || held(day(t, "2024-02-28")) {
		t.Fatal("another case may read the held day")
	}

	// The hold survives a restart.
	r2, _ := openReg2(t, dir, clk, al)
	if got := r2.HeldBy(day(t, "2024-02-28")); !slices.Equal(got, []string{h.ID}) {
		t.Fatalf("after restart HeldBy = %v", got)
	}
	var reports2 []purge.Report
	sched2 := newSched(r2, &reports2)
	if rep, err := sched2.RunNow(context.Background(), false); err != nil || len(rep.Days) != 0 || len(rep.Held) != 1 {
		t.Fatalf("second purge with the hold: %+v %v", rep, err)
	}
	if _, err := r2.Release(h.ID, "case closed", admin); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Release(h.ID, "again", admin); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second release: %v", err)
	}
	rep, err = sched2.RunNow(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Days) != 1 || record.DayString(rep.Days[0].Day) != "2024-02-28" || len(rep.Held) != 0 {
		t.Fatalf("purge after release: days %+v held %+v", rep.Days, rep.Held)
	}
	if len(st.Days()) != 0 {
		t.Fatalf("the released day is still stored: %+v", st.Days())
	}
	if len(rep.Extra) != 1 || rep.Extra[0].Items != 1 || len(r2.List()) != 0 {
		t.Fatalf("the released hold was not purged: extra %+v, holds %+v", rep.Extra, r2.List())
	}
	b, _ := os.ReadFile(filepath.Join(dir, DirName, fileName))
	if bytes.Contains(b, []byte(h.ID)) {
		t.Fatalf("holds.json still names the purged hold: %s", b)
	}

	// Every action is in the audit log: add, release, purge.
	var got []string
	for _, l := range auditLines(t, al.Dir()) {
		if l.Event == audit.EventHold && l.Case == "INC-42" {
			got = append(got, l.Endpoint+":"+l.Outcome)
		}
	}
	want := "hold add:allowed,hold add:done,hold release:allowed,hold release:done,hold purge:done"
	if strings.Join(got, ",") != want {
		t.Fatalf("audit lines %v, want %s", got, want)
	}
}

// openReg2 reopens the registry on the same audit log (a restart of the
// registry; the audit log stays open, as one daemon holds it).
func openReg2(t *testing.T, dir string, clk *testkit.Clock, al *audit.Log) (*Registry, *audit.Log) {
	t.Helper()
	r, err := Open(filepath.Join(dir, DirName), Options{Audit: al, Now: clk.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return r, al
}

type auditLine struct{ Event, Endpoint, Outcome, Case, Query string }

// auditLines reads every line of the audit files in dir (after checking
// the chain).
func auditLines(t *testing.T, dir string) []auditLine {
	t.Helper()
	if res, err := audit.Verify(dir); err != nil || res.FirstBad != nil {
		t.Fatalf("audit chain: %v %v", res.FirstBad, err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	var out []auditLine
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, ln := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			var l auditLine
			if err := json.Unmarshal(ln, &l); err != nil {
				t.Fatal(err)
			}
			out = append(out, l)
		}
	}
	return out
}

func TestAuditFailureRefusesTheAction(t *testing.T) {
	clk := testkit.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	r, al := openReg(t, t.TempDir(), clk, nil)
	al.Close()
	_, err := r.Add(Request{Case: "INC-1", From: "2026-01-01", To: "2026-01-02", Reason: "r", Until: "2027-01-01"}, admin)
	if err == nil || len(r.List()) != 0 {
		t.Fatalf("a hold was placed without its audit line: %v", err)
	}
}

func TestMetricsAndAPI(t *testing.T) {
	clk := testkit.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	reg := prometheus.NewRegistry()
	r, _ := openReg(t, t.TempDir(), clk, reg)
	h := r.Handler()
	do := func(method, path, body string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
		return rec
	}
	if rec := do("POST", "/api/v1/admin/holds", `{"case":"INC-42","from":"2026-01-10","to":"2026-01-12","reason":"fraud","until":"2026-06-01"}`); rec.Code != 201 {
		t.Fatalf("add: %d %s", rec.Code, rec.Body)
	}
	if rec := do("POST", "/api/v1/admin/holds", `{"case":"INC-42","from":"2026-01-10"}`); rec.Code != 400 {
		t.Fatalf("incomplete add: %d %s", rec.Code, rec.Body)
	}
	if rec := do("POST", "/api/v1/admin/holds", `{"case":"INC-42","bogus":1}`); rec.Code != 400 {
		t.Fatalf("unknown field: %d", rec.Code)
	}
	rec := do("GET", "/api/v1/admin/holds", "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"id":"hold-1"`) {
		t.Fatalf("list: %d %s", rec.Code, rec.Body)
	}
	check := func(active, overdue float64) {
		t.Helper()
		want := "# HELP retentiond_holds_active Legal holds in force.\n# TYPE retentiond_holds_active gauge\nretentiond_holds_active " +
			strconvF(active) + "\n"
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "retentiond_holds_active"); err != nil {
			t.Error(err)
		}
		if got := gaugeValue(t, reg, "retentiond_holds_overdue"); got != overdue {
			t.Errorf("overdue %v, want %v", got, overdue)
		}
	}
	check(1, 0)
	clk.Set(time.Date(2026, 6, 1, 23, 0, 0, 0, time.UTC)) // still the until day
	check(1, 0)
	clk.Set(time.Date(2026, 6, 2, 0, 0, 0, 0, time.UTC))
	check(1, 1)
	if rec := do("POST", "/api/v1/admin/holds/hold-9/release", `{"reason":"x"}`); rec.Code != 404 {
		t.Fatalf("release of an unknown hold: %d", rec.Code)
	}
	if rec := do("POST", "/api/v1/admin/holds/hold-1/release", `{"reason":"case closed"}`); rec.Code != 200 {
		t.Fatalf("release: %d %s", rec.Code, rec.Body)
	}
	check(0, 0)
}

func strconvF(f float64) string { b, _ := json.Marshal(f); return string(b) }

func gaugeValue(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s not exposed", name)
	return 0
}

var _ purge.Holds = (*Registry)(nil)
