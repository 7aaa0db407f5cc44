package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
)

// TestReadyzReportsHealth (issue 12 row 5): once ready, /readyz answers 503
// with the reason while the health hook reports an error (a failed or
// degraded store), and 200 again once it clears; /healthz (liveness) stays
// 200 throughout, since restarting is the daemon's own decision.
func TestReadyzReportsHealth(t *testing.T) {
	var health atomic.Pointer[error]
	srv, err := New(Options{Addr: "127.0.0.1:0", Health: func() error {
		if p := health.Load(); p != nil {
			return *p
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	defer srv.Shutdown(t.Context())
	base := "http://" + srv.Addr().String()
	get := func(path string) (int, map[string]string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]string
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	failed := errors.New("store failed: sync wal: input/output error")
	for _, c := range []struct {
		name   string
		ready  bool
		health error
		status int
		want   map[string]string
	}{
		{"starting", false, nil, 503, map[string]string{"status": "starting"}},
		{"ready", true, nil, 200, map[string]string{"status": "ready"}},
		{"failed", true, failed, 503, map[string]string{"status": "unavailable", "reason": failed.Error()}},
		{"recovered", true, nil, 200, map[string]string{"status": "ready"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv.SetReady(c.ready)
			if c.health != nil {
				health.Store(&c.health)
			} else {
				health.Store(nil)
			}
			status, body := get("/readyz")
			if status != c.status || body["status"] != c.want["status"] || body["reason"] != c.want["reason"] {
				t.Fatalf("/readyz = %d %v, want %d %v", status, body, c.status, c.want)
			}
			if status, _ := get("/healthz"); status != 200 {
				t.Fatalf("/healthz = %d", status)
			}
		})
	}
}
