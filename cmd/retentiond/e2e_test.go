package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/store"
)

// The tests in this file run the real binary as a child process, the way an
// operator (or systemd) does.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "retentiond-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "retentiond")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type child struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	stderr *lockedWriter
	done   chan error
}

// logs returns what the daemon wrote to stderr so far.
func (d *child) logs() string {
	d.stderr.mu.Lock()
	defer d.stderr.mu.Unlock()
	return d.stderr.w.(*bytes.Buffer).String()
}

// startDaemon runs `retentiond serve` with a config in dir and waits for
// /readyz.
func startDaemon(t *testing.T, dir, addr string, extraEnv ...string) *child {
	t.Helper()
	cfg := fmt.Sprintf(`data_dir: %s
retention: 30y
listen:
  http: %s
  syslog_udp: ""
  syslog_tcp: ""
storage:
  flush_interval: 1s
log:
  level: info
`, filepath.Join(dir, "data"), addr)
	return startDaemonConfig(t, dir, addr, cfg, extraEnv...)
}

// startDaemonConfig starts the binary with the config file text cfg
// (written to dir/retentiond.yaml) and waits for /readyz.
func startDaemonConfig(t *testing.T, dir, addr, cfg string, extraEnv ...string) *child {
	t.Helper()
	cfgPath := filepath.Join(dir, "retentiond.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &child{t: t, addr: addr, stderr: &lockedWriter{w: &bytes.Buffer{}}, done: make(chan error, 1)}
	d.cmd = exec.Command(binary(t), "serve", "--config", cfgPath)
	d.cmd.Env = append(os.Environ(), extraEnv...)
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return d
			}
		}
		select {
		case err := <-d.done:
			t.Fatalf("daemon exited before ready: %v\n%s", err, d.logs())
		case <-time.After(50 * time.Millisecond):
		}
	}
	d.cmd.Process.Kill()
	t.Fatalf("daemon not ready within 60s\n%s", d.logs())
	return nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (d *child) stop(sig syscall.Signal) error {
	d.cmd.Process.Signal(sig)
	select {
	case err := <-d.done:
		return err
	case <-time.After(60 * time.Second):
		d.cmd.Process.Kill()
		d.t.Fatalf("daemon did not exit within 60s of %v", sig)
		return nil
	}
}

func ingestBatch(addr string, lines []string) (accepted int, err error) {
	body := strings.Join(lines, "\n") + "\n"
	resp, err := http.Post("http://"+addr+"/api/v1/ingest", "application/x-ndjson", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var ans struct {
		Accepted int `json:"accepted"`
		Rejected int `json:"rejected"`
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, &ans); err != nil {
		return 0, fmt.Errorf("answer %q: %w", b, err)
	}
	return ans.Accepted, nil
}

func line(seq int) string {
	ts := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Second)
	return fmt.Sprintf(`{"time":%q,"domain":"shop%d.example.nl","path":"/seq/%d","user_agent":"e2e","ip":"192.0.2.%d"}`,
		ts.Format(time.RFC3339Nano), seq%5, seq, seq%200)
}

// searchAll returns the set of sequence numbers the daemon finds.
func searchAll(t *testing.T, addr string) map[int]int {
	t.Helper()
	q := url.Values{"q": {"ua:e2e"}, "limit": {"0"}, "format": {"ndjson"}, "from": {"2026-10-01"}, "to": {"2026-12-01"},
		"case": {"E2E-1"}, "reason": {"end-to-end test"}}
	resp, err := http.Get("http://" + addr + "/api/v1/search?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("search: %d %s", resp.StatusCode, b)
	}
	seen := map[int]int{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var row struct {
			Path string `json:"path"`
		}
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatalf("search row %q: %v", sc.Text(), err)
		}
		var n int
		if _, err := fmt.Sscanf(row.Path, "/seq/%d", &n); err != nil {
			t.Fatalf("unexpected path %q", row.Path)
		}
		seen[n]++
	}
	return seen
}

// TestSigtermUnderLoad: SIGTERM while clients ingest; the daemon exits 0,
// and after a restart every acknowledged record is there exactly once.
func TestSigtermUnderLoad(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	d := startDaemon(t, dir, addr)

	var mu sync.Mutex
	acked := map[int]bool{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; ctx.Err() == nil && b < 10_000; b++ {
				var lines []string
				var seqs []int
				for i := 0; i < 50; i++ {
					seq := (w*10_000+b)*50 + i
					lines = append(lines, line(seq))
					seqs = append(seqs, seq)
				}
				n, err := ingestBatch(addr, lines)
				if err != nil {
					return // the daemon is going away; this batch was not acknowledged
				}
				if n != len(lines) {
					t.Errorf("accepted %d of %d", n, len(lines))
					return
				}
				mu.Lock()
				for _, s := range seqs {
					acked[s] = true
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(700 * time.Millisecond)
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, d.logs())
	}
	cancel()
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no batch was acknowledged before SIGTERM")
	}

	d = startDaemon(t, dir, addr)
	defer d.stop(syscall.SIGTERM)
	seen := searchAll(t, addr)
	for s := range acked {
		if seen[s] != 1 {
			t.Fatalf("acknowledged record %d found %d times after restart", s, seen[s])
		}
	}
	for s, n := range seen {
		if n != 1 {
			t.Fatalf("record %d stored %d times", s, n)
		}
	}
	t.Logf("%d acknowledged records survived SIGTERM and restart exactly once (%d stored in all)", len(acked), len(seen))
	if logs := d.logs(); strings.Contains(logs, "192.0.2.") || strings.Contains(logs, "/seq/") {
		t.Errorf("the daemon logged a record's contents:\n%s", logs)
	}
}

// TestSecondDaemonRefused: a second daemon on the same data directory exits
// with a message that says why.
func TestSecondDaemonRefused(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir, freePort(t))
	defer d.stop(syscall.SIGTERM)
	cmd := exec.Command(binary(t), "serve", "--config", filepath.Join(dir, "retentiond.yaml"))
	cmd.Env = append(os.Environ(), "RETENTIOND_LISTEN_HTTP="+freePort(t))
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("second daemon on the same data directory started")
	}
	if !strings.Contains(string(out), "locked by another process") {
		t.Fatalf("second daemon's message does not say the directory is locked:\n%s", out)
	}
}

// TestSearchCLI drives `retentiond search` against a running daemon.
func TestSearchCLI(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	// 30 distinct paths against a bound of 10: stats by path is approximate.
	d := startDaemon(t, dir, addr, "RETENTIOND_SEARCH_STATS_MAX_GROUPS=10")
	defer d.stop(syscall.SIGTERM)
	var lines []string
	for i := 0; i < 30; i++ {
		lines = append(lines, line(i))
	}
	if n, err := ingestBatch(addr, lines); err != nil || n != 30 {
		t.Fatalf("ingest: %d, %v", n, err)
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command(binary(t), append([]string{"search", "--server", "http://" + addr}, args...)...)
		out, err := cmd.Output()
		return string(out), err
	}
	tests := []struct {
		name string
		args []string
		want func(string) bool
	}{
		{"ndjson rows", []string{"--case", "T-1", "--reason", "test", "--from", "2026-10-01", "ip:192.0.2.0/24 domain:shop1.example.nl"},
			func(out string) bool {
				return strings.Count(out, "\n") == 6 && strings.Contains(out, `"domain":"shop1.example.nl"`)
			}},
		{"count", []string{"--case", "T-1", "--reason", "test", "--count", "--", "-path:/seq/1*"},
			func(out string) bool { return strings.TrimSpace(out) == "19" }},
		{"stats", []string{"--case", "T-1", "--reason", "test", "--stats-by", "domain", "--top", "2", "ua:E2E"},
			func(out string) bool {
				return strings.Join(strings.Fields(out), " ") == "COUNT DOMAIN 6 shop0.example.nl 6 shop1.example.nl 30 (total) "+
					"2 of 5 values shown; --top 0 for all"
			}},
		{"stats approximate", []string{"--case", "T-1", "--reason", "test", "--stats-by", "path", "--top", "0", "ua:E2E"},
			func(out string) bool {
				lines := strings.Split(strings.TrimSpace(out), "\n")
				return strings.Join(strings.Fields(lines[0]), " ") == "COUNT ERROR PATH" && len(lines) == 1+10+3 &&
					strings.Join(strings.Fields(lines[11]), " ") == "30 (total, exact)" &&
					strings.HasPrefix(lines[12], "approximate: too many distinct values to count exactly (search.stats_max_groups is 10)") &&
					lines[13] == "truncated: only the 10 most frequent values are listed"
			}},
		{"csv", []string{"--case", "T-1", "--reason", "test", "--format", "csv", "--limit", "1", "--order", "desc", "ua:e2e"},
			func(out string) bool {
				return strings.HasPrefix(out, "time,domain,path,user_agent,ip\n") && strings.Contains(out, "/seq/29")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(tt.args...)
			if err != nil || !tt.want(out) {
				t.Fatalf("search %v: err %v, output:\n%s", tt.args, err, out)
			}
		})
	}
	t.Run("limit notice", func(t *testing.T) {
		// A CSV export cut by its limit says so on stderr, with the
		// SHA-256 of what was received; stdout holds only the rows.
		cmd := exec.Command(binary(t), "search", "--server", "http://"+addr, "--case", "T-1", "--reason", "test",
			"--format", "csv", "--limit", "1", "ua:e2e")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || strings.Count(string(out), "\n") != 2 || !strings.Contains(stderr.String(), "1 of ") ||
			!strings.Contains(stderr.String(), "--limit 0 for all") || !strings.Contains(stderr.String(), "sha256 ") {
			t.Fatalf("err %v, stdout %q, stderr %q", err, out, stderr.String())
		}
	})
	t.Run("case required", func(t *testing.T) {
		_, err := run("ip:192.0.2.1")
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Fatalf("search without --case: %v, want exit 2", err)
		}
	})
	t.Run("bad query names the term", func(t *testing.T) {
		cmd := exec.Command(binary(t), "search", "--server", "http://"+addr, "--case", "T", "--reason", "r", "ip:1.2.3.4 colour:red")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), `"colour:red"`) {
			t.Fatalf("bad query: %v\n%s", err, out)
		}
	})
}

// TestVerify: `retentiond verify` passes on a healthy data directory and
// names the damaged file when a byte of a segment is flipped.
func TestVerify(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	d := startDaemon(t, dir, addr)
	var lines []string
	for i := 0; i < 200; i++ {
		lines = append(lines, line(i))
	}
	if _, err := ingestBatch(addr, lines); err != nil {
		t.Fatal(err)
	}
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	out, err := exec.Command(binary(t), "verify", "--data-dir", data).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "200 records") || !strings.HasSuffix(strings.TrimSpace(string(out)), "OK") {
		t.Fatalf("verify on a healthy directory: %v\n%s", err, out)
	}
	segs, _ := filepath.Glob(filepath.Join(data, "days", "*", "*.seg"))
	if len(segs) == 0 {
		t.Fatal("no segment written at shutdown")
	}
	b, _ := os.ReadFile(segs[0])
	b[len(b)/3] ^= 0x40
	os.WriteFile(segs[0], b, 0o644)
	out, err = exec.Command(binary(t), "verify", "--data-dir", data).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), filepath.Base(segs[0])) {
		t.Fatalf("verify after a flipped byte: %v\n%s", err, out)
	}

	// A damaged footer no longer keeps the daemon from starting: it
	// quarantines the file, says so in its log and metrics, and verify
	// keeps naming the file and the offset.
	b[len(b)-29] ^= 0xff
	os.WriteFile(segs[0], b, 0o644)
	d = startDaemon(t, dir, addr)
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "\nretentiond_store_corrupt_files 1\n") {
		t.Errorf("metrics after a damaged footer lack retentiond_store_corrupt_files 1")
	}
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if logs := d.logs(); !strings.Contains(logs, filepath.Base(segs[0])) || !strings.Contains(logs, "offset=") {
		t.Errorf("the daemon's log does not name the damaged file and offset:\n%s", logs)
	}
	if _, err := os.Stat(segs[0] + ".corrupt"); err != nil {
		t.Errorf("damaged file not quarantined: %v", err)
	}
	out, err = exec.Command(binary(t), "verify", "--data-dir", data).CombinedOutput()
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "quarantined segment "+segs[0]+".corrupt") ||
		!strings.Contains(string(out), "corrupt at offset") {
		t.Fatalf("verify after quarantine: %v\n%s", err, out)
	}
}

// TestStartupCatchUpBeforeReady: after downtime, every day past retention is
// destroyed before /readyz first says ready.
func TestStartupCatchUpBeforeReady(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	st, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	today := record.Day(time.Now())
	for d := 1; d <= 45; d++ {
		r := record.Record{Time: today.AddDate(0, 0, -d).Add(time.Hour), Domain: "old.example.nl",
			Path: fmt.Sprintf("/day/%d", d), UserAgent: "catchup", IP: netip.MustParseAddr("198.51.100.9")}
		if err := st.Append(context.Background(), []record.Record{r}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// With 30d, day D is destroyed at start(D)+31d: days -31 .. -45 expired.
	addr := freePort(t)
	d := startDaemon(t, dir, addr, "RETENTIOND_RETENTION=30d")
	defer d.stop(syscall.SIGTERM)
	// /readyz just answered 200 for the first time.
	left, _ := filepath.Glob(filepath.Join(data, "days", "*"))
	for _, p := range left {
		day, err := record.ParseDay(filepath.Base(p))
		if err != nil {
			t.Fatalf("unexpected entry %s", p)
		}
		if today.Sub(day) > 30*24*time.Hour {
			t.Fatalf("expired day %s still on disk when /readyz said ready", filepath.Base(p))
		}
	}
	if len(left) != 30 {
		t.Fatalf("%d days on disk, want the 30 unexpired ones", len(left))
	}
	q := url.Values{"q": {"ua:catchup"}, "case": {"T"}, "reason": {"catch-up test"}, "from": {"2000-01-01"}}
	resp, err := http.Get("http://" + addr + "/api/v1/count?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct{ Count int }
	json.NewDecoder(resp.Body).Decode(&c)
	if c.Count != 30 {
		t.Fatalf("count after catch-up = %d, want 30", c.Count)
	}
}
