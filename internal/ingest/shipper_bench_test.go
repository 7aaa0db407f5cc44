package ingest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grafana/loki/pkg/push"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	collectorlogs "go.opentelemetry.io/proto/slim/otlp/collector/logs/v1"
	common "go.opentelemetry.io/proto/slim/otlp/common/v1"
	logs "go.opentelemetry.io/proto/slim/otlp/logs/v1"

	"github.com/retentiond/retentiond/internal/record"
)

// countSink counts records and stores nothing, so that the benchmark
// measures the protocols (decode, map, answer), not the fsync.
type countSink struct{ n atomic.Int64 }

func (s *countSink) Append(_ context.Context, recs []record.Record) error {
	s.n.Add(int64(len(recs)))
	return nil
}

// BenchmarkShipperEndpoints posts the same 1,000 pageviews per request over
// loopback to each shipper endpoint and to the native NDJSON endpoint, in
// one run, and reports records/s and CPU microseconds per record (client
// encoding excluded: bodies are built once; server and HTTP client share the
// process).
func BenchmarkShipperEndpoints(b *testing.B) {
	const n = 1000
	t0 := time.Date(2026, 11, 21, 15, 0, 0, 0, time.UTC)
	line := func(i int) string {
		return fmt.Sprintf(`site%d.example.nl 198.51.%d.%d - - [%s] "GET /shop/item/%d?ref=mail&utm_source=x HTTP/1.1" 200 512 "-" "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"`,
			i%50, i/256%256, i%256, t0.Add(time.Duration(i)*time.Second).Format("02/Jan/2006:15:04:05 -0700"), i)
	}
	var ndjson, bulk bytes.Buffer
	var entries []push.Entry
	jsonValues := make([]string, 0, n)
	var otlpRecs []*logs.LogRecord
	for i := range n {
		fmt.Fprintf(&ndjson, `{"time":"%s","host":"site%d.example.nl","remote_addr":"198.51.%d.%d","request_uri":"/shop/item/%d?ref=mail&utm_source=x","status":200,"user_agent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"}`+"\n",
			t0.Add(time.Duration(i)*time.Second).Format(time.RFC3339), i%50, i/256%256, i%256, i)
		l := line(i)
		entries = append(entries, push.Entry{Timestamp: t0, Line: l})
		jsonValues = append(jsonValues, fmt.Sprintf(`["%d",%s]`, t0.UnixNano(), jsonQuote(l)))
		fmt.Fprintf(&bulk, `{"create":{"_index":"filebeat-8.19.0"}}`+"\n"+`{"@timestamp":"2026-11-21T15:40:00.000Z","message":%s,"log":{"file":{"path":"/var/log/nginx/vhosts.log"}},"host":{"name":"web01"}}`+"\n", jsonQuote(l))
		otlpRecs = append(otlpRecs, &logs.LogRecord{ObservedTimeUnixNano: uint64(t0.UnixNano()), Body: &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: l}}})
	}
	lokiJSON := `{"streams":[{"stream":{"job":"nginx"},"values":[` + joinComma(jsonValues) + `]}]}`
	otlpReq := &collectorlogs.ExportLogsServiceRequest{ResourceLogs: []*logs.ResourceLogs{{ScopeLogs: []*logs.ScopeLogs{{LogRecords: otlpRecs}}}}}
	otlpPB, _ := proto.Marshal(otlpReq)
	otlpJSON, _ := protojson.Marshal(otlpReq)
	endpoints := []struct {
		name, path, ctype string
		body              []byte
	}{
		{"native_ndjson", "/api/v1/ingest", "application/x-ndjson", ndjson.Bytes()},
		{"loki_protobuf", "/loki/api/v1/push", "application/x-protobuf", lokiProto(b, push.Stream{Labels: `{job="nginx"}`, Entries: entries})},
		{"loki_json", "/loki/api/v1/push", "application/json", []byte(lokiJSON)},
		{"elastic_bulk", "/_bulk", "application/x-ndjson", bulk.Bytes()},
		{"otlp_protobuf", "/v1/logs", "application/x-protobuf", otlpPB},
		{"otlp_json", "/v1/logs", "application/json", otlpJSON},
	}
	for _, ep := range endpoints {
		b.Run(ep.name, func(b *testing.B) {
			sink := &countSink{}
			srv := shipperServer(b, sink, nil)
			client := srv.Client()
			cpu0 := cpuSeconds()
			b.ResetTimer()
			for b.Loop() {
				resp, err := client.Post(srv.URL+ep.path, ep.ctype, bytes.NewReader(ep.body))
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			recs := float64(sink.n.Load())
			if recs != float64(b.N*n) {
				b.Fatalf("stored %v records, want %d", recs, b.N*n)
			}
			b.ReportMetric(recs/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric((cpuSeconds()-cpu0)/recs*1e6, "cpu-µs/record")
		})
	}
}

func joinComma(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(x)
	}
	return b.String()
}
