package purge

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/retentiond/retentiond/internal/metricsx"
)

// Run results, the values of the result label of retentiond_purge_runs_total.
const (
	ResultSuccess = "success"
	ResultFailure = "failure"
	ResultRefused = "refused"
)

// metrics are the purge metrics. None carries a label with record contents:
// the only labels are the run result and the fixed name of an extra
// purgeable (such as "audit").
type metrics struct {
	runs          *prometheus.CounterVec
	lastSuccess   prometheus.Gauge
	duration      prometheus.Histogram
	days          prometheus.Counter
	records       prometheus.Counter
	bytes         prometheus.Counter
	clockSkew     prometheus.Counter
	extraItems    *prometheus.CounterVec
	extraFailures *prometheus.CounterVec
	remote        remoteMetrics // the bucket step (zero without a bucket)
}

// remoteMetrics count the bucket step of the purge. They are separate
// series rather than a location label on retentiond_purged_*: a day is
// destroyed locally by one node but in the bucket once for the cluster,
// and the bucket counts objects, versions and delete markers, which the
// local purge does not have.
type remoteMetrics struct {
	days    prometheus.Counter
	objects prometheus.Counter
	bytes   prometheus.Counter
	markers prometheus.Counter
	errors  prometheus.Counter
	failing prometheus.Gauge
	skipped *prometheus.CounterVec
}

func newRemoteMetrics() remoteMetrics {
	m := remoteMetrics{
		days: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_purge_remote_prefixes_deleted_total",
			Help: "Day prefixes (one per UTC day) this node deleted in the bucket (every object of every node, every version) and listed again empty.",
		}),
		objects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_purge_remote_objects_deleted_total",
			Help: "Objects and object versions this node's purge deleted in the bucket.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_purge_remote_bytes_deleted_total",
			Help: "Bytes of the objects and versions this node's purge deleted in the bucket.",
		}),
		markers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_purge_remote_delete_markers_deleted_total",
			Help: "Delete markers this node's purge removed in a versioned bucket.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_purge_remote_errors_total",
			Help: "Purge runs whose bucket step failed (store unreachable, deletion refused, a prefix not empty when listed again); expired days stay in the bucket until a run succeeds.",
		}),
		failing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "retentiond_purge_remote_failing",
			Help: "1 while the bucket step of this node's last purge run failed (expired days remain in the bucket), 0 after one that succeeded or was left to another node. The alert RetentiondBucketPurgeFailed watches it.",
		}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "retentiond_purge_remote_skipped_total",
			Help: "Purge runs that left the bucket alone, by reason: lease_held (another node is purging it) or already_done (a run record for this cutoff exists).",
		}, []string{"reason"}),
	}
	for _, r := range []string{SkipLeaseHeld, SkipAlreadyDone} {
		m.skipped.WithLabelValues(r)
	}
	return m
}

func newMetrics(reg prometheus.Registerer, c *stateCollector) (*metrics, error) {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "retentiond_purge_runs_total",
			Help: "Purge runs (scheduled, start-up and manual; dry runs excluded) by result: success, failure (an error; some days may have been destroyed) or refused (more expired days than purge.max_days_per_run).",
		}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "retentiond_purge_last_success_timestamp_seconds",
			Help: "Unix time of the last purge run that succeeded; 0 until the first one. Alert when it is older than the schedule interval plus a margin.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "retentiond_purge_duration_seconds",
			Help:    "Wall time of purge runs, including waiting for running searches to release a day.",
			Buckets: []float64{0.001, 0.01, 0.1, 1, 10, 60, 300, 1800, 3600},
		}),
		days: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_purged_days_total",
			Help: "UTC days destroyed by purge.",
		}),
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_purged_records_total",
			Help: "Records destroyed by purge.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_purged_bytes_total",
			Help: "Bytes of day files destroyed by purge.",
		}),
		clockSkew: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_purge_clock_skew_detected_total",
			Help: "Purge runs that found the clock earlier than at the previous run (the clock went backwards). The run proceeds: a backwards clock only purges less.",
		}),
		extraItems: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "retentiond_purge_extra_items_total",
			Help: "Items (such as audit log files) destroyed by the extra purgeables that have their own retention, by purgeable name.",
		}, []string{"name"}),
		extraFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "retentiond_purge_extra_failures_total",
			Help: "Failed purges of an extra purgeable, by purgeable name.",
		}, []string{"name"}),
	}
	// Every result exists from the start, so that rate() and increase() see
	// the first failure as an increase from 0 rather than a new series.
	for _, r := range []string{ResultSuccess, ResultFailure, ResultRefused} {
		m.runs.WithLabelValues(r)
	}
	if err := metricsx.Register(reg, m.runs, m.lastSuccess, m.duration, m.days, m.records, m.bytes,
		m.clockSkew, m.extraItems, m.extraFailures, c); err != nil {
		return nil, err
	}
	// The remote series exist without a bucket too (at 0), so that the
	// alert rules on them evaluate alike on every daemon.
	m.remote = newRemoteMetrics()
	r := m.remote
	if err := metricsx.Register(reg, r.days, r.objects, r.bytes, r.markers, r.errors, r.failing, r.skipped); err != nil {
		return nil, err
	}
	return m, nil
}

// stateCollector reports the state of the store at scrape time, so that the
// oldest record and the storage size are current even between purge runs
// (ingest and flushes change them all the time).
type stateCollector struct {
	store   Store
	policy  Policy
	holds   Holds // nil: no legal holds
	now     func() time.Time
	dataDir string // empty: no file-system gauges

	oldestRecord *prometheus.Desc
	oldestExpiry *prometheus.Desc
	retention    *prometheus.Desc
	storedDays   *prometheus.Desc
	storageBytes *prometheus.Desc
	heldDays     *prometheus.Desc
	oldestHeld   *prometheus.Desc
	freeBytes    *prometheus.Desc
	sizeBytes    *prometheus.Desc
}

func newStateCollector(st Store, p Policy, h Holds, now func() time.Time, dataDir string) *stateCollector {
	return &stateCollector{
		store: st, policy: p, holds: h, now: now, dataDir: dataDir,
		oldestRecord: prometheus.NewDesc("retentiond_oldest_record_timestamp_seconds",
			"Unix time of the oldest stored record outside the expired days a legal hold keeps (those are in retentiond_held_days). Absent while the store holds no such record.", nil, nil),
		oldestExpiry: prometheus.NewDesc("retentiond_oldest_day_expiry_timestamp_seconds",
			"Unix time at which the oldest stored day is due for destruction by the retention rule (start of day + retention + 1 day), leaving out expired days a legal hold keeps. Absent while no day is stored. time() above it means purge is late.", nil, nil),
		heldDays: prometheus.NewDesc("retentiond_held_days",
			"Stored UTC days past their retention that a legal hold keeps from the purge.", nil, nil),
		oldestHeld: prometheus.NewDesc("retentiond_oldest_held_day_timestamp_seconds",
			"Unix time of the start of the oldest day past its retention that a legal hold keeps. Absent while no hold keeps an expired day.", nil, nil),
		retention: prometheus.NewDesc("retentiond_retention_seconds",
			"The configured retention in seconds, measured back from the scrape time: for a calendar retention such as 2y it is 730 or 731 days depending on leap days.", nil, nil),
		storedDays: prometheus.NewDesc("retentiond_stored_days",
			"UTC days that hold data.", nil, nil),
		storageBytes: prometheus.NewDesc("retentiond_storage_bytes",
			"Bytes of day files on disk.", nil, nil),
		freeBytes: prometheus.NewDesc("retentiond_data_dir_free_bytes",
			"Bytes available to the daemon on the file system of the data directory (statfs f_bavail).", nil, nil),
		sizeBytes: prometheus.NewDesc("retentiond_data_dir_size_bytes",
			"Total size in bytes of the file system of the data directory (statfs f_blocks).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.oldestRecord, c.oldestExpiry, c.retention, c.storedDays, c.storageBytes, c.heldDays, c.oldestHeld} {
		ch <- d
	}
	if c.dataDir != "" {
		ch <- c.freeBytes
		ch <- c.sizeBytes
	}
}

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	days := c.store.Days()
	var oldest, oldestDay, oldestHeld time.Time
	var bytes int64
	held := 0
	for _, d := range days {
		bytes += d.Bytes
		// A day past its retention that a hold keeps is there by an
		// explicit decision: it is reported as held, not as a late purge.
		if c.holds != nil && c.policy.Expired(d.Day, now) && len(c.holds.HeldBy(d.Day)) > 0 {
			held++
			if oldestHeld.IsZero() || d.Day.Before(oldestHeld) {
				oldestHeld = d.Day
			}
			continue
		}
		if d.Records > 0 && !d.MinTime.IsZero() && (oldest.IsZero() || d.MinTime.Before(oldest)) {
			oldest = d.MinTime
		}
		if oldestDay.IsZero() || d.Day.Before(oldestDay) {
			oldestDay = d.Day
		}
	}
	if !oldest.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.oldestRecord, prometheus.GaugeValue, unixSeconds(oldest))
	}
	if !oldestDay.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.oldestExpiry, prometheus.GaugeValue, unixSeconds(c.policy.ExpiresAt(oldestDay)))
	}
	ch <- prometheus.MustNewConstMetric(c.retention, prometheus.GaugeValue, c.policy.Seconds(now))
	ch <- prometheus.MustNewConstMetric(c.storedDays, prometheus.GaugeValue, float64(len(days)))
	ch <- prometheus.MustNewConstMetric(c.storageBytes, prometheus.GaugeValue, float64(bytes))
	ch <- prometheus.MustNewConstMetric(c.heldDays, prometheus.GaugeValue, float64(held))
	if !oldestHeld.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.oldestHeld, prometheus.GaugeValue, unixSeconds(oldestHeld))
	}
	if c.dataDir != "" {
		// On error the gauges are left out rather than reported as invalid:
		// an invalid metric fails the whole scrape, and with it the purge
		// alerts. A missing free-space series is visible to absent().
		if free, size, err := diskSpace(c.dataDir); err == nil {
			ch <- prometheus.MustNewConstMetric(c.freeBytes, prometheus.GaugeValue, float64(free))
			ch <- prometheus.MustNewConstMetric(c.sizeBytes, prometheus.GaugeValue, float64(size))
		}
	}
}

// unixSeconds converts t to fractional Unix seconds, the Prometheus
// convention for timestamps.
func unixSeconds(t time.Time) float64 { return float64(t.UnixMilli()) / 1e3 }
