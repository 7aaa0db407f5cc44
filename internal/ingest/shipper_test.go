package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esutil"
	"github.com/grafana/loki/pkg/push"
	"github.com/klauspost/compress/snappy"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	collectorlogs "go.opentelemetry.io/proto/slim/otlp/collector/logs/v1"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/store"
)

// shipperServer serves the three shipper protocols on the paths the daemon
// mounts them on.
func shipperServer(t testing.TB, sink Sink, mod func(*Options)) *httptest.Server {
	opts := Options{Sink: sink}
	if mod != nil {
		mod(&opts)
	}
	h := NewHandler(opts)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /loki/api/v1/push", h.ServeLoki)
	for _, p := range ElasticPaths {
		mux.HandleFunc(p, h.ServeElastic)
	}
	for _, p := range OTLPPaths {
		mux.HandleFunc(p, h.ServeOTLP)
	}
	mux.HandleFunc("POST /api/v1/ingest", h.ServeIngest)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func rec(ts, domain, path, ua, ip string) record.Record {
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		panic(err)
	}
	return record.Record{Time: t.UTC(), Domain: domain, Path: path, UserAgent: ua, IP: netip.MustParseAddr(ip)}
}

// sameRecords compares stored records with want, ignoring order.
func sameRecords(t *testing.T, got, want []record.Record) {
	t.Helper()
	key := func(r record.Record) string {
		return r.Time.Format(time.RFC3339Nano) + "|" + r.Domain + "|" + r.Path + "|" + r.UserAgent + "|" + r.IP.String()
	}
	var g, w []string
	for _, r := range got {
		g = append(g, key(r))
	}
	for _, r := range want {
		w = append(w, key(r))
	}
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Errorf("stored records:\n got %q\nwant %q", g, w)
	}
}

func fixture(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", "shippers", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func post(t *testing.T, url, ctype, enc string, body []byte) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	if enc != "" {
		req.Header.Set("Content-Encoding", enc)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

const (
	lineA = `shop.example.nl 192.0.2.1 - - [21/Nov/2026:16:27:08 +0100] "GET /a?x=1 HTTP/1.1" 200 5 "-" "UA-a"`
	lineB = `192.0.2.2 - - [21/Nov/2026:16:27:09 +0100] "GET /b HTTP/1.1" 200 5 "-" "UA-b"`
)

// lokiProto encodes a push as Promtail and Alloy do: a logproto.PushRequest
// marshalled with Loki's own types, compressed as a snappy block.
func lokiProto(t testing.TB, streams ...push.Stream) []byte {
	b, err := (&push.PushRequest{Streams: streams}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, b)
}

// TestLokiPush: each encoding arrives with exact fields, as Promtail
// (protobuf+snappy, no encoding header), Alloy (the same with
// Content-Encoding: snappy), Vector (JSON with a third element, gzip) and
// Fluent Bit (JSON, the line wrapped in {"log":...}) send it. The domain
// comes from the line, else a domain label, else the file name.
func TestLokiPush(t *testing.T) {
	ts := time.Date(2026, 11, 21, 15, 0, 0, 0, time.UTC)
	protoBody := lokiProto(t,
		push.Stream{Labels: `{filename="/var/log/nginx/access.log", job="nginx"}`, Entries: []push.Entry{{Timestamp: ts, Line: lineA}}},
		push.Stream{Labels: `{host="web01", job="nginx", vhost="blog.example.org"}`, Entries: []push.Entry{
			{Timestamp: ts, Line: lineB},
			// JSON line without a time: the entry's timestamp.
			{Timestamp: ts, Line: `{"remote_addr":"192.0.2.3","request_uri":"/c","http_user_agent":"UA-c"}`},
		}},
	)
	want := []record.Record{
		rec("2026-11-21T15:27:08Z", "shop.example.nl", "/a?x=1", "UA-a", "192.0.2.1"),
		rec("2026-11-21T15:27:09Z", "blog.example.org", "/b", "UA-b", "192.0.2.2"),
		rec("2026-11-21T15:00:00Z", "blog.example.org", "/c", "UA-c", "192.0.2.3"),
	}
	tests := []struct {
		name, ctype, enc string
		body             []byte
		want             []record.Record
	}{
		{"promtail protobuf", "application/x-protobuf", "", protoBody, want},
		{"alloy protobuf, Content-Encoding snappy", "application/x-protobuf", "snappy", protoBody, want},
		{"vector JSON gzip", "application/json", "gzip", []byte(gz(string(fixture(t, "vector-loki.json")))),
			[]record.Record{rec("2026-11-21T15:27:08Z", "shop.example.nl", "/cart?id=7", "Mozilla/5.0 (X11; Linux x86_64)", "203.0.113.9")}},
		{"fluent bit JSON", "application/json", "", fixture(t, "fluentbit-loki.json"),
			[]record.Record{rec("2026-11-21T15:27:09Z", "blog.example.org", "/post/1", "curl/8.5.0", "2001:db8::7")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := &memSink{}
			srv := shipperServer(t, sink, nil)
			resp, body := post(t, srv.URL+"/loki/api/v1/push", tc.ctype, tc.enc, tc.body)
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("status %d (%s), want 204", resp.StatusCode, body)
			}
			sameRecords(t, sink.all(), tc.want)
		})
	}
}

// TestLokiPartialFailure: a batch with unmappable entries stores the good
// ones and answers 400 with a one-line reason, as Loki does for entries
// that fail validation (clients do not resend a 400).
func TestLokiPartialFailure(t *testing.T) {
	ts := time.Date(2026, 11, 21, 15, 0, 0, 0, time.UTC)
	body := lokiProto(t, push.Stream{Labels: `{job="nginx"}`, Entries: []push.Entry{
		{Timestamp: ts, Line: lineA},
		{Timestamp: ts, Line: "not an access log line"},
		{Timestamp: ts, Line: lineB}, // combined, and no domain label: no domain
	}})
	sink := &memSink{}
	srv := shipperServer(t, sink, nil)
	resp, msg := post(t, srv.URL+"/loki/api/v1/push", "application/x-protobuf", "", body)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
	if !strings.HasPrefix(msg, "2 of 3 entries rejected (domain=1 ip=1), 1 stored; first: stream 1 entry 2:") || strings.Count(msg, "\n") != 1 {
		t.Errorf("answer %q", msg)
	}
	sameRecords(t, sink.all(), []record.Record{rec("2026-11-21T15:27:08Z", "shop.example.nl", "/a?x=1", "UA-a", "192.0.2.1")})
}

// TestElasticBulkDocuments: the documents each shipper writes map with
// exact fields: Filebeat's raw module line, ECS as the ingest pipelines
// write it, Logstash's grok (legacy and ECS names), Fluent Bit's es output
// (with _type) and Vector's bulk mode. The answer is exactly 200, compact,
// one item per action.
func TestElasticBulkDocuments(t *testing.T) {
	tests := []struct {
		fixture string
		want    []record.Record
	}{
		{"filebeat-es.ndjson", []record.Record{rec("2026-11-21T15:27:12Z", "shop.example.nl", "/fb", "Filebeat-raw", "192.0.2.20")}},
		{"ecs-es.ndjson", []record.Record{rec("2026-11-21T15:27:13Z", "shop.example.nl", "/ecs?b=c", "Mozilla/5.0 ECS", "192.0.2.33")}},
		{"logstash-grok-es.ndjson", []record.Record{
			rec("2026-11-21T15:27:14Z", "shop.example.nl", "/grok?x=1", "Mozilla/5.0 grok", "192.0.2.44"),
			rec("2026-11-21T15:27:15Z", "shop.example.nl", "/grok-ecs", "Mozilla/5.0 grok-ecs", "192.0.2.45"),
		}},
		{"fluentbit-es.ndjson", []record.Record{rec("2026-11-21T15:27:10Z", "shop.example.nl", "/", "Wget/1.21", "198.51.100.4")}},
		{"vector-es.ndjson", []record.Record{rec("2026-11-21T15:27:11Z", "shop.example.nl", "/v?q=1", "Vector-test/1.0", "192.0.2.10")}},
	}
	for _, tc := range tests {
		t.Run(tc.fixture, func(t *testing.T) {
			sink := &memSink{}
			srv := shipperServer(t, sink, nil)
			resp, body := post(t, srv.URL+"/_bulk?filter_path=errors,items.*.error,items.*.status", "application/x-ndjson", "gzip", []byte(gz(string(fixture(t, tc.fixture)))))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d, want exactly 200: %s", resp.StatusCode, body)
			}
			if !strings.Contains(body, `"errors":false,"items":[`) || strings.Count(body, `"status":201`) != len(tc.want) {
				t.Errorf("answer %s", body)
			}
			if resp.Header.Get("X-Elastic-Product") != "" {
				t.Error("X-Elastic-Product sent although ingest.elastic_product_header is off")
			}
			sameRecords(t, sink.all(), tc.want)
		})
	}
}

// TestElasticBulkIndexer: the official go-elasticsearch bulk indexer (which
// insists on X-Elastic-Product, hence the option) ships documents through
// /{index}/_bulk; the unmappable one fails alone with a 400 item, the
// others are stored.
func TestElasticBulkIndexer(t *testing.T) {
	sink := &memSink{}
	srv := shipperServer(t, sink, func(o *Options) { o.ElasticProductHeader = true })
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{srv.URL}, Username: "filebeat", Password: "token"})
	if err != nil {
		t.Fatal(err)
	}
	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{Client: es, Index: "weblogs", NumWorkers: 1, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	docs := []string{
		`{"@timestamp":"2026-11-21T15:40:00Z","message":` + jsonQuote(lineA) + `}`,
		`{"@timestamp":"2026-11-21T15:40:00Z","message":"garbage that is no access log"}`,
		`{"source":{"ip":"192.0.2.9"},"url":{"path":"/p","query":"q=1","domain":"x.example.nl"},"user_agent":{"original":"UA-p"},"@timestamp":"2026-11-21T15:41:00.5Z"}`,
	}
	var mu sync.Mutex
	var ok, failed []int
	for i, d := range docs {
		action := "create"
		if i == 2 {
			action = "index"
		}
		err := bi.Add(context.Background(), esutil.BulkIndexerItem{
			Action: action, Body: strings.NewReader(d),
			OnSuccess: func(_ context.Context, _ esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem) {
				mu.Lock()
				defer mu.Unlock()
				ok = append(ok, i)
			},
			OnFailure: func(_ context.Context, _ esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem, err error) {
				mu.Lock()
				defer mu.Unlock()
				if res.Status != 400 || res.Error.Type != "document_parsing_exception" {
					t.Errorf("item %d: status %d error %+v (%v)", i, res.Status, res.Error, err)
				}
				failed = append(failed, i)
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := bi.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	slices.Sort(ok)
	if !slices.Equal(ok, []int{0, 2}) || !slices.Equal(failed, []int{1}) {
		t.Errorf("succeeded %v, failed %v; want [0 2] and [1]", ok, failed)
	}
	if st := bi.Stats(); st.NumFlushed != 2 || st.NumFailed != 1 {
		t.Errorf("indexer stats %+v", st)
	}
	sameRecords(t, sink.all(), []record.Record{
		rec("2026-11-21T15:27:08Z", "shop.example.nl", "/a?x=1", "UA-a", "192.0.2.1"),
		rec("2026-11-21T15:41:00.5Z", "x.example.nl", "/p?q=1", "UA-p", "192.0.2.9"),
	})
}

func jsonQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestElasticStartupCalls: what Filebeat and Logstash call before their
// first bulk request answers as they need it (research note 07 §2.2, §2.3),
// and a template or pipeline "exists" so that nothing is uploaded.
func TestElasticStartupCalls(t *testing.T) {
	for _, header := range []bool{false, true} {
		srv := shipperServer(t, &memSink{}, func(o *Options) { o.ElasticProductHeader = header })
		get := func(method, path string) (*http.Response, map[string]any) {
			req, _ := http.NewRequest(method, srv.URL+path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var m map[string]any
			json.NewDecoder(resp.Body).Decode(&m)
			return resp, m
		}
		resp, info := get("GET", "/")
		v, _ := info["version"].(map[string]any)
		if resp.StatusCode != 200 || v["number"] != ElasticVersion || v["build_flavor"] != "default" || info["name"] == nil {
			t.Errorf("GET /: %d %v", resp.StatusCode, info)
		}
		if got := resp.Header.Get("X-Elastic-Product") == "Elasticsearch"; got != header {
			t.Errorf("elastic_product_header=%v: X-Elastic-Product sent: %v", header, got)
		}
		if resp, _ := get("HEAD", "/"); resp.StatusCode != 200 {
			t.Errorf("HEAD /: %d", resp.StatusCode)
		}
		resp, lic := get("GET", "/_license?human=false")
		l, _ := lic["license"].(map[string]any)
		if resp.StatusCode != 200 || l["status"] != "active" || l["type"] != "basic" || l["uid"] == "" {
			t.Errorf("GET /_license: %d %v", resp.StatusCode, lic)
		}
		for _, p := range []string{"HEAD /_index_template/filebeat-8.19.0", "GET /_ilm/policy/filebeat", "GET /_ingest/pipeline/filebeat-8.19.0-nginx-access-pipeline", "GET /_cluster/health"} {
			m, path, _ := strings.Cut(p, " ")
			if resp, _ := get(m, path); resp.StatusCode != 200 {
				t.Errorf("%s: %d", p, resp.StatusCode)
			}
		}
	}
}

// TestElasticBulkPartial: unmappable documents and unsupported actions get
// a 400 item each and errors:true; the others are stored; malformed action
// lines fail the request.
func TestElasticBulkPartial(t *testing.T) {
	sink := &memSink{}
	srv := shipperServer(t, sink, nil)
	body := `{"create":{"_index":"a"}}` + "\n" + `{"message":` + jsonQuote(lineA) + `}` + "\n" +
		`{"delete":{"_index":"a","_id":"1"}}` + "\n" +
		`{"index":{"_index":"a","_id":"7"}}` + "\n" + `{"message":"nonsense"}` + "\n" +
		`{"create":{}}` + "\n" + `{"message":` + jsonQuote(lineB) + `}` + "\n"
	resp, out := post(t, srv.URL+"/weblogs/_bulk?domain=fallback.example.nl", "application/json", "", []byte(body))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var ans struct {
		Errors bool
		Items  []map[string]struct {
			Index  string `json:"_index"`
			ID     string `json:"_id"`
			Status int
			Error  struct{ Type, Reason string }
		}
	}
	if err := json.Unmarshal([]byte(out), &ans); err != nil {
		t.Fatal(err)
	}
	if !ans.Errors || len(ans.Items) != 4 {
		t.Fatalf("answer %s", out)
	}
	wantStatus := []struct {
		op     string
		status int
		index  string
	}{{"create", 201, "a"}, {"delete", 400, "a"}, {"index", 400, "a"}, {"create", 201, "weblogs"}}
	for i, w := range wantStatus {
		it, ok := ans.Items[i][w.op]
		if !ok || it.Status != w.status || it.Index != w.index || (w.status == 400) != (it.Error.Type != "") {
			t.Errorf("item %d: %+v, want %s %d", i, ans.Items[i], w.op, w.status)
		}
	}
	sameRecords(t, sink.all(), []record.Record{
		rec("2026-11-21T15:27:08Z", "shop.example.nl", "/a?x=1", "UA-a", "192.0.2.1"),
		rec("2026-11-21T15:27:09Z", "fallback.example.nl", "/b", "UA-b", "192.0.2.2"),
	})
	if resp, _ := post(t, srv.URL+"/_bulk", "application/json", "", []byte("{not json\n{}\n")); resp.StatusCode != 400 {
		t.Errorf("malformed action line: status %d, want 400", resp.StatusCode)
	}
}

// TestOTLPExporter: the OpenTelemetry Go SDK's otlploghttp exporter
// (protobuf, gzip) delivers a filelog-style record (the line as body, the
// file name as attribute) and a semantic-conventions record with exact
// fields; an unmappable record comes back as partialSuccess, which the
// exporter reports, and the others are stored.
func TestOTLPExporter(t *testing.T) {
	sink := &memSink{}
	srv := shipperServer(t, sink, nil)
	var mu sync.Mutex
	var handled []error
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		handled = append(handled, err)
	}))
	ctx := context.Background()
	exp, err := otlploghttp.New(ctx, otlploghttp.WithEndpointURL(srv.URL+"/v1/logs"), otlploghttp.WithCompression(otlploghttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewBatchProcessor(exp)))
	logger := lp.Logger("filelog")
	emit := func(body string, observed, ts time.Time, attrs ...attribute.KeyValue) {
		var r otellog.Record
		r.SetBody(attribute.StringValue(body))
		r.SetObservedTimestamp(observed)
		r.SetTimestamp(ts)
		r.AddAttributes(attrs...)
		logger.Emit(ctx, r)
	}
	obs := time.Date(2026, 11, 21, 15, 50, 0, 0, time.UTC)
	emit(lineB, obs, time.Time{}, attribute.String("log.file.name", "shop.example.nl.access.log"))
	emit("GET /api", obs, time.Date(2026, 11, 21, 15, 27, 20, 0, time.UTC),
		attribute.String("client.address", "2001:db8::51"), attribute.String("server.address", "api.example.nl"),
		attribute.String("url.path", "/api/v2"), attribute.String("url.query", "k=v"), attribute.String("user_agent.original", "UA-api"))
	emit("no access log here", obs, time.Time{})
	// The exporter returns the partial success as its export error
	// (surfacing from Shutdown's final flush, or the error handler).
	reported := lp.Shutdown(ctx)
	sameRecords(t, sink.all(), []record.Record{
		rec("2026-11-21T15:27:09Z", "shop.example.nl", "/b", "UA-b", "192.0.2.2"),
		rec("2026-11-21T15:27:20Z", "api.example.nl", "/api/v2?k=v", "UA-api", "2001:db8::51"),
	})
	mu.Lock()
	defer mu.Unlock()
	all := errors.Join(append(handled, reported)...)
	if all == nil || strings.Count(all.Error(), "partial success: 1 of 3 log records rejected (ip=1); first: record 3:") != 1 {
		t.Errorf("exporter reported %v, want one partial success with 1 rejected record", all)
	}
}

// TestOTLPJSON: OTLP/JSON (the Collector's otlphttp exporter with encoding
// json): string and number 64-bit ints, hex trace ids, unknown fields; the
// answer is JSON too.
func TestOTLPJSON(t *testing.T) {
	sink := &memSink{}
	srv := shipperServer(t, sink, nil)
	resp, body := post(t, srv.URL+"/otlp/v1/logs", "application/json", "", fixture(t, "otlp-logs.json"))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || strings.TrimSpace(body) != "{}" {
		t.Fatalf("status %d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	sameRecords(t, sink.all(), []record.Record{
		rec("2026-11-21T15:27:16Z", "shop.example.nl", "/otel", "otel-filelog", "203.0.113.50"),
		rec("2026-11-21T16:27:17Z", "api.example.nl", "/api/v2?k=v", "otel-semconv", "2001:db8::51"),
	})
}

// TestShipperStoreErrors: a saturated write path is 429 with Retry-After
// and a store failure 503 on every protocol, never 500 (the OpenTelemetry
// Collector drops data on 500); _bulk keeps Elasticsearch's error shape.
func TestShipperStoreErrors(t *testing.T) {
	ts := time.Date(2026, 11, 21, 15, 0, 0, 0, time.UTC)
	lokiBody := lokiProto(t, push.Stream{Labels: `{job="x"}`, Entries: []push.Entry{{Timestamp: ts, Line: lineA}}})
	bulk := []byte(`{"create":{}}` + "\n" + `{"message":` + jsonQuote(lineA) + `}` + "\n")
	for _, tc := range []struct {
		err    error
		status int
		retry  string
	}{{store.ErrBusy, 429, "1"}, {errors.New("sync wal: input/output error"), 503, "5"}} {
		sink := &memSink{err: tc.err}
		srv := shipperServer(t, sink, nil)
		for _, p := range []struct {
			path, ctype string
			body        []byte
		}{
			{"/loki/api/v1/push", "application/x-protobuf", lokiBody},
			{"/_bulk", "application/x-ndjson", bulk},
			{"/v1/logs", "application/json", fixture(t, "otlp-logs.json")},
		} {
			resp, body := post(t, srv.URL+p.path, p.ctype, "", p.body)
			if resp.StatusCode != tc.status || resp.Header.Get("Retry-After") != tc.retry {
				t.Errorf("%s with %v: status %d Retry-After %q, want %d %q (%s)", p.path, tc.err, resp.StatusCode, resp.Header.Get("Retry-After"), tc.status, tc.retry, body)
			}
		}
	}
}

func TestDomainFromPath(t *testing.T) {
	tests := map[string]string{
		"/var/log/nginx/shop.example.nl.access.log":        "shop.example.nl",
		"/var/log/nginx/shop.example.nl-access.log":        "shop.example.nl",
		"/var/log/apache2/shop.example.nl_access_log.1.gz": "shop.example.nl",
		"/var/log/httpd/access-Shop.Example.NL.log":        "shop.example.nl",
		"/var/log/nginx/ssl-shop.example.nl-20261121.log":  "shop.example.nl",
		"/var/www/shop.example.nl/logs/access.log":         "shop.example.nl",
		`C:\logs\bücher.example\access.log`:                "bücher.example",
		"/var/log/nginx/access.log":                        "",
		"/var/log/apache2/other_vhosts_access.log":         "",
		"/opt/nginx-1.24.0/logs/access.log":                "",
		"access.log.1":                                     "",
		"":                                                 "",
	}
	for in, want := range tests {
		if got := domainFromPath(in); got != want {
			t.Errorf("domainFromPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseLokiLabels(t *testing.T) {
	tests := map[string]map[string]string{
		`{domain="shop.example.nl", job="nginx"}`:  {"domain": "shop.example.nl", "job": "nginx"},
		`{a="x\"y", b="tab\there"}`:                {"a": `x"y`, "b": "tab\there"},
		`{a="say "hi"", b="c"}`:                    {"a": `say "hi"`, "b": "c"}, // Vector: no escaping
		`{filename="/var/log/x, y=z.log",job="n"}`: {"filename": "/var/log/x, y=z.log", "job": "n"},
		`{}`:      {},
		`garbage`: {},
	}
	for in, want := range tests {
		got := parseLokiLabels(in)
		if len(got) != len(want) {
			t.Errorf("parseLokiLabels(%q) = %q, want %q", in, got, want)
			continue
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("parseLokiLabels(%q)[%q] = %q, want %q", in, k, got[k], v)
			}
		}
	}
}

// FuzzLokiPush: any body, in either encoding, is answered without a panic
// and without a 500.
func FuzzLokiPush(f *testing.F) {
	f.Add([]byte(`{"streams":[{"stream":{"vhost":"a.example"},"values":[["1","`+strings.ReplaceAll(lineB, `"`, `\"`)+`"]]}]}`), true)
	f.Add(lokiProto(f, push.Stream{Labels: `{a="b"}`, Entries: []push.Entry{{Line: lineA}}}), false)
	h := NewHandler(Options{Sink: &memSink{}, MaxBodyBytes: 1 << 20})
	f.Fuzz(func(t *testing.T, body []byte, isJSON bool) {
		req := httptest.NewRequest("POST", "/loki/api/v1/push", bytes.NewReader(body))
		req.Header.Set("Content-Type", map[bool]string{true: "application/json", false: "application/x-protobuf"}[isJSON])
		w := httptest.NewRecorder()
		h.ServeLoki(w, req)
		if w.Code >= 500 {
			t.Fatalf("status %d", w.Code)
		}
		parseLokiLabels(string(body))
	})
}

// FuzzElasticBulk: any bulk body is answered 200 with one item per action
// or refused whole with 400, never a panic.
func FuzzElasticBulk(f *testing.F) {
	for _, name := range []string{"filebeat-es.ndjson", "ecs-es.ndjson", "logstash-grok-es.ndjson", "fluentbit-es.ndjson", "vector-es.ndjson"} {
		f.Add(fixture(f, name))
	}
	h := NewHandler(Options{Sink: &memSink{}, MaxBodyBytes: 1 << 20})
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/_bulk", bytes.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeElastic(w, req)
		if w.Code != 200 && w.Code != 400 {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		if w.Code == 200 && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("invalid JSON answer %s", w.Body)
		}
	})
}

// FuzzOTLPLogs: any OTLP body, protobuf or JSON, is answered without a
// panic and without a 500.
func FuzzOTLPLogs(f *testing.F) {
	f.Add(fixture(f, "otlp-logs.json"), true)
	var req collectorlogs.ExportLogsServiceRequest
	if err := protojsonUnmarshal(fixture(f, "otlp-logs.json"), &req); err != nil {
		f.Fatal(err)
	}
	pb, _ := proto.Marshal(&req)
	f.Add(pb, false)
	h := NewHandler(Options{Sink: &memSink{}, MaxBodyBytes: 1 << 20})
	f.Fuzz(func(t *testing.T, body []byte, isJSON bool) {
		r := httptest.NewRequest("POST", "/v1/logs", bytes.NewReader(body))
		r.Header.Set("Content-Type", map[bool]string{true: "application/json", false: "application/x-protobuf"}[isJSON])
		w := httptest.NewRecorder()
		h.ServeOTLP(w, r)
		if w.Code >= 500 {
			t.Fatalf("status %d", w.Code)
		}
	})
}

// FuzzDomainFromPath: whatever the path, a domain found is a normalised
// host name.
func FuzzDomainFromPath(f *testing.F) {
	f.Add("/var/log/nginx/shop.example.nl-access.log.1.gz")
	f.Add("/var/www/shop.example.nl/logs/access.log")
	f.Fuzz(func(t *testing.T, p string) {
		d := domainFromPath(p)
		if d == "" {
			return
		}
		if n, err := record.NormalizeDomain(d); err != nil || n != d {
			t.Fatalf("domainFromPath(%q) = %q, not a normalised host name (%v)", p, d, err)
		}
	})
}

func protojsonUnmarshal(b []byte, m proto.Message) error {
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, m)
}

// TestShipperAdmission: the shipper endpoints share /api/v1/ingest's bound
// on concurrent requests (429 with Retry-After when no turn comes within
// QueueTimeout) and store through the store's head-memory reservations: a
// batch larger than one reservation is stored whole, in pieces.
func TestShipperAdmission(t *testing.T) {
	t.Run("concurrency", func(t *testing.T) {
		sink := &gateSink{gate: make(chan struct{})}
		srv := shipperServer(t, sink, func(o *Options) { o.MaxConcurrent = 1; o.QueueTimeout = 50 * time.Millisecond })
		ts := time.Date(2026, 11, 21, 15, 0, 0, 0, time.UTC)
		done := make(chan int)
		go func() {
			resp, err := http.Post(srv.URL+"/loki/api/v1/push", "application/x-protobuf",
				bytes.NewReader(lokiProto(t, push.Stream{Labels: `{}`, Entries: []push.Entry{{Timestamp: ts, Line: lineA}}})))
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		time.Sleep(100 * time.Millisecond) // the first request holds the only turn, blocked in the sink
		for _, p := range []struct{ path, ctype, body string }{
			{"/_bulk", "application/x-ndjson", `{"create":{}}` + "\n" + `{"message":` + jsonQuote(lineA) + "}\n"},
			{"/v1/logs", "application/json", string(fixture(t, "otlp-logs.json"))},
		} {
			resp, body := post(t, srv.URL+p.path, p.ctype, "", []byte(p.body))
			if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
				t.Errorf("%s while the turn is taken: %d %q (%s), want 429 with Retry-After", p.path, resp.StatusCode, resp.Header.Get("Retry-After"), body)
			}
		}
		close(sink.gate)
		if code := <-done; code != 204 {
			t.Errorf("first request: %d, want 204", code)
		}
	})
	t.Run("reservations", func(t *testing.T) {
		st, err := store.Open(t.TempDir(), store.Options{HeadMaxBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		srv := shipperServer(t, storeSink(st), nil)
		ts := time.Date(2026, 11, 21, 15, 0, 0, 0, time.UTC)
		var entries []push.Entry
		for range 3000 { // ~600 KiB of records: several times one reservation (HeadMaxBytes/8)
			entries = append(entries, push.Entry{Timestamp: ts, Line: lineA})
		}
		resp, body := post(t, srv.URL+"/loki/api/v1/push", "application/x-protobuf", "", lokiProto(t, push.Stream{Labels: `{}`, Entries: entries}))
		if resp.StatusCode != 204 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		snap, err := st.Snapshot(ts.Add(-time.Hour), ts.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		defer snap.Release()
		n := 0
		for _, d := range snap.Days {
			n += d.Head.Len()
			for _, sg := range d.Segments {
				for i := range sg.NumBlocks() {
					n += int(sg.Block(i).Rows)
				}
			}
		}
		if n != 3000 {
			t.Errorf("stored %d records, want 3000", n)
		}
	})
}
