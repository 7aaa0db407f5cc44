package audit

import (
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/retentiond/retentiond/internal/auth"
	"github.com/retentiond/retentiond/internal/fsutil"
)

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// searchHandler stands in for the search package: it streams two rows and
// reports the count.
var searchHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.WriteString(w, `{"ip":"203.0.113.7"}`+"\n")
	http.NewResponseController(w).Flush()
	io.WriteString(w, `{"ip":"203.0.113.8"}`+"\n")
	ReportCount(r.Context(), 2)
})

type env struct {
	srv     *httptest.Server
	dir     string
	log     *Log
	reg     *prometheus.Registry
	logs    *lockedBuffer
	token   string
	handled int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvFS(t, fsutil.FS{})
}

// newEnvFS is newEnv with the audit log on fsys (tests inject faults).
func newEnvFS(t *testing.T, fsys fsutil.FS) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), reg: prometheus.NewRegistry(), logs: &lockedBuffer{}}
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tok, sum, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	e.token = tok
	a, err := auth.New(auth.Options{Tokens: []auth.TokenConfig{{Name: "alice", SHA256: sum, Roles: []string{"search"}}},
		Logger: logger, Registerer: e.reg, FailuresPerMinute: 1000})
	if err != nil {
		t.Fatal(err)
	}
	e.log, err = Open(filepath.Join(e.dir, "audit"), Options{Logger: logger, Registerer: e.reg, FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.log.Close() })
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.handled++
		searchHandler.ServeHTTP(w, r)
	})
	mux := http.NewServeMux()
	mux.Handle("/api/v1/search", Guard(a, e.log, "search", counted))
	mux.Handle("/api/v1/count", Guard(a, e.log, "count", counted))
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) get(t *testing.T, path string, q url.Values, token string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+path+"?"+q.Encode(), nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (e *env) lines(t *testing.T) []line {
	t.Helper()
	files, _ := listFiles(e.log.Dir())
	var out []line
	for _, f := range files {
		for _, s := range readLines(t, filepath.Join(e.log.Dir(), f)) {
			l, _, err := parseLine([]byte(strings.TrimSuffix(s, "\n")))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, *l)
		}
	}
	return out
}

func TestRequireCaseRefusals(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("x", MaxReasonLength+1)
	tests := []struct {
		name string
		q    url.Values
	}{
		{"neither", url.Values{"q": {"ip:203.0.113.7"}}},
		{"no case", url.Values{"q": {"ip:203.0.113.7"}, "reason": {"leak"}}},
		{"no reason", url.Values{"q": {"ip:203.0.113.7"}, "case": {"INC-1"}}},
		{"blank case", url.Values{"case": {"   "}, "reason": {"leak"}}},
		{"blank reason", url.Values{"case": {"INC-1"}, "reason": {"\t"}}},
		{"control char in case", url.Values{"case": {"INC\x1b[31m"}, "reason": {"leak"}}},
		{"newline in reason", url.Values{"case": {"INC-1"}, "reason": {"a\nb"}}},
		{"overlong reason", url.Values{"case": {"INC-1"}, "reason": {long}}},
		{"overlong case", url.Values{"case": {strings.Repeat("c", MaxCaseLength+1)}, "reason": {"leak"}}},
		{"invalid utf-8", url.Values{"case": {"INC-\xff"}, "reason": {"leak"}}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, ep := range []string{"/api/v1/search", "/api/v1/count"} {
				resp, body := e.get(t, ep, tc.q, e.token)
				if resp.StatusCode != 400 {
					t.Fatalf("%s: status %d, want 400", ep, resp.StatusCode)
				}
				var er struct{ Error string }
				if json.Unmarshal([]byte(body), &er) != nil || er.Error == "" {
					t.Fatalf("body %q is not a JSON error", body)
				}
			}
			ls := e.lines(t)
			if len(ls) != 2*(i+1) {
				t.Fatalf("%d audit lines, want %d: every refusal audited once", len(ls), 2*(i+1))
			}
			for _, l := range ls[len(ls)-2:] {
				if l.Outcome != OutcomeRefused || l.Status != 400 || l.Token != "alice" || l.Error == "" || l.Source != "127.0.0.1" {
					t.Fatalf("refusal line %+v", l)
				}
				if len(l.Reason) > MaxReasonLength+len("…[truncated]") {
					t.Fatalf("refused reason stored unbounded (%d bytes)", len(l.Reason))
				}
			}
		})
	}
	if e.handled != 0 {
		t.Fatalf("the search handler ran %d times for refused requests", e.handled)
	}
	if got := testutil.ToFloat64(e.log.metrics.searches.WithLabelValues("search", resultRefused)); got != float64(len(tests)) {
		t.Errorf("refused search metric %v, want %d", got, len(tests))
	}
}

func TestGuardAuditsEveryAttempt(t *testing.T) {
	e := newEnv(t)
	q := url.Values{"q": {"ip:203.0.113.7"}, "case": {"INC-7"}, "reason": {"webshell upload on shop.example.nl"},
		"from": {"-7d"}, "to": {"2026-11-21"}, "format": {"csv"}}
	resp, body := e.get(t, "/api/v1/search", q, e.token)
	if resp.StatusCode != 200 || strings.Count(body, "\n") != 2 {
		t.Fatalf("search: %d %q", resp.StatusCode, body)
	}
	if r, _ := e.get(t, "/api/v1/search", q, ""); r.StatusCode != 401 {
		t.Fatalf("no token: %d", r.StatusCode)
	}
	if r, _ := e.get(t, "/api/v1/search", q, "rtd_wrong"); r.StatusCode != 401 {
		t.Fatalf("bad token: %d", r.StatusCode)
	}
	ls := e.lines(t)
	if len(ls) != 4 {
		t.Fatalf("%d lines, want allowed+done+2 refused", len(ls))
	}
	al, done := ls[0], ls[1]
	if al.Outcome != OutcomeAllowed || al.Case != "INC-7" || al.Query != "ip:203.0.113.7" || al.From != "-7d" ||
		al.To != "2026-11-21" || al.Params != "format=csv" || al.Token != "alice" || al.Count != nil {
		t.Errorf("allowed line %+v", al)
	}
	if done.Outcome != OutcomeDone || done.Ref != al.Seq || done.Count == nil || *done.Count != 2 ||
		done.Status != 200 || done.Bytes != int64(len(body)) || done.Duration == nil {
		t.Errorf("done line %+v", done)
	}
	for _, l := range ls[2:] {
		if l.Outcome != OutcomeRefused || l.Status != 401 || l.Token != "" || !strings.HasPrefix(l.Error, "authentication: ") || l.Case != "INC-7" {
			t.Errorf("auth refusal line %+v", l)
		}
	}
	if res, _ := Verify(e.log.Dir()); res.FirstBad != nil || res.Lines != 4 {
		t.Fatalf("chain: %+v", res.FirstBad)
	}
}

func TestSearchNotRunWhenAuditFails(t *testing.T) {
	e := newEnv(t)
	e.log.mu.Lock()
	e.log.failed = os.ErrClosed
	e.log.mu.Unlock()
	q := url.Values{"q": {"ip:203.0.113.7"}, "case": {"INC-7"}, "reason": {"leak"}}
	resp, body := e.get(t, "/api/v1/search", q, e.token)
	if resp.StatusCode != 503 || strings.Contains(body, "203.0.113") {
		t.Fatalf("status %d body %q, want 503 without results", resp.StatusCode, body)
	}
	if e.handled != 0 {
		t.Fatal("search ran although its audit line was not written")
	}
}

// TestNoPlaintextToken uses a token through the middleware and the audit
// log, in good and bad variants and even as a query parameter, then
// searches every file written and every log line for it.
func TestNoPlaintextToken(t *testing.T) {
	e := newEnv(t)
	q := url.Values{"q": {"ip:203.0.113.7"}, "case": {"INC-9"}, "reason": {"leak"}}
	e.get(t, "/api/v1/search", q, e.token)
	e.get(t, "/api/v1/count", q, e.token)
	e.get(t, "/api/v1/search", url.Values{"q": {"x"}}, e.token)
	e.get(t, "/api/v1/search", q, e.token+"x")
	e.get(t, "/api/v1/search", q, e.token[:len(e.token)-1])
	withTok := url.Values{"q": {"x"}, "case": {"INC-9"}, "reason": {"leak"}, "token": {e.token}, "access_token": {e.token}}
	e.get(t, "/api/v1/search", withTok, e.token)
	secret := e.token[len(auth.TokenPrefix):]
	needles := []string{secret, secret[:20], secret[len(secret)-20:]}
	var scanned int
	err := filepath.WalkDir(e.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		scanned++
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				t.Errorf("%s contains the token", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if scanned == 0 {
		t.Fatal("nothing written to scan")
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "audit line written") || !strings.Contains(logs, "API request refused") {
		t.Fatalf("captured logs do not show the expected events: %s", logs)
	}
	for _, n := range needles {
		if strings.Contains(logs, n) {
			t.Error("logs contain the token")
		}
	}
	metrics, _ := testutil.GatherAndCount(e.reg)
	if metrics == 0 {
		t.Fatal("no metrics gathered")
	}
	mfs, _ := e.reg.Gather()
	for _, mf := range mfs {
		s := mf.String()
		for _, n := range append(needles, "alice", "INC-9", "203.0.113", "127.0.0.1") {
			if strings.Contains(s, n) {
				t.Errorf("metric %s contains %q", mf.GetName(), n)
			}
		}
	}
}
