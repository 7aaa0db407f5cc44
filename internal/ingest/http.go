package ingest

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/store"
)

// Sink stores records durably; *store.Store satisfies it. Append must return
// only once the records are fsynced.
type Sink interface {
	Append(ctx context.Context, recs []record.Record) error
}

// Options configure the handlers and listeners.
type Options struct {
	Sink Sink
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
	// Now is the clock; default time.Now.
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

func (o *Options) defaults() {
	o.MaxBodyBytes = cmp.Or(o.MaxBodyBytes, 64<<20)
	o.MaxLineBytes = cmp.Or(o.MaxLineBytes, 64<<10)
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
}

// NewHandler builds the ingest handlers.
func NewHandler(opts Options) *Handler {
	opts.defaults()
	return &Handler{opts: opts, m: newMetrics(opts.Registerer)}
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
// never record contents).
func Reason(err error) string {
	var fe *record.FieldError
	var se *SyntaxError
	switch {
	case errors.As(err, &fe):
		return fe.Field
	case errors.As(err, &se):
		return "syntax"
	case errors.Is(err, errTooOld):
		return "too_old"
	case errors.Is(err, errTooNew):
		return "too_new"
	case errors.Is(err, errTooLong):
		return "too_long"
	}
	return "other"
}

var (
	errTooOld  = errors.New("older than the retention: would be destroyed at once")
	errTooNew  = errors.New("too far in the future")
	errTooLong = errors.New("line too long")
)

// checkWindow rejects records outside the retention window.
func (o *Options) checkWindow(r *record.Record, now time.Time) error {
	if o.TimeWindow == nil {
		return nil
	}
	oldest, newest := o.TimeWindow(now)
	switch {
	case r.Time.Before(oldest):
		return fmt.Errorf("time %s: %w (oldest accepted %s)", r.Time.Format(time.RFC3339), errTooOld, oldest.Format(time.RFC3339))
	case r.Time.After(newest):
		return fmt.Errorf("time %s: %w (newest accepted %s)", r.Time.Format(time.RFC3339), errTooNew, newest.Format(time.RFC3339))
	}
	return nil
}

// ServeIngest handles POST /api/v1/ingest: NDJSON, a JSON array, or
// concatenated JSON objects, optionally gzip- or zstd-encoded.
func (h *Handler) ServeIngest(w http.ResponseWriter, r *http.Request) {
	h.serve(w, r, "http", FormatJSON, "")
}

// ServeLines handles POST /api/v1/ingest/lines?format=F&domain=D: raw log
// lines, one per line.
func (h *Handler) ServeLines(w http.ResponseWriter, r *http.Request) {
	f, err := ParseFormat(cmp.Or(r.URL.Query().Get("format"), string(FormatCombined)))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	h.serve(w, r, "http_lines", f, r.URL.Query().Get("domain"))
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, input string, format Format, domain string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	start := time.Now()
	defer func() { h.m.batchDuration.WithLabelValues(input).Observe(time.Since(start).Seconds()) }()
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
		writeError(w, status, err.Error())
		return
	}
	defer body.Close()
	counted := &countingReader{r: body}
	limited := &limitReader{r: counted, n: h.opts.MaxBodyBytes}

	var recs []record.Record
	var ans Answer
	now := h.opts.Now()
	add := func(line int, rec record.Record, err error) {
		if err == nil {
			err = h.opts.checkWindow(&rec, now)
		}
		if err != nil {
			ans.reject(line, err)
			h.m.reject(input, err)
			return
		}
		recs = append(recs, rec)
	}
	if format == FormatJSON {
		err = h.readJSON(limited, add)
	} else {
		err = h.readLines(limited, format, domain, add)
	}
	h.m.bytes.WithLabelValues(input).Add(float64(counted.n))
	if err != nil {
		switch {
		case errors.Is(err, errBodyTooLarge), errors.Is(err, zstd.ErrDecoderSizeExceeded), isMaxBytes(err):
			writeError(w, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("request body exceeds %d bytes after decompression; nothing was stored", h.opts.MaxBodyBytes))
		default:
			writeError(w, http.StatusBadRequest, fmt.Sprintf("read body: %v; nothing was stored", err))
		}
		return
	}
	if len(recs) > 0 {
		if err := h.opts.Sink.Append(r.Context(), recs); err != nil {
			switch {
			case errors.Is(err, store.ErrBusy):
				w.Header().Set("Retry-After", "1")
				writeError(w, http.StatusTooManyRequests, "write path saturated; retry later")
			case errors.Is(err, store.ErrTooLarge):
				// Retrying the same batch can never succeed: it alone
				// exceeds storage.head_max_bytes.
				writeError(w, http.StatusRequestEntityTooLarge, "batch too large for storage.head_max_bytes; send it in smaller requests; nothing was stored")
			default:
				w.Header().Set("Retry-After", "5")
				h.opts.Logger.Error("ingest: store append failed", "input", input, "err", err)
				writeError(w, http.StatusServiceUnavailable, "records could not be stored durably; retry later")
			}
			return
		}
		ans.Accepted = len(recs)
		h.m.records.WithLabelValues(input, "accepted").Add(float64(len(recs)))
	}
	if ans.Errors == nil {
		ans.Errors = []LineError{}
	}
	status := http.StatusOK
	if ans.Accepted == 0 {
		status = http.StatusBadRequest
	}
	writeJSON(w, status, ans)
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

// readJSON reads NDJSON, a JSON array of objects, or concatenated objects.
// Line numbers in errors are the 1-based positions of the objects, which for
// NDJSON are the line numbers.
func (h *Handler) readJSON(body io.Reader, add func(int, record.Record, error)) error {
	br := bufio.NewReaderSize(body, 64<<10)
	first, err := peekNonSpace(br)
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return err
	}
	if first == '[' {
		dec := json.NewDecoder(br)
		if _, err := dec.Token(); err != nil {
			return err
		}
		for i := 1; dec.More(); i++ {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				if errors.Is(err, errBodyTooLarge) || isMaxBytes(err) {
					return err
				}
				add(i, record.Record{}, &SyntaxError{Column: int(dec.InputOffset()), Msg: "invalid JSON array element: " + err.Error()})
				return nil // the rest of a broken array cannot be resynchronised
			}
			if len(raw) > h.opts.MaxLineBytes {
				add(i, record.Record{}, fmt.Errorf("%w: element of %d bytes (max %d)", errTooLong, len(raw), h.opts.MaxLineBytes))
				continue
			}
			rec, err := ParseJSON(raw, "")
			add(i, rec, err)
		}
		return nil
	}
	return h.eachLine(br, func(n int, line []byte) {
		rec, err := ParseJSON(line, "")
		add(n, rec, err)
	}, add)
}

func (h *Handler) readLines(body io.Reader, format Format, domain string, add func(int, record.Record, error)) error {
	br := bufio.NewReaderSize(body, 64<<10)
	return h.eachLine(br, func(n int, line []byte) {
		rec, err := ParseLine(format, line, domain)
		add(n, rec, err)
	}, add)
}

// eachLine calls fn for every non-empty line; a line over MaxLineBytes is
// rejected and skipped without costing the lines after it.
func (h *Handler) eachLine(br *bufio.Reader, fn func(int, []byte), add func(int, record.Record, error)) error {
	var buf []byte
	for n := 1; ; n++ {
		buf = buf[:0]
		tooLong := false
		for {
			chunk, err := br.ReadSlice('\n')
			if !tooLong {
				if len(buf)+len(chunk) > h.opts.MaxLineBytes+2 {
					tooLong = true
					buf = buf[:0]
				} else {
					buf = append(buf, chunk...)
				}
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == io.EOF {
				if tooLong {
					add(n, record.Record{}, fmt.Errorf("%w (max %d bytes)", errTooLong, h.opts.MaxLineBytes))
				} else if line := bytes.TrimSpace(buf); len(line) > 0 {
					fn(n, line)
				}
				return nil
			}
			if err != nil {
				return err
			}
			break
		}
		if tooLong {
			add(n, record.Record{}, fmt.Errorf("%w (max %d bytes)", errTooLong, h.opts.MaxLineBytes))
			continue
		}
		if line := bytes.TrimSpace(buf); len(line) > 0 {
			fn(n, line)
		}
	}
}

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

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

type metrics struct {
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
		m.records = registerOrReuse(reg, m.records)
		m.rejected = registerOrReuse(reg, m.rejected)
		m.bytes = registerOrReuse(reg, m.bytes)
		m.batchDuration = registerOrReuse(reg, m.batchDuration)
	}
	return m
}

func registerOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old
			}
		}
		panic(fmt.Sprintf("ingest metrics: %v", err)) // two different collectors of one name: a programming error
	}
	return c
}

func (m *metrics) reject(input string, err error) {
	m.records.WithLabelValues(input, "rejected").Inc()
	m.rejected.WithLabelValues(input, Reason(err)).Inc()
}
