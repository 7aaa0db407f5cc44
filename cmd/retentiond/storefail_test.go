package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/config"
	"github.com/retentiond/retentiond/internal/fsutil"
	"github.com/retentiond/retentiond/internal/store"
)

// TestServeExitsWhenStoreFails (issue 12 row 5): an fsync error on the WAL
// makes ingest answer 503, /readyz 503 with the reason, the failed gauge 1,
// and the serve command return an error (exit status 1) shortly after, so
// that systemd restarts it; the restart replays exactly the acknowledged
// records.
func TestServeExitsWhenStoreFails(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Listen.HTTP = freePort(t)
	cfg.Listen.SyslogUDP, cfg.Listen.SyslogTCP = "", ""
	logf, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	var in fsutil.Injector
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runDaemonWith(ctx, cfg, logf, daemonHooks{fs: in.FS(), failedExitDelay: time.Second}) }()
	base := "http://" + cfg.Listen.HTTP
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if status, _ := get("/readyz"); status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("daemon not ready after 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := ingestBatch(cfg.Listen.HTTP, []string{line(1)}); err != nil {
		t.Fatalf("ingest before the fault: %v", err)
	}
	in.Add(fsutil.Rule{Op: fsutil.OpSync, Path: string(filepath.Separator) + "wal" + string(filepath.Separator), Err: syscall.EIO})
	if _, err := ingestBatch(cfg.Listen.HTTP, []string{line(2)}); err == nil || !strings.Contains(err.Error(), "status 503") {
		t.Fatalf("ingest with a failing fsync: %v, want 503", err)
	}
	if status, body := get("/readyz"); status != 503 || !strings.Contains(body, "store failed") {
		t.Fatalf("/readyz after the failure = %d %s, want 503 naming the failed store", status, body)
	}
	if _, body := get("/metrics"); !strings.Contains(body, "\nretentiond_store_failed 1\n") {
		t.Fatal("/metrics does not say retentiond_store_failed 1")
	}
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, store.ErrFailed) {
			t.Fatalf("serve returned %v, want an error wrapping store.ErrFailed (exit status 1)", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not exit after the store failed")
	}
	// The restart: the WAL replays the acknowledged record and not the one
	// answered with 503.
	st, err := store.Open(cfg.DataDir, store.Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer st.Close()
	var n int64
	for _, d := range st.Days() {
		n += d.Records
	}
	if n != 1 {
		t.Fatalf("%d records after the restart, want the 1 acknowledged", n)
	}
}
