package search

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/store"
)

// testBound is how long these tests wait for something that must happen
// promptly; code that waits without bound fails cleanly at it instead of
// hanging until the package timeout.
const testBound = 20 * time.Second

// hookSource is a store that signals when a search has taken its snapshot.
type hookSource struct {
	*store.Store
	took chan struct{}
	// aborted is what the handler told OnAborted (the audit hook).
	aborted atomic.Pointer[string]
}

func (h *hookSource) Snapshot(from, to time.Time) (*store.Snapshot, error) {
	snap, err := h.Store.Snapshot(from, to)
	select {
	case h.took <- struct{}{}:
	default:
	}
	return snap, err
}

// smallBufListener shrinks the send buffer of every accepted connection, so
// that a client that stops reading blocks the server's writes after a few
// kilobytes instead of after the megabytes loopback autotuning allows.
type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4 << 10)
	}
	return c, err
}

// stallSetup stores n records of one day in segments and serves searches
// over them on 127.0.0.1.
func stallSetup(t *testing.T, n int, grace, stall time.Duration) (*store.Store, *hookSource, string, *atomic.Pointer[error], chan struct{}, *prometheus.Registry) {
	t.Helper()
	day := time.Date(2026, 3, 27, 0, 0, 0, 0, time.UTC)
	st, err := store.Open(t.TempDir(), store.Options{FlushInterval: time.Hour, ReaderGrace: grace,
		Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{Time: day.Add(time.Duration(i) * time.Second), Domain: "shop.example.nl",
			Path: fmt.Sprintf("/product/%d?utm_source=newsletter&utm_medium=email", i), UserAgent: "Mozilla/5.0 (X11; Linux x86_64) test",
			IP: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})}
	}
	if err := st.Append(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	src := &hookSource{Store: st, took: make(chan struct{}, 1)}
	var doneErr atomic.Pointer[error]
	done := make(chan struct{})
	reg := prometheus.NewRegistry()
	h := NewHandler(Options{Source: src, Timeout: time.Hour, WriteStallTimeout: stall, Registerer: reg,
		Now:       func() time.Time { return day.AddDate(0, 0, 2) },
		OnAborted: func(ctx context.Context, why string) { src.aborted.Store(&why) },
		OnDone:    func(r *http.Request, q *Query, n int64, err error) { doneErr.Store(&err); close(done) }})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/search", h.ServeSearch)
	mux.HandleFunc("/api/v1/stats", h.ServeStats)
	srv := &http.Server{Handler: mux}
	go srv.Serve(smallBufListener{ln})
	t.Cleanup(func() { srv.Close() })
	return st, src, ln.Addr().String(), &doneErr, done, reg
}

// stalledResponses reads retentiond_search_stalled_responses_total.
func stalledResponses(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "retentiond_search_stalled_responses_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("retentiond_search_stalled_responses_total is not registered")
	return 0
}

// dialStalled connects with a tiny receive buffer and sends the request
// target (a search for everything when empty); the caller decides whether
// and when to read.
func dialStalled(t *testing.T, addr, target string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10) })
		return serr
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if target == "" {
		target = "/api/v1/search?q=&limit=0&from=2026-03-27&to=2026-03-28"
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", target)
	return conn
}

// TestStalledClientReleasesSnapshot is a client that requests a big search
// (or a big stats answer) over real TCP and never reads (its window drops to
// zero). The response is abandoned once a write makes no progress for the
// stall limit, the search ends with a deadline error, its snapshot is
// released, and a purge of the day then completes without waiting for its
// reader grace (an hour here).
func TestStalledClientReleasesSnapshot(t *testing.T) {
	tests := []struct {
		name, target string
	}{
		{"search", ""},
		{"stats of every path", "/api/v1/stats?q=&by=path&top=0&from=2026-03-27&to=2026-03-28"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, src, addr, doneErr, done, reg := stallSetup(t, 20000, time.Hour, 300*time.Millisecond)
			conn := dialStalled(t, addr, tt.target)
			select {
			case <-src.took:
			case <-time.After(testBound):
				t.Fatal("the search never took its snapshot")
			}
			var stillHeld bool
			select {
			case <-done:
			case <-time.After(testBound):
				stillHeld = true
				t.Errorf("the search still holds its snapshot %s after its client stopped reading (stall limit 300ms)", testBound)
			}
			if !stillHeld {
				if err := *doneErr.Load(); tt.target == "" && !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("the stalled search ended with %v, want a write deadline error", err)
				}
				if why := src.aborted.Load(); tt.target == "" && (why == nil || !strings.Contains(*why, "stopped reading")) {
					t.Errorf("the audit hook was not told that the client stopped reading (OnAborted got %v)", why)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), testBound)
			defer cancel()
			if _, err := st.DeleteDay(ctx, time.Date(2026, 3, 27, 0, 0, 0, 0, time.UTC)); err != nil {
				t.Errorf("purge of the day after the stalled search: %v", err)
			}
			// The stats answer is written after the scan has released the
			// snapshot; what must end there is the stalled write.
			for end := time.Now().Add(testBound); stalledResponses(t, reg) == 0; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(end) {
					t.Fatalf("no response was abandoned %s after its client stopped reading (stall limit 300ms)", testBound)
				}
			}
			// The server then closes the connection.
			conn.SetReadDeadline(time.Now().Add(testBound))
			if _, err := io.Copy(io.Discard, conn); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("the server did not close the stalled connection: %v", err)
			}
		})
	}
}

// TestPurgeCancelsRunningSearch holds a search on a day (its client pauses
// reading) while the day is purged with a short reader grace. The purge
// completes, and the client, once it reads on, finds the stream ended by an
// error line and trailer saying that the day was destroyed.
func TestPurgeCancelsRunningSearch(t *testing.T) {
	day := time.Date(2026, 3, 27, 0, 0, 0, 0, time.UTC)
	st, src, addr, _, _, _ := stallSetup(t, 20000, 100*time.Millisecond, time.Hour)
	conn := dialStalled(t, addr, "")
	select {
	case <-src.took:
	case <-time.After(testBound):
		t.Fatal("the search never took its snapshot")
	}
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()
	if _, err := st.DeleteDay(ctx, day); err != nil {
		t.Fatalf("purge while a search reads the day: %v", err)
	}

	conn.SetReadDeadline(time.Now().Add(testBound))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read the search response: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	if len(lines) >= 20000 {
		t.Fatalf("the search returned all %d rows; it was not cancelled", len(lines))
	}
	var last map[string]string
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || !strings.Contains(last["error"], "destroyed") ||
		!strings.Contains(last["error"], "2026-03-27") {
		t.Errorf("last line %q: want an error saying day 2026-03-27 was destroyed", lines[len(lines)-1])
	}
	// Usually rows were sent before the purge, and a trailer must say why
	// they stop; on a loaded machine the search may not have sent any by
	// the end of the reader grace, and then the status says it.
	switch resp.StatusCode {
	case http.StatusOK:
		if tr := resp.Trailer.Get(ErrorTrailer); !strings.Contains(tr, "destroyed") {
			t.Errorf("trailer %s = %q, want the destroyed-day error", ErrorTrailer, tr)
		}
	case http.StatusServiceUnavailable:
		if len(lines) != 1 {
			t.Errorf("a 503 answer of %d lines, want the error alone", len(lines))
		}
	default:
		t.Errorf("status %d, want 200 with the error in a trailer, or 503", resp.StatusCode)
	}
	if why := src.aborted.Load(); why == nil || !strings.Contains(*why, "destroyed") {
		t.Errorf("the audit hook was not told that the day was destroyed (OnAborted got %v)", why)
	}
}
