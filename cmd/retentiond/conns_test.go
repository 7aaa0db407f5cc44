package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// metricValue scrapes one sample (name with its labels, as printed in the
// text format) from the daemon's /metrics; -1 when it is absent.
func metricValue(t *testing.T, addr, sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return -1
}

// TestSyslogMaxConnectionsHonoured: ingest.syslog_max_connections is the cap
// of the syslog TCP listener. With the cap taken by idle connections a new
// shipper is not locked out: the connection idle longest is closed to make
// room, the newcomer's records are stored, and the eviction is counted.
func TestSyslogMaxConnectionsHonoured(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	syslogAddr := freePort(t)
	const max = 4
	d := startDaemon(t, dir, addr, "RETENTIOND_LISTEN_SYSLOG_TCP="+syslogAddr,
		fmt.Sprintf("RETENTIOND_INGEST_SYSLOG_MAX_CONNECTIONS=%d", max))
	defer d.stop(syscall.SIGTERM)

	idle := make([]net.Conn, max)
	for i := range idle {
		c, err := net.Dial("tcp", syslogAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle[i] = c
		time.Sleep(50 * time.Millisecond) // distinct ages: idle[0] is the oldest
	}
	time.Sleep(1500 * time.Millisecond) // all of them idle past the eviction minimum

	c, err := net.Dial("tcp", syslogAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	frame := `<190>Nov 21 16:27:08 vm nginx: shop.example.nl 192.0.2.7 - - [01/Nov/2026:00:00:00 +0000] "GET /seq/1 HTTP/1.1" 200 3 "-" "e2e"` + "\n"
	if _, err := c.Write([]byte(frame)); err != nil {
		t.Fatal(err)
	}
	// The oldest idle connection is closed by the daemon.
	idle[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := idle[0].Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("the oldest idle connection is still open with %d connections at a cap of %d (read: %v)", max+1, max, err)
	} else if err != io.EOF && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("oldest idle connection: %v", err)
	}
	// The others stay open.
	for _, o := range idle[1:] {
		o.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := o.Read(make([]byte, 1)); !isTimeout(err) {
			t.Fatalf("a younger idle connection was closed too: %v", err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for metricValue(t, addr, `retentiond_ingest_records_total{input="syslog_tcp",result="accepted"}`) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the new connection's record was not stored\n%s", d.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := metricValue(t, addr, "retentiond_ingest_syslog_tcp_connections_evicted_total"); got != 1 {
		t.Errorf("evictions counted: %v, want 1", got)
	}
	if got := metricValue(t, addr, "retentiond_ingest_syslog_tcp_connections_max"); got != max {
		t.Errorf("connection cap exported: %v, want %d", got, max)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
