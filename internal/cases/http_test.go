package cases

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/retentiond/retentiond/internal/auth"
)

// TestAPI: the case API's roles and answers, as the CLI and the console
// use them.
func TestAPI(t *testing.T) {
	e := newEnv(t)
	tokens := map[string]string{}
	var cfg []auth.TokenConfig
	for name, role := range map[string]string{"alice": "admin", "bob": "admin", "ivan": "search"} {
		tok, sum, err := auth.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		tokens[name] = tok
		cfg = append(cfg, auth.TokenConfig{Name: name, SHA256: sum, Roles: []string{role}})
	}
	a, err := auth.New(auth.Options{Tokens: cfg, FailuresPerMinute: 1000})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.reg.Handler(a))
	defer srv.Close()
	call := func(who, method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tokens[who])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	open := `{"id":"INC-42","title":"leak","reason":"data for sale","from":"2026-11-01","to":"2026-12-01","scope":"domain:*.shop.example.nl"}`
	steps := []struct {
		who, method, path, body string
		want                    int
		contains                string
	}{
		{"ivan", "POST", "/api/v1/cases", open, 403, "lacks the required role"},
		{"alice", "POST", "/api/v1/cases", `{"id":"X","emergncy":true}`, 400, "unknown field"},
		{"alice", "POST", "/api/v1/cases", "", 400, "JSON body is required"},
		{"alice", "POST", "/api/v1/cases", open, 201, `"state": "pending"`},
		{"alice", "POST", "/api/v1/cases", open, 409, "already exists"},
		{"ivan", "GET", "/api/v1/cases?state=open", "", 200, `"searchable": false`},
		{"ivan", "GET", "/api/v1/cases?state=bogus", "", 400, "state must be"},
		{"alice", "POST", "/api/v1/cases/INC-42/approve", "", 403, "four-eyes"},
		{"bob", "POST", "/api/v1/cases/INC-42/approve", "", 200, `"approved_by": "bob"`},
		{"ivan", "GET", "/api/v1/cases/INC-42", "", 200, `"searchable": true`},
		{"ivan", "GET", "/api/v1/cases/NOPE", "", 404, "no case NOPE"},
		{"ivan", "GET", "/api/v1/cases/INC-42/audit", "", 403, "lacks the required role"},
		{"alice", "GET", "/api/v1/cases/INC-42/audit", "", 200, `"outcome": "approved"`},
		{"ivan", "POST", "/api/v1/cases/INC-42/close", "", 403, "lacks the required role"},
		{"bob", "POST", "/api/v1/cases/INC-42/close", `{"reason":"done"}`, 200, `"state": "closed"`},
		{"ivan", "GET", "/api/v1/cases?state=open", "", 200, `"cases": []`},
		{"ivan", "GET", "/api/v1/cases/INC-42/nothing", "", 404, "no such endpoint"},
	}
	for _, s := range steps {
		got, body := call(s.who, s.method, s.path, s.body)
		if got != s.want || !strings.Contains(body, s.contains) {
			t.Fatalf("%s %s %s as %s: %d %s, want %d containing %q", s.method, s.path, s.body, s.who, got, body, s.want, s.contains)
		}
	}
	_, body := call("alice", "GET", "/api/v1/cases/INC-42/audit", "")
	var trail struct {
		Lines []struct {
			Outcome string `json:"outcome"`
			Token   string `json:"token"`
		} `json:"lines"`
	}
	if err := json.Unmarshal([]byte(body), &trail); err != nil {
		t.Fatal(err)
	}
	var story []string
	for _, l := range trail.Lines {
		story = append(story, l.Outcome+" by "+l.Token)
	}
	if got, want := strings.Join(story, ", "), "opened by alice, refused by alice, refused by alice, approved by bob, closed by bob"; got != want {
		t.Errorf("the story of INC-42: %s, want %s", got, want)
	}
}
