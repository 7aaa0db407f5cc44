package store

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/retentiond/retentiond/internal/metricsx"
)

type metrics struct {
	appended        prometheus.Counter
	busy            prometheus.Counter
	flushes         prometheus.Counter
	flushedRecords  prometheus.Counter
	sealed          prometheus.Counter
	flushDuration   prometheus.Histogram
	flushErrors     prometheus.Counter
	merges          prometheus.Counter
	deletedDays     prometheus.Counter
	keysDestroyed   prometheus.Counter
	replayed        prometheus.Counter
	recoveryRemoved prometheus.Counter
	corruptFound    prometheus.Counter
	// cancelledSearches counts searches a purge cancelled.
	cancelledSearches prometheus.Counter
	erasures          prometheus.Counter
	erasedRecords     prometheus.Counter
	remote            remoteMetrics
}

// remoteMetrics are the bucket's side (upload.go, remote.go); they are
// registered only when the store has a bucket.
type remoteMetrics struct {
	uploads           *prometheus.CounterVec
	uploadedBytes     prometheus.Counter
	uploadDuration    prometheus.Histogram
	supersededDeleted prometheus.Counter
	evictions         prometheus.Counter
	downloads         prometheus.Counter
	lists             prometheus.Counter
	listErrors        prometheus.Counter
}

func newRemoteMetrics(reg prometheus.Registerer, s *Store) (remoteMetrics, error) {
	m := remoteMetrics{
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "retentiond_store_uploads_total",
			Help: "Uploads of a closed day's archived file to the bucket, by result (ok, error).",
		}, []string{"result"}),
		uploadedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_store_uploaded_bytes_total",
			Help: "Bytes of day files uploaded to the bucket and verified.",
		}),
		uploadDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "retentiond_store_upload_duration_seconds",
			Help:    "Time to upload and verify one day file.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}),
		supersededDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_store_superseded_objects_deleted_total",
			Help: "This node's objects deleted from the bucket after a newer archive of their day replaced them.",
		}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_store_evicted_files_total",
			Help: "Uploaded day files removed from local disk beyond object_storage.cache_bytes (their days are read from the bucket).",
		}),
		downloads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_store_downloaded_files_total",
			Help: "Evicted day files downloaded again to merge late records into them.",
		}),
		lists: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_store_bucket_lists_total",
			Help: "Listings of the bucket's days that succeeded.",
		}),
		listErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_store_bucket_list_errors_total",
			Help: "Listings of the bucket's days that failed (other nodes' new days stay unseen until one succeeds).",
		}),
	}
	m.uploads.WithLabelValues("ok")
	m.uploads.WithLabelValues("error")
	if s.opts.Bucket == nil {
		return m, nil
	}
	return m, metricsx.Register(reg, m.uploads, m.uploadedBytes, m.uploadDuration, m.supersededDeleted, m.evictions,
		m.downloads, m.lists, m.listErrors,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "retentiond_store_upload_backlog_days",
			Help: "Closed days whose archived file is not in the bucket yet (uploads retried with backoff; the local disk holds them).",
		}, func() float64 { d, _ := s.backlog(); return float64(d) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "retentiond_store_upload_backlog_bytes",
			Help: "Bytes of the closed days' files not in the bucket yet.",
		}, func() float64 { _, b := s.backlog(); return float64(b) }),
	)
}

func newMetrics(reg prometheus.Registerer, s *Store) (*metrics, error) {
	m := &metrics{
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_store_appended_records_total",
			Help: "Records durably appended (WAL fsynced) and acknowledged.",
		}),
		busy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_store_busy_rejections_total",
			Help: "Appends refused with ErrBusy because unflushed records exceeded their memory bound.",
		}),
		flushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_store_flushes_total",
			Help: "Flushes of the in-memory head into part files.",
		}),
		sealed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_store_sealed_records_total",
			Help: "Unflushed records sealed into indexed in-memory parts of the head (searched through the indexes, kept compact until the flush).",
		}),
		flushedRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_store_flushed_records_total",
			Help: "Records written from the head into part files.",
		}),
		flushDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "retentiond_store_flush_duration_seconds",
			Help:    "Time to flush the head into part files.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		flushErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_store_flush_errors_total",
			Help: "Failed flushes (retried with backoff; the records stay in the WAL and the head).",
		}),
		merges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_store_merges_total",
			Help: "Merges of a day's segment files into one.",
		}),
		deletedDays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_store_day_deletions_total",
			Help: "Days destroyed through DeleteDay.",
		}),
		keysDestroyed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_store_day_keys_destroyed_total",
			Help: "Day keys destroyed through DeleteDay (encrypted data directories): every copy of those days is unreadable.",
		}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_store_wal_replayed_records_total",
			Help: "Records recovered from the WAL at start-up.",
		}),
		recoveryRemoved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_store_recovery_removed_files_total",
			Help: "Files removed at start-up as debris of an interrupted flush, merge or deletion.",
		}),
		corruptFound: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_store_corrupt_file_detections_total",
			Help: "Damaged segment files found (footer at start-up, block when read) and quarantined.",
		}),
		cancelledSearches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_store_purge_cancelled_searches_total",
			Help: "Searches cancelled because they still held a day the purge destroyed after purge.reader_grace (a client that stopped reading, or a search slower than the grace).",
		}),
		erasures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_store_erasures_total",
			Help: "Erasures of an address or network (Store.Erase) that completed.",
		}),
		erasedRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_store_erased_records_total",
			Help: "Records removed by erasures.",
		}),
	}
	var err error
	if m.remote, err = newRemoteMetrics(reg, s); err != nil {
		return nil, err
	}
	return m, metricsx.Register(reg, m.appended, m.busy, m.flushes, m.flushedRecords, m.sealed, m.flushDuration, m.flushErrors,
		m.merges, m.deletedDays, m.keysDestroyed, m.replayed, m.recoveryRemoved, m.corruptFound, m.cancelledSearches,
		m.erasures, m.erasedRecords,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "retentiond_store_head_bytes",
			Help: "Estimated memory of unflushed records (head and head being flushed).",
		}, func() float64 {
			s.mu.Lock()
			defer s.mu.Unlock()
			return float64(s.headBytes + s.frozenBytes)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "retentiond_store_failed",
			Help: "1 when a WAL write or fsync failed: ingest is refused until the daemon restarts (it exits to be restarted).",
		}, func() float64 { return boolGauge(errors.Is(s.Health(), ErrFailed)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "retentiond_store_degraded",
			Help: "1 while a flush or WAL rotation fails and is retried (EMFILE, ENOSPC); appends continue until the head is full.",
		}, func() float64 { return boolGauge(errors.Is(s.Health(), ErrDegraded)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "retentiond_store_reserved_bytes",
			Help: "Head memory reserved for records being parsed or appended; with retentiond_store_head_bytes it never exceeds retentiond_store_head_max_bytes.",
		}, func() float64 {
			s.mu.Lock()
			defer s.mu.Unlock()
			return float64(s.reserved)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "retentiond_store_head_max_bytes",
			Help: "Configured bound on the memory of unflushed records.",
		}, func() float64 { return float64(s.opts.HeadMaxBytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "retentiond_store_segment_files",
			Help: "Segment files (parts and merged) across all days.",
		}, func() float64 {
			s.mu.Lock()
			defer s.mu.Unlock()
			n := 0
			for _, dy := range s.days {
				n += len(dy.segs)
			}
			return float64(n)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "retentiond_store_corrupt_files",
			Help: "Damaged segment files in the data directory (quarantined as *.corrupt or about to be): their records are missing from searches until restored or purged.",
		}, func() float64 {
			s.mu.Lock()
			defer s.mu.Unlock()
			n := 0
			for _, dy := range s.days {
				n += len(dy.corrupt)
			}
			return float64(n)
		}),
	)
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
