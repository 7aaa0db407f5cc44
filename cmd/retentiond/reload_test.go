package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/auth"
)

// TestSighupReloadsTokens: `token create` tells the operator to add the
// entry and reload; SIGHUP must then apply the new token list and keep the
// daemon running, and log what changed (names only) and what was ignored
// because it needs a restart.
func TestSighupReloadsTokens(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir, freePort(t)) // development mode: no tokens
	exited := false
	defer func() {
		if !exited {
			d.stop(syscall.SIGTERM)
		}
	}()
	tok, sum, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	count := func(token string) (int, string) {
		t.Helper()
		q := url.Values{"q": {"ip:192.0.2.1"}, "case": {"RELOAD-1"}, "reason": {"reload test"}}
		req, _ := http.NewRequest("GET", "http://"+d.addr+"/api/v1/count?"+q.Encode(), nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("count: %v\n%s", err, d.logs())
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	if got, _ := count(""); got != 200 {
		t.Fatalf("development mode: %d", got)
	}
	cfgPath := filepath.Join(dir, "retentiond.yaml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf("auth:\n  tokens:\n    - {name: alice, sha256: %s, roles: [search]}\nsearch:\n  default_limit: 7\n", sum)
	if err := os.WriteFile(cfgPath, append(cfg, extra...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(d.logs(), "configuration reloaded") && time.Now().Before(deadline) {
		select {
		case err := <-d.done:
			exited = true
			t.Fatalf("daemon exited on SIGHUP: %v\n%s", err, d.logs())
		case <-time.After(20 * time.Millisecond):
		}
	}
	// The new token is accepted, and with tokens configured the case must
	// now be an approved case of the registry (search.require_case), which
	// RELOAD-1 is not: 403 from the case check, not 401 from auth.
	if got, body := count(tok); got != 403 || !strings.Contains(body, "not in the case registry") {
		t.Errorf("new token after SIGHUP: %d %s, want 403 (authenticated, unregistered case)\n%s", got, body, d.logs())
	}
	if got, _ := count(""); got != 401 {
		t.Errorf("no token after SIGHUP (tokens now exist): %d, want 401", got)
	}
	logs := d.logs()
	for _, want := range []string{"configuration reloaded", "alice", "search.default_limit"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	for _, secret := range []string{sum, tok[len(auth.TokenPrefix):]} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains a token or its hash")
		}
	}
	// A broken file changes nothing and does not stop the daemon.
	if err := os.WriteFile(cfgPath, append(cfg, "auth:\n  tokens: [{name: x}]\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	deadline = time.Now().Add(30 * time.Second)
	for !strings.Contains(d.logs(), "configuration not reloaded") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(d.logs(), "configuration not reloaded") {
		t.Errorf("a bad config on SIGHUP is not reported:\n%s", d.logs())
	}
	if got, body := count(tok); got != 403 || !strings.Contains(body, "not in the case registry") {
		t.Errorf("token after a refused reload: %d %s, want 403 from the case check (the old list is kept)", got, body)
	}
	exited = true
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGHUPs: %v\n%s", err, d.logs())
	}
}
