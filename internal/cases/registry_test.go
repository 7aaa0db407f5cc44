package cases

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/retentiond/retentiond/internal/audit"
	"github.com/retentiond/retentiond/internal/fsutil"
	"github.com/retentiond/retentiond/internal/testkit"
)

type env struct {
	reg   *Registry
	log   *audit.Log
	clock *testkit.Clock
	dir   string
	dev   bool
	inj   *fsutil.Injector
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), clock: testkit.NewClock(time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)), inj: &fsutil.Injector{}}
	var err error
	e.log, err = audit.Open(filepath.Join(e.dir, "audit"), audit.Options{Now: e.clock.Now, FS: e.inj.FS()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.log.Close() })
	e.reopen(t)
	return e
}

func (e *env) reopen(t *testing.T) {
	t.Helper()
	r, err := Open(Options{Dir: filepath.Join(e.dir, "cases"), Log: e.log, Now: e.clock.Now, FS: e.inj.FS(),
		DefaultExpires: 30 * 24 * time.Hour, MaxExpires: 90 * 24 * time.Hour, RequireCase: true,
		DevMode: func() bool { return e.dev }, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	e.reg = r
}

var alice, bob = Actor{Name: "alice"}, Actor{Name: "bob"}

func inc(id string) OpenRequest {
	return OpenRequest{ID: id, Title: "leak", Reason: "customer data offered for sale", From: "2026-11-01", To: "2026-12-01",
		Scope: "domain:*.shop.example.nl"}
}

func status(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestApprovalRules(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"A", "B", "C"} {
		if _, err := e.reg.Open(alice, inc(id)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.reg.Open(Actor{}, inc("D")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		who           Actor
		id            string
		emergency     bool
		justification string
		want          int
	}{
		{"the opener alone", alice, "A", false, "", http.StatusForbidden},
		{"the development-mode user approving a development-mode case", Actor{}, "D", false, "", http.StatusForbidden},
		{"emergency by another admin", bob, "A", true, "x", http.StatusBadRequest},
		{"emergency without justification", alice, "A", true, " ", http.StatusBadRequest},
		{"unknown case", bob, "Z", false, "", http.StatusNotFound},
		{"bad id", bob, "../x", false, "", http.StatusBadRequest},
		{"second admin", bob, "A", false, "", 0},
		{"approved twice", bob, "A", false, "", http.StatusConflict},
		{"emergency by the opener", alice, "B", true, "nobody else awake", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.reg.Approve(tt.who, tt.id, tt.emergency, tt.justification)
			if got := status(err); got != tt.want {
				t.Fatalf("status %d (%v), want %d", got, err, tt.want)
			}
		})
	}
	if n := testutil.ToFloat64(e.reg.metrics.emergency); n != 1 {
		t.Errorf("emergency approvals = %v, want 1", n)
	}
	if _, err := e.reg.Close(bob, "C", "not needed"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Approve(bob, "C", false, ""); status(err) != http.StatusConflict {
		t.Errorf("approving a closed case: %v", err)
	}
	if _, err := e.reg.Open(bob, inc("C")); status(err) != http.StatusConflict {
		t.Errorf("reusing the id of a closed case: %v", err)
	}
	if g := testutil.ToFloat64(e.reg.metrics.open.WithLabelValues("approved")); g != 2 {
		t.Errorf("open approved cases = %v, want 2", g)
	}
}

func TestOpenValidation(t *testing.T) {
	e := newEnv(t)
	mod := func(f func(*OpenRequest)) OpenRequest { o := inc("V"); f(&o); return o }
	tests := []struct {
		name string
		req  OpenRequest
	}{
		{"no title", mod(func(o *OpenRequest) { o.Title = " " })},
		{"no reason", mod(func(o *OpenRequest) { o.Reason = "" })},
		{"bidi in reason", mod(func(o *OpenRequest) { o.Reason = "ok\u202eevil" })},
		{"no range", mod(func(o *OpenRequest) { o.From = "" })},
		{"empty range", mod(func(o *OpenRequest) { o.To = o.From })},
		{"bad time", mod(func(o *OpenRequest) { o.To = "next tuesday" })},
		{"bad scope", mod(func(o *OpenRequest) { o.Scope = "colour:red" })},
		{"expiry too long", mod(func(o *OpenRequest) { o.Expires = "91d" })},
		{"bad expiry", mod(func(o *OpenRequest) { o.Expires = "soon" })},
		{"bad id", mod(func(o *OpenRequest) { o.ID = "INC 42" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := e.reg.Open(alice, tt.req); status(err) != http.StatusBadRequest {
				t.Fatalf("got %v, want 400", err)
			}
		})
	}
	c, err := e.reg.Open(alice, mod(func(o *OpenRequest) { o.Expires = "72h"; o.From = "-7d"; o.To = "-1h" }))
	if err != nil {
		t.Fatal(err)
	}
	if want := e.clock.Now().Add(72 * time.Hour); !c.ExpiresAt.Equal(want) || !c.To.Equal(e.clock.Now().Add(-time.Hour)) {
		t.Errorf("expires %v to %v, want %v and an hour ago", c.ExpiresAt, c.To, want)
	}
}

// check runs the registry's search check on a request with params.
func (e *env) check(params ...string) (*http.Request, *audit.Refusal) {
	q := url.Values{}
	for i := 0; i+1 < len(params); i += 2 {
		q.Set(params[i], params[i+1])
	}
	return e.reg.Check(httptest.NewRequest("GET", "/api/v1/count?"+q.Encode(), nil), "count")
}

func TestCheck(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"P", "A", "C", "X"} {
		if _, err := e.reg.Open(alice, inc(id)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"A", "C"} {
		if _, err := e.reg.Approve(bob, id, false, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.reg.Close(bob, "C", ""); err != nil {
		t.Fatal(err)
	}
	o := inc("E")
	o.Expires = "1h"
	if _, err := e.reg.Open(alice, o); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Approve(bob, "E", false, ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(time.Hour)

	tests := []struct {
		name       string
		dev        bool
		params     []string
		wantStatus int    // 0: allowed
		want       string // refusal text, or the q/from/to passed on
	}{
		{"unknown case", false, []string{"case", "NOPE"}, 403, "not in the case registry"},
		{"unknown case in development mode is free text", true, []string{"case", "NOPE", "q", "ip:192.0.2.1"}, 0, "q=ip:192.0.2.1"},
		{"pending", false, []string{"case", "P"}, 403, "not approved"},
		{"pending in development mode too", true, []string{"case", "P"}, 403, "not approved"},
		{"closed", false, []string{"case", "C"}, 403, "closed"},
		{"expired", false, []string{"case", "E"}, 403, "expired"},
		{"approved: the case's range and scope", false, []string{"case", "A"}, 0,
			"q=domain:*.shop.example.nl from=2026-11-01T00:00:00Z to=2026-12-01T00:00:00Z"},
		{"approved: scope AND query", false, []string{"case", "A", "q", `ua:"a b" -path:/x`, "from", "2026-11-10"}, 0,
			`q=domain:*.shop.example.nl ua:"a b" -path:/x from=2026-11-10T00:00:00Z to=2026-12-01T00:00:00Z`},
		{"from before the case", false, []string{"case", "A", "from", "2026-10-31T23:59:59Z"}, 403, "before the start"},
		{"to after the case", false, []string{"case", "A", "to", "2026-12-01T00:00:00.001Z"}, 403, "after the end"},
		{"relative from reaching before the case", false, []string{"case", "A", "from", "-90d"}, 403, "before the start"},
		{"bad time", false, []string{"case", "A", "to", "later"}, 400, "to:"},
		{"bad query", false, []string{"case", "A", "q", "colour:red"}, 400, "colour:red"},
		{"unterminated quote cannot swallow the scope", false, []string{"case", "A", "q", `ua:"x`}, 400, "unterminated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.dev = tt.dev
			defer func() { e.dev = false }()
			next, ref := e.check(tt.params...)
			if tt.wantStatus != 0 {
				if ref == nil || ref.Status != tt.wantStatus || !strings.Contains(ref.Message, tt.want) {
					t.Fatalf("got %+v, want %d containing %q", ref, tt.wantStatus, tt.want)
				}
				return
			}
			if ref != nil {
				t.Fatalf("refused: %+v", ref)
			}
			q := next.URL.Query()
			got := "q=" + q.Get("q")
			if q.Has("from") {
				got += " from=" + q.Get("from") + " to=" + q.Get("to")
			}
			if got != tt.want {
				t.Fatalf("passed on %s, want %s", got, tt.want)
			}
		})
	}
	if got := testutil.ToFloat64(e.reg.metrics.refused.WithLabelValues(RefusedOutside)); got != 3 {
		t.Errorf("outside_range refusals = %v, want 3", got)
	}
}

// TestEventsAuditedFirst: every event is a line of the audit chain, and a
// change whose audit line cannot be written does not happen.
func TestEventsAuditedFirst(t *testing.T) {
	e := newEnv(t)
	if _, err := e.reg.Open(alice, inc("A")); err != nil {
		t.Fatal(err)
	}
	e.inj.Add(fsutil.Rule{Op: fsutil.OpSync, Path: "audit-", Err: syscall.EIO})
	if _, err := e.reg.Approve(bob, "A", false, ""); status(err) != http.StatusServiceUnavailable {
		t.Fatalf("approval with a failing audit log: %v, want 503", err)
	}
	if c, _ := e.reg.Get("A"); c.State != StatePending {
		t.Fatalf("state %s after an unaudited approval, want pending", c.State)
	}
	if _, ref := e.check("case", "A"); ref == nil {
		t.Fatal("a search ran under a case whose approval was never audited")
	}
}

// TestRegistryFileFailure: an audit line is written but the registry file
// cannot be: the change does not take effect and the caller hears so.
func TestRegistryFileFailure(t *testing.T) {
	e := newEnv(t)
	if _, err := e.reg.Open(alice, inc("A")); err != nil {
		t.Fatal(err)
	}
	e.inj.Add(fsutil.Rule{Op: fsutil.OpRename, Path: "cases", Err: syscall.ENOSPC})
	_, err := e.reg.Approve(bob, "A", false, "")
	if status(err) != http.StatusServiceUnavailable || !strings.Contains(err.Error(), "did not take effect") {
		t.Fatalf("approval with a failing registry file: %v", err)
	}
	e.inj.Clear()
	if c, _ := e.reg.Get("A"); c.State != StatePending {
		t.Fatalf("state %s, want pending", c.State)
	}
	e.reopen(t)
	if c, _ := e.reg.Get("A"); c.State != StatePending {
		t.Fatalf("state %s after reopen, want pending", c.State)
	}
}

// TestDurableWithoutAuditFiles: the registry's state survives a restart
// from its own file, even when audit retention purged every audit file
// that recorded how the case got there.
func TestDurableWithoutAuditFiles(t *testing.T) {
	e := newEnv(t)
	if _, err := e.reg.Open(alice, inc("A")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Approve(bob, "A", false, ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(48 * time.Hour)
	if n, err := e.log.Purge(t.Context(), e.clock.Now().Add(-24*time.Hour)); err != nil || n != 1 {
		t.Fatalf("audit purge: %d, %v", n, err)
	}
	e.reopen(t)
	c, ok := e.reg.Get("A")
	if !ok || c.State != StateApproved || len(c.Events) != 2 || c.ApprovedBy != "bob" {
		t.Fatalf("after the audit purge and a restart: %+v", c)
	}
	if _, ref := e.check("case", "A"); ref != nil {
		t.Fatalf("refused: %+v", ref)
	}
	if res, err := audit.Verify(filepath.Join(e.dir, "audit")); err != nil || res.FirstBad != nil {
		t.Fatalf("verify: %v %v", err, res.FirstBad)
	}
}

// TestExpiry: an expiry is recorded in the audit log by the tick, and the
// case is refused from the moment it passes.
func TestExpiry(t *testing.T) {
	e := newEnv(t)
	o := inc("A")
	o.Expires = "2h"
	if _, err := e.reg.Open(alice, o); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Approve(bob, "A", false, ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(2 * time.Hour)
	e.reg.Tick()
	c, _ := e.reg.Get("A")
	if c.State != StateExpired || c.EndedAt == nil || len(c.Events) != 3 || c.Events[2].Outcome != audit.OutcomeExpired {
		t.Fatalf("after the expiry: %+v", c)
	}
	lines, err := audit.CaseLines(filepath.Join(e.dir, "audit"), "A")
	if err != nil || len(lines) != 3 || !strings.Contains(string(lines[2]), `"outcome":"expired"`) {
		t.Fatalf("audit lines of A: %v %q", err, lines)
	}
}

func TestPurge(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"OLD", "OPEN", "NEW"} {
		if _, err := e.reg.Open(alice, inc(id)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.reg.Close(bob, "OLD", ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(10 * 24 * time.Hour)
	if _, err := e.reg.Close(bob, "NEW", ""); err != nil {
		t.Fatal(err)
	}
	n, err := e.reg.Purge(t.Context(), e.clock.Now().Add(-24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	e.reopen(t)
	var ids []string
	for _, c := range e.reg.List() {
		ids = append(ids, c.ID)
	}
	if strings.Join(ids, ",") != "NEW,OPEN" {
		t.Fatalf("cases after the purge: %v", ids)
	}
}

func TestCorruptRegistryFile(t *testing.T) {
	e := newEnv(t)
	if _, err := e.reg.Open(alice, inc("A")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(e.dir, "cases", fileName)
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Options{Dir: filepath.Dir(path), Log: e.log, DefaultExpires: time.Hour, MaxExpires: time.Hour})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("open of a torn registry file: %v, want an error naming %s", err, path)
	}
}
