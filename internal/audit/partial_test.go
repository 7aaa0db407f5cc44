package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestPartialAnswerIsAudited: a handler that reports a partial answer
// (damaged files left out) gets a done line that says so.
func TestPartialAnswerIsAudited(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h := RequireCase(l, "search", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ReportCount(r.Context(), 3)
		ReportPartial(r.Context(), "1 damaged segment file skipped: seg-00000002-00000002.seg")
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/?case=INC-1&reason=test&q=ip:192.0.2.1", nil))
	ReportPartial(context.Background(), "outside a guarded request: ignored")
	var done map[string]any
	for _, m := range auditLines(t, dir) {
		if m["outcome"] == OutcomeDone {
			done = m
		}
	}
	if done == nil || done["error"] != "partial answer: 1 damaged segment file skipped: seg-00000002-00000002.seg" {
		t.Fatalf("done line %v, want it to record the partial answer", done)
	}
}

// TestAbortedAnswerIsAudited: a handler that sent a 200 status line and then
// ended in an error (a stalled client, a destroyed day) gets a done line
// whose outcome is error, with the reason, not a completed disclosure.
func TestAbortedAnswerIsAudited(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h := RequireCase(l, "search", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("{}\n"))
		ReportCount(r.Context(), 1)
		ReportAborted(r.Context(), "the client stopped reading")
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/?case=INC-1&reason=test&q=ip:192.0.2.1", nil))
	ReportAborted(context.Background(), "outside a guarded request: ignored")
	var last map[string]any
	for _, m := range auditLines(t, dir) {
		if m["ref"] != nil {
			last = m
		}
	}
	if last == nil || last["outcome"] != OutcomeError || last["error"] != "the client stopped reading" {
		t.Fatalf("completion line %v, want outcome %q with the reason", last, OutcomeError)
	}
}

// auditLines reads every line of the audit files in dir, in file order.
func auditLines(t *testing.T, dir string) []map[string]any {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	var out []map[string]any
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				out = append(out, m)
			}
		}
		fh.Close()
	}
	return out
}
