package ingest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/store"
)

func TestFrameReader(t *testing.T) {
	frame := func(m string) string { return fmt.Sprintf("%d %s", len(m), m) }
	tests := []struct {
		name, stream string
		max          int
		want         []string // "!" marks an expected too-long error
	}{
		{"octet", frame("<1>a b") + frame("<1>c\n") + "\n" + frame("<1>d"), 100, []string{"<1>a b", "<1>c\n", "<1>d"}},
		{"lf", "<1>a\n<1>b\r\n<1>c", 100, []string{"<1>a\n", "<1>b\r\n", "<1>c"}},
		{"octet too long", frame(strings.Repeat("x", 50)) + frame("<1>ok"), 20, []string{"!", "<1>ok"}},
		{"lf too long", strings.Repeat("y", 70) + "\n<1>ok\n", 20, []string{"!", "<1>ok\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := newFrameReader(strings.NewReader(tt.stream), tt.max)
			var got []string
			for {
				f, _, err := fr.next()
				if err != nil {
					if errorsIsTooLong(err) {
						got = append(got, "!")
						continue
					}
					break
				}
				got = append(got, string(f))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("got %q want %q", got, tt.want)
			}
		})
	}
}

func errorsIsTooLong(err error) bool { return Reason(err) == "too_long" }

func vhostLine(i int) string {
	return fmt.Sprintf(`v%d.example:443 2001:db8::%x - - [21/Nov/2026:16:27:08 +0000] "GET /p/%d?q=%%22 HTTP/1.1" 200 3 "-" "UA \x22%d\x22"`, i%3, i+1, i, i)
}

func checkVhostRecords(t *testing.T, got []record.Record, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%d records stored, want %d", len(got), n)
	}
	seen := map[string]bool{}
	for _, r := range got {
		seen[r.Path] = true
	}
	for i := range n {
		if !seen[fmt.Sprintf("/p/%d?q=%%22", i)] {
			t.Fatalf("record %d missing", i)
		}
	}
	r := got[0]
	if r.Domain == "" || r.UserAgent[:4] != `UA "` || !r.IP.Is6() {
		t.Errorf("bad record %+v", r)
	}
}

func TestTCPListener(t *testing.T) {
	for _, octet := range []bool{true, false} {
		t.Run(fmt.Sprintf("octet=%v", octet), func(t *testing.T) {
			sink := &memSink{}
			reg := prometheus.NewRegistry()
			l, err := ListenSyslogTCP(t.Context(), "127.0.0.1:0", TCPOptions{Options: Options{Sink: sink, Registerer: reg, MaxLineBytes: 1024}})
			if err != nil {
				t.Fatal(err)
			}
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			const n = 2500
			var sb strings.Builder
			for i := range n {
				f := "<182>1 2026-11-21T16:28:28Z vm web - - - " + vhostLine(i) + "\n"
				if octet {
					fmt.Fprintf(&sb, "%d %s", len(f), f)
				} else {
					sb.WriteString(f)
				}
			}
			// One frame too long and one garbage frame: counted, the
			// connection goes on.
			long := "<1>" + strings.Repeat("z", 2000)
			junk := "<1>junk"
			if octet {
				fmt.Fprintf(&sb, "%d %s%d %s", len(long), long, len(junk), junk)
			} else {
				sb.WriteString(long + "\n" + junk + "\n")
			}
			if _, err := c.Write([]byte(sb.String())); err != nil {
				t.Fatal(err)
			}
			c.Close()
			// Close cuts reading (storing what was read), so wait until the
			// last frames were seen before closing.
			waitFor(t, func() bool {
				return testutil.ToFloat64(l.h.m.records.WithLabelValues("syslog_tcp", "rejected")) == 2
			})
			l.Close()
			checkVhostRecords(t, sink.all(), n)
			if got := testutil.ToFloat64(l.h.m.rejected.WithLabelValues("syslog_tcp", "too_long")); got != 1 {
				t.Errorf("too_long = %v", got)
			}
		})
	}
}

func TestUDPListener(t *testing.T) {
	sink := &memSink{}
	l, err := ListenSyslogUDP(t.Context(), "127.0.0.1:0", Options{Sink: sink, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 50
	for i := range n {
		if _, err := c.Write([]byte("<190>Nov 21 16:27:08 vm nginx: " + vhostLine(i))); err != nil {
			t.Fatal(err)
		}
		// Sequential, each waited for: loopback UDP may drop under burst.
		waitFor(t, func() bool { return len(sink.all()) == i+1 })
	}
	// A 60 KiB datagram (a long query string) arrives whole.
	big := "<190>Nov 21 16:27:08 vm nginx: " + strings.Replace(vhostLine(n), "?q=", "?q="+strings.Repeat("a", 60<<10-400)+"&", 1)
	if _, err := c.Write([]byte(big)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(sink.all()) == n+1 })
	l.Close()
	recs := sink.all()
	checkVhostRecords(t, recs[:n], n)
	if p := recs[n].Path; len(p) < 60<<10-400 {
		t.Errorf("big datagram path is %d bytes", len(p))
	}
}

// waitFor polls cond; the test's own timeout bounds it (no timed assertion).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for !cond() {
		if t.Context().Err() != nil {
			t.Fatal("gave up")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// FuzzSyslogFraming checks that octet-counted framing gives every frame
// back as sent (the frame parser's own fuzz target is parse.FuzzSyslogFrame).
func FuzzSyslogFraming(f *testing.F) {
	f.Add([]byte(`<190>Nov 21 16:27:08 vm nginx: 127.0.0.1 - - [21/Nov/2026:16:27:08 +0000] "GET / HTTP/1.1" 200 3 "-" "UA"`))
	f.Add([]byte("<190>1 2026-11-21T16:29:05+00:00 vm nginx - - -  h.example 127.0.0.1 - - [21/Nov/2026:16:29:05 +0000] \"GET /p HTTP/1.1\" 200 3 \"-\" \"UA\"\n"))
	f.Add([]byte("12 <1>x\n"))
	f.Fuzz(func(t *testing.T, frame []byte) {
		fr := newFrameReader(strings.NewReader(fmt.Sprintf("%d %s", len(frame), frame)), 1<<16)
		got, _, err := fr.next()
		if err != nil || string(got) != string(frame) {
			t.Fatalf("octet framing: %q, %v", got, err)
		}
	})
}

// busySink answers ErrBusy to its first `busy` appends, then stores.
type busySink struct {
	memSink
	mu   sync.Mutex
	busy int
}

func (s *busySink) Append(ctx context.Context, recs []record.Record) error {
	s.mu.Lock()
	if s.busy > 0 {
		s.busy--
		s.mu.Unlock()
		return fmt.Errorf("append: %w", store.ErrBusy)
	}
	s.mu.Unlock()
	return s.memSink.Append(ctx, recs)
}

// TestTCPBackPressure: a busy store is retried (the connection is not read
// meanwhile), so no record sent over TCP is lost.
func TestTCPBackPressure(t *testing.T) {
	sink := &busySink{busy: 3}
	l, err := ListenSyslogTCP(t.Context(), "127.0.0.1:0", TCPOptions{Options: Options{Sink: sink, Registerer: prometheus.NewRegistry()}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := range n {
		fmt.Fprintf(c, "<190>Nov 21 16:27:08 vm nginx: %s\n", vhostLine(i))
	}
	c.Close()
	waitFor(t, func() bool { return len(sink.all()) == n })
	l.Close()
	checkVhostRecords(t, sink.all(), n)
	if got := testutil.ToFloat64(l.h.m.records.WithLabelValues("syslog_tcp", "dropped")); got != 0 {
		t.Errorf("dropped %v", got)
	}
}

// TestSyslogSourceAllowList: with an allow-list, syslog from other sources
// is refused (UDP datagrams dropped, TCP connections closed) and counted;
// allowed sources are stored.
func TestSyslogSourceAllowList(t *testing.T) {
	for _, tc := range []struct {
		name    string
		allowed bool
	}{{"refused", false}, {"allowed", true}} {
		t.Run(tc.name, func(t *testing.T) {
			allow := func(a netip.Addr) bool { return tc.allowed && a == netip.MustParseAddr("127.0.0.1") }
			sink := &memSink{}
			reg := prometheus.NewRegistry()
			opts := Options{Sink: sink, Registerer: reg, SourceAllowed: allow}
			udp, err := ListenSyslogUDP(t.Context(), "127.0.0.1:0", opts)
			if err != nil {
				t.Fatal(err)
			}
			tcp, err := ListenSyslogTCP(t.Context(), "127.0.0.1:0", TCPOptions{Options: opts})
			if err != nil {
				t.Fatal(err)
			}
			uc, _ := net.Dial("udp", udp.Addr().String())
			uc.Write([]byte("<190>Nov 21 16:27:08 vm nginx: " + vhostLine(1)))
			uc.Close()
			tc2, err := net.Dial("tcp", tcp.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			tc2.Write([]byte("<190>Nov 21 16:27:08 vm nginx: " + vhostLine(2) + "\n"))
			if tc.allowed {
				waitFor(t, func() bool { return len(sink.all()) == 2 })
				tc2.Close()
			} else {
				// The server closes a refused connection without reading.
				tc2.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := tc2.Read(make([]byte, 1)); err == nil {
					t.Fatal("refused TCP connection stayed open and answered")
				}
				tc2.Close()
				waitFor(t, func() bool {
					return refused(reg, "syslog_udp") == 1 && refused(reg, "syslog_tcp") == 1
				})
			}
			udp.Close()
			tcp.Close()
			if got := len(sink.all()); tc.allowed != (got == 2) || (!tc.allowed && got != 0) {
				t.Fatalf("%d records stored", got)
			}
		})
	}
}

// refused reads retentiond_ingest_records_total{input, result="refused"}.
func refused(reg *prometheus.Registry, input string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "retentiond_ingest_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["input"] == input && labels["result"] == "refused" {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
