package ingest

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/retentiond/retentiond/internal/connlimit"
	"github.com/retentiond/retentiond/internal/parse"
	"github.com/retentiond/retentiond/internal/record"
)

// Syslog limits. A UDP datagram cannot exceed 64 KiB; a TCP frame may not
// exceed MaxLineBytes (default 64 KiB), which bounds memory per connection.
const (
	maxDatagram    = 64 << 10
	batchRecords   = 1000
	batchWait      = 50 * time.Millisecond
	tcpIdleTimeout = 10 * time.Minute
	// DefaultSyslogMaxConnections is the syslog TCP connection cap when
	// TCPOptions leave it 0 (the default of ingest.syslog_max_connections).
	DefaultSyslogMaxConnections = 1024
)

// UDPListener receives syslog datagrams. UDP has no acknowledgement, so
// records lost to back-pressure are counted as dropped.
type UDPListener struct {
	conn   *net.UDPConn
	h      *Handler
	recs   chan record.Record
	done   chan struct{}
	cancel context.CancelFunc
	once   sync.Once
}

// ListenSyslogUDP listens on addr (e.g. "127.0.0.1:5514") and stores the
// access-log lines it receives until Close or ctx ends.
func ListenSyslogUDP(ctx context.Context, addr string, opts Options) (*UDPListener, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("syslog udp %s: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("syslog udp: %w", err)
	}
	_ = conn.SetReadBuffer(4 << 20) // absorbs bursts while a batch is fsynced
	ctx, cancel := context.WithCancel(ctx)
	l := &UDPListener{conn: conn, h: NewHandler(opts), recs: make(chan record.Record, 4*batchRecords), done: make(chan struct{}), cancel: cancel}
	go l.read()
	go l.write(ctx)
	go func() { <-ctx.Done(); conn.Close() }()
	return l, nil
}

// Addr is the address actually bound (useful with port 0).
func (l *UDPListener) Addr() net.Addr { return l.conn.LocalAddr() }

// Close stops reading and waits until records already received are stored.
func (l *UDPListener) Close() error {
	l.once.Do(func() { l.conn.Close() })
	<-l.done
	l.cancel()
	return nil
}

func (l *UDPListener) read() {
	defer close(l.recs)
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := l.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if allow := l.h.opts.SourceAllowed; allow != nil && !allow(from.Addr().Unmap()) {
			l.h.m.records.WithLabelValues("syslog_udp", "refused").Inc()
			continue
		}
		l.h.m.bytes.WithLabelValues("syslog_udp").Add(float64(n))
		rec, err := l.h.parseFrame(buf[:n])
		if err != nil {
			l.h.m.reject("syslog_udp", err)
			continue
		}
		select {
		case l.recs <- rec:
		default:
			l.h.m.records.WithLabelValues("syslog_udp", "dropped").Inc()
		}
	}
}

func (l *UDPListener) write(ctx context.Context) {
	defer close(l.done)
	batch := make([]record.Record, 0, batchRecords)
	for {
		rec, ok := <-l.recs
		if !ok {
			return
		}
		batch = append(batch[:0], rec)
		// Take what is already waiting, then store: while one batch is
		// fsynced the next accumulates, so batches grow with the load
		// without a timer delaying a quiet sender's records.
	fill:
		for len(batch) < batchRecords {
			select {
			case rec, ok := <-l.recs:
				if !ok {
					break fill
				}
				batch = append(batch, rec)
			default:
				break fill
			}
		}
		l.h.store(context.WithoutCancel(ctx), "syslog_udp", batch, false)
	}
}

// parseFrame parses a syslog frame and applies the time window.
func (h *Handler) parseFrame(frame []byte) (record.Record, error) {
	if len(frame) > h.opts.MaxLineBytes {
		return record.Record{}, fmt.Errorf("%w: frame of %d bytes (max %d)", errTooLong, len(frame), h.opts.MaxLineBytes)
	}
	rec, err := parse.ParseSyslog(frame)
	if err == nil {
		err = h.opts.checkWindow(&rec, h.opts.Now())
	}
	return rec, err
}

// store appends a batch. With retry (TCP) a busy store is retried, which
// stops reading the connection and so pushes back on the sender; without
// (UDP) the batch is dropped and counted.
func (h *Handler) store(ctx context.Context, input string, batch []record.Record, retry bool) error {
	start := time.Now()
	wait := 10 * time.Millisecond
	for {
		err := h.opts.Sink.Append(ctx, batch)
		if err == nil {
			h.m.records.WithLabelValues(input, "accepted").Add(float64(len(batch)))
			h.m.batchDuration.WithLabelValues(input).Observe(time.Since(start).Seconds())
			return nil
		}
		if !retry || !isBusy(err) || ctx.Err() != nil {
			h.m.records.WithLabelValues(input, "dropped").Add(float64(len(batch)))
			h.opts.Logger.Error("ingest: syslog batch not stored", "input", input, "records", len(batch), "err", err)
			return err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
		wait = min(2*wait, time.Second)
	}
}

// TCPOptions configure the syslog TCP listener.
type TCPOptions struct {
	Options
	// MaxConnections caps the connections held open
	// (ingest.syslog_max_connections); 0 means DefaultSyslogMaxConnections.
	// At the cap the connection idle longest is closed to make room, so
	// idle connections cannot lock real shippers out (internal/connlimit).
	MaxConnections int
	// EvictAfter is how long a connection must have sent nothing before it
	// may be closed for a newcomer; 0 means connlimit.DefaultMinIdle.
	EvictAfter time.Duration
}

// TCPListener receives syslog over TCP, octet-counted or LF-framed
// (detected per connection from the first byte).
type TCPListener struct {
	ln     *connlimit.Listener
	h      *Handler
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
}

// ListenSyslogTCP listens on addr and serves connections until Close or ctx
// ends. A record read from a connection is stored (fsynced) before the next
// batch is read, so TCP flow control carries back-pressure to the sender.
func ListenSyslogTCP(ctx context.Context, addr string, opts TCPOptions) (*TCPListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("syslog tcp: %w", err)
	}
	h := NewHandler(opts.Options)
	var admit func(net.Conn) bool
	if allow := h.opts.SourceAllowed; allow != nil {
		// Checked before the cap, so that a refused source never evicts an
		// allowed shipper's idle connection.
		admit = func(c net.Conn) bool {
			ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
			if err != nil || !allow(ap.Addr().Unmap()) {
				h.m.records.WithLabelValues("syslog_tcp", "refused").Inc()
				return false
			}
			return true
		}
	}
	lim := connlimit.Wrap(ln, connlimit.Options{
		Max:        cmp.Or(opts.MaxConnections, DefaultSyslogMaxConnections),
		MinIdle:    opts.EvictAfter,
		Admit:      admit,
		Subsystem:  "ingest_syslog_tcp",
		Registerer: opts.Registerer,
		Logger:     h.opts.Logger,
	})
	ctx, cancel := context.WithCancel(ctx) //nolint:gosec // G118: Close calls l.cancel
	l := &TCPListener{ln: lim, h: h, ctx: ctx, cancel: cancel}
	l.wg.Add(1)
	go l.accept()
	go func() { <-ctx.Done(); l.Close() }()
	return l, nil
}

// Addr is the address actually bound.
func (l *TCPListener) Addr() net.Addr { return l.ln.Addr() }

// Connections reports the open, refused and evicted connections.
func (l *TCPListener) Connections() connlimit.Stats { return l.ln.Stats() }

// Close stops accepting, ends every connection's reading and waits until
// each has stored the batch it holds.
func (l *TCPListener) Close() error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		l.ln.Close()
		l.ln.InterruptAll() // reads fail; each connection still stores its batch
	}
	l.mu.Unlock()
	l.wg.Wait()
	return nil
}

// accept serves connections until the listener is closed. Accept errors
// (EMFILE while descriptors are short, ECONNABORTED) are retried with a
// back-off, as net/http does, so the loop neither spins nor dies.
func (l *TCPListener) accept() {
	defer l.wg.Done()
	var wait time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if wait == 0 {
				l.h.opts.Logger.Warn("ingest: syslog tcp accept failed; retrying", "err", err)
			}
			wait = min(max(2*wait, 5*time.Millisecond), time.Second)
			time.Sleep(wait)
			continue
		}
		wait = 0
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			c.Close()
			return
		}
		l.wg.Add(1)
		l.mu.Unlock()
		go func() {
			defer l.wg.Done()
			defer c.Close()
			l.serve(c)
		}()
	}
}

func (l *TCPListener) serve(c net.Conn) {
	const input = "syslog_tcp"
	h := l.h
	fr := newFrameReader(c, h.opts.MaxLineBytes)
	batch := make([]record.Record, 0, batchRecords)
	var first time.Time
	flush := func() bool {
		if len(batch) == 0 {
			return true
		}
		err := h.store(context.WithoutCancel(l.ctx), input, batch, true)
		batch = batch[:0]
		return err == nil
	}
	for {
		if fr.buffered() == 0 {
			// Nothing more is waiting: store what we have before blocking,
			// so a quiet sender's records do not wait for the next line.
			if !flush() {
				return
			}
			_ = c.SetReadDeadline(time.Now().Add(tcpIdleTimeout))
			// Waiting for the next frame with nothing buffered or being
			// stored: the one state in which closing the connection for a
			// newcomer loses nothing already received.
			l.ln.SetIdle(c, true)
		}
		frame, n, err := fr.next()
		l.ln.SetIdle(c, false)
		h.m.bytes.WithLabelValues(input).Add(float64(n))
		if err != nil {
			if errors.Is(err, errTooLong) {
				h.m.reject(input, err)
				continue
			}
			flush()
			if !errors.Is(err, io.EOF) {
				h.opts.Logger.Debug("ingest: syslog tcp connection ended", "err", err)
			}
			return
		}
		if len(frame) == 0 {
			continue
		}
		rec, err := h.parseFrame(frame)
		if err != nil {
			h.m.reject(input, err)
			continue
		}
		if len(batch) == 0 {
			first = time.Now()
		}
		batch = append(batch, rec)
		if len(batch) >= batchRecords || time.Since(first) >= batchWait {
			if !flush() {
				return
			}
		}
	}
}

// frameReader splits a TCP stream into syslog frames. The framing is chosen
// from the first byte: a digit means octet counting ("LEN SP MSG"), anything
// else LF-terminated frames. Memory is bounded by max per connection.
type frameReader struct {
	br      *bufio.Reader
	max     int
	octet   bool
	decided bool
	buf     []byte
}

func newFrameReader(r io.Reader, max int) *frameReader {
	return &frameReader{br: bufio.NewReaderSize(r, max+16), max: max}
}

func (f *frameReader) buffered() int { return f.br.Buffered() }

// next returns the next frame (valid until the following call) and the
// number of bytes consumed. A frame over max is skipped and reported as
// errTooLong.
func (f *frameReader) next() ([]byte, int, error) {
	if !f.decided {
		b, err := f.br.Peek(1)
		if err != nil {
			return nil, 0, err
		}
		f.octet = b[0] >= '0' && b[0] <= '9'
		f.decided = true
	}
	if f.octet {
		return f.nextOctet()
	}
	return f.nextLF()
}

func (f *frameReader) nextOctet() ([]byte, int, error) {
	n, used := 0, 0
	for {
		c, err := f.br.ReadByte()
		if err != nil {
			if used > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, used, err
		}
		used++
		if c == ' ' && used > 1 {
			break
		}
		if (c == '\n' || c == '\r') && used == 1 {
			used = 0 // stray line ending between frames
			continue
		}
		if c < '0' || c > '9' || used > 9 {
			return nil, used, fmt.Errorf("syslog tcp: bad octet count at byte %d", used)
		}
		n = n*10 + int(c-'0')
	}
	if n > f.max {
		d, err := io.CopyN(io.Discard, f.br, int64(n))
		if err != nil {
			return nil, used + int(d), err
		}
		return nil, used + n, fmt.Errorf("%w: frame of %d bytes (max %d)", errTooLong, n, f.max)
	}
	if cap(f.buf) < n {
		f.buf = make([]byte, n)
	}
	f.buf = f.buf[:n]
	if _, err := io.ReadFull(f.br, f.buf); err != nil {
		return nil, used, err
	}
	return f.buf, used + n, nil
}

func (f *frameReader) nextLF() ([]byte, int, error) {
	line, err := f.br.ReadSlice('\n')
	if err == nil {
		return line, len(line), nil
	}
	if errors.Is(err, bufio.ErrBufferFull) {
		n := len(line)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = f.br.ReadSlice('\n')
			n += len(line)
		}
		if err != nil {
			return nil, n, err
		}
		return nil, n, fmt.Errorf("%w: frame of %d bytes (max %d)", errTooLong, n, f.max)
	}
	if err == io.EOF && len(line) > 0 {
		return line, len(line), nil // last frame without LF
	}
	return nil, len(line), err
}
