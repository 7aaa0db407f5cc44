//go:build linux

// Command rss measures the peak resident memory of the real daemon under HTTP
// ingest, against storage.head_max_bytes. It is the measurement behind
// docs/storage.md's memory figure (issue 12, row 4), not a CI test: it runs
// for minutes and its result depends on the machine. Linux only: it reads
// /proc and ties the daemon's life to its own with Pdeathsig.
//
//	go run ./scripts/rss -mode burst                 # 12 clients post one 60 MB NDJSON body each, at once
//	go run ./scripts/rss -mode sustained -for 5m     # 4 clients post 4 MB bodies back to back
//
// It builds ./cmd/retentiond (or runs -bin), generates the bodies with
// ./cmd/loggen, starts the daemon on a loopback port with a fresh data
// directory, posts with Go HTTP clients, samples VmRSS from /proc/<pid>/status
// every 50 ms and reads VmHWM (the kernel's peak) at the end.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	mode := flag.String("mode", "burst", "burst (each client posts one big body at once) or sustained (clients post bodies back to back)")
	bin := flag.String("bin", "", "retentiond binary to measure (default: go build ./cmd/retentiond)")
	clients := flag.Int("clients", 0, "concurrent clients (default 12 for burst, 4 for sustained)")
	bodyMB := flag.Int("body-mb", 0, "approximate body size in MB (default 60 for burst, 4 for sustained)")
	headMax := flag.Int64("head-max-mib", 256, "storage.head_max_bytes in MiB")
	dur := flag.Duration("for", 5*time.Minute, "duration of a sustained run")
	extra := flag.String("config", "", "extra YAML appended to the daemon's config (e.g. an ingest section)")
	flag.Parse()
	log.SetFlags(0)
	if *clients == 0 {
		*clients = map[string]int{"burst": 12, "sustained": 4}[*mode]
	}
	if *bodyMB == 0 {
		*bodyMB = map[string]int{"burst": 60, "sustained": 4}[*mode]
	}
	tmp, err := os.MkdirTemp("", "retentiond-rss")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	if *bin == "" {
		*bin = filepath.Join(tmp, "retentiond")
		run("go", "build", "-o", *bin, "./cmd/retentiond")
	}
	loggen := filepath.Join(tmp, "loggen")
	run("go", "build", "-o", loggen, "./cmd/loggen")

	// One body per client (different seeds), dated in the last days so the
	// daemon's ingest window accepts them; ~275 bytes per NDJSON line.
	start := time.Now().UTC().AddDate(0, 0, -3).Format("2006-01-02")
	records := *bodyMB * 1_000_000 / 275
	bodies := make([]string, *clients)
	for i := range bodies {
		bodies[i] = filepath.Join(tmp, fmt.Sprintf("body%d.ndjson", i))
		f, err := os.Create(bodies[i])
		if err != nil {
			log.Fatal(err)
		}
		cmd := exec.Command(loggen, "-n", strconv.Itoa(records), "-days", "3", "-start", start,
			"-seed", strconv.Itoa(i+1), "-format", "ndjson")
		cmd.Stdout, cmd.Stderr = f, os.Stderr
		if err := cmd.Run(); err != nil {
			log.Fatalf("loggen: %v", err)
		}
		f.Close()
	}
	st, _ := os.Stat(bodies[0])

	addr := freeAddr()
	cfg := fmt.Sprintf("data_dir: %s\nretention: 2y\nlisten:\n  http: %s\n  syslog_udp: \"\"\n  syslog_tcp: \"\"\nstorage:\n  head_max_bytes: %dMiB\nlog:\n  level: warn\n%s",
		filepath.Join(tmp, "data"), addr, *headMax, *extra)
	cfgPath := filepath.Join(tmp, "retentiond.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		log.Fatal(err)
	}
	daemon := exec.Command(*bin, "serve", "--config", cfgPath)
	daemon.Stderr = os.Stderr
	// The daemon dies with this tool, whatever way the tool ends.
	daemon.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := daemon.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() {
		daemon.Process.Signal(syscall.SIGTERM)
		daemon.Wait()
	}()
	waitReady(addr)
	base := status(daemon.Process.Pid)

	var peakRSS, peakAnon, peakHead atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		n := 0
		for {
			st := status(daemon.Process.Pid)
			if rss := st["VmRSS"]; rss > peakRSS.Load() {
				peakRSS.Store(rss)
			}
			if anon := st["RssAnon"]; anon > peakAnon.Load() {
				peakAnon.Store(anon)
			}
			if n%10 == 0 {
				if hb := gauge(addr, "retentiond_store_head_bytes"); hb > peakHead.Load() {
					peakHead.Store(hb)
				}
			}
			n++
			select {
			case <-stopSampling:
				return
			case <-t.C:
			}
		}
	}()

	var accepted, posts, retries atomic.Int64
	codes := struct {
		sync.Mutex
		m map[int]int
	}{m: map[int]int{}}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *clients}}
	post := func(path string) bool {
		f, err := os.Open(path)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		resp, err := client.Post("http://"+addr+"/api/v1/ingest", "application/x-ndjson", f)
		if err != nil {
			log.Printf("post: %v", err)
			return false
		}
		defer resp.Body.Close()
		var a struct {
			Accepted int64 `json:"accepted"`
		}
		b, _ := io.ReadAll(resp.Body)
		json.Unmarshal(b, &a)
		posts.Add(1)
		accepted.Add(a.Accepted)
		codes.Lock()
		codes.m[resp.StatusCode]++
		codes.Unlock()
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			retries.Add(1)
			return false
		}
		if resp.StatusCode != http.StatusOK {
			log.Printf("status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
		}
		return true
	}

	began := time.Now()
	var wg sync.WaitGroup
	switch *mode {
	case "burst":
		for i := range *clients {
			wg.Go(func() {
				// A shipper retries a refused batch until it is taken.
				for !post(bodies[i]) {
					time.Sleep(500 * time.Millisecond)
				}
			})
		}
	case "sustained":
		ctx, cancel := context.WithTimeout(context.Background(), *dur)
		defer cancel()
		for i := range *clients {
			wg.Go(func() {
				for ctx.Err() == nil {
					if !post(bodies[i]) {
						time.Sleep(200 * time.Millisecond)
					}
				}
			})
		}
	default:
		log.Fatalf("unknown -mode %q", *mode)
	}
	wg.Wait()
	elapsed := time.Since(began)
	close(stopSampling)
	<-sampled
	end := status(daemon.Process.Pid)
	bound := *headMax << 20
	hwm := end["VmHWM"]
	fmt.Printf("mode=%s clients=%d body=%.1fMB head_max_bytes=%dMiB duration=%s\n",
		*mode, *clients, float64(st.Size())/1e6, *headMax, elapsed.Round(time.Second))
	fmt.Printf("posts=%d accepted_records=%d (%.0f/s) refused(429/503)=%d statuses=%v\n",
		posts.Load(), accepted.Load(), float64(accepted.Load())/elapsed.Seconds(), retries.Load(), codes.m)
	fmt.Printf("peak retentiond_store_head_bytes (sampled every 0.5 s) = %s\n", mib(peakHead.Load()))
	fmt.Printf("RSS idle=%s peak_sampled=%s (anonymous %s, the rest is mapped segment files) VmHWM=%s  VmHWM/head_max=%.2f  target(1.5x+64MiB)=%s  within=%v\n",
		mib(base["VmRSS"]), mib(peakRSS.Load()), mib(peakAnon.Load()), mib(hwm), float64(hwm)/float64(bound),
		mib(bound*3/2+64<<20), hwm <= bound*3/2+64<<20)
}

func mib(b int64) string { return fmt.Sprintf("%.0fMiB", float64(b)/(1<<20)) }

// status returns the byte values of the Vm* and Rss* lines of /proc/pid/status.
func status(pid int) map[string]int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	defer f.Close()
	m := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !(strings.HasPrefix(k, "Vm") || strings.HasPrefix(k, "Rss")) {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil {
			m[k] = n << 10
		}
	}
	return m
}

// gauge reads one unlabelled metric from the daemon's /metrics.
func gauge(addr, name string) int64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return int64(f)
		}
	}
	return 0
}

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		log.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitReady(addr string) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	log.Fatal("daemon not ready after a minute")
}
