package audit

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/retentiond/retentiond/internal/auth"
)

// TestForwarded: a peer's request (another node asking for its data not
// yet in the bucket) is audited with an allowed line before it runs and a
// done line after, both naming the asking node (the token field) and the
// case it forwarded, without the case check, which belongs to the asking
// node's registry; one without case and reason is refused and never runs.
func TestForwarded(t *testing.T) {
	e := newEnv(t)
	e.log.SetCaseCheck(func(r *http.Request, endpoint string) (*http.Request, *Refusal) {
		return nil, &Refusal{Status: http.StatusForbidden, Message: "not in this node's registry"}
	})
	ran := 0
	h := Forwarded(e.log, "cluster/count", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ran++
		searchHandler.ServeHTTP(w, r)
	}))
	ask := func(q url.Values) int {
		r := httptest.NewRequest("POST", "/api/v1/cluster/count?"+q.Encode(), nil)
		r = r.WithContext(auth.WithPrincipal(r.Context(), auth.Principal{Name: auth.NodePrefix + "node-a"}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if code := ask(url.Values{"node": {"node-a"}, "q": {"ip:203.0.113.7"}}); code != http.StatusBadRequest || ran != 0 {
		t.Fatalf("without case: status %d, ran %d", code, ran)
	}
	if code := ask(url.Values{"node": {"node-a"}, "case": {"INC-7"}, "reason": {"leak"}, "q": {"ip:203.0.113.7"}}); code != http.StatusOK || ran != 1 {
		t.Fatalf("forwarded: status %d, ran %d", code, ran)
	}
	ls := e.lines(t)
	if len(ls) != 3 {
		t.Fatalf("%d lines, want refused, allowed, done", len(ls))
	}
	for _, l := range ls[1:] {
		if l.Endpoint != "cluster/count" || l.Token != "node:node-a" || l.Case != "INC-7" || l.Params != "node=node-a" {
			t.Errorf("line does not name the node and the case: %+v", l)
		}
	}
	if ls[1].Outcome != OutcomeAllowed || ls[2].Outcome != OutcomeDone || *ls[2].Count != 2 {
		t.Errorf("outcomes %s, %s", ls[1].Outcome, ls[2].Outcome)
	}
}
