package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestDiskFull fills a small tmpfs under the real daemon while four clients
// ingest, then frees space and checks that every acknowledged record is
// stored exactly once, that /readyz said 503 while records could not be
// stored, and that the daemon recovered (by itself, or by exiting non-zero
// for systemd to restart it and replay its WAL). It mounts a tmpfs, so it
// runs only as root with RTD_TEST_DISKFULL=1.
func TestDiskFull(t *testing.T) {
	if os.Getenv("RTD_TEST_DISKFULL") != "1" {
		t.Skip("mounts a tmpfs: set RTD_TEST_DISKFULL=1 (as root) to run")
	}
	if os.Geteuid() != 0 {
		t.Fatal("RTD_TEST_DISKFULL=1 needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	mount := func(opts string) {
		t.Helper()
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", mnt).CombinedOutput(); err != nil {
			t.Fatalf("mount %s: %v %s", opts, err, out)
		}
	}
	mount("size=24m")
	defer exec.Command("umount", "-l", mnt).Run()

	addr := freePort(t)
	d := startDaemon(t, mnt, addr, "RETENTIOND_STORAGE_HEAD_MAX_BYTES=8MiB")
	var mu sync.Mutex
	acked := map[int]bool{}
	var next atomic.Int64
	var refused atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pad := make([]byte, 600)
			for ctx.Err() == nil {
				base := int(next.Add(100)) - 100
				lines := make([]string, 0, 100)
				for i := 0; i < 100; i++ {
					rand.Read(pad) // incompressible paths fill the disk quickly
					l := msLine(base + i)
					l = strings.Replace(l, fmt.Sprintf(`"/seq/%d"`, base+i), fmt.Sprintf(`"/seq/%d/%s"`, base+i, hex.EncodeToString(pad)), 1)
					lines = append(lines, l)
				}
				n, err := ingestBatch(addr, lines)
				if err != nil {
					refused.Add(1)
					time.Sleep(50 * time.Millisecond)
					continue
				}
				if n != len(lines) {
					t.Errorf("accepted %d of %d", n, len(lines))
					return
				}
				mu.Lock()
				for i := range lines {
					acked[base+i] = true
				}
				mu.Unlock()
			}
		}()
	}
	// Watch /readyz until it reports the disk problem, or the daemon exits.
	var reason string
	exited := false
watch:
	for ctx.Err() == nil {
		select {
		case <-d.done:
			exited = true
			break watch
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && reason == "" {
			reason = string(b)
			t.Logf("/readyz while the disk is full: 503 %s", b)
		}
		if reason != "" && refused.Load() > 0 {
			break
		}
	}
	if reason == "" {
		t.Fatalf("/readyz never answered 503 while the disk filled (refused batches: %d)\n%s", refused.Load(), d.logs())
	}
	if refused.Load() == 0 {
		t.Fatal("no batch was refused: the disk never filled")
	}
	// Free space: the tmpfs grows, as when an operator deletes other files.
	t0 := time.Now()
	mount("remount,size=512m")
	time.Sleep(2 * time.Second)
	cancel()
	wg.Wait()
	t.Logf("clients stopped %s after space was freed", time.Since(t0).Round(time.Millisecond))
	// The daemon either recovers by itself (a failed flush is retried) or,
	// after a failed WAL write, exits non-zero for systemd to restart it.
	for end := time.Now().Add(20 * time.Second); !exited && time.Now().Before(end); {
		select {
		case err := <-d.done:
			exited = true
			t.Logf("the daemon exited after the failure: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
	}
	if exited {
		// What systemd's Restart=on-failure does: start it again; the WAL replays.
		d = startDaemon(t, mnt, addr, "RETENTIOND_STORAGE_HEAD_MAX_BYTES=8MiB")
	}
	defer d.stop(syscall.SIGTERM)
	// Ready again, by itself or after the restart.
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready 60s after space was freed\n%s", d.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("ready %s after space was freed", time.Since(t0).Round(time.Millisecond))
	seen := searchAll(t, addr)
	for s := range acked {
		if seen[s] != 1 {
			t.Fatalf("acknowledged record %d found %d times after the disk filled", s, seen[s])
		}
	}
	for s, n := range seen {
		if n != 1 {
			t.Fatalf("record %d stored %d times", s, n)
		}
	}
	t.Logf("disk full: %d acknowledged records all present exactly once (%d stored, %d batches refused, restarted: %v)",
		len(acked), len(seen), refused.Load(), exited)
}
