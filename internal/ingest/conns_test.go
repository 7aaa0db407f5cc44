package ingest

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/record"
)

// gateSink stores records, but holds the first batch until gate is closed:
// its connection is then busy storing, not idle.
type gateSink struct {
	gate chan struct{}
	once sync.Once
	mu   sync.Mutex
	recs []record.Record
}

func (s *gateSink) Append(ctx context.Context, recs []record.Record) error {
	s.once.Do(func() { <-s.gate })
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, recs...)
	return nil
}

func (s *gateSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs)
}

// closedByPeer reports whether the server closed c (within d).
func closedByPeer(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err != nil
}

func syslogFrame(i int) string {
	return "<190>Nov 21 16:27:08 vm nginx: " + vhostLine(i) + "\n"
}

// TestSyslogTCPConnectionCap: the cap of TCPOptions.MaxConnections is
// honoured. At the cap a newcomer takes the slot of the connection idle
// longest, never of one that is storing a batch; when none is idle long
// enough the newcomer is refused; both are counted; the descriptors held
// stay bounded by the cap however many connections arrive.
func TestSyslogTCPConnectionCap(t *testing.T) {
	dial := func(t *testing.T, l *TCPListener) net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	t.Run("oldest idle evicted, busy kept", func(t *testing.T) {
		sink := &gateSink{gate: make(chan struct{})}
		const evictAfter = 100 * time.Millisecond
		l, err := ListenSyslogTCP(t.Context(), "127.0.0.1:0", TCPOptions{
			Options: Options{Sink: sink, Registerer: prometheus.NewRegistry()}, MaxConnections: 3, EvictAfter: evictAfter})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		// busy sends first (its last byte is the oldest) and is then held
		// storing; two idle ones follow.
		busy := dial(t, l)
		fmt.Fprint(busy, syslogFrame(0))
		idleOld := dial(t, l)
		waitFor(t, func() bool { return l.Connections().Open == 2 })
		time.Sleep(evictAfter / 2)
		idleNew := dial(t, l)
		waitFor(t, func() bool { return l.Connections().Open == 3 })
		time.Sleep(evictAfter + 50*time.Millisecond)

		newcomer := dial(t, l)
		fmt.Fprint(newcomer, syslogFrame(1))
		if !closedByPeer(idleOld, 5*time.Second) {
			t.Fatal("the connection idle longest was not closed for the newcomer")
		}
		for name, c := range map[string]net.Conn{"storing": busy, "younger idle": idleNew} {
			if closedByPeer(c, 50*time.Millisecond) {
				t.Fatalf("the %s connection was closed", name)
			}
		}
		close(sink.gate)
		waitFor(t, func() bool { return sink.count() == 2 })
		if st := l.Connections(); st.Evicted != 1 || st.Refused != 0 || st.Open != 3 {
			t.Fatalf("connections %+v, want 1 evicted, 0 refused, 3 open", st)
		}
	})
	t.Run("refused when none idle, descriptors bounded", func(t *testing.T) {
		sink := &gateSink{gate: make(chan struct{})}
		close(sink.gate)
		const max, flood = 4, 30
		l, err := ListenSyslogTCP(t.Context(), "127.0.0.1:0", TCPOptions{
			Options: Options{Sink: sink, Registerer: prometheus.NewRegistry()}, MaxConnections: max, EvictAfter: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		fds := func() int {
			ents, err := os.ReadDir("/proc/self/fd")
			if err != nil {
				t.Skipf("cannot count file descriptors: %v", err)
			}
			return len(ents)
		}
		before := fds()
		var conns []net.Conn
		for range flood {
			conns = append(conns, dial(t, l))
		}
		waitFor(t, func() bool { st := l.Connections(); return st.Open+st.Refused == flood })
		// Each client end is a descriptor of this process too.
		if grown := fds() - before - flood; grown > max+1 {
			t.Fatalf("the listener holds %d descriptors for %d connections at a cap of %d", grown, flood, max)
		}
		if st := l.Connections(); st.Open != max || st.Refused != flood-max || st.Evicted != 0 {
			t.Fatalf("connections %+v, want %d open, %d refused", st, max, flood-max)
		}
		// The refused ones were closed without being read; the admitted
		// ones still work.
		if !closedByPeer(conns[flood-1], 5*time.Second) {
			t.Fatal("a connection beyond the cap stayed open")
		}
		for i, c := range conns[:max] {
			fmt.Fprint(c, syslogFrame(i))
		}
		waitFor(t, func() bool { return sink.count() == max })
	})
}
