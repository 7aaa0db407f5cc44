package ingest

// The shipper protocols (Loki push, Elasticsearch bulk, OTLP logs: loki.go,
// elastic.go, otlp.go) share what is in this file: reading a whole body
// within the limits, parsing an access-log line whose format is not
// declared, finding the virtual host in a log file's name, and storing the
// mapped records with one result per item, so that each protocol can answer
// in its own way which items failed.

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"

	"github.com/retentiond/retentiond/internal/parse"
	"github.com/retentiond/retentiond/internal/record"
)

// The input label of each shipper protocol in the ingest metrics.
const (
	inputLoki    = "loki"
	inputElastic = "elastic"
	inputOTLP    = "otlp"
)

// shipChunkRecords bounds the records handed to the Sink at once, so that a
// large batch is stored in pieces of bounded memory.
const shipChunkRecords = 8192

// httpError is a request-level failure: the status and a one-line reason.
type httpError struct {
	status     int
	retryAfter string
	msg        string
}

func (e *httpError) Error() string { return e.msg }

// bodyCodec says how a protocol treats Content-Encoding: snappy.
type bodyCodec int

const (
	// snappyIsFraming: Loki's protobuf body is a snappy block whatever the
	// header says (Grafana Alloy sends "Content-Encoding: snappy" with it),
	// so the header is ignored and the protocol decodes the block.
	snappyIsFraming bodyCodec = iota
	// snappyIsEncoding: OTLP's snappy is a real content encoding, block or
	// (older OpenTelemetry Collectors) framed stream, told apart by the
	// stream identifier.
	snappyIsEncoding
)

// snappyStreamID starts a framed snappy stream.
var snappyStreamID = []byte("\xff\x06\x00\x00sNaPpY")

// readBody reads a whole request body, decompressed, bounded by
// MaxBodyBytes after decompression. The three shipper protocols send one
// message per request (a protobuf, a snappy block, a JSON document) that
// cannot be decoded in pieces, so the body is read whole; the limit and the
// ingest concurrency bound what that costs.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, codec bodyCodec) ([]byte, *httpError) {
	if r.ContentLength > h.opts.MaxBodyBytes {
		return nil, h.tooLarge()
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes)
	raw, err := h.readLimited(r.Body, r.ContentLength)
	if err != nil {
		return nil, h.readErr(err)
	}
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	var zr io.Reader
	switch enc {
	case "", "identity":
		return raw, nil
	case "gzip", "x-gzip":
		g, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf("gzip body: %v", err)}
		}
		zr = g
	case "deflate":
		// HTTP's deflate is zlib-wrapped; some clients (and Loki's own
		// reader) use raw deflate. A zlib header tells them apart.
		if len(raw) >= 2 && raw[0]&0x0f == 8 && (uint16(raw[0])<<8|uint16(raw[1]))%31 == 0 {
			z, err := zlib.NewReader(bytes.NewReader(raw))
			if err != nil {
				return nil, &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf("deflate body: %v", err)}
			}
			zr = z
		} else {
			zr = flate.NewReader(bytes.NewReader(raw))
		}
	case "zstd":
		z, err := zstd.NewReader(bytes.NewReader(raw), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(h.opts.MaxBodyBytes)+1<<20))
		if err != nil {
			return nil, &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf("zstd body: %v", err)}
		}
		defer z.Close()
		zr = z
	case "snappy", "x-snappy-framed":
		if codec == snappyIsFraming {
			return raw, nil
		}
		if enc == "x-snappy-framed" || bytes.HasPrefix(raw, snappyStreamID) {
			zr = snappy.NewReader(bytes.NewReader(raw))
			break
		}
		return h.snappyBlock(raw)
	default:
		return nil, &httpError{status: http.StatusUnsupportedMediaType,
			msg: fmt.Sprintf("unsupported Content-Encoding %q: use gzip, deflate, zstd, snappy or none", record.Shorten(enc))}
	}
	body, err := h.readLimited(zr, -1)
	if err != nil {
		return nil, h.readErr(fmt.Errorf("%s body: %w", enc, err))
	}
	return body, nil
}

// snappyBlock decodes a snappy block, refusing one that claims to inflate
// beyond MaxBodyBytes before allocating for it.
func (h *Handler) snappyBlock(raw []byte) ([]byte, *httpError) {
	n, err := snappy.DecodedLen(raw)
	if err != nil {
		return nil, &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf("snappy body: %v", err)}
	}
	if int64(n) > h.opts.MaxBodyBytes {
		return nil, h.tooLarge()
	}
	out, err := snappy.Decode(nil, raw)
	if err != nil {
		return nil, &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf("snappy body: %v", err)}
	}
	return out, nil
}

// readLimited reads all of r, failing with errBodyTooLarge past
// MaxBodyBytes; sizeHint (the Content-Length, or -1) sizes the buffer.
func (h *Handler) readLimited(r io.Reader, sizeHint int64) ([]byte, error) {
	var buf bytes.Buffer
	if sizeHint > 0 && sizeHint <= h.opts.MaxBodyBytes {
		buf.Grow(int(sizeHint) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(&limitReader{r: r, n: h.opts.MaxBodyBytes})
	return buf.Bytes(), err
}

func (h *Handler) tooLarge() *httpError {
	return &httpError{status: http.StatusRequestEntityTooLarge,
		msg: fmt.Sprintf("request body exceeds %d bytes after decompression (ingest.max_body_bytes); nothing was stored", h.opts.MaxBodyBytes)}
}

func (h *Handler) readErr(err error) *httpError {
	if errors.Is(err, errBodyTooLarge) || errors.Is(err, zstd.ErrDecoderSizeExceeded) || isMaxBytes(err) {
		return h.tooLarge()
	}
	return &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf("read body: %v; nothing was stored", err)}
}

// storeError maps a failure of the Sink to a request-level answer. Every
// internal failure is a 503, never a 500: the OpenTelemetry Collector drops
// data on a 500 and retries only 429, 502, 503 and 504.
func (h *Handler) storeError(input string, err error) *httpError {
	switch {
	case isBusy(err):
		return &httpError{status: http.StatusTooManyRequests, retryAfter: retryAfter(err), msg: "write path saturated; retry later"}
	case isTooLarge(err):
		return &httpError{status: http.StatusRequestEntityTooLarge, msg: "batch too large for storage.head_max_bytes; send smaller batches"}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &httpError{status: http.StatusServiceUnavailable, retryAfter: "1", msg: "request ended before its records were stored; retry"}
	}
	h.opts.Logger.Error("ingest: store append failed", "input", input, "err", err)
	return &httpError{status: http.StatusServiceUnavailable, retryAfter: "5", msg: "records could not be stored durably; retry later"}
}

// shipResult is what happened to each item of a shipper batch.
type shipResult struct {
	// errs[i] is nil for a stored item, else why it was rejected (a
	// mapping or validation error) or not stored (storeErr).
	errs               []error
	accepted, rejected int
	// storeErr, when set, is why the items from the first chunk that
	// failed on were not stored; earlier chunks were.
	storeErr error
	// reasons counts the rejections by Reason.
	reasons map[string]int
}

// ship maps n items with mapItem, applies the retention window, and stores
// the records in chunks, the same way for every shipper protocol. Rejected
// items are counted per reason on the input's metrics; what ship returns
// lets the protocol answer per item.
func (h *Handler) ship(ctx context.Context, input string, n int, mapItem func(i int) (record.Record, error)) shipResult {
	res := shipResult{errs: make([]error, n), reasons: map[string]int{}}
	now := h.opts.Now()
	recs := make([]record.Record, 0, min(n, shipChunkRecords))
	idx := make([]int, 0, cap(recs))
	flush := func() bool {
		if len(recs) == 0 {
			return true
		}
		if err := h.appendShipped(ctx, input, recs, res.accepted > 0); err != nil {
			res.storeErr = err
			for _, i := range idx {
				res.errs[i] = err
			}
			return false
		}
		res.accepted += len(recs)
		h.m.records.WithLabelValues(input, "accepted").Add(float64(len(recs)))
		clear(recs)
		recs, idx = recs[:0], idx[:0]
		return true
	}
	win := h.opts.windowAt(now)
	for i := 0; i < n; i++ {
		rec, err := mapItem(i)
		if err == nil {
			err = win.check(&rec)
		}
		if err != nil {
			res.errs[i] = err
			res.rejected++
			res.reasons[Reason(err)]++
			h.m.reject(input, err)
			continue
		}
		recs = append(recs, rec)
		idx = append(idx, i)
		if len(recs) == shipChunkRecords && !flush() {
			for j := i + 1; j < n; j++ {
				res.errs[j] = res.storeErr
			}
			return res
		}
	}
	flush()
	return res
}

// shipperTurn takes one of the HTTP ingest turns (ingest.max_concurrent_
// requests, shared with /api/v1/ingest), so that the bodies the shipper
// protocols hold whole are bounded in number; the caller must doneTurn.
func (h *Handler) shipperTurn(ctx context.Context, input string) *httpError {
	if !h.takeTurn(ctx) {
		h.m.refused.WithLabelValues(input, "concurrency").Inc()
		return &httpError{status: http.StatusTooManyRequests, retryAfter: "1",
			msg: fmt.Sprintf("more than %d ingest requests at once; nothing was stored; retry later", h.opts.MaxConcurrent)}
	}
	return nil
}

// appendShipped stores one chunk of a shipper batch. With a Sink that
// bounds memory (the store), head memory is reserved for the records first,
// waiting up to QueueTimeout (MidBodyWait once earlier chunks of the
// request are stored) as /api/v1/ingest does; pieces are kept under the
// store's largest reservation.
func (h *Handler) appendShipped(ctx context.Context, input string, recs []record.Record, started bool) error {
	if h.adm == nil {
		return h.opts.Sink.Append(ctx, recs)
	}
	limit := h.adm.ReserveLimit()
	for len(recs) > 0 {
		n, text := 0, int64(0)
		for n < len(recs) {
			r := &recs[n]
			t := text + int64(len(r.Domain)+len(r.Path)+len(r.UserAgent))
			if n > 0 && h.adm.ReserveFor(n+1, t) > limit {
				break
			}
			n, text = n+1, t
		}
		wait := h.opts.QueueTimeout
		if started {
			wait = h.opts.MidBodyWait
		}
		rctx, cancel := context.WithTimeout(ctx, wait)
		res, err := h.adm.Reserve(rctx, h.adm.ReserveFor(n, text))
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				h.m.refused.WithLabelValues(input, "memory").Inc()
				err = fmt.Errorf("%w: no head memory within %s", errSaturated, wait)
			}
			return err
		}
		err = res.Append(ctx, recs[:n])
		res.Release()
		if err != nil {
			return err
		}
		recs, started = recs[n:], true
	}
	return nil
}

// reasonSummary lists rejection counts by reason, most frequent first, as
// "syntax=2 ip=1".
func (r *shipResult) reasonSummary() string {
	type kv struct {
		k string
		v int
	}
	var l []kv
	for k, v := range r.reasons {
		l = append(l, kv{k, v})
	}
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && (l[j].v > l[j-1].v || (l[j].v == l[j-1].v && l[j].k < l[j-1].k)); j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", e.k, e.v)
	}
	return b.String()
}

// firstRejected returns the index and error of the first rejected item.
func (r *shipResult) firstRejected() (int, error) {
	for i, err := range r.errs {
		if err != nil && !errors.Is(err, r.storeErr) {
			return i, err
		}
	}
	return -1, nil
}

// parseAccessLine parses a line whose format is not declared (what a
// shipper read from a log file): a JSON object, a vhost_combined or a
// combined line, told apart as for syslog. domain is used when the line
// names no virtual host, t when a JSON line carries no time; a combined
// line always carries its own time, which is the pageview's (the shipper's
// time is usually when it read the line).
func (h *Handler) parseAccessLine(line []byte, domain string, t time.Time) (record.Record, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return record.Record{}, &parse.SyntaxError{Column: 1, Msg: "empty line"}
	}
	if len(line) > h.opts.MaxLineBytes {
		return record.Record{}, fmt.Errorf("%w: %d bytes (max %d)", errTooLong, len(line), h.opts.MaxLineBytes)
	}
	var rec record.Record
	var err error
	switch parse.DetectMessageFormat(line) {
	case parse.FormatJSON:
		rec, err = parse.ParseJSONAt(line, domain, t)
		if err != nil {
			// Fluent Bit's loki output wraps the raw line: {"log":"..."}.
			if inner := wrappedLine(line); inner != nil {
				return h.parseAccessLine(inner, domain, t)
			}
		}
	case parse.FormatVhostCombined:
		rec, err = parse.ParseLine(parse.FormatVhostCombined, line, domain)
	default:
		rec, err = parse.ParseLine(parse.FormatCombined, line, domain)
	}
	var fe *record.FieldError
	if err != nil && domain == "" && errors.As(err, &fe) && fe.Field == "domain" && fe.Value == "" {
		return rec, fmt.Errorf("%w: the line names no virtual host, and no domain label, file name or ?domain= gave one", err)
	}
	return rec, err
}

// wrappedLine returns the raw line inside a JSON object {"log": "..."} or
// {"message": "..."} (Fluent Bit without a parser), or nil; a wrapped JSON
// object is not unwrapped again.
func wrappedLine(obj []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(obj, &m) != nil {
		return nil
	}
	for _, k := range []string{"log", "message"} {
		var s string
		if json.Unmarshal(m[k], &s) == nil && s != "" && !strings.HasPrefix(strings.TrimSpace(s), "{") {
			return []byte(s)
		}
	}
	return nil
}

// domainFromPath finds the virtual host in a log file's path, for the
// common per-vhost layouts:
//
//	/var/log/nginx/shop.example.nl.access.log   (name, then a suffix)
//	/var/log/apache2/shop.example.nl-access_log.1.gz
//	/var/log/httpd/access-shop.example.nl.log   (a prefix, then the name)
//	/var/www/shop.example.nl/logs/access.log    (a directory)
//
// The file name is tried first, then the directories from the deepest up.
// A candidate counts only if it is a host name with at least two labels
// whose last label is alphabetic, so "access.log", "other_vhosts_access"
// or "nginx-1.24" never become a domain. It returns "" when none is found.
func domainFromPath(p string) string {
	p = strings.ReplaceAll(p, `\`, "/")
	parts := strings.Split(p, "/")
	if len(parts) == 0 {
		return ""
	}
	if d := hostFromFileName(parts[len(parts)-1]); d != "" {
		return d
	}
	for i := len(parts) - 2; i >= 0; i-- {
		if looksLikeHost(parts[i]) {
			d, _ := record.NormalizeDomain(parts[i])
			return d
		}
	}
	return ""
}

// hostFromFileName strips rotation, compression, ".log" and access/ssl
// words from a log file name and returns what is left if it is a host name.
func hostFromFileName(name string) string {
	s := strings.ToLower(name)
	for changed := true; changed; {
		changed = false
		for _, suf := range []string{".gz", ".bz2", ".xz", ".zst", ".log", "_log", "-log", ".txt"} {
			if t, ok := strings.CutSuffix(s, suf); ok && t != "" {
				s, changed = t, true
			}
		}
		// Rotation: ".1", "-20261121".
		if i := strings.LastIndexAny(s, ".-_"); i > 0 && i < len(s)-1 && allDigits(s[i+1:]) {
			s, changed = s[:i], true
		}
		for _, w := range []string{"access", "ssl", "https", "http", "vhost", "combined", "requests"} {
			for _, sep := range []string{".", "-", "_"} {
				if t, ok := strings.CutSuffix(s, sep+w); ok && t != "" {
					s, changed = t, true
				}
				if t, ok := strings.CutPrefix(s, w+sep); ok && t != "" {
					s, changed = t, true
				}
			}
		}
	}
	if !looksLikeHost(s) {
		return ""
	}
	d, _ := record.NormalizeDomain(s)
	return d
}

// looksLikeHost reports whether s is a host name with at least two labels
// and an alphabetic top-level label of two or more letters.
func looksLikeHost(s string) bool {
	if _, err := record.NormalizeDomain(s); err != nil || strings.ContainsAny(s, ":[]") {
		return false
	}
	i := strings.LastIndexByte(s, '.')
	if i <= 0 {
		return false
	}
	tld := s[i+1:]
	if len([]rune(tld)) < 2 || tld == "log" || tld == "txt" {
		return false
	}
	for _, c := range tld {
		if !unicode.IsLetter(c) {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// writeText answers with a plain-text body of one line (Promtail and Alloy
// log the first line of an error answer).
func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}
