package server

import (
	"net/http"
	"testing"

	"github.com/retentiond/retentiond/internal/ingest"
)

// TestShipperRoutes: the shipper protocols' patterns mount beside the API
// without a mux conflict, and each path reaches its handler (HEAD / too,
// which Logstash calls first); other paths keep the server's 404.
func TestShipperRoutes(t *testing.T) {
	tag := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Route", name)
		})
	}
	srv, err := New(Options{Addr: "127.0.0.1:0", Routes: Routes{
		Ingest: tag("ingest"), IngestLines: tag("lines"), Search: tag("search"),
		Loki: tag("loki"), Elastic: tag("elastic"), OTLP: tag("otlp"),
		ElasticPaths: ingest.ElasticPaths, OTLPPaths: ingest.OTLPPaths,
	}})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	defer srv.Shutdown(t.Context())
	base := "http://" + srv.Addr().String()
	tests := []struct{ method, path, want string }{
		{"POST", "/loki/api/v1/push", "loki"},
		{"POST", "/v1/logs", "otlp"},
		{"POST", "/otlp/v1/logs", "otlp"},
		{"GET", "/", "elastic"},
		{"HEAD", "/", "elastic"},
		{"GET", "/_license", "elastic"},
		{"POST", "/_bulk", "elastic"},
		{"POST", "/weblogs/_bulk", "elastic"},
		{"HEAD", "/_index_template/filebeat-8.19.0", "elastic"},
		{"GET", "/_ilm/policy/filebeat", "elastic"},
		{"GET", "/_ingest/pipeline/filebeat-8.19.0-nginx-access-pipeline", "elastic"},
		{"POST", "/api/v1/ingest", "ingest"},
		{"POST", "/api/v1/ingest/lines", "lines"},
		{"GET", "/api/v1/search", "search"},
		{"GET", "/weblogs/_search", ""},
		{"GET", "/healthz", ""},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, base+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("X-Route"); got != tc.want {
				t.Errorf("routed to %q (status %d), want %q", got, resp.StatusCode, tc.want)
			}
		})
	}
}
