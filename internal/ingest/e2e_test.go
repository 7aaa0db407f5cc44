package ingest

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/record"
)

// needTool skips when a program is missing, except in CI (RTD_TEST_E2E=1),
// where a missing program is a broken CI image.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
			if _, err2 := os.Stat(filepath.Join(dir, name)); err2 == nil {
				return filepath.Join(dir, name)
			}
		}
		if os.Getenv("RTD_TEST_E2E") == "1" {
			t.Fatalf("%s not installed: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type e2eReq struct {
	host, target, ua string
	ipv6             bool
}

// TestNginxSyslogUDP runs a real nginx that logs every request to our UDP
// listener with `access_log syslog:` and checks that each request arrives
// exactly once with exact fields.
func TestNginxSyslogUDP(t *testing.T) {
	nginx := needTool(t, "nginx")
	dir := t.TempDir()
	sink := &memSink{}
	l, err := ListenSyslogUDP(t.Context(), "127.0.0.1:0", Options{Sink: sink, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := freePort(t)
	ipv6 := true
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		ipv6 = false
	} else {
		ln.Close()
	}
	listen6 := ""
	if ipv6 {
		listen6 = fmt.Sprintf("listen [::1]:%d;", port)
	}
	conf := fmt.Sprintf(`
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 64; }
http {
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    large_client_header_buffers 4 128k;
    log_format vhost '$host $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"';
    access_log syslog:server=%[2]s,tag=nginx vhost;
    server {
        listen 127.0.0.1:%[3]d default_server; %[4]s
        server_name a.example b.example;
        location / { return 200 "ok\n"; }
    }
    server {
        listen 127.0.0.1:%[3]d; %[4]s
        server_name shop.example.nl;
        location / { return 404; }
    }
}
`, dir, l.Addr(), port, listen6)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", confPath, "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGQUIT)
		cmd.Wait()
		if b, _ := os.ReadFile(filepath.Join(dir, "error.log")); t.Failed() && len(b) > 0 {
			t.Logf("nginx error.log:\n%s", b)
		}
	}()
	waitFor(t, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	long := "/search?q=" + strings.Repeat("x", 10<<10)
	reqs := []e2eReq{
		{"a.example", "/", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", false},
		{"B.Example:8080", `/quote?x="y"&z=%22w%22`, `UA with "quotes" and \backslash`, false},
		{"shop.example.nl", "/%41%2Fpath%20x?a=b%26c", "", false}, // empty UA: nginx logs "-"
		{"a.example", long, "long-query/1.0", false},
		{"shop.example.nl", "/caf\xc3\xa9/\xe2\x82\xac?n=\xc3\xa9", "utf8/1.0 \xc3\xa9", false},
		{"b.example", "/v6", "v6-client", true},
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	var want []record.Record
	start := time.Now().Add(-time.Second)
	for i, r := range reqs {
		if r.ipv6 && !ipv6 {
			continue
		}
		host := fmt.Sprintf("127.0.0.1:%d", port)
		ip := "127.0.0.1"
		if r.ipv6 {
			host, ip = fmt.Sprintf("[::1]:%d", port), "::1"
		}
		req, err := http.NewRequest("GET", "http://"+host+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque = r.target // sent byte for byte, not re-escaped
		req.Host = r.host
		req.Header.Set("User-Agent", r.ua)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp.Body.Close()
		host, herr := record.NormalizeDomain(r.host)
		if herr != nil {
			t.Fatal(herr)
		}
		want = append(want, record.Record{Domain: host, Path: r.target, UserAgent: r.ua, IP: netip.MustParseAddr(ip)})
		// Sequential: nginx's UDP syslog gives no back-pressure, a burst
		// could overflow the socket buffer.
		waitFor(t, func() bool { return len(sink.all()) == len(want) })
	}
	// Over the UDP maximum (65,507 bytes) nginx cannot send the line at
	// all: sendto fails, nginx writes an error and the record is lost. It
	// does not truncate. The next request is delivered normally.
	huge, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
	huge.URL.Opaque = "/huge?q=" + strings.Repeat("h", 66000)
	huge.Host = "a.example"
	if resp, err := client.Do(huge); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	after, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/after", port), nil)
	after.Host = "a.example"
	after.Header.Set("User-Agent", "after")
	if resp, err := client.Do(after); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	want = append(want, record.Record{Domain: "a.example", Path: "/after", UserAgent: "after", IP: netip.MustParseAddr("127.0.0.1")})
	waitFor(t, func() bool { return len(sink.all()) >= len(want) })
	if b, _ := os.ReadFile(filepath.Join(dir, "error.log")); !strings.Contains(string(b), "Message too long") {
		t.Errorf("expected nginx to report the lost %d-byte line in error.log, got:\n%.300s", 66000, b)
	}
	end := time.Now().Add(time.Second)
	got := sink.all()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	t.Logf("nginx delivered %d records over UDP (IPv6 client: %v); longest path %d bytes", len(got), ipv6, len(got[3].Path))
	for i := range want {
		g := got[i]
		if g.Time.Before(start.Truncate(time.Second)) || g.Time.After(end) {
			t.Errorf("record %d time %v outside [%v, %v]", i, g.Time, start, end)
		}
		want[i].Time = g.Time
		checkRecord(t, g, want[i])
	}
}

// TestLoggerOctetCountTCP pipes Apache-style vhost_combined lines through
// util-linux logger over TCP with octet counting (RFC 5424, the way an
// Apache piped CustomLog does) into the TCP listener.
func TestLoggerOctetCountTCP(t *testing.T) {
	logger := needTool(t, "logger")
	sink := &memSink{}
	l, err := ListenSyslogTCP(t.Context(), "127.0.0.1:0", TCPOptions{Options: Options{Sink: sink, Registerer: prometheus.NewRegistry()}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	lines := []struct{ line, path, ua, ip string }{
		{`www.customer-a.test:80 192.0.2.10 - - [21/Nov/2026:16:28:28 +0000] "GET /index.html?q=1 HTTP/1.1" 200 206 "-" "Mozilla/5.0 \"x\""`,
			"/index.html?q=1", `Mozilla/5.0 "x"`, "192.0.2.10"},
		{`www.customer-a.test 2001:db8::1 - bob [21/Nov/2026:16:28:29 +0000] "POST /wp-login.php HTTP/1.1" 302 0 "-" "-"`,
			"/wp-login.php", "", "2001:db8::1"},
		{`shop.example.nl:443 198.51.100.7 - - [21/Nov/2026:16:28:30 +0100] "GET /q?` + strings.Repeat("y", 10<<10) + ` HTTP/1.1" 200 1 "-" "long"`,
			"/q?" + strings.Repeat("y", 10<<10), "long", "198.51.100.7"},
	}
	var input strings.Builder
	for _, l := range lines {
		input.WriteString(l.line + "\n")
	}
	cmd := exec.Command(logger, "--octet-count", "-T", "-n", "127.0.0.1", "-P", fmt.Sprint(port), "-S", "65536", "-t", "apache")
	cmd.Stdin = strings.NewReader(input.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("logger: %v: %s", err, out)
	}
	waitFor(t, func() bool { return len(sink.all()) >= len(lines) })
	l.Close()
	got := sink.all()
	if len(got) != len(lines) {
		t.Fatalf("%d records, want %d", len(got), len(lines))
	}
	for i, w := range lines {
		if got[i].Path != w.path || got[i].UserAgent != w.ua || got[i].IP != netip.MustParseAddr(w.ip) {
			t.Errorf("record %d: %+v", i, got[i])
		}
	}
	if d := got[2].Domain; d != "shop.example.nl" {
		t.Errorf("domain %q", d)
	}
	if tm := got[2].Time; !tm.Equal(time.Date(2026, 11, 21, 15, 28, 30, 0, time.UTC)) {
		t.Errorf("time %v: the message's own time (+0100) must win over the syslog header's", tm)
	}
}

func checkRecord(t *testing.T, got, want record.Record) {
	t.Helper()
	if !got.Time.Equal(want.Time) || got.Domain != want.Domain || got.Path != want.Path ||
		got.UserAgent != want.UserAgent || got.IP != want.IP {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}
