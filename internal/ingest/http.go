// Package ingest receives access-log records over the network: the HTTP
// ingest endpoints (NDJSON, JSON arrays, log lines), the shippers' protocols
// (Loki push, Elasticsearch bulk, OTLP logs) and syslog over UDP and TCP.
// It parses with package parse and stores through a Sink, bounding the
// memory of records on their way in through an Admitter; it knows the store
// only by that behaviour and does not import it.
package ingest

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/httpx"
	"github.com/retentiond/retentiond/internal/metricsx"
	"github.com/retentiond/retentiond/internal/parse"
	"github.com/retentiond/retentiond/internal/record"
)

// Sink stores records durably; *store.Store satisfies it. Append must return
// only once the records are fsynced. Its errors are told apart by behaviour:
// one with a RetryAfter() time.Duration method means busy (429/503 with
// Retry-After), one whose TooLarge() bool is true means the batch can never
// fit (413); any other error is a 503. Append must not keep recs once it
// returns: the handlers reuse the slice for the next chunk and request.
type Sink interface {
	Append(ctx context.Context, recs []record.Record) error
}

// Options configure the handlers and listeners.
type Options struct {
	Sink Sink
	// Admitter reserves head memory for each chunk before it is parsed
	// (Admit(st) for a *store.Store Sink), so that records on their way in
	// stay within storage.head_max_bytes. Nil uses the Sink if it is an
	// Admitter, else chunks are stored without reservations.
	Admitter Admitter
	// MaxBodyBytes limits a request body after decompression (413 above).
	MaxBodyBytes int64
	// MaxLineBytes limits one line or JSON object.
	MaxLineBytes int
	// TimeWindow, if set, rejects records outside [oldest, newest] at now:
	// older ones would be destroyed at once, far-future ones would escape
	// the purge.
	TimeWindow func(now time.Time) (oldest, newest time.Time)
	// SourceAllowed, if set, decides which addresses may send syslog (the
	// ingest.allow list); datagrams and connections from other sources are
	// dropped and counted as result="refused". HTTP ingest is guarded by
	// the auth package instead.
	SourceAllowed func(netip.Addr) bool
	// MaxConcurrent bounds the HTTP ingest requests served at once; the
	// others wait up to QueueTimeout for a turn and are then answered 429.
	// Default: twice GOMAXPROCS, at least 4.
	MaxConcurrent int
	// QueueTimeout is how long a request waits for a turn, and for head
	// memory for its first chunk, before it is answered 429 with nothing
	// stored. Default 5 seconds.
	QueueTimeout time.Duration
	// MidBodyWait is how long a request whose first chunks are stored waits
	// for head memory for the next one before it is answered 503 (a flush
	// is far behind). Default 1 minute.
	MidBodyWait time.Duration
	// ChunkBytes and ChunkRecords bound one chunk of a body: that much is
	// read, parsed and stored (fsynced) before the next is read. Defaults
	// 1 MiB and 8192.
	ChunkBytes   int
	ChunkRecords int
	// ElasticProductHeader makes the Elasticsearch-compatible API send
	// "X-Elastic-Product: Elasticsearch" (ingest.elastic_product_header),
	// which Logstash and the official Elastic clients require; off, only
	// Filebeat, Vector and Fluent Bit can use it. See docs/shipping.md.
	ElasticProductHeader bool
	// Now is the clock; default time.Now.
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

func (o *Options) defaults() {
	o.MaxBodyBytes = cmp.Or(o.MaxBodyBytes, 64<<20)
	o.MaxLineBytes = cmp.Or(o.MaxLineBytes, 64<<10)
	o.MaxConcurrent = cmp.Or(o.MaxConcurrent, max(4, 2*runtime.GOMAXPROCS(0)))
	o.QueueTimeout = cmp.Or(o.QueueTimeout, 5*time.Second)
	o.MidBodyWait = cmp.Or(o.MidBodyWait, time.Minute)
	o.ChunkBytes = cmp.Or(o.ChunkBytes, 1<<20)
	o.ChunkRecords = cmp.Or(o.ChunkRecords, 8192)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Handler serves the HTTP ingest endpoints.
type Handler struct {
	opts Options
	m    *metrics
	adm  Admitter      // nil: the Sink does not bound memory
	turn chan struct{} // one token per request being served
	ins  interners     // NDJSON requests' parsers' string tables
}

// NewHandler builds the ingest handlers.
func NewHandler(opts Options) *Handler {
	opts.defaults()
	h := &Handler{opts: opts, m: newMetrics(opts.Registerer), turn: make(chan struct{}, opts.MaxConcurrent)}
	// Every refusal series exists from the start at 0, so that /metrics
	// shows the metric on a daemon that never refused anything and the
	// RetentiondIngestRefused alert's rate sees the first refusal.
	for _, input := range []string{"http", "http_lines"} {
		for _, reason := range []string{"concurrency", "memory"} {
			h.m.refused.WithLabelValues(input, reason)
		}
	}
	h.adm = opts.Admitter
	if a, ok := opts.Sink.(Admitter); ok && h.adm == nil {
		h.adm = a
	}
	return h
}

// LineError is one rejected line in an answer.
type LineError struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// Answer is the JSON answer of the ingest endpoints.
type Answer struct {
	Accepted int         `json:"accepted"`
	Rejected int         `json:"rejected"`
	Errors   []LineError `json:"errors"`
	// Truncated says that more lines were rejected than are listed.
	Truncated bool `json:"errors_truncated,omitempty"`
	// Error says why the request ended before the end of its body, in an
	// answer (413, 400, 503) to a request of which some records were stored.
	Error string `json:"error,omitempty"`
	// ResumeAt is, after such an error, the first line (or array element)
	// that was neither stored nor rejected: a client that resends the body
	// from there stores no record twice. Records before it were stored.
	ResumeAt int `json:"resume_at_line,omitempty"`
}

const maxListedErrors = 100

func (a *Answer) reject(line int, err error) {
	a.Rejected++
	if len(a.Errors) < maxListedErrors {
		a.Errors = append(a.Errors, LineError{Line: line, Error: err.Error()})
	} else {
		a.Truncated = true
	}
}

// Reason classifies a rejection for the metric label (a small fixed set,
// never record contents): parse.Reason's classes of a line that does not
// parse, and those of a record ingest refuses.
func Reason(err error) string {
	if r := parse.Reason(err); r != "other" {
		return r
	}
	switch {
	case errors.Is(err, errTooOld):
		return "too_old"
	case errors.Is(err, errTooNew):
		return "too_new"
	case errors.Is(err, errTooLong):
		return "too_long"
	}
	return "other"
}

// The store's errors are recognised by their behaviour, so that ingest does
// not import store: store.ErrBusy has RetryAfter, store.ErrTooLarge has
// TooLarge.

// isBusy says that the write path is saturated: retry later (store.ErrBusy,
// errSaturated).
func isBusy(err error) bool {
	var r interface{ RetryAfter() time.Duration }
	return errors.As(err, &r)
}

// retryAfter is the Retry-After header for a busy error: its RetryAfter in
// whole seconds, at least 1.
func retryAfter(err error) string {
	var r interface{ RetryAfter() time.Duration }
	if !errors.As(err, &r) {
		return "1"
	}
	return strconv.Itoa(max(1, int(r.RetryAfter().Round(time.Second)/time.Second)))
}

// isTooLarge says that the batch alone exceeds what the Sink can ever hold
// (store.ErrTooLarge): retrying it cannot succeed.
func isTooLarge(err error) bool {
	var t interface{ TooLarge() bool }
	return errors.As(err, &t) && t.TooLarge()
}

// saturated is errSaturated's type.
type saturated struct{}

func (saturated) Error() string { return "write path saturated" }

// RetryAfter is what a client is asked to wait, as for store.ErrBusy.
func (saturated) RetryAfter() time.Duration { return time.Second }

// errSaturated is ingest's own busy error: no head memory could be reserved
// within the wait.
var errSaturated error = saturated{}

var (
	errTooOld  = errors.New("older than the retention: would be destroyed at once")
	errTooNew  = errors.New("too far in the future")
	errTooLong = errors.New("line too long")
)

// checkWindow rejects a record outside the retention window at now.
func (o *Options) checkWindow(r *record.Record, now time.Time) error {
	return o.windowAt(now).check(r)
}

// timeWindow is the range of record times ingest accepts at one moment
// (Options.TimeWindow); set is false when every time is accepted.
type timeWindow struct {
	oldest, newest time.Time
	set            bool
}

// windowAt returns the accepted range at now. Batches compute it once:
// finding the retention boundary walks calendar days, and doing that for
// every record cost 8% of the daemon's ingest CPU in issue 15's profile.
func (o *Options) windowAt(now time.Time) timeWindow {
	if o.TimeWindow == nil {
		return timeWindow{}
	}
	oldest, newest := o.TimeWindow(now)
	return timeWindow{oldest, newest, true}
}

// check rejects a record outside the window.
func (w timeWindow) check(r *record.Record) error {
	switch {
	case !w.set:
		return nil
	case r.Time.Before(w.oldest):
		return fmt.Errorf("time %s: %w (oldest accepted %s)", r.Time.Format(time.RFC3339), errTooOld, w.oldest.Format(time.RFC3339))
	case r.Time.After(w.newest):
		return fmt.Errorf("time %s: %w (newest accepted %s)", r.Time.Format(time.RFC3339), errTooNew, w.newest.Format(time.RFC3339))
	}
	return nil
}

// ServeIngest handles POST /api/v1/ingest: NDJSON, a JSON array, or
// concatenated JSON objects, optionally gzip- or zstd-encoded.
func (h *Handler) ServeIngest(w http.ResponseWriter, r *http.Request) {
	h.serve(w, r, "http", parse.FormatJSON, "")
}

// ServeLines handles POST /api/v1/ingest/lines?format=F&domain=D: raw log
// lines, one per line.
func (h *Handler) ServeLines(w http.ResponseWriter, r *http.Request) {
	f, err := parse.ParseFormat(cmp.Or(r.URL.Query().Get("format"), string(parse.FormatCombined)))
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	h.serve(w, r, "http_lines", f, r.URL.Query().Get("domain"))
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, input string, format parse.Format, domain string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpx.WriteError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	start := time.Now()
	defer func() { h.m.batchDuration.WithLabelValues(input).Observe(time.Since(start).Seconds()) }()
	if r.ContentLength > h.opts.MaxBodyBytes {
		// Known too large before anything is read: refused whole.
		httpx.WriteError(w, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("request body exceeds %d bytes; nothing was stored", h.opts.MaxBodyBytes))
		return
	}
	if !h.takeTurn(r.Context()) {
		h.m.refused.WithLabelValues(input, "concurrency").Inc()
		w.Header().Set("Retry-After", "1")
		httpx.WriteError(w, http.StatusTooManyRequests, fmt.Sprintf("more than %d ingest requests at once; nothing was stored; retry later", h.opts.MaxConcurrent))
		return
	}
	defer h.doneTurn()
	// The compressed body is bounded too (it is never larger than what it
	// inflates to, except for hostile input); the decompressed stream is
	// bounded by limitReader below.
	r.Body = http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes)
	body, err := h.decode(r)
	if err != nil {
		status := http.StatusUnsupportedMediaType
		if !errors.Is(err, errEncoding) {
			status = http.StatusBadRequest
		}
		httpx.WriteError(w, status, err.Error())
		return
	}
	defer body.Close()
	counted := &countingReader{r: body}
	limited := &limitReader{r: counted, n: h.opts.MaxBodyBytes}

	var ans Answer
	c := &chunker{h: h, ctx: r.Context(), input: input, domain: domain, now: h.opts.Now(), ans: &ans, next: 1, syncedNext: 1}
	c.syncer, _ = h.opts.Sink.(Syncer)
	c.takeBuffers()
	defer c.releaseBuffers()
	if h.adm != nil {
		c.limit = h.adm.ReserveLimit()
	}
	if format == parse.FormatJSON {
		in := h.ins.get() // one request's at a time: the chunker parses on one goroutine
		defer h.ins.put(in)
		c.parse = func(b []byte) (record.Record, error) { return parse.ParseJSONWith(b, "", in) }
		err = h.readJSON(limited, c.add)
	} else {
		c.parse = func(b []byte) (record.Record, error) { return parse.ParseLine(format, b, domain) }
		err = h.readLines(limited, c.add)
	}
	if err == nil {
		err = c.flush()
	}
	// Whatever the answer says was stored must be durable first.
	if serr := c.sync(); serr != nil && (err == nil || isCtxErr(err)) {
		err = serr
	}
	h.m.bytes.WithLabelValues(input).Add(float64(counted.n))
	if err != nil {
		h.answerError(w, input, &ans, c.next, err)
		return
	}
	if ans.Errors == nil {
		ans.Errors = []LineError{}
	}
	status := http.StatusOK
	if ans.Accepted == 0 {
		status = http.StatusBadRequest
	}
	httpx.WriteJSON(w, status, ans)
}

// answerError answers a request that ended before the end of its body.
// Nothing of it may be stored (the answers of old: 413, 400, 429, 503 with
// "nothing was stored"), or its first chunks may be: then the answer says
// how many records and where a client resumes. A shipper that resends the
// whole body after a 503 stores that prefix twice (at-least-once); 413 and
// 400 are not retried by shippers, so the stored prefix is all that arrives.
func (h *Handler) answerError(w http.ResponseWriter, input string, ans *Answer, next int, err error) {
	var status int
	var msg string
	var se *errStore
	switch {
	case errors.As(err, &se) && isBusy(err):
		status, msg = http.StatusTooManyRequests, "write path saturated"
		w.Header().Set("Retry-After", retryAfter(err))
		if ans.Accepted > 0 {
			// Only reached after MidBodyWait: the flush is far behind.
			status = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", "5")
		}
	case errors.As(err, &se) && isTooLarge(err):
		// Retrying the same chunk can never succeed: it alone exceeds
		// storage.head_max_bytes (a Sink that does not reserve memory).
		status, msg = http.StatusRequestEntityTooLarge, "batch too large for storage.head_max_bytes; send it in smaller requests"
	case errors.As(err, &se):
		if isCtxErr(err) {
			status, msg = http.StatusBadRequest, fmt.Sprintf("request ended: %v", err)
			break
		}
		status, msg = http.StatusServiceUnavailable, "records could not be stored durably"
		w.Header().Set("Retry-After", "5")
		h.opts.Logger.Error("ingest: store append failed", "input", input, "err", err)
	case errors.Is(err, errBodyTooLarge), errors.Is(err, zstd.ErrDecoderSizeExceeded), isMaxBytes(err):
		status, msg = http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes after decompression", h.opts.MaxBodyBytes)
	default:
		status, msg = http.StatusBadRequest, fmt.Sprintf("read body: %v", err)
	}
	if ans.Accepted == 0 {
		msg += "; nothing was stored"
		if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
			msg += "; retry later"
		}
		httpx.WriteError(w, status, msg)
		return
	}
	ans.Error = fmt.Sprintf("%s; the %d records accepted before line %d were stored; resume at that line", msg, ans.Accepted, next)
	ans.ResumeAt = next
	if ans.Errors == nil {
		ans.Errors = []LineError{}
	}
	httpx.WriteJSON(w, status, ans)
}

// ctxErr reports whether err is the request's context ending (the client
// went away or the server is shutting down), not a store failure.
func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// takeTurn waits up to QueueTimeout for one of MaxConcurrent turns.
func (h *Handler) takeTurn(ctx context.Context) bool {
	select {
	case h.turn <- struct{}{}:
		h.m.inflight.Inc()
		return true
	default:
	}
	t := time.NewTimer(h.opts.QueueTimeout)
	defer t.Stop()
	select {
	case h.turn <- struct{}{}:
		h.m.inflight.Inc()
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

func (h *Handler) doneTurn() {
	<-h.turn
	h.m.inflight.Dec()
}

func isMaxBytes(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

var errEncoding = errors.New("unsupported Content-Encoding")

func (h *Handler) decode(r *http.Request) (io.ReadCloser, error) {
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		return r.Body, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, fmt.Errorf("gzip body: %w", err)
		}
		return zr, nil
	case "zstd":
		zr, err := zstd.NewReader(r.Body, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(h.opts.MaxBodyBytes)+1<<20))
		if err != nil {
			return nil, fmt.Errorf("zstd body: %w", err)
		}
		return zr.IOReadCloser(), nil
	default:
		return nil, fmt.Errorf("%w %q: use gzip, zstd or none", errEncoding, record.Shorten(enc))
	}
}

// readJSON reads NDJSON, a JSON array of objects, or concatenated objects,
// handing each object's bytes to emit. Line numbers are the 1-based
// positions of the objects, which for NDJSON are the line numbers.
func (h *Handler) readJSON(body io.Reader, emit func(int, []byte, error) error) error {
	br := bufio.NewReaderSize(body, 64<<10)
	first, err := peekNonSpace(br)
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return err
	}
	if first == '[' {
		return h.eachElement(br, emit)
	}
	return h.eachLine(br, emit)
}

func (h *Handler) readLines(body io.Reader, emit func(int, []byte, error) error) error {
	return h.eachLine(bufio.NewReaderSize(body, 64<<10), emit)
}

// eachLine calls emit for every non-empty line; a line over MaxLineBytes
// (not counting the whitespace around it, so that an object is as long as
// an NDJSON line as it is as an element of a JSON array) is emitted as an error and skipped without costing the lines after it. The
// bytes passed to emit are only valid during the call.
func (h *Handler) eachLine(br *bufio.Reader, emit func(int, []byte, error) error) error {
	var buf []byte
	for n := 1; ; n++ {
		buf = buf[:0]
		tooLong := false
		var eof bool
		for {
			chunk, err := br.ReadSlice('\n')
			if len(buf) == 0 && len(chunk) > 0 && isJSONSpace(chunk[0]) {
				// Leading whitespace does not count against the limit,
				// as around the elements of a JSON array. (Most lines
				// have none, and bytes.TrimLeft with a cutset of four
				// bytes cost 4% of ingest CPU in building its set.)
				chunk = bytes.TrimLeft(chunk, jsonSpace)
			}
			if !tooLong {
				if room := h.opts.MaxLineBytes - len(buf); len(chunk) > room {
					// Only trailing whitespace (and the line end) may lie
					// beyond the limit.
					if len(bytes.TrimRight(chunk[room:], jsonSpace)) > 0 {
						tooLong = true
						buf = buf[:0]
					} else {
						buf = append(buf, chunk[:room]...)
					}
				} else {
					buf = append(buf, chunk...)
				}
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err == io.EOF {
				eof = true
				break
			}
			if err != nil {
				return err
			}
			break
		}
		var err error
		if tooLong {
			err = emit(n, nil, fmt.Errorf("%w (max %d bytes)", errTooLong, h.opts.MaxLineBytes))
		} else if line := bytes.TrimSpace(buf); len(line) > 0 {
			err = emit(n, line, nil)
		}
		if err != nil || eof {
			return err
		}
	}
}

// jsonSpace is JSON's whitespace (RFC 8259 §2).
const jsonSpace = " \t\r\n"

func peekNonSpace(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		if b != ' ' && b != '\n' && b != '\r' && b != '\t' {
			return b, br.UnreadByte()
		}
	}
}

var errBodyTooLarge = errors.New("body too large")

// limitReader fails (rather than truncating silently) once more than n bytes
// were read, so a decompression bomb is stopped at the limit.
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		return n, errBodyTooLarge
	}
	return n, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type metrics struct {
	inflight      prometheus.Gauge       // HTTP ingest requests being served
	refused       *prometheus.CounterVec // {input, reason}: concurrency, memory
	records       *prometheus.CounterVec // {input, result}: accepted, rejected, dropped
	rejected      *prometheus.CounterVec // {input, reason}
	bytes         *prometheus.CounterVec
	batchDuration *prometheus.HistogramVec
}

// newMetrics registers the ingest metrics on reg. The HTTP handler and the
// syslog listeners share one set: a collector already registered (by the
// other input) is reused rather than failing.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "retentiond_ingest_http_inflight_requests", Help: "HTTP ingest requests being served (bounded by ingest.max_concurrent_requests).",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "retentiond_ingest_http_refused_total", Help: "HTTP ingest requests answered 429/503 for lack of a turn (reason=concurrency) or of head memory (reason=memory).",
		}, []string{"input", "reason"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "retentiond_ingest_records_total", Help: "Records received, per input and result (accepted = stored durably, rejected = invalid, dropped = lost to back-pressure on UDP).",
		}, []string{"input", "result"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "retentiond_ingest_rejected_total", Help: "Records rejected, per input and reason (a fixed set: syntax, time, domain, path, user_agent, ip, too_old, too_new, too_long, other).",
		}, []string{"input", "reason"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "retentiond_ingest_received_bytes_total", Help: "Bytes received (after decompression), per input.",
		}, []string{"input"}),
		batchDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "retentiond_ingest_batch_duration_seconds", Help: "Time to parse and durably store one batch (includes the WAL fsync).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"input"}),
	}
	if reg != nil {
		m.inflight = metricsx.Reuse(reg, m.inflight)
		m.refused = metricsx.Reuse(reg, m.refused)
		m.records = metricsx.Reuse(reg, m.records)
		m.rejected = metricsx.Reuse(reg, m.rejected)
		m.bytes = metricsx.Reuse(reg, m.bytes)
		m.batchDuration = metricsx.Reuse(reg, m.batchDuration)
	}
	return m
}

func (m *metrics) reject(input string, err error) {
	m.records.WithLabelValues(input, "rejected").Inc()
	m.rejected.WithLabelValues(input, Reason(err)).Inc()
}
