package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/retentiond/retentiond/internal/auth"
)

// TestCaseWorkflow is issue 17's "must show", against the real daemon with
// three tokens: two admins (alice, bob) and an investigator (ivan). A search
// needs a case that a second admin approved; it stays inside the case's
// range and scope; closing ends it; an emergency self-approval works and is
// visible in the metrics, the log and the audit log; the audit chain
// verifies and tells each case's story.
func TestCaseWorkflow(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	type tok struct{ name, token, sum, roles string }
	toks := map[string]*tok{"alice": {roles: `["admin"]`}, "bob": {roles: `["admin"]`}, "ivan": {roles: `["search"]`}}
	var list []string
	for _, name := range []string{"alice", "bob", "ivan"} {
		tk, sum, err := auth.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		toks[name].name, toks[name].token, toks[name].sum = name, tk, sum
		list = append(list, fmt.Sprintf(`{"name":%q,"sha256":%q,"roles":%s}`, name, sum, toks[name].roles))
	}
	env := []string{"RETENTIOND_AUTH_TOKENS=[" + strings.Join(list, ",") + "]", "RETENTIOND_INGEST_ALLOW=127.0.0.1/32"}
	d := startDaemon(t, dir, addr, env...)
	running := true
	defer func() {
		if running {
			d.stop(syscall.SIGTERM)
		}
	}()
	var lines []string
	for i := 0; i < 30; i++ {
		lines = append(lines, line(i)) // 2026-11-01T00:00:00Z + i s, shop{i%5}.example.nl
	}
	if n, err := ingestBatch(addr, lines); err != nil || n != 30 {
		t.Fatalf("ingest: %d, %v", n, err)
	}

	// count runs a count as ivan and returns the status and the answer.
	count := func(caseID string, params ...string) (int, string) {
		t.Helper()
		q := url.Values{"case": {caseID}, "reason": {"issue 17 test"}, "q": {"ua:e2e"}}
		for i := 0; i+1 < len(params); i += 2 {
			q.Set(params[i], params[i+1])
		}
		req, _ := http.NewRequest("GET", "http://"+addr+"/api/v1/count?"+q.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+toks["ivan"].token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	expect := func(step string, status int, body string, wantStatus int, wantBody string) {
		t.Helper()
		if status != wantStatus || !strings.Contains(body, wantBody) {
			t.Fatalf("%s: %d %s, want %d containing %q", step, status, body, wantStatus, wantBody)
		}
	}
	// cli runs `retentiond case ...` as name.
	cli := func(name string, args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command(binary(t), append([]string{"case"}, args...)...)
		cmd.Env = append(os.Environ(), "RETENTIOND_SERVER=http://"+addr, "RETENTIOND_TOKEN="+toks[name].token)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	mustCLI := func(name string, args ...string) string {
		t.Helper()
		out, err := cli(name, args...)
		if err != nil {
			t.Fatalf("case %v as %s: %v\n%s", args, name, err, out)
		}
		return out
	}

	s, b := count("INC-1")
	expect("unopened case", s, b, 403, "not in the case registry")

	mustCLI("alice", "open", "--id", "INC-1", "--title", "Leak at shop1", "--reason", "customer data offered for sale",
		"--from", "2026-11-01", "--to", "2026-11-02", "--scope", "domain:shop1.example.nl", "--expires", "30d")
	s, b = count("INC-1")
	expect("opened, not approved", s, b, 403, "not approved")

	if out, err := cli("ivan", "open", "--id", "INC-9", "--title", "t", "--reason", "r", "--from", "-2d", "--to", "-1d"); err == nil {
		t.Fatalf("an investigator opened a case:\n%s", out)
	}
	out, err := cli("alice", "approve", "INC-1")
	if err == nil || !strings.Contains(out, "four-eyes") {
		t.Fatalf("approval by the opener: %v\n%s", err, out)
	}
	s, b = count("INC-1")
	expect("approved by the opener", s, b, 403, "not approved")

	mustCLI("bob", "approve", "INC-1")
	s, b = count("INC-1")
	expect("approved by the other admin, case's own range", s, b, 200, `"count":6`) // shop1 = 6 of 30
	s, b = count("INC-1", "from", "2026-11-01T00:00:10Z", "to", "2026-11-01T00:00:20Z")
	expect("inside the range", s, b, 200, `"count":2`) // seconds 11 and 16
	s, b = count("INC-1", "q", "domain:shop2.example.nl")
	expect("scope AND query", s, b, 200, `"count":0`)
	s, b = count("INC-1", "from", "2026-10-31")
	expect("from before the case", s, b, 403, "before the start of case INC-1")
	s, b = count("INC-1", "to", "2026-11-03")
	expect("to after the case", s, b, 403, "after the end of case INC-1")

	// The console's question: which open cases may ivan search under?
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/v1/cases?state=open", nil)
	req.Header.Set("Authorization", "Bearer "+toks["ivan"].token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var listed struct {
		Cases []struct {
			ID         string `json:"id"`
			State      string `json:"state"`
			Searchable bool   `json:"searchable"`
		} `json:"cases"`
	}
	err = json.NewDecoder(resp.Body).Decode(&listed)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(listed.Cases) != 1 || listed.Cases[0].ID != "INC-1" || !listed.Cases[0].Searchable {
		t.Fatalf("open cases as the investigator: %d %v %+v", resp.StatusCode, err, listed)
	}

	mustCLI("bob", "close", "INC-1", "--reason", "leak traced")
	s, b = count("INC-1")
	expect("after close", s, b, 403, "closed")

	// Break-glass: alice alone, with a justification.
	mustCLI("alice", "open", "--id", "INC-2", "--title", "3am", "--reason", "active exfiltration", "--from", "2026-11-01", "--to", "2026-11-02")
	if out, err := cli("alice", "approve", "INC-2", "--emergency"); err == nil {
		t.Fatalf("emergency approval without a justification:\n%s", out)
	}
	out = mustCLI("alice", "approve", "INC-2", "--emergency", "--justification", "no second admin reachable at 3 a.m.")
	if !strings.Contains(out, "EMERGENCY") {
		t.Errorf("emergency approval output:\n%s", out)
	}
	s, b = count("INC-2")
	expect("emergency self-approval", s, b, 200, `"count":30`)
	if v := metricValue(t, addr, "retentiond_cases_emergency_approvals_total"); v != 1 {
		t.Errorf("retentiond_cases_emergency_approvals_total = %v, want 1", v)
	}
	for sample, want := range map[string]float64{
		`retentiond_cases_refused_searches_total{reason="unknown_case"}`:  1,
		`retentiond_cases_refused_searches_total{reason="not_approved"}`:  2,
		`retentiond_cases_refused_searches_total{reason="outside_range"}`: 2,
		`retentiond_cases_refused_searches_total{reason="closed"}`:        1,
		`retentiond_cases_searches_total{state="approved"}`:               6,
		`retentiond_cases_open{state="approved"}`:                         1,
	} {
		if v := metricValue(t, addr, sample); v != want {
			t.Errorf("%s = %v, want %v", sample, v, want)
		}
	}
	if logs := d.logs(); !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "emergency (break-glass)") {
		t.Errorf("no warning for the emergency approval in the log:\n%s", logs)
	}

	// The story of INC-1, from the audit log, through the API.
	out = mustCLI("alice", "show", "INC-1")
	for _, want := range []string{"case opened", "case refused", "four-eyes", "case approved", "count done", "count refused", "case closed", "leak traced"} {
		if !strings.Contains(out, want) {
			t.Errorf("case show INC-1 lacks %q:\n%s", want, out)
		}
	}
	// The registry survives a restart.
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop: %v\n%s", err, d.logs())
	}
	d = startDaemon(t, dir, addr, env...)
	s, b = count("INC-1")
	expect("closed after a restart", s, b, 403, "closed")
	s, b = count("INC-2")
	expect("approved after a restart", s, b, 200, `"count":30`)
	running = false
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop: %v\n%s", err, d.logs())
	}

	data := filepath.Join(dir, "data")
	vout, err := exec.Command(binary(t), "audit", "verify", "--data-dir", data).CombinedOutput()
	if err != nil || !strings.Contains(string(vout), "ok:") {
		t.Fatalf("audit verify: %v\n%s", err, vout)
	}
	sout, err := exec.Command(binary(t), "audit", "show", "--data-dir", data, "--case", "INC-2").CombinedOutput()
	if err != nil {
		t.Fatalf("audit show: %v\n%s", err, sout)
	}
	for _, want := range []string{"case opened", "case emergency_approved", "no second admin reachable", "done"} {
		if !strings.Contains(string(sout), want) {
			t.Errorf("audit show --case INC-2 lacks %q:\n%s", want, sout)
		}
	}
	t.Logf("audit verify: %s", strings.TrimSpace(string(vout)))
}
