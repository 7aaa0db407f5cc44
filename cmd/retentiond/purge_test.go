package main

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/policy"
	"github.com/retentiond/retentiond/internal/purge"
	"github.com/retentiond/retentiond/internal/store"
)

// memDays is an in-memory purge.Store for the command test.
type memDays struct {
	mu   sync.Mutex
	days []store.DayInfo
}

func (m *memDays) Days() []store.DayInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]store.DayInfo(nil), m.days...)
}

func (m *memDays) DeleteDay(_ context.Context, d time.Time) (store.DayInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, in := range m.days {
		if in.Day.Equal(d) {
			m.days = append(m.days[:i], m.days[i+1:]...)
			return in, nil
		}
	}
	return store.DayInfo{}, nil
}

func runPurgeCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runCmd(t, newPurgeCmd, args...)
}

func TestPurgeCommand(t *testing.T) {
	st := &memDays{}
	for d := time.Date(2024, 2, 27, 0, 0, 0, 0, time.UTC); d.Day() != 5; d = d.AddDate(0, 0, 1) {
		st.days = append(st.days, store.DayInfo{Day: d, Records: 1000, Bytes: 3 << 20})
	}
	now := time.Date(2026, 3, 2, 0, 5, 0, 0, time.UTC)
	s, err := purge.NewScheduler(purge.Options{
		Policy: purge.Policy{Retention: policy.MustParseRetention("2y")}, Store: st, MaxDaysPerRun: 2,
		Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	srv := httptest.NewServer(s)
	defer srv.Close()

	out, err := runPurgeCmd(t, "--server", srv.URL, "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	want := `Would destroy 4 days (retention 2y, now 2026-03-02T00:05:00Z):

DAY         EXPIRED AT            RECORDS  BYTES
2024-02-27  2026-02-28T00:00:00Z  1000     3.0 MiB
2024-02-28  2026-03-01T00:00:00Z  1000     3.0 MiB
2024-02-29  2026-03-02T00:00:00Z  1000     3.0 MiB
2024-03-01  2026-03-02T00:00:00Z  1000     3.0 MiB
TOTAL                             4000     12.0 MiB
Next day expires at 2026-03-03T00:00:00Z.
`
	if out != want {
		t.Errorf("dry run output:\n%s\nwant:\n%s", out, want)
	}
	if len(st.Days()) != 7 {
		t.Fatal("dry run destroyed data")
	}

	if _, err := runPurgeCmd(t, "--server", srv.URL); err == nil ||
		!strings.Contains(err.Error(), "409") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("run over the limit: %v", err)
	}
	out, err = runPurgeCmd(t, "--server", srv.URL, "--force")
	if err != nil || !strings.Contains(out, "Destroyed 4 days") || len(st.Days()) != 3 {
		t.Fatalf("forced run: %v\n%s", err, out)
	}
	out, err = runPurgeCmd(t, "--server", srv.URL, "--json")
	if err != nil || !strings.HasPrefix(out, `{"dry_run":false`) || !strings.Contains(out, `"days":[]`) {
		t.Fatalf("json: %v\n%s", err, out)
	}
	out, err = runPurgeCmd(t, "--server", srv.URL)
	if err != nil || !strings.Contains(out, "Nothing has expired") {
		t.Fatalf("empty run: %v\n%s", err, out)
	}
	if _, err := runPurgeCmd(t, "--server", srv.URL, "extra"); err == nil {
		t.Error("an argument was accepted")
	}
}
