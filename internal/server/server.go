// Package server is retentiond's HTTP front: it mounts the ingest, search and
// admin handlers built by the other packages, serves /healthz, /readyz and
// /metrics, applies the timeouts that protect the daemon from slow clients,
// and shuts down gracefully.
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/retentiond/retentiond/internal/connlimit"
	"github.com/retentiond/retentiond/internal/httpx"
)

// Routes are the API handlers to mount; a nil handler is not mounted (the
// route then answers 404). Authentication and auditing are applied by the
// caller when it builds these handlers.
type Routes struct {
	Ingest      http.Handler // POST /api/v1/ingest
	IngestLines http.Handler // POST /api/v1/ingest/lines
	Search      http.Handler // GET /api/v1/search
	Count       http.Handler // GET /api/v1/count
	Stats       http.Handler // GET /api/v1/stats
	Purge       http.Handler // POST /api/v1/admin/purge
	Flush       http.Handler // POST /api/v1/admin/flush
	Cases       http.Handler // /api/v1/cases and everything below it (the case registry's API)

	// The investigator console and what it reads (docs/console.md).
	Histogram      http.Handler // GET /api/v1/histogram
	Evidence       http.Handler // GET /api/v1/evidence (a signed bundle)
	EvidenceKey    http.Handler // GET /api/v1/evidence/key
	WhoAmI         http.Handler // GET /api/v1/whoami
	Retention      http.Handler // GET /api/v1/retention (the cutoff)
	RetentionAdmin http.Handler // GET /api/v1/admin/retention
	AuditCase      http.Handler // GET /api/v1/audit/case
	AuditAdmin     http.Handler // GET /api/v1/admin/audit
	UI             http.Handler // GET /ui/ (and /ui redirects there)
	// Shipper protocols (internal/ingest: loki.go, elastic.go, otlp.go).
	Loki    http.Handler // POST /loki/api/v1/push
	Elastic http.Handler // the Elasticsearch-compatible bulk API, on ElasticPaths
	OTLP    http.Handler // POST /v1/logs and /otlp/v1/logs
	// ElasticPaths and OTLPPaths are the patterns Elastic and OTLP are
	// mounted on (ingest.ElasticPaths, ingest.OTLPPaths).
	ElasticPaths, OTLPPaths []string

	// Privacy you can prove (issue 19; docs/retention.md).
	Holds   http.Handler // /api/v1/admin/holds and below (internal/hold)
	Erase   http.Handler // POST /api/v1/admin/erase
	Reports http.Handler // GET /api/v1/admin/reports
	Report  http.Handler // GET /api/v1/admin/reports/{name}

	// Cluster answers the other nodes of a cluster (POST
	// /api/v1/cluster/{op}; search.Handler.ServePeer behind the node token).
	Cluster http.Handler
}

// Options configure the server.
type Options struct {
	Addr              string
	CertFile, KeyFile string // both set: serve HTTPS
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration // 0: none, searches stream for as long as they need
	IdleTimeout       time.Duration
	// MaxConnections caps the connections held open (http.max_connections);
	// 0 means DefaultMaxConnections. See internal/connlimit for what
	// happens at the cap.
	MaxConnections int
	// MinBodyRate is the slowest a request body may arrive, in bytes per
	// second on average over the time spent waiting for it, after a grace
	// of ReadHeaderTimeout (http.min_body_rate); 0: only ReadTimeout.
	MinBodyRate int64
	Routes      Routes
	Gatherer    prometheus.Gatherer
	// Registerer receives the connection metrics; nil: not registered.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Health, when set, is asked at every /readyz once the server is ready:
	// an error (the store failed, or is degraded and retrying) turns /readyz
	// into 503 with the error as the reason, so a load balancer or monitor
	// sees that ingest cannot be stored.
	Health func() error
}

// DefaultMaxConnections is the connection cap when Options leave it 0.
const DefaultMaxConnections = 512

// Server is the HTTP server. It starts unready; call SetReady once recovery
// and the start-up purge are done.
type Server struct {
	opts  Options
	http  *http.Server
	ln    net.Listener
	conns *connlimit.Listener
	ready atomic.Bool
	log   *slog.Logger
}

// New builds the server and binds its address, so that a port conflict is
// reported before the daemon says it started.
func New(opts Options) (*Server, error) {
	s := &Server{opts: opts, log: cmp.Or(opts.Logger, slog.Default())}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() {
			httpx.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "starting"})
			return
		}
		if opts.Health != nil {
			if err := opts.Health(); err != nil {
				httpx.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
				return
			}
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	if opts.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	}
	mount := func(pattern string, h http.Handler) {
		if h != nil {
			mux.Handle(pattern, h)
		}
	}
	mount("POST /api/v1/ingest", opts.Routes.Ingest)
	mount("POST /api/v1/ingest/lines", opts.Routes.IngestLines)
	mount("GET /api/v1/search", opts.Routes.Search)
	mount("GET /api/v1/count", opts.Routes.Count)
	mount("GET /api/v1/stats", opts.Routes.Stats)
	mount("POST /api/v1/admin/purge", opts.Routes.Purge)
	mount("POST /api/v1/admin/flush", opts.Routes.Flush)
	mount("/api/v1/cases", opts.Routes.Cases)
	mount("/api/v1/cases/", opts.Routes.Cases)
	mount("GET /api/v1/histogram", opts.Routes.Histogram)
	mount("GET /api/v1/evidence", opts.Routes.Evidence)
	mount("GET /api/v1/evidence/key", opts.Routes.EvidenceKey)
	mount("GET /api/v1/whoami", opts.Routes.WhoAmI)
	mount("GET /api/v1/retention", opts.Routes.Retention)
	mount("GET /api/v1/admin/retention", opts.Routes.RetentionAdmin)
	mount("GET /api/v1/audit/case", opts.Routes.AuditCase)
	mount("GET /api/v1/admin/audit", opts.Routes.AuditAdmin)
	if opts.Routes.UI != nil {
		mux.Handle("GET /ui/", opts.Routes.UI)
		mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
	}
	mount("POST /loki/api/v1/push", opts.Routes.Loki)
	if opts.Routes.Elastic != nil {
		for _, p := range opts.Routes.ElasticPaths {
			mux.Handle(p, opts.Routes.Elastic)
		}
	}
	if opts.Routes.OTLP != nil {
		for _, p := range opts.Routes.OTLPPaths {
			mux.Handle(p, opts.Routes.OTLP)
		}
	}
	mount("/api/v1/admin/holds", opts.Routes.Holds)
	mount("/api/v1/admin/holds/", opts.Routes.Holds)
	mount("POST /api/v1/admin/erase", opts.Routes.Erase)
	mount("GET /api/v1/admin/reports", opts.Routes.Reports)
	mount("GET /api/v1/admin/reports/{name}", opts.Routes.Report)
	mount("POST /api/v1/cluster/{op}", opts.Routes.Cluster)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})

	readHeaderTimeout := cmp.Or(opts.ReadHeaderTimeout, 10*time.Second)
	readTimeout := cmp.Or(opts.ReadTimeout, 5*time.Minute)
	s.http = &http.Server{
		Handler:           minRateBody(mux, opts.MinBodyRate, readHeaderTimeout, readTimeout),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      opts.WriteTimeout,
		IdleTimeout:       cmp.Or(opts.IdleTimeout, 2*time.Minute),
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          newErrorLog(s.log), // without client addresses
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen http %s: %w", opts.Addr, err)
	}
	// Every connection counts against the cap from accept to close; the
	// server says which ones sit idle (a fresh connection that has not sent
	// its request yet, a keep-alive between requests), so that at the cap
	// the longest-idle one makes room instead of a real client being
	// refused. Active ones (a request being read or answered) are never cut.
	s.conns = connlimit.Wrap(ln, connlimit.Options{
		Max:        cmp.Or(opts.MaxConnections, DefaultMaxConnections),
		Subsystem:  "http",
		Registerer: opts.Registerer,
		Logger:     s.log,
	})
	// HTTP/1.1 only, over TLS too: net/http does not report an HTTP/2
	// connection's requests to ConnState, so an HTTP/2 connection with a
	// long search running would look idle and could be evicted.
	s.http.Protocols = new(http.Protocols)
	s.http.Protocols.SetHTTP1(true)
	s.http.ConnState = func(c net.Conn, st http.ConnState) {
		s.conns.SetIdle(c, st == http.StateNew || st == http.StateIdle)
	}
	s.ln = s.conns
	return s, nil
}

// Addr is the bound address (useful with port 0 in tests).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// SetReady flips /readyz to 200.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Serve serves until Shutdown; it returns nil after a graceful shutdown.
func (s *Server) Serve() error {
	var err error
	if s.opts.CertFile != "" {
		err = s.http.ServeTLS(s.ln, s.opts.CertFile, s.opts.KeyFile)
	} else {
		err = s.http.Serve(s.ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for in-flight requests
// (ingest batches being fsynced, streaming searches) until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	return s.http.Shutdown(ctx)
}
