package wal

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
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
			Help:    "Time to write and fsync one group commit.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		appends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_wal_appends_total", Help: "Payloads appended and fsynced.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_wal_written_bytes_total", Help: "Bytes written to WAL files, framing included.",
		}),
		fsyncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_wal_fsyncs_total", Help: "Group commits (one write and one fsync each).",
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
		m.fsyncDuration = register(reg, m.fsyncDuration)
		m.appends = register(reg, m.appends)
		m.bytes = register(reg, m.bytes)
		m.fsyncs = register(reg, m.fsyncs)
		m.repairs = register(reg, m.repairs)
		m.rotationErrors = register(reg, m.rotationErrors)
		m.segments = register(reg, m.segments)
	}
	return m
}

// register registers c on reg. A WAL reopened in the same process on the same
// registry (a store closed and opened again) keeps counting on the collector
// registered the first time instead of panicking on the duplicate.
func register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing
			}
		}
		// Only a programming error (two different metrics with one name)
		// gets here.
		panic(fmt.Sprintf("register wal metric: %v", err))
	}
	return c
}
