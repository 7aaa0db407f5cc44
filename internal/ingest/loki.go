package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/loki/pkg/push"

	"github.com/retentiond/retentiond/internal/parse"
	"github.com/retentiond/retentiond/internal/record"
)

// Loki push API (POST /loki/api/v1/push), as Promtail, Grafana Alloy,
// Vector's and Fluent Bit's loki outputs send it:
//
//   - Content-Type application/json: {"streams":[{"stream":{labels},
//     "values":[["<unix ns>","<line>"(, {structured metadata})], ...]}]},
//     optionally gzip- or deflate-encoded;
//   - any other Content-Type (clients send application/x-protobuf): a
//     snappy-block-compressed logproto.PushRequest, decoded with Loki's own
//     message types (github.com/grafana/loki/pkg/push, Apache-2.0).
//     "Content-Encoding: snappy", which Alloy sends, names that same block
//     and is ignored.
//
// Each line is parsed as an access-log line (JSON, vhost_combined or
// combined). The domain is the line's own virtual host; else the first of
// the labels lokiDomainLabels that is set (then the same keys in the
// entry's structured metadata); else the vhost in the file name label
// (lokiFileLabels); else the request's ?domain= parameter. The time is the
// line's own; a JSON line without one takes the entry's timestamp.
//
// Answers follow Loki's: 204 when every entry was stored; 400 with a
// one-line text reason when some entries could not be mapped, the others
// being stored (Loki's partial-failure answer: clients do not resend a 400,
// so the good lines are not duplicated and the bad ones are counted here);
// 429 or 503 with Retry-After when nothing more could be stored.

// lokiDomainLabels are the labels that name the virtual host, in order of
// preference.
var lokiDomainLabels = []string{"domain", "vhost", "host", "server_name"}

// lokiFileLabels carry the path of the log file (Alloy and Promtail:
// filename; Vector: file, by convention; OpenTelemetry-style: log_file_path).
var lokiFileLabels = []string{"filename", "file", "log_file_path", "log_file_name"}

// lokiEntry is one entry of either encoding, with its stream's domain.
type lokiEntry struct {
	stream int
	ts     time.Time
	line   string
	meta   []push.LabelAdapter
	err    error // the entry itself could not be decoded (JSON only)
}

// ServeLoki handles POST /loki/api/v1/push.
func (h *Handler) ServeLoki(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeText(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	start := time.Now()
	defer func() { h.m.batchDuration.WithLabelValues(inputLoki).Observe(time.Since(start).Seconds()) }()
	fail := func(e *httpError) {
		if e.retryAfter != "" {
			w.Header().Set("Retry-After", e.retryAfter)
		}
		writeText(w, e.status, e.msg)
	}
	if e := h.shipperTurn(r.Context(), inputLoki); e != nil {
		fail(e)
		return
	}
	defer h.doneTurn()
	body, herr := h.readBody(w, r, snappyIsFraming)
	if herr != nil {
		fail(herr)
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var streams []map[string]string
	var entries []lokiEntry
	if mt == "application/json" {
		h.m.bytes.WithLabelValues(inputLoki).Add(float64(len(body)))
		streams, entries, herr = decodeLokiJSON(body)
	} else {
		if body, herr = h.snappyBlock(body); herr == nil {
			h.m.bytes.WithLabelValues(inputLoki).Add(float64(len(body)))
			streams, entries, herr = decodeLokiProto(body)
		}
	}
	if herr != nil {
		fail(herr)
		return
	}
	urlDomain := r.URL.Query().Get("domain")
	domains := make([]string, len(streams))
	for i, l := range streams {
		domains[i] = lokiStreamDomain(l)
	}
	res := h.ship(r.Context(), inputLoki, len(entries), func(i int) (record.Record, error) {
		e := &entries[i]
		if e.err != nil {
			return record.Record{}, e.err
		}
		d := domains[e.stream]
		if d == "" {
			d = lokiMetaDomain(e.meta)
		}
		if d == "" {
			d = urlDomain
		}
		return h.parseAccessLine([]byte(e.line), d, e.ts)
	})
	if res.storeErr != nil {
		e := h.storeError(inputLoki, res.storeErr)
		if res.accepted > 0 {
			e.msg = fmt.Sprintf("%s (%d of %d entries were stored before this)", e.msg, res.accepted, len(entries))
		}
		fail(e)
		return
	}
	if res.rejected > 0 {
		i, err := res.firstRejected()
		writeText(w, http.StatusBadRequest, fmt.Sprintf("%d of %d entries rejected (%s), %d stored; first: stream %d entry %d: %s",
			res.rejected, len(entries), res.reasonSummary(), res.accepted, entries[i].stream+1, lokiEntryNumber(entries, i), err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// lokiEntryNumber is the 1-based position of entries[i] in its stream.
func lokiEntryNumber(entries []lokiEntry, i int) int {
	n := 1
	for j := i - 1; j >= 0 && entries[j].stream == entries[i].stream; j-- {
		n++
	}
	return n
}

// lokiStreamDomain picks the domain from a stream's labels: a domain label,
// else the vhost in the log file's name.
func lokiStreamDomain(labels map[string]string) string {
	for _, k := range lokiDomainLabels {
		if v := labels[k]; v != "" {
			return v
		}
	}
	for _, k := range lokiFileLabels {
		if d := domainFromPath(labels[k]); d != "" {
			return d
		}
	}
	return ""
}

// lokiMetaDomain picks the domain from an entry's structured metadata, by
// the same keys as lokiStreamDomain.
func lokiMetaDomain(meta []push.LabelAdapter) string {
	if len(meta) == 0 {
		return ""
	}
	m := make(map[string]string, len(meta))
	for _, l := range meta {
		m[l.Name] = l.Value
	}
	return lokiStreamDomain(m)
}

// decodeLokiProto decodes a (decompressed) protobuf PushRequest.
func decodeLokiProto(b []byte) ([]map[string]string, []lokiEntry, *httpError) {
	var req push.PushRequest
	if err := req.Unmarshal(b); err != nil {
		return nil, nil, &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf("decode protobuf PushRequest: %v; nothing was stored", err)}
	}
	streams := make([]map[string]string, len(req.Streams))
	n := 0
	for i, s := range req.Streams {
		streams[i] = parseLokiLabels(s.Labels)
		n += len(s.Entries)
	}
	entries := make([]lokiEntry, 0, n)
	for i, s := range req.Streams {
		for _, e := range s.Entries {
			entries = append(entries, lokiEntry{stream: i, ts: e.Timestamp, line: e.Line, meta: e.StructuredMetadata})
		}
	}
	return streams, entries, nil
}

// decodeLokiJSON decodes the JSON form. A malformed document is refused
// whole (400); an entry whose timestamp or line has the wrong shape is
// rejected alone.
func decodeLokiJSON(b []byte) ([]map[string]string, []lokiEntry, *httpError) {
	var req struct {
		Streams []struct {
			Stream map[string]string `json:"stream"`
			Values []json.RawMessage `json:"values"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(b, &req); err != nil {
		return nil, nil, &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf("decode JSON push request: %v; nothing was stored", err)}
	}
	streams := make([]map[string]string, len(req.Streams))
	n := 0
	for i, s := range req.Streams {
		streams[i] = s.Stream
		n += len(s.Values)
	}
	entries := make([]lokiEntry, 0, n)
	for i, s := range req.Streams {
		for _, v := range s.Values {
			e := lokiEntry{stream: i}
			e.ts, e.line, e.meta, e.err = decodeLokiJSONValue(v)
			entries = append(entries, e)
		}
	}
	return streams, entries, nil
}

var errLokiValue = errors.New(`want ["<unix nanoseconds as a string>", "<line>"] with optional structured metadata`)

// decodeLokiJSONValue decodes one ["<ns>", "<line>", {metadata}] value.
// The metadata may hold strings or numbers, or be Loki's query-answer form
// {"structuredMetadata":{...},"parsed":{...}}.
func decodeLokiJSONValue(v json.RawMessage) (time.Time, string, []push.LabelAdapter, error) {
	var parts []json.RawMessage
	if err := json.Unmarshal(v, &parts); err != nil || len(parts) < 2 || len(parts) > 3 {
		return time.Time{}, "", nil, &parse.SyntaxError{Column: 1, Msg: errLokiValue.Error()}
	}
	var tsStr, line string
	if err := json.Unmarshal(parts[0], &tsStr); err != nil {
		return time.Time{}, "", nil, &record.FieldError{Field: "time", Value: record.Shorten(string(parts[0])), Reason: "the timestamp must be a string of Unix nanoseconds"}
	}
	ns, err := strconv.ParseInt(tsStr, 10, 64)
	if err != nil {
		return time.Time{}, "", nil, &record.FieldError{Field: "time", Value: record.Shorten(tsStr), Reason: "not Unix nanoseconds"}
	}
	if err := json.Unmarshal(parts[1], &line); err != nil {
		return time.Time{}, "", nil, &parse.SyntaxError{Column: 1, Msg: "the line must be a JSON string"}
	}
	var meta []push.LabelAdapter
	if len(parts) == 3 {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(parts[2], &m); err != nil {
			return time.Time{}, "", nil, &parse.SyntaxError{Column: 1, Msg: "structured metadata must be a JSON object"}
		}
		if sm, ok := m["structuredMetadata"]; ok {
			var inner map[string]json.RawMessage
			if json.Unmarshal(sm, &inner) == nil {
				m = inner
			}
		}
		for k, raw := range m {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				s = string(raw) // a number, as Loki accepts
			}
			meta = append(meta, push.LabelAdapter{Name: k, Value: s})
		}
	}
	return time.Unix(0, ns), line, meta, nil
}

// parseLokiLabels reads a stream's label string, a LogQL selector such as
// {domain="shop.example.nl", job="nginx"}. It is lenient: Alloy and Promtail
// quote values with Go's escapes, but Vector writes them without escaping,
// so a '"' inside a value arrives bare; a quote counts as the closing one
// only where a new `, name=` or the end follows it.
func parseLokiLabels(s string) map[string]string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "{")
	s = strings.TrimSuffix(s, "}")
	labels := map[string]string{}
	i := 0
	for i < len(s) {
		for i < len(s) && (s[i] == ' ' || s[i] == ',') {
			i++
		}
		ns := i
		for i < len(s) && isLabelNameByte(s[i]) {
			i++
		}
		name := s[ns:i]
		for i < len(s) && s[i] == ' ' {
			i++
		}
		if name == "" || i >= len(s) || s[i] != '=' {
			return labels // not a selector we understand; keep what was read
		}
		i++
		for i < len(s) && s[i] == ' ' {
			i++
		}
		if i >= len(s) || s[i] != '"' {
			return labels
		}
		i++
		vs := i
		for i < len(s) {
			if s[i] == '\\' && i+1 < len(s) {
				i += 2
				continue
			}
			if s[i] == '"' && lokiValueEnds(s, i+1) {
				break
			}
			i++
		}
		raw := s[vs:min(i, len(s))]
		if v, err := strconv.Unquote(`"` + raw + `"`); err == nil {
			labels[name] = v
		} else {
			labels[name] = raw
		}
		i++ // the closing quote
	}
	return labels
}

// lokiValueEnds reports whether a quote before s[j:] closes a label value:
// only spaces follow, or a comma and another `name=`.
func lokiValueEnds(s string, j int) bool {
	for j < len(s) && s[j] == ' ' {
		j++
	}
	if j == len(s) {
		return true
	}
	if s[j] != ',' {
		return false
	}
	j++
	for j < len(s) && s[j] == ' ' {
		j++
	}
	k := j
	for k < len(s) && isLabelNameByte(s[k]) {
		k++
	}
	for k < len(s) && s[k] == ' ' {
		k++
	}
	return k > j && k < len(s) && s[k] == '='
}

func isLabelNameByte(c byte) bool {
	return c == '_' || c == ':' || c == '.' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}
