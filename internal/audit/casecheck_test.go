package audit

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestCaseCheck: with a case check set, a refusal is answered with its
// status and message, written as a refused line, and the handler never
// runs; an allowed request runs as the check rewrote it, and the allowed
// line records the rewritten query and range (what actually ran).
func TestCaseCheck(t *testing.T) {
	e := newEnv(t)
	e.log.SetCaseCheck(func(r *http.Request, endpoint string) (*http.Request, *Refusal) {
		q := r.URL.Query()
		if q.Get(ParamCase) != "INC-OK" {
			return nil, &Refusal{Status: http.StatusForbidden, Message: "case " + q.Get(ParamCase) + " is not approved"}
		}
		q.Set("q", "domain:shop.example.nl "+q.Get("q"))
		q.Set("from", "2026-11-01T00:00:00Z")
		out := r.Clone(r.Context())
		u := *r.URL
		u.RawQuery = q.Encode()
		out.URL = &u
		return out, nil
	})
	resp, body := e.get(t, "/api/v1/count", url.Values{"case": {"INC-NO"}, "reason": {"leak"}, "q": {"ip:203.0.113.7"}}, e.token)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "case INC-NO is not approved") || e.handled != 0 {
		t.Fatalf("refused case: %d %s, handler ran %d times", resp.StatusCode, body, e.handled)
	}
	resp, body = e.get(t, "/api/v1/count", url.Values{"case": {"INC-OK"}, "reason": {"leak"}, "q": {"ip:203.0.113.7"}}, e.token)
	if resp.StatusCode != http.StatusOK || e.handled != 1 {
		t.Fatalf("allowed case: %d %s, handler ran %d times", resp.StatusCode, body, e.handled)
	}
	ls := e.lines(t)
	if len(ls) != 3 {
		t.Fatalf("%d lines, want refused, allowed, done", len(ls))
	}
	if l := ls[0]; l.Outcome != OutcomeRefused || l.Status != http.StatusForbidden || l.Error != "case INC-NO is not approved" || l.Case != "INC-NO" {
		t.Errorf("refused line: %+v", l)
	}
	if l := ls[1]; l.Outcome != OutcomeAllowed || l.Query != "domain:shop.example.nl ip:203.0.113.7" || l.From != "2026-11-01T00:00:00Z" {
		t.Errorf("allowed line does not record what ran: %+v", l)
	}
	e.log.SetCaseCheck(nil)
	if resp, _ := e.get(t, "/api/v1/count", url.Values{"case": {"INC-NO"}, "reason": {"leak"}}, e.token); resp.StatusCode != http.StatusOK {
		t.Errorf("without a check: %d", resp.StatusCode)
	}
}
