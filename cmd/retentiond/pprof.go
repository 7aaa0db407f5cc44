//go:build pprof

package main

// Built with -tags pprof only (never in a release build): RTD_PPROF=addr
// serves net/http/pprof on that loopback address, so that the daemon can
// be profiled under a real ingest (docs/performance.md, "Profiling").

import (
	"log/slog"
	"net/http"
	_ "net/http/pprof" //nolint:gosec // G108: only in a -tags pprof build, on the address RTD_PPROF names
	"os"
	"time"
)

func init() {
	addr := os.Getenv("RTD_PPROF")
	if addr == "" {
		return
	}
	go func() {
		srv := &http.Server{Addr: addr, ReadHeaderTimeout: 10 * time.Second}
		slog.Warn("profiling endpoint enabled (pprof build)", "addr", addr, "err", srv.ListenAndServe())
	}()
}
