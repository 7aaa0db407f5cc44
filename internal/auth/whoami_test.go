package auth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWhoAmI(t *testing.T) {
	tt, cfg := makeTokens(t)
	a, err := New(Options{Tokens: cfg, FailuresPerMinute: 1000})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/whoami", a.WhoAmI())
	srv := httptest.NewServer(withPeer(mux))
	t.Cleanup(srv.Close)
	for _, c := range []struct {
		name, authz string
		status      int
		want        string
	}{
		{"ingest-only token", "Bearer " + tt.ingest, 200, `{"dev_mode":false,"name":"shipper1","roles":["ingest"]}`},
		{"two roles", "Bearer " + tt.multi, 200, `{"dev_mode":false,"name":"bob","roles":["admin","search"]}`},
		{"no token", "", 401, ""},
		{"bad token", "Bearer rtd_nope", 401, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := do(t, srv, "/whoami", c.authz, "")
			var v json.RawMessage
			json.NewDecoder(resp.Body).Decode(&v)
			if resp.StatusCode != c.status || (c.want != "" && string(v) != c.want) {
				t.Fatalf("%d %s, want %d %s", resp.StatusCode, v, c.status, c.want)
			}
			if strings.Contains(string(v), "rtd_") {
				t.Fatal("answer echoes a token")
			}
		})
	}
	dev, _ := New(Options{})
	mux2 := http.NewServeMux()
	mux2.Handle("/whoami", dev.WhoAmI())
	srv2 := httptest.NewServer(withPeer(mux2))
	t.Cleanup(srv2.Close)
	if r := do(t, srv2, "/whoami", "", ""); r.StatusCode != 200 {
		t.Fatalf("development mode, loopback: %d", r.StatusCode)
	}
	if r := do(t, srv2, "/whoami", "", "192.0.2.1"); r.StatusCode != 403 {
		t.Fatalf("development mode, remote: %d", r.StatusCode)
	}
}
