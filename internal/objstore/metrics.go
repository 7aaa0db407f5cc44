package objstore

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/metricsx"
)

// instrumented counts a Bucket's requests, their outcomes, durations and
// bytes moved. Labels carry the operation and outcome only: never a key,
// a node name or anything from a record.
type instrumented struct {
	Bucket
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	bytes    *prometheus.CounterVec
}

// Instrument returns b with its calls counted on reg:
//
//	retentiond_objstore_requests_total{op,result}           result: ok, not_found, exists, error
//	retentiond_objstore_request_duration_seconds{op}
//	retentiond_objstore_transfer_bytes_total{direction}     upload, download
//
// op is put, put_if_absent, read_at, get, stat, list, delete, delete_all or
// versioned (one call, which may be several HTTP requests: a multipart
// upload, a paged listing). A nil reg counts on collectors registered
// nowhere. Instrumenting twice on one registry shares the collectors.
func Instrument(b Bucket, reg prometheus.Registerer) Bucket {
	return &instrumented{
		Bucket: b,
		requests: metricsx.Reuse(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "retentiond_objstore_requests_total",
			Help: "Calls to the object store by operation and result (ok, not_found, exists, error).",
		}, []string{"op", "result"})),
		seconds: metricsx.Reuse(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "retentiond_objstore_request_duration_seconds",
			Help:    "Duration of calls to the object store by operation.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"op"})),
		bytes: metricsx.Reuse(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "retentiond_objstore_transfer_bytes_total",
			Help: "Object bytes moved to (upload) and from (download) the object store.",
		}, []string{"direction"})),
	}
}

// observe records one call.
func (m *instrumented) observe(op string, start time.Time, err error) {
	result := "ok"
	switch {
	case err == nil:
	case errors.Is(err, ErrNotFound):
		result = "not_found"
	case errors.Is(err, ErrExists):
		result = "exists"
	default:
		result = "error"
	}
	m.requests.WithLabelValues(op, result).Inc()
	m.seconds.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

func (m *instrumented) Put(ctx context.Context, key string, body io.Reader, size int64) (ObjectInfo, error) {
	start := time.Now()
	info, err := m.Bucket.Put(ctx, key, body, size)
	m.observe("put", start, err)
	if err == nil {
		m.bytes.WithLabelValues("upload").Add(float64(size))
	}
	return info, err
}

func (m *instrumented) PutIfAbsent(ctx context.Context, key string, body []byte) error {
	start := time.Now()
	err := m.Bucket.PutIfAbsent(ctx, key, body)
	m.observe("put_if_absent", start, err)
	if err == nil {
		m.bytes.WithLabelValues("upload").Add(float64(len(body)))
	}
	return err
}

func (m *instrumented) ReadAt(ctx context.Context, key string, p []byte, off int64) error {
	start := time.Now()
	err := m.Bucket.ReadAt(ctx, key, p, off)
	m.observe("read_at", start, err)
	if err == nil {
		m.bytes.WithLabelValues("download").Add(float64(len(p)))
	}
	return err
}

func (m *instrumented) Get(ctx context.Context, key string, w io.Writer) (int64, error) {
	start := time.Now()
	n, err := m.Bucket.Get(ctx, key, w)
	m.observe("get", start, err)
	m.bytes.WithLabelValues("download").Add(float64(n))
	return n, err
}

func (m *instrumented) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	start := time.Now()
	info, err := m.Bucket.Stat(ctx, key)
	m.observe("stat", start, err)
	return info, err
}

func (m *instrumented) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	start := time.Now()
	list, err := m.Bucket.List(ctx, prefix)
	m.observe("list", start, err)
	return list, err
}

func (m *instrumented) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := m.Bucket.Delete(ctx, key)
	m.observe("delete", start, err)
	return err
}

func (m *instrumented) DeleteAll(ctx context.Context, prefix string) (DeleteResult, error) {
	start := time.Now()
	res, err := m.Bucket.DeleteAll(ctx, prefix)
	m.observe("delete_all", start, err)
	return res, err
}

func (m *instrumented) Versioned(ctx context.Context) (bool, error) {
	start := time.Now()
	v, err := m.Bucket.Versioned(ctx)
	m.observe("versioned", start, err)
	return v, err
}
