package audit

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
)

// TestSeqIsTheAllowedLine: a guarded handler learns the sequence number of
// its own allowed line (an evidence bundle cites it).
func TestSeqIsTheAllowedLine(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var got []int64
	h := RequireCase(l, "evidence", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := Seq(r.Context())
		if !ok {
			t.Error("no seq in a guarded request")
		}
		got = append(got, s)
	}))
	for i := 0; i < 2; i++ {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/?case=C&reason=r", nil))
	}
	lines, err := CaseSearches(dir, "C")
	if err != nil {
		t.Fatal(err)
	}
	var allowed []int64
	for _, v := range lines {
		if v.Outcome == OutcomeAllowed {
			allowed = append(allowed, v.Seq)
		}
	}
	if len(got) != 2 || len(allowed) != 2 || got[0] != allowed[0] || got[1] != allowed[1] {
		t.Fatalf("handler saw seqs %v, allowed lines are %v", got, allowed)
	}
	if _, ok := Seq(httptest.NewRequest("GET", "/", nil).Context()); ok {
		t.Fatal("seq outside a guarded request")
	}
}

func TestCaseAndAdminViews(t *testing.T) {
	e := newEnv(t)
	for _, c := range []string{"INC-1", "INC-2", "INC-1"} {
		e.get(t, "/api/v1/search", url.Values{"q": {"ip:203.0.113.7"}, "case": {c}, "reason": {"r"}}, e.token)
	}
	e.get(t, "/api/v1/search", url.Values{"q": {"x"}, "case": {"INC-1"}}, e.token) // refused: no reason
	caseView := func() []LineView {
		rec := httptest.NewRecorder()
		e.log.CaseHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/?case=INC-1", nil))
		var v struct{ Lines []LineView }
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &v) != nil {
			t.Fatalf("case view %d %s", rec.Code, rec.Body)
		}
		return v.Lines
	}
	lines := caseView()
	// Two searches (allowed + done each) and one refusal, all of INC-1.
	if len(lines) != 5 || lines[4].Outcome != OutcomeRefused || lines[1].Outcome != OutcomeDone || *lines[1].Count != 2 || lines[1].Ref != lines[0].Seq {
		t.Fatalf("case lines %+v", lines)
	}
	for _, l := range lines {
		if l.Case != "INC-1" || (l.Outcome != OutcomeRefused && l.Token != "alice") {
			t.Fatalf("line of another case or caller: %+v", l)
		}
	}
	rec := httptest.NewRecorder()
	e.log.CaseHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 400 {
		t.Fatalf("case view without case: %d", rec.Code)
	}

	admin := func(q string) (int, map[string]any, []LineView) {
		rec := httptest.NewRecorder()
		e.log.AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/"+q, nil))
		var v struct {
			Verify map[string]any
			Lines  []LineView
		}
		json.Unmarshal(rec.Body.Bytes(), &v)
		return rec.Code, v.Verify, v.Lines
	}
	code, ver, tail := admin("?limit=3")
	if code != 200 || ver["ok"] != true || ver["lines_verified"].(float64) != 7 || len(tail) != 3 || tail[2].Seq != 7 {
		t.Fatalf("admin view: %d %v %+v", code, ver, tail)
	}
	if code, _, _ := admin("?limit=0"); code != 400 {
		t.Fatalf("limit=0: %d", code)
	}
	// An edited line: the admin view says where the chain breaks.
	files, _ := listFiles(e.log.Dir())
	p := filepath.Join(e.log.Dir(), files[0])
	b, _ := os.ReadFile(p)
	os.WriteFile(p, []byte(string(b[:40])+"X"+string(b[41:])), 0o600)
	if _, ver, _ := admin(""); ver["ok"] != false || ver["first_bad"] == nil {
		t.Fatalf("edited log verified: %v", ver)
	}
}
