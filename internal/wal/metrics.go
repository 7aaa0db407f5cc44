package wal

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/retentiond/retentiond/internal/metricsx"
)

type metrics struct {
	fsyncDuration  prometheus.Histogram
	appends        prometheus.Counter
	bytes          prometheus.Counter
	fsyncs         prometheus.Counter
	repairs        prometheus.Counter
	rotationErrors prometheus.Counter
	segments       prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		fsyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "retentiond_wal_fsync_duration_seconds",
			Help:    "Time of one fsync of the current WAL file.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		appends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_wal_appends_total", Help: "Payloads written (Append and AppendAll: fsynced before they return; Write: at the next fsync).",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_wal_written_bytes_total", Help: "Bytes written to WAL files, framing included.",
		}),
		fsyncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_wal_fsyncs_total", Help: "Fsyncs of WAL files: one per group commit that waits for durability, and before a file is left.",
		}),
		repairs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_wal_torn_tail_repairs_total", Help: "Torn tails cut from the last WAL file at start-up.",
		}),
		rotationErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_wal_rotation_errors_total",
			Help: "Failed attempts to start the next WAL file (retried; appends continue in the current file).",
		}),
		segments: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "retentiond_wal_segments", Help: "WAL files present.",
		}),
	}
	if reg != nil {
		m.fsyncDuration = metricsx.Reuse(reg, m.fsyncDuration)
		m.appends = metricsx.Reuse(reg, m.appends)
		m.bytes = metricsx.Reuse(reg, m.bytes)
		m.fsyncs = metricsx.Reuse(reg, m.fsyncs)
		m.repairs = metricsx.Reuse(reg, m.repairs)
		m.rotationErrors = metricsx.Reuse(reg, m.rotationErrors)
		m.segments = metricsx.Reuse(reg, m.segments)
	}
	return m
}
