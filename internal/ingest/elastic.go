package ingest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/retentiond/retentiond/internal/parse"
	"github.com/retentiond/retentiond/internal/record"
)

// Elasticsearch bulk API, as Filebeat, Logstash, Vector's elasticsearch sink
// and Fluent Bit's es output use it: POST /_bulk and POST /{index}/_bulk
// with NDJSON action and document pairs (index and create), plus the few
// calls those clients make before their first bulk request (GET and HEAD /,
// GET /_license, and the template, ILM and pipeline look-ups, answered as
// "exists" so that nothing is created).
//
// A document maps in this order (ElasticFields lists the field names):
//
//  1. its raw line (message, log or event.original) parsed as an access-log
//     line: what Filebeat's nginx and apache modules and a plain filestream
//     input send, the ECS fields being made later by an Elasticsearch ingest
//     pipeline that retentiond does not run;
//  2. else its structured fields: ECS as those ingest pipelines write it, or
//     Logstash's COMBINEDAPACHELOG grok fields.
//
// The domain is the line's own virtual host, else url.domain (and the other
// domain fields), else the vhost in the log file's name (log.file.path),
// else the request's ?domain= parameter; never host or host.name, which
// name the shipping machine.
//
// The answer is always HTTP 200 (Filebeat accepts nothing else) with one
// item per action: 201 for a stored document, 400 with an error for one
// that cannot be mapped, 429 or 503 for one that could not be stored after
// earlier ones were. When nothing at all could be stored for want of room
// or by a store failure, the whole request is answered 429 or 503, which
// every client retries.

// ElasticVersion is the Elasticsearch version GET / reports. Filebeat 8.x
// and 9.x (with allow_older_versions, the default since 8.11) and Logstash
// accept 8.x; the bulk format they send to 8.x is what retentiond reads.
const ElasticVersion = "8.19.0"

// ElasticFields are the document fields read, in order of preference.
var ElasticFields = struct {
	Line, Time, Domain, File, Path, Query, UA, IP []string
}{
	Line:   []string{"message", "log", "event.original"},
	Time:   []string{"timestamp", "@timestamp", "time"},
	Domain: []string{"url.domain", "destination.domain", "server.address", "domain", "vhost", "server_name"},
	File:   []string{"log.file.path", "file", "filename", "log.file.name"},
	Path:   []string{"url.original", "url.path", "request", "path", "uri", "request_uri"},
	Query:  []string{"url.query"},
	UA:     []string{"user_agent.original", "agent", "http_user_agent", "user_agent"},
	IP:     []string{"source.ip", "client.ip", "source.address", "client.address", "clientip", "remote_addr", "remote", "ip"},
}

// setElasticHeaders marks an answer as coming from an Elasticsearch-
// compatible API. X-Elastic-Product is sent only when the operator chose so
// (ingest.elastic_product_header): it is Elastic's product identity, which
// Logstash and the official Elastic clients insist on; Filebeat, Vector and
// Fluent Bit do not need it.
func (h *Handler) setElasticHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	if h.opts.ElasticProductHeader {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
	}
}

// ServeElastic serves the Elasticsearch-compatible API: bulk ingest and the
// start-up calls of the clients above. Mount it on the paths ElasticPaths
// lists.
func (h *Handler) ServeElastic(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case p == "/_bulk" || (strings.HasSuffix(p, "/_bulk") && strings.Count(p, "/") == 2):
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			h.elasticError(w, http.StatusMethodNotAllowed, "illegal_argument_exception", "use POST")
			return
		}
		index := strings.TrimSuffix(strings.TrimPrefix(p, "/"), "/_bulk")
		if index == "_bulk" {
			index = ""
		}
		h.serveBulk(w, r, index)
	case r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPut:
		h.elasticError(w, http.StatusMethodNotAllowed, "illegal_argument_exception", "use GET, HEAD or PUT")
	case p == "":
		h.elasticJSON(w, r, map[string]any{
			"name": "retentiond", "cluster_name": "retentiond", "cluster_uuid": "retentiond",
			"version": map[string]any{
				"number": ElasticVersion, "build_flavor": "default", "build_type": "retentiond",
				"build_snapshot": false, "minimum_wire_compatibility_version": "7.17.0",
				"minimum_index_compatibility_version": "7.0.0",
			},
			"tagline": "retentiond: Elasticsearch-compatible bulk ingest for access logs",
		})
	case p == "/_license":
		// Filebeat and Logstash refuse to ship without a licence answer;
		// "basic" is what a default Elasticsearch without a subscription
		// reports, and the only shape these clients read.
		h.elasticJSON(w, r, map[string]any{"license": map[string]any{
			"status": "active", "uid": "00000000-0000-0000-0000-000000000000", "type": "basic",
			"issue_date_in_millis": 0, "max_nodes": 1000, "issued_to": "retentiond", "issuer": "retentiond",
			"start_date_in_millis": -1,
		}})
	case p == "/_cluster/health":
		h.elasticJSON(w, r, map[string]any{"cluster_name": "retentiond", "status": "green", "number_of_nodes": 1})
	case r.Method == http.MethodPut:
		// Template, ILM policy or pipeline uploads: acknowledged and
		// ignored. retentiond has no indices; it keeps five fields.
		h.elasticJSON(w, r, map[string]any{"acknowledged": true})
	case strings.HasPrefix(p, "/_index_template/") || strings.HasPrefix(p, "/_ilm/policy/") ||
		strings.HasPrefix(p, "/_ingest/pipeline/") || strings.HasPrefix(p, "/_data_stream/"):
		// "It exists": Filebeat and Logstash then create nothing.
		name := p[strings.LastIndexByte(p, '/')+1:]
		h.elasticJSON(w, r, map[string]any{name: map[string]any{}})
	default:
		h.elasticError(w, http.StatusNotFound, "resource_not_found_exception", "retentiond serves only bulk ingest of the Elasticsearch API")
	}
}

// ElasticPaths are the server mux patterns ServeElastic answers. They name
// their methods, so that "/{index}/_bulk" does not overlap the two-segment
// look-up paths or another package's routes.
var ElasticPaths = []string{
	"GET /{$}", "POST /_bulk", "PUT /_bulk", "POST /{index}/_bulk", "GET /_license", "GET /_cluster/health",
	"GET /_index_template/{name}", "PUT /_index_template/{name}",
	"GET /_ilm/policy/{name}", "PUT /_ilm/policy/{name}",
	"GET /_ingest/pipeline/{name}", "PUT /_ingest/pipeline/{name}",
	"GET /_data_stream/{name}", "PUT /_data_stream/{name}",
}

func (h *Handler) elasticJSON(w http.ResponseWriter, r *http.Request, v any) {
	h.setElasticHeaders(w)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		json.NewEncoder(w).Encode(v)
	}
}

func (h *Handler) elasticError(w http.ResponseWriter, status int, typ, reason string) {
	h.setElasticHeaders(w)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"type": typ, "reason": reason}, "status": status})
}

// bulkAction is one action of a bulk request.
type bulkAction struct {
	op, index, id string
	doc           []byte // the source line; nil for delete
	err           error  // the action itself is not supported or malformed
}

func (h *Handler) serveBulk(w http.ResponseWriter, r *http.Request, urlIndex string) {
	start := time.Now()
	defer func() { h.m.batchDuration.WithLabelValues(inputElastic).Observe(time.Since(start).Seconds()) }()
	if e := h.shipperTurn(r.Context(), inputElastic); e != nil {
		h.elasticFail(w, e)
		return
	}
	defer h.doneTurn()
	body, herr := h.readBody(w, r, snappyIsEncoding)
	if herr != nil {
		h.elasticFail(w, herr)
		return
	}
	h.m.bytes.WithLabelValues(inputElastic).Add(float64(len(body)))
	actions, err := splitBulk(body, urlIndex)
	if err != nil {
		h.elasticFail(w, &httpError{status: http.StatusBadRequest, msg: err.Error()})
		return
	}
	urlDomain := r.URL.Query().Get("domain")
	res := h.ship(r.Context(), inputElastic, len(actions), func(i int) (record.Record, error) {
		a := &actions[i]
		if a.err != nil {
			return record.Record{}, a.err
		}
		if len(a.doc) > h.opts.MaxLineBytes {
			return record.Record{}, fmt.Errorf("%w: document of %d bytes (max %d)", errTooLong, len(a.doc), h.opts.MaxLineBytes)
		}
		return h.mapElasticDoc(a.doc, urlDomain)
	})
	if res.storeErr != nil && res.accepted == 0 {
		h.elasticFail(w, h.storeError(inputElastic, res.storeErr))
		return
	}
	var storeStatus int
	var storeType, storeReason string
	if res.storeErr != nil {
		e := h.storeError(inputElastic, res.storeErr)
		storeStatus, storeReason = e.status, e.msg
		storeType = "es_rejected_execution_exception"
		if storeStatus != http.StatusTooManyRequests {
			storeType = "unavailable_shards_exception"
		}
	}
	// Compact JSON in Elasticsearch's field order: Vector and Fluent Bit
	// look for the bytes "errors":true and "errors":false,"items":[.
	var b bytes.Buffer
	b.Grow(64 + 96*len(actions))
	fmt.Fprintf(&b, `{"took":%d,"errors":%t,"items":[`, time.Since(start).Milliseconds(), res.rejected > 0 || res.storeErr != nil)
	for i := range actions {
		a := &actions[i]
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{`)
		writeJSONString(&b, a.op)
		b.WriteString(`:{"_index":`)
		writeJSONString(&b, a.index)
		if a.id != "" {
			b.WriteString(`,"_id":`)
			writeJSONString(&b, a.id)
		}
		switch err := res.errs[i]; {
		case err == nil:
			b.WriteString(`,"_version":1,"result":"created","status":201}}`)
		case res.storeErr != nil && errors.Is(err, res.storeErr):
			fmt.Fprintf(&b, `,"status":%d,"error":{"type":%q,"reason":`, storeStatus, storeType)
			writeJSONString(&b, storeReason)
			b.WriteString(`}}}`)
		default:
			typ := "document_parsing_exception"
			if a.err != nil {
				typ = "illegal_argument_exception"
			}
			fmt.Fprintf(&b, `,"status":400,"error":{"type":%q,"reason":`, typ)
			writeJSONString(&b, err.Error())
			b.WriteString(`}}}`)
		}
	}
	b.WriteString("]}\n")
	h.setElasticHeaders(w)
	w.WriteHeader(http.StatusOK)
	w.Write(b.Bytes())
}

// elasticFail answers a request-level failure in Elasticsearch's shape.
func (h *Handler) elasticFail(w http.ResponseWriter, e *httpError) {
	if e.retryAfter != "" {
		w.Header().Set("Retry-After", e.retryAfter)
	}
	typ := "parse_exception"
	switch e.status {
	case http.StatusTooManyRequests:
		typ = "es_rejected_execution_exception"
	case http.StatusServiceUnavailable:
		typ = "unavailable_shards_exception"
	case http.StatusRequestEntityTooLarge:
		typ = "content_too_long_exception"
	case http.StatusUnsupportedMediaType:
		typ = "illegal_argument_exception"
	}
	h.elasticError(w, e.status, typ, e.msg)
}

func writeJSONString(b *bytes.Buffer, s string) {
	q, _ := json.Marshal(s)
	b.Write(q)
}

var errBulkOp = errors.New("retentiond only stores documents: use the index or create action")

// splitBulk splits a bulk body into actions. Blank lines are skipped. An
// action line that is not JSON fails the whole request, as in
// Elasticsearch, because the pairing of the lines after it is lost.
func splitBulk(body []byte, urlIndex string) ([]bulkAction, error) {
	var actions []bulkAction
	lineNo := 0
	next := func() []byte {
		for len(body) > 0 {
			lineNo++
			var line []byte
			if i := bytes.IndexByte(body, '\n'); i >= 0 {
				line, body = body[:i], body[i+1:]
			} else {
				line, body = body, nil
			}
			if line = bytes.TrimSpace(line); len(line) > 0 {
				return line
			}
		}
		return nil
	}
	for {
		line := next()
		if line == nil {
			return actions, nil
		}
		var meta map[string]struct {
			Index string          `json:"_index"`
			ID    json.RawMessage `json:"_id"`
		}
		if err := json.Unmarshal(line, &meta); err != nil || len(meta) != 1 {
			return nil, fmt.Errorf("line %d: malformed action line, expected one of index, create, update, delete; nothing was stored", lineNo)
		}
		var a bulkAction
		for op, m := range meta {
			a.op, a.index = op, m.Index
			var id string
			if json.Unmarshal(m.ID, &id) == nil {
				a.id = id
			}
		}
		if a.index == "" {
			a.index = cmp.Or(urlIndex, "retentiond")
		}
		switch a.op {
		case "index", "create":
			a.doc = next()
			if a.doc == nil {
				return nil, fmt.Errorf("line %d: %s action without a document; nothing was stored", lineNo, a.op)
			}
		case "update":
			next() // its partial document or script
			a.err = errBulkOp
		case "delete":
			a.err = errBulkOp
		default:
			return nil, fmt.Errorf("line %d: unknown action %q; nothing was stored", lineNo, record.Shorten(a.op))
		}
		actions = append(actions, a)
	}
}

// mapElasticDoc maps one bulk document to a record (see the order above).
func (h *Handler) mapElasticDoc(doc []byte, urlDomain string) (record.Record, error) {
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		return record.Record{}, &parse.SyntaxError{Column: 1, Msg: "document is not a JSON object: " + err.Error()}
	}
	f := ElasticFields
	domain := docString(m, f.Domain...)
	if domain == "" {
		for _, k := range f.File {
			if domain = domainFromPath(docString(m, k)); domain != "" {
				break
			}
		}
	}
	if domain == "" {
		domain = urlDomain
	}
	var t time.Time
	for _, k := range f.Time {
		if v, ok := docValue(m, k); ok {
			if tt, err := anyTime(v); err == nil {
				t = tt
				break
			}
		}
	}
	var lineErr error
	if line := docString(m, f.Line...); line != "" {
		rec, err := h.parseAccessLine([]byte(line), domain, t)
		if err == nil {
			return rec, nil
		}
		lineErr = err
	}
	ipStr := docString(m, f.IP...)
	if ipStr == "" {
		if lineErr != nil {
			return record.Record{}, lineErr
		}
		return record.Record{}, &record.FieldError{Field: "ip", Reason: "missing: the document has neither an access-log line (message) nor a client address (source.ip, client.ip, clientip)"}
	}
	rec := record.Record{Time: t, Domain: domain}
	ip, err := record.ParseIP(ipStr)
	if err != nil {
		return rec, err
	}
	rec.IP = ip
	if p := docString(m, f.Path...); p != "" {
		rec.Path = p
		if q := docString(m, f.Query...); q != "" && !strings.Contains(p, "?") {
			rec.Path += "?" + q
		}
		if strings.Contains(rec.Path, " HTTP/") {
			rec.Path = parse.RequestTarget(rec.Path)
		}
	}
	rec.UserAgent = docString(m, f.UA...)
	if len(rec.UserAgent) >= 2 && rec.UserAgent[0] == '"' && rec.UserAgent[len(rec.UserAgent)-1] == '"' {
		rec.UserAgent = rec.UserAgent[1 : len(rec.UserAgent)-1] // grok's QS keeps the quotes
	}
	if err := rec.Normalize(); err != nil {
		return rec, err
	}
	return rec, nil
}

// anyTime reads a time value of a document: a string in any of the JSON
// formats, or a number of epoch seconds or milliseconds.
func anyTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case string:
		return parse.ParseTime(x, false)
	case float64:
		return parse.ParseTime(strconv.FormatFloat(x, 'f', -1, 64), true)
	}
	return time.Time{}, errors.New("not a time")
}

// docString returns the first non-empty string among the fields keys.
func docString(m map[string]any, keys ...string) string {
	for _, k := range keys {
		if v, ok := docValue(m, k); ok {
			if s, ok := v.(string); ok && s != "" {
				return s
			}
		}
	}
	return ""
}

// docValue looks up a dotted field name the way Elasticsearch reads it:
// "url.original" may be a key of its own or "original" inside "url" (or
// any mix, such as "log.file" inside "log" ... ).
func docValue(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for i := 0; i < len(key); i++ {
		if key[i] != '.' {
			continue
		}
		if sub, ok := m[key[:i]].(map[string]any); ok {
			if v, ok := docValue(sub, key[i+1:]); ok {
				return v, true
			}
		}
	}
	return nil, false
}
