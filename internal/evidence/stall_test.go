package evidence

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/search"
	"github.com/retentiond/retentiond/internal/store"
)

// smallBufListener shrinks each accepted connection's send buffer so that a
// client that stops reading blocks the server's writes after a few KiB.
type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4 << 10)
	}
	return c, err
}

// TestStalledBundleIsAbandoned: a client that asks for an evidence bundle
// and never reads must not hold the export (and the store snapshot under
// it) for ever: the bundle is written with the search endpoints' per-write
// deadline and abandoned once a write makes no progress for it.
func TestStalledBundleIsAbandoned(t *testing.T) {
	day := time.Date(2026, 3, 27, 0, 0, 0, 0, time.UTC)
	st, err := store.Open(t.TempDir(), store.Options{FlushInterval: time.Hour, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs := make([]record.Record, 20000)
	for i := range recs {
		recs[i] = record.Record{Time: day.Add(time.Duration(i) * time.Second), Domain: "shop.example.nl",
			Path: fmt.Sprintf("/product/%d?utm_source=newsletter&utm_medium=email&x=%d", i, i*7919), UserAgent: "Mozilla/5.0 test",
			IP: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})}
	}
	if err := st.Append(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	sh := search.NewHandler(search.Options{Source: st, WriteStallTimeout: 300 * time.Millisecond,
		Registerer: prometheus.NewRegistry(), Now: func() time.Time { return day.AddDate(0, 0, 2) }})
	h := NewHandler(HandlerOptions{Search: sh, Key: testKey(t, 1)})
	served := make(chan struct{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeBundle(w, r)
		close(served)
	})}
	go srv.Serve(smallBufListener{ln})
	defer srv.Close()

	d := net.Dialer{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10) })
		return serr
	}}
	conn, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /?q=&from=2026-03-27&to=2026-03-28&case=INC-1&reason=test HTTP/1.1\r\nHost: test\r\n\r\n")
	select {
	case <-served:
	case <-time.After(20 * time.Second):
		t.Fatal("the bundle export still runs 20s after its client stopped reading (stall limit 300ms)")
	}
}
