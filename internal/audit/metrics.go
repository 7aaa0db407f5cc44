package audit

import (
	"encoding/json"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/retentiond/retentiond/internal/metricsx"
)

type metrics struct {
	searches       *prometheus.CounterVec
	lines          prometheus.Counter
	appendFailures prometheus.Counter
	appendSeconds  prometheus.Histogram
	purgedFiles    prometheus.Counter
	chainBroken    prometheus.Gauge
	checkpoints    prometheus.Counter
}

// Request outcomes for retentiond_audit_search_requests_total: every guarded
// request is counted exactly once. Labels are fixed sets (the endpoint comes
// from the code, never from the client).
const (
	resultRefused     = "refused"           // authentication, missing case or reason
	resultCompleted   = "completed"         // ran and answered 2xx/3xx
	resultFailed      = "failed"            // ran and answered >= 400
	resultUnavailable = "audit_unavailable" // refused because its audit line could not be written
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		searches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "retentiond_audit_search_requests_total",
			Help: "Search, count, stats and export requests by endpoint and outcome (refused, completed, failed, audit_unavailable).",
		}, []string{"endpoint", "outcome"}),
		lines: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_audit_lines_total",
			Help: "Audit lines written and fsynced.",
		}),
		appendFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_audit_append_failures_total",
			Help: "Audit lines that could not be written; each refused a search.",
		}),
		appendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "retentiond_audit_append_duration_seconds",
			Help:    "Time to write and fsync one audit line.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9),
		}),
		purgedFiles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_audit_purged_files_total",
			Help: "Audit files removed by retention.",
		}),
		chainBroken: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "retentiond_audit_chain_broken",
			Help: "1 when the audit chain failed verification at open.",
		}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_audit_checkpoints_total",
			Help: "Signed checkpoints of the audit chain's head written to the daemon's log (the audit witness).",
		}),
	}
	if err := metricsx.Register(reg, m.searches, m.lines, m.appendFailures, m.appendSeconds, m.purgedFiles, m.chainBroken, m.checkpoints); err != nil {
		return nil, err
	}
	return m, nil
}

func jsonLine(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
