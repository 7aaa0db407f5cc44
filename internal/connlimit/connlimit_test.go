package connlimit

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// harness is a capped listener whose accepted connections are handed to
// the test; readers report how each server-side Read ended.
type harness struct {
	l        *Listener
	accepted chan *Conn
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{l: Wrap(ln, opts), accepted: make(chan *Conn, 64)}
	go func() {
		for {
			c, err := h.l.Accept()
			if err != nil {
				close(h.accepted)
				return
			}
			h.accepted <- c.(*Conn)
		}
	}()
	t.Cleanup(func() { h.l.Close() })
	return h
}

// dial connects and returns the client end and the server's *Conn.
func (h *harness) dial(t *testing.T) (net.Conn, *Conn) {
	t.Helper()
	c, err := net.Dial("tcp", h.l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	select {
	case sc := <-h.accepted:
		t.Cleanup(func() { sc.Close() })
		return c, sc
	case <-time.After(5 * time.Second):
		t.Fatal("not accepted")
		return nil, nil
	}
}

// readErr starts a server-side Read and returns a channel with its error.
func readErr(c *Conn) chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		ch <- err
	}()
	return ch
}

func TestEviction(t *testing.T) {
	const minIdle = 300 * time.Millisecond // a chatty byte must land within it, even on a busy machine
	for _, tc := range []struct {
		name string
		// busy marks which of the three open connections the protocol
		// calls busy; chatty which ones keep sending bytes.
		busy, chatty [3]bool
		wantVictim   int // -1: the newcomer is refused
	}{
		{"oldest idle goes", [3]bool{}, [3]bool{}, 0},
		{"busy oldest kept", [3]bool{true, false, false}, [3]bool{}, 1},
		{"recently active kept", [3]bool{}, [3]bool{true, false, false}, 1},
		{"all busy: refused", [3]bool{true, true, true}, [3]bool{}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			h := newHarness(t, Options{Max: 3, MinIdle: minIdle, Subsystem: "test", Registerer: reg})
			var clients [3]net.Conn
			var servers [3]*Conn
			var reads [3]chan error
			for i := range 3 {
				clients[i], servers[i] = h.dial(t)
				if tc.busy[i] {
					h.l.SetIdle(servers[i], false)
				}
				reads[i] = readErr(servers[i])
				time.Sleep(5 * time.Millisecond) // distinct ages
			}
			time.Sleep(2 * minIdle) // every connection idle past the minimum ...
			for i := range 3 {
				if tc.chatty[i] { // ... except one that just sent a byte
					clients[i].Write([]byte("x"))
					if err := <-reads[i]; err != nil {
						t.Fatal(err)
					}
					reads[i] = readErr(servers[i])
				}
			}
			c, err := net.Dial("tcp", h.l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if tc.wantVictim < 0 {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
					t.Fatalf("newcomer not refused: %v", err)
				}
				if st := h.l.Stats(); st.Refused != 1 || st.Evicted != 0 || st.Open != 3 {
					t.Fatalf("stats %+v", st)
				}
				if got := testutil.ToFloat64(h.l.mRefused); got != 1 {
					t.Fatalf("refused metric %v", got)
				}
				return
			}
			select {
			case err := <-reads[tc.wantVictim]:
				if !errors.Is(err, ErrInterrupted) {
					t.Fatalf("victim's read ended with %v, want ErrInterrupted", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("connection %d was not evicted", tc.wantVictim)
			}
			for i := range 3 {
				if i == tc.wantVictim {
					continue
				}
				select {
				case err := <-reads[i]:
					t.Fatalf("connection %d interrupted too: %v", i, err)
				default:
				}
			}
			// The victim can still write (a response in flight completes).
			if _, err := servers[tc.wantVictim].Write([]byte("bye")); err != nil {
				t.Fatalf("victim cannot write: %v", err)
			}
			if st := h.l.Stats(); st.Evicted != 1 || st.Refused != 0 || st.Open != 3 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// wrapped stands for *tls.Conn: SetIdle must find the *Conn underneath.
type wrapped struct{ net.Conn }

func (w wrapped) NetConn() net.Conn { return w.Conn }

// TestAdmitWrapAndInterrupt: a connection Admit refuses never takes an idle
// connection's slot; SetIdle sees through a NetConn wrapper; InterruptAll
// fails every pending read.
func TestAdmitWrapAndInterrupt(t *testing.T) {
	admitted := 0
	h := newHarness(t, Options{Max: 1, MinIdle: time.Millisecond, Subsystem: "test",
		Admit: func(net.Conn) bool { admitted++; return admitted == 1 }})
	_, first := h.dial(t)
	h.l.SetIdle(wrapped{first}, false)
	if first.idle.Load() {
		t.Fatal("SetIdle through a NetConn wrapper was ignored")
	}
	h.l.SetIdle(wrapped{first}, true)
	read := readErr(first)
	time.Sleep(10 * time.Millisecond)

	c, err := net.Dial("tcp", h.l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("a connection Admit refused was served: %v", err)
	}
	select {
	case err := <-read:
		t.Fatalf("an idle connection was evicted for one Admit refused: %v", err)
	default:
	}
	if st := h.l.Stats(); st != (Stats{Open: 1}) {
		t.Fatalf("stats %+v: Admit's refusals are not cap refusals", st)
	}

	h.l.InterruptAll()
	select {
	case err := <-read:
		if !errors.Is(err, ErrInterrupted) {
			t.Fatalf("read after InterruptAll: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("InterruptAll did not end a pending read")
	}
	if _, err := first.Read(make([]byte, 1)); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("a later read: %v", err)
	}
	first.Close()
	if st := h.l.Stats(); st.Open != 0 {
		t.Fatalf("closing did not free the slot: %+v", st)
	}
}
