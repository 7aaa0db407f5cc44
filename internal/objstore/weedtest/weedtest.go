// Package weedtest runs a real SeaweedFS (`weed server -s3`: master,
// volume, filer and S3 gateway in one process) on loopback ports for
// end-to-end tests of everything that talks to a bucket. It is imported
// by _test.go files only.
//
// The tests that use it run only with RTD_TEST_E2E=1; then a missing
// binary fails them (never a silent skip in CI). The binary is $RTD_WEED,
// else the per-machine cache scripts/weed builds into
// (~/.cache/retentiond-ci/weed-<Version>/weed).
package weedtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/objstore"
)

// Version is the SeaweedFS module version scripts/weed builds; the cache
// path carries it so that a new version is built beside the old one.
const Version = "v0.0.0-20261109003541-7506e5f91cd6"

// BucketName is the bucket Start creates (SeaweedFS needs 3+ characters).
const BucketName = "retentiond-test"

// readyTimeout bounds a start: SeaweedFS is ready in ~4 s on a quiet
// machine; a busy 2-core CI machine gets far more.
const readyTimeout = 90 * time.Second

// Server is one running SeaweedFS.
type Server struct {
	// Endpoint is the S3 gateway's URL, http://127.0.0.1:<port>.
	Endpoint string
	// Bucket is the bucket created at start.
	Bucket string
	// Dir holds the server's data and its log (weed.log).
	Dir string

	t     testing.TB
	bin   string
	ports [8]int // master, volume, filer, s3, and their gRPC ports
	mu    sync.Mutex
	cmd   *exec.Cmd
	exit  chan struct{} // closed when cmd has exited
}

// Binary returns the weed binary's path: $RTD_WEED, else the cache path
// scripts/weed builds into (whether or not it exists).
func Binary() string {
	if p := os.Getenv("RTD_WEED"); p != "" {
		return p
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "retentiond-ci", "weed-"+Version, "weed")
}

// Start starts SeaweedFS in a fresh temporary directory on fresh loopback
// ports, waits until its S3 gateway answers, and creates Bucket. It skips
// the test unless RTD_TEST_E2E=1. The server is killed when the test ends;
// if the test failed, the tail of its log is printed.
func Start(t testing.TB) *Server {
	t.Helper()
	if os.Getenv("RTD_TEST_E2E") != "1" {
		t.Skip("end-to-end test against SeaweedFS: set RTD_TEST_E2E=1 (and build weed with scripts/weed)")
	}
	bin := Binary()
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		t.Fatalf("SeaweedFS binary not found at %s: run scripts/weed (it builds it once per machine, ~30 min), or set RTD_WEED", bin)
	}
	s := &Server{t: t, bin: bin, Dir: t.TempDir(), Bucket: BucketName}
	if err := os.MkdirAll(filepath.Join(s.Dir, "data"), 0o750); err != nil {
		t.Fatal(err)
	}
	s.ports = freePorts(t)
	s.Endpoint = "http://127.0.0.1:" + strconv.Itoa(s.ports[3])
	t.Cleanup(func() {
		s.kill()
		// weed makes unix sockets in /tmp named after its ports (a
		// killed process leaves them): remove exactly ours.
		for _, sock := range []string{
			fmt.Sprintf("/tmp/seaweedfs-filer-%d.sock", s.ports[2]),
			fmt.Sprintf("/tmp/seaweedfs-s3-%d.sock", s.ports[3]),
			fmt.Sprintf("/tmp/seaweedfs-master-grpc-%d.sock", s.ports[4]),
			fmt.Sprintf("/tmp/seaweedfs-volume-grpc-%d.sock", s.ports[5]),
			fmt.Sprintf("/tmp/seaweedfs-filer-grpc-%d.sock", s.ports[6]),
			fmt.Sprintf("/tmp/seaweedfs-s3-grpc-%d.sock", s.ports[7]),
		} {
			_ = os.Remove(sock)
		}
		if t.Failed() {
			t.Logf("SeaweedFS log (tail of %s):\n%s", s.logPath(), s.LogTail(40))
		}
	})
	s.start()
	s.createBucket()
	s.probe()
	return s
}

// Config is an objstore.Config for the server's bucket. SeaweedFS started
// without -s3.config accepts unsigned requests, so it has no credentials.
func (s *Server) Config() objstore.Config {
	return objstore.Config{Endpoint: s.Endpoint, Bucket: s.Bucket, RequestTimeout: 20 * time.Second}
}

// Stop kills the server with SIGKILL (an outage, not a shutdown) and
// waits for it to exit. Its directory and ports stay for Restart.
func (s *Server) Stop() {
	s.t.Helper()
	s.kill()
}

// Restart starts the server again on the same directory and ports (after
// Stop) and waits until it answers. The data written before is there.
func (s *Server) Restart() {
	s.t.Helper()
	s.kill()
	s.start()
	s.probe()
}

func (s *Server) logPath() string { return filepath.Join(s.Dir, "weed.log") }

// LogTail returns the last n lines of the server's log.
func (s *Server) LogTail(n int) string {
	b, err := os.ReadFile(s.logPath())
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (s *Server) kill() {
	s.mu.Lock()
	cmd, exit := s.cmd, s.exit
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill() // SIGKILL on Unix
	<-exit
}

// start starts the process and waits for the S3 gateway. After a kill
// the old process's ports can stay taken for a moment ("address already
// in use"): an early exit is retried until the deadline.
func (s *Server) start() {
	s.t.Helper()
	deadline := time.Now().Add(readyTimeout)
	p := s.ports
	args := []string{"server",
		"-dir=" + filepath.Join(s.Dir, "data"),
		"-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.port=" + strconv.Itoa(p[0]), "-master.port.grpc=" + strconv.Itoa(p[4]),
		"-volume.port=" + strconv.Itoa(p[1]), "-volume.port.grpc=" + strconv.Itoa(p[5]),
		"-filer.port=" + strconv.Itoa(p[2]), "-filer.port.grpc=" + strconv.Itoa(p[6]),
		"-s3", "-s3.port=" + strconv.Itoa(p[3]), "-s3.port.grpc=" + strconv.Itoa(p[7]),
		// Servers beside the S3 gateway that listen on fixed default
		// ports (8181, 9101) would clash between parallel tests.
		"-s3.port.iceberg=0", "-s3.port.lance=0",
		"-master.telemetry=false",
		// Small volumes: a test writes megabytes, not the 30 GB default.
		"-master.volumeSizeLimitMB=64",
	}
	for attempt := 1; ; attempt++ {
		logf, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			s.t.Fatal(err)
		}
		fmt.Fprintf(logf, "=== weedtest: start %d at %s\n", attempt, time.Now().Format(time.RFC3339Nano))
		cmd := exec.Command(s.bin, args...) //nolint:gosec // G204: the test's own weed binary (RTD_WEED or the CI cache) with fixed flags
		cmd.Stdout, cmd.Stderr = logf, logf
		// Its own process group, so that a test binary killed by a
		// timeout does not take the terminal's signals to it (and so
		// that it is killed by pid, never by name).
		cmd.SysProcAttr = ownProcessGroup()
		if err := cmd.Start(); err != nil {
			logf.Close()
			s.t.Fatalf("start %s: %v", s.bin, err)
		}
		exit := make(chan struct{})
		go func() { _ = cmd.Wait(); logf.Close(); close(exit) }()
		s.mu.Lock()
		s.cmd, s.exit = cmd, exit
		s.mu.Unlock()
		if s.waitReady(exit, deadline) {
			return
		}
		s.kill()
		if time.Now().After(deadline) {
			s.t.Fatalf("SeaweedFS did not become ready within %s (%d attempts); log tail:\n%s", readyTimeout, attempt, s.LogTail(40))
		}
		time.Sleep(time.Second)
	}
}

// waitReady polls the S3 port until it answers an HTTP request, and then
// the filer behind it (a bucket listing answers 200 only once the filer
// is up). It returns false if the process exits first.
func (s *Server) waitReady(exit <-chan struct{}, deadline time.Time) bool {
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-exit:
			return false
		case <-time.After(200 * time.Millisecond):
		}
		resp, err := client.Get(s.Endpoint + "/")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return true
		}
	}
	return false
}

// createBucket creates Bucket with an unsigned PUT, retried while the
// gateway still reports its backends starting.
func (s *Server) createBucket() {
	s.t.Helper()
	deadline := time.Now().Add(readyTimeout)
	var last string
	for tries := 1; time.Now().Before(deadline); tries++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, s.Endpoint+"/"+s.Bucket, nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			// An earlier attempt that failed on its way back (a timeout,
			// a gateway error) may have created the bucket: the server
			// is new and empty, so a bucket that exists is ours. A loaded
			// CI machine retried into 409 until the deadline.
			if resp.StatusCode == http.StatusConflict && (tries > 1 || strings.Contains(body.String(), "BucketAlready")) {
				return
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, firstLine(body.String()))
		} else {
			last = err.Error()
		}
		time.Sleep(300 * time.Millisecond)
	}
	s.t.Fatalf("create bucket %s on %s: %s", s.Bucket, s.Endpoint, last)
}

// EnableVersioning turns versioning on for the bucket (unsigned PUT
// ?versioning, as SeaweedFS accepts without -s3.config).
func (s *Server) EnableVersioning() {
	s.t.Helper()
	body := `<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>`
	req, _ := http.NewRequest(http.MethodPut, s.Endpoint+"/"+s.Bucket+"?versioning", strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("enable versioning: HTTP %d", resp.StatusCode)
	}
}

// probe writes, reads and deletes an object until all three succeed: the
// gateway answers before the master has a raft leader again after a
// restart (reads fail with "Not current leader" for several seconds), and
// a test must start against a store that serves data.
func (s *Server) probe() {
	s.t.Helper()
	start := time.Now()
	deadline := start.Add(readyTimeout)
	url := s.Endpoint + "/" + s.Bucket + "/weedtest-probe"
	client := &http.Client{Timeout: 5 * time.Second}
	do := func(method string, body string) (int, string, error) {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String(), nil
	}
	var last string
	for time.Now().Before(deadline) {
		code, _, err := do(http.MethodPut, "probe")
		if err == nil && code == http.StatusOK {
			code, body, err2 := do(http.MethodGet, "")
			if err2 == nil && code == http.StatusOK && body == "probe" {
				if code, _, err := do(http.MethodDelete, ""); err == nil && code == http.StatusNoContent {
					s.t.Logf("SeaweedFS serves data at %s (%s after start)", s.Endpoint, time.Since(start).Round(time.Millisecond))
					return
				}
			}
			last = fmt.Sprintf("GET HTTP %d %v", code, err2)
		} else {
			last = fmt.Sprintf("PUT HTTP %d %v", code, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	s.t.Fatalf("SeaweedFS at %s does not serve data within %s: %s", s.Endpoint, readyTimeout, last)
}

func firstLine(s string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	if sc.Scan() {
		return sc.Text()
	}
	return ""
}

// freePorts returns 8 distinct loopback ports that were free a moment
// ago (held open together so that none is handed out twice).
func freePorts(t testing.TB) [8]int {
	t.Helper()
	var ports [8]int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}
