package ingest

import (
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	collectorlogs "go.opentelemetry.io/proto/slim/otlp/collector/logs/v1"
	common "go.opentelemetry.io/proto/slim/otlp/common/v1"
	logs "go.opentelemetry.io/proto/slim/otlp/logs/v1"

	"github.com/retentiond/retentiond/internal/record"
)

// OTLP logs over HTTP (POST /v1/logs, and /otlp/v1/logs as Loki serves
// it): the OpenTelemetry Collector's otlphttp exporter, Grafana Alloy,
// Vector's and Fluent Bit's opentelemetry outputs. Bodies are
// ExportLogsServiceRequest messages in protobuf (application/x-protobuf) or
// OTLP/JSON (application/json), optionally gzip, deflate, zstd or snappy
// encoded. The messages are OpenTelemetry's own (go.opentelemetry.io/proto/
// slim/otlp: the same generated types as go.opentelemetry.io/proto/otlp,
// under their own protobuf namespace and without gRPC).
//
// A record maps from its body when that is an access-log line (what the
// Collector's filelog receiver sends), else from the HTTP semantic
// conventions (OTLPAttributes) looked up in the record's attributes, then
// its resource's, then a map-valued body. The domain is the line's own,
// else server.address or url.domain, else the vhost in log.file.path or
// log.file.name, else the request's ?domain= parameter. The time is the
// line's own, else time_unix_nano, else observed_time_unix_nano (filelog
// leaves time_unix_nano 0 unless a parser sets it).
//
// The answer is 200 with an ExportLogsServiceResponse in the request's
// encoding, carrying partial_success (rejected_log_records and the first
// reason) when some records could not be mapped: the spec tells clients not
// to retry those. Failures are 400 (bad body, never retried), 413, 415, and
// 429 or 503 with Retry-After, with a google.rpc.Status body; never 500,
// which the Collector treats as permanent and drops.

// OTLPAttributes are the attribute keys read, in order of preference.
var OTLPAttributes = struct {
	Domain, File, Path, Query, Full, UA, IP []string
}{
	Domain: []string{"server.address", "url.domain"},
	File:   []string{"log.file.path", "log.file.name"},
	Path:   []string{"url.path", "url.original"},
	Query:  []string{"url.query"},
	Full:   []string{"url.full"},
	UA:     []string{"user_agent.original", "http.user_agent"},
	IP:     []string{"client.address", "source.address", "http.client_ip", "net.peer.ip"},
}

// OTLPPaths are the server mux patterns ServeOTLP answers.
var OTLPPaths = []string{"POST /v1/logs", "POST /otlp/v1/logs"}

// otlpItem is one log record with its resource.
type otlpItem struct {
	rec *logs.LogRecord
	res []*common.KeyValue
}

// ServeOTLP handles POST /v1/logs.
func (h *Handler) ServeOTLP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { h.m.batchDuration.WithLabelValues(inputOTLP).Observe(time.Since(start).Seconds()) }()
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	isJSON := mt == "application/json"
	if !isJSON && mt != "application/x-protobuf" && mt != "application/protobuf" {
		h.otlpFail(w, isJSON, &httpError{status: http.StatusUnsupportedMediaType,
			msg: fmt.Sprintf("unsupported Content-Type %q: use application/x-protobuf or application/json", record.Shorten(mt))})
		return
	}
	if e := h.shipperTurn(r.Context(), inputOTLP); e != nil {
		h.otlpFail(w, isJSON, e)
		return
	}
	defer h.doneTurn()
	body, herr := h.readBody(w, r, snappyIsEncoding)
	if herr != nil {
		h.otlpFail(w, isJSON, herr)
		return
	}
	h.m.bytes.WithLabelValues(inputOTLP).Add(float64(len(body)))
	var req collectorlogs.ExportLogsServiceRequest
	var err error
	if isJSON {
		// Unknown fields must be ignored (OTLP/JSON). Trace and span ids are
		// hex there, not base64; they are never read, so protojson's
		// reading of them does not matter.
		err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(body, &req)
	} else {
		err = proto.Unmarshal(body, &req)
	}
	if err != nil {
		h.otlpFail(w, isJSON, &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf("decode ExportLogsServiceRequest: %v; nothing was stored", err)})
		return
	}
	var items []otlpItem
	for _, rl := range req.GetResourceLogs() {
		res := rl.GetResource().GetAttributes()
		for _, sl := range rl.GetScopeLogs() {
			for _, lr := range sl.GetLogRecords() {
				items = append(items, otlpItem{rec: lr, res: res})
			}
		}
	}
	urlDomain := r.URL.Query().Get("domain")
	res := h.ship(r.Context(), inputOTLP, len(items), func(i int) (record.Record, error) {
		return h.mapOTLP(&items[i], urlDomain)
	})
	if res.storeErr != nil {
		// OTLP has no per-record retry: a client resends the whole request
		// after a 429/503, duplicating records of chunks stored before the
		// failure, which is better than losing the rest.
		h.otlpFail(w, isJSON, h.storeError(inputOTLP, res.storeErr))
		return
	}
	var ans collectorlogs.ExportLogsServiceResponse
	if res.rejected > 0 {
		i, err := res.firstRejected()
		ans.PartialSuccess = &collectorlogs.ExportLogsPartialSuccess{
			RejectedLogRecords: int64(res.rejected),
			ErrorMessage: fmt.Sprintf("%d of %d log records rejected (%s); first: record %d: %v",
				res.rejected, len(items), res.reasonSummary(), i+1, err),
		}
	}
	h.otlpWrite(w, isJSON, http.StatusOK, &ans)
}

func (h *Handler) otlpWrite(w http.ResponseWriter, isJSON bool, status int, m proto.Message) {
	var b []byte
	if isJSON {
		b, _ = protojson.Marshal(m)
		w.Header().Set("Content-Type", "application/json")
	} else {
		b, _ = proto.Marshal(m)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}
	w.WriteHeader(status)
	w.Write(b)
}

// otlpFail answers a failure with a google.rpc.Status, as the spec asks.
func (h *Handler) otlpFail(w http.ResponseWriter, isJSON bool, e *httpError) {
	if e.retryAfter != "" {
		w.Header().Set("Retry-After", e.retryAfter)
	}
	code := codes.InvalidArgument
	switch e.status {
	case http.StatusTooManyRequests:
		code = codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		code = codes.Unavailable
	case http.StatusRequestEntityTooLarge:
		code = codes.ResourceExhausted
	}
	h.otlpWrite(w, isJSON, e.status, &rpcstatus.Status{Code: int32(code), Message: e.msg})
}

// mapOTLP maps one log record (see the order above).
func (h *Handler) mapOTLP(it *otlpItem, urlDomain string) (record.Record, error) {
	lr := it.rec
	var bodyMap []*common.KeyValue
	var line string
	switch b := lr.GetBody().GetValue().(type) {
	case *common.AnyValue_StringValue:
		line = b.StringValue
	case *common.AnyValue_BytesValue:
		line = string(b.BytesValue)
	case *common.AnyValue_KvlistValue:
		bodyMap = b.KvlistValue.GetValues()
	}
	get := func(keys []string) string {
		for _, k := range keys {
			for _, kvs := range [][]*common.KeyValue{lr.GetAttributes(), it.res, bodyMap} {
				for _, kv := range kvs {
					if kv.GetKey() == k {
						if s := anyString(kv.GetValue()); s != "" {
							return s
						}
					}
				}
			}
		}
		return ""
	}
	a := OTLPAttributes
	domain := get(a.Domain)
	if domain == "" {
		for _, k := range a.File {
			if domain = domainFromPath(get([]string{k})); domain != "" {
				break
			}
		}
	}
	if domain == "" {
		domain = urlDomain
	}
	t := time.Time{}
	if ns := lr.GetTimeUnixNano(); ns != 0 {
		t = time.Unix(0, int64(ns))
	} else if ns := lr.GetObservedTimeUnixNano(); ns != 0 {
		t = time.Unix(0, int64(ns))
	}
	var lineErr error
	if line != "" {
		rec, err := h.parseAccessLine([]byte(line), domain, t)
		if err == nil {
			return rec, nil
		}
		lineErr = err
	}
	ipStr := get(a.IP)
	if ipStr == "" {
		if lineErr != nil {
			return record.Record{}, lineErr
		}
		return record.Record{}, &record.FieldError{Field: "ip", Reason: "missing: the record has neither an access-log line as body nor client.address"}
	}
	rec := record.Record{Time: t, Domain: domain}
	ip, err := record.ParseIP(ipStr)
	if err != nil {
		return rec, err
	}
	rec.IP = ip
	if p := get(a.Path); p != "" {
		rec.Path = p
		if q := get(a.Query); q != "" {
			rec.Path += "?" + q
		}
	} else if full := get(a.Full); full != "" {
		if u, err := url.Parse(full); err == nil {
			rec.Path = u.RequestURI()
			if rec.Domain == "" {
				rec.Domain = u.Hostname()
			}
		}
	}
	rec.UserAgent = get(a.UA)
	if err := rec.Normalize(); err != nil {
		return rec, err
	}
	return rec, nil
}

// anyString renders a scalar attribute value as a string.
func anyString(v *common.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *common.AnyValue_StringValue:
		return x.StringValue
	case *common.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *common.AnyValue_BytesValue:
		return string(x.BytesValue)
	}
	return ""
}
