// Package connlimit caps the connections a listener holds open, so that a
// flood of idle or slow clients cannot exhaust the process's file
// descriptors (which the store needs for its WAL and segment files).
//
// At the cap, a new connection does not simply bounce: the connection that
// has been idle longest (the protocol says it sits between messages, and no
// byte arrived for MinIdle) is interrupted to make room, so a real client is
// not locked out by idle ones. Only when every open connection is busy or
// recently active is the newcomer refused (closed at once). Refusals and
// evictions are counted.
//
// The protocol on top says when a connection is idle with SetIdle: the HTTP
// server from its ConnState hook (new or keep-alive idle), the syslog TCP
// listener when it waits for the first byte of the next frame. A connection
// is interrupted, never closed under its owner's feet: its next (or current)
// Read fails, writes still work, and the owner closes it as it does after a
// read timeout, so a request or batch that slipped in is still finished.
package connlimit

import (
	"cmp"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/retentiond/retentiond/internal/metricsx"
)

// DefaultMinIdle is how long an idle connection must have been silent
// before it may be evicted for a newcomer: long enough that a client in the
// middle of sending (a request right after connecting, the next frame of a
// burst) is never cut, short enough that a flood of idle connections delays
// a real client by about this much at most.
const DefaultMinIdle = time.Second

// ErrInterrupted is what Read returns on a connection that was evicted to
// make room for a new one or interrupted by InterruptAll.
var ErrInterrupted = errors.New("connection interrupted: closed to make room for a new connection or for shutdown")

// Options configure a Listener.
type Options struct {
	// Max is the most connections held open at once (> 0).
	Max int
	// MinIdle is how long an idle connection must have received nothing
	// before it may be evicted; default DefaultMinIdle.
	MinIdle time.Duration
	// Subsystem names the metrics: retentiond_<Subsystem>_connections_*.
	Subsystem string
	// Admit, if set, decides before the cap whether a connection may be
	// served at all (a source allow-list); one it refuses is closed at once
	// and costs no other connection its slot. Counting those is Admit's job.
	Admit func(net.Conn) bool
	// Registerer receives the metrics; nil: not registered.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Stats are the listener's counters, for tests and logs.
type Stats struct {
	Open, Refused, Evicted int
}

// Listener wraps a net.Listener with a connection cap.
type Listener struct {
	net.Listener
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	conns   map[*Conn]struct{} // open and not evicted
	refused int
	evicted int
	lastLog time.Time

	mOpen    prometheus.Gauge
	mRefused prometheus.Counter
	mEvicted prometheus.Counter
}

// Wrap caps ln at opts.Max connections. Accept returns *Conn values.
func Wrap(ln net.Listener, opts Options) *Listener {
	opts.Max = max(opts.Max, 1)
	opts.MinIdle = cmp.Or(opts.MinIdle, DefaultMinIdle)
	ns := "retentiond_" + opts.Subsystem + "_connections_"
	l := &Listener{
		Listener: ln,
		opts:     opts,
		log:      cmp.Or(opts.Logger, slog.Default()),
		conns:    map[*Conn]struct{}{},
		mOpen:    prometheus.NewGauge(prometheus.GaugeOpts{Name: ns + "open", Help: "Connections currently open."}),
		mRefused: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "refused_total", Help: "Connections closed at once because the cap was reached and no open connection was idle long enough to make room."}),
		mEvicted: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "evicted_total", Help: "Idle connections closed to make room for a new one at the cap."}),
	}
	// Reuse, so that a listener opened again on the same registry (a
	// restart of the server in tests) counts on the same series.
	reg := opts.Registerer
	l.mOpen = metricsx.Reuse(reg, l.mOpen)
	l.mRefused = metricsx.Reuse(reg, l.mRefused)
	l.mEvicted = metricsx.Reuse(reg, l.mEvicted)
	limit := metricsx.Reuse(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: ns + "max", Help: "The connection cap."}))
	limit.Set(float64(opts.Max))
	return l
}

// Max is the cap.
func (l *Listener) Max() int { return l.opts.Max }

// Stats returns the current counters.
func (l *Listener) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{Open: len(l.conns), Refused: l.refused, Evicted: l.evicted}
}

// Accept waits for a connection that fits under the cap: at the cap it
// evicts the longest-idle connection, or refuses the newcomer (closes it and
// waits for the next) when none is evictable. Errors of the wrapped listener
// are returned unchanged, so callers keep their back-off on EMFILE.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.opts.Admit != nil && !l.opts.Admit(nc) {
			nc.Close()
			continue
		}
		now := time.Now()
		c := &Conn{Conn: nc, l: l}
		c.lastRead.Store(now.UnixNano())
		c.since.Store(now.UnixNano())
		c.idle.Store(true) // until the protocol says otherwise: nothing was sent yet
		l.mu.Lock()
		if len(l.conns) >= l.opts.Max {
			victim := l.longestIdle(now)
			if victim == nil {
				l.refused++
				l.mRefused.Inc()
				logNow := now.Sub(l.lastLog) >= time.Minute
				if logNow {
					l.lastLog = now
				}
				refused := l.refused
				l.mu.Unlock()
				nc.Close()
				if logNow {
					l.log.Warn("connection refused: the connection cap is reached and no connection has been idle long enough to make room",
						"max", l.opts.Max, "refused_total", refused)
				}
				continue
			}
			delete(l.conns, victim)
			l.evicted++
			l.mEvicted.Inc()
			victim.interrupt()
		}
		l.conns[c] = struct{}{}
		l.mOpen.Set(float64(len(l.conns)))
		l.mu.Unlock()
		return c, nil
	}
}

// longestIdle returns the evictable connection silent longest, or nil.
// Called with l.mu held.
func (l *Listener) longestIdle(now time.Time) *Conn {
	var best *Conn
	var bestAt time.Time
	for c := range l.conns {
		if !c.idle.Load() {
			continue
		}
		at := max(c.since.Load(), c.lastRead.Load())
		t := time.Unix(0, at)
		if now.Sub(t) < l.opts.MinIdle {
			continue
		}
		if best == nil || t.Before(bestAt) {
			best, bestAt = c, t
		}
	}
	return best
}

// SetIdle tells the listener whether c sits between messages (evictable
// once silent for MinIdle) or is busy (never evicted). c is a *Conn from
// Accept or a wrapper around one with a NetConn method (*tls.Conn); other
// connections are ignored. Only c's owner calls it (the syslog reader once
// per frame), so it takes no lock: one atomic load when nothing changes.
func (l *Listener) SetIdle(c net.Conn, idle bool) {
	lc := unwrap(c)
	if lc == nil || lc.l != l || lc.idle.Load() == idle {
		return
	}
	lc.since.Store(time.Now().UnixNano())
	lc.idle.Store(idle)
}

// InterruptAll makes every open connection's reads fail at once (writes
// still work), for shutdown: each owner finishes what it holds and closes.
func (l *Listener) InterruptAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		c.interrupt()
	}
}

func unwrap(c net.Conn) *Conn {
	for range 4 {
		switch v := c.(type) {
		case *Conn:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// Conn is a connection accepted under the cap. Closing it frees its slot.
type Conn struct {
	net.Conn
	l           *Listener
	lastRead    atomic.Int64 // unix nanoseconds of the last byte received
	interrupted atomic.Bool
	idle        atomic.Bool  // between messages, as the owner last said
	since       atomic.Int64 // unix nanoseconds when idle last changed (or accept)
}

// Read reads from the connection, unless it was interrupted.
func (c *Conn) Read(p []byte) (int, error) {
	if c.interrupted.Load() {
		return 0, ErrInterrupted
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.lastRead.Store(time.Now().UnixNano())
	}
	if err != nil && c.interrupted.Load() {
		err = ErrInterrupted
	}
	return n, err
}

// interrupt fails the pending and every later Read. The flag is set before
// the deadline, so an owner that sets its own read deadline in between
// still sees the flag on its next Read.
func (c *Conn) interrupt() {
	c.interrupted.Store(true)
	_ = c.Conn.SetReadDeadline(time.Now())
}

// Close closes the connection and frees its slot.
func (c *Conn) Close() error {
	c.l.mu.Lock()
	if _, ok := c.l.conns[c]; ok {
		delete(c.l.conns, c)
		c.l.mOpen.Set(float64(len(c.l.conns)))
	}
	c.l.mu.Unlock()
	return c.Conn.Close()
}
