package objstore

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/retentiond/retentiond/internal/metricsx"
)

func TestInstrument(t *testing.T) {
	f := newFake(t, "test-bucket")
	reg := prometheus.NewPedanticRegistry()
	b := Instrument(f.bucket(t, Config{}), reg)
	ctx := context.Background()
	key := "days/2026-01-02/node-secret-name/seg.seg"
	if _, err := b.Put(ctx, key, bytes.NewReader(make([]byte, 1000)), 1000); err != nil {
		t.Fatal(err)
	}
	if err := b.ReadAt(ctx, key, make([]byte, 100), 0); err != nil {
		t.Fatal(err)
	}
	_, _ = b.Stat(ctx, "missing")
	_ = b.PutIfAbsent(ctx, "lease", []byte("x"))
	_ = b.PutIfAbsent(ctx, "lease", []byte("y"))

	c, err := NewCache(t.TempDir(), 4*PageSize)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := metricsx.Register(reg, c); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Source(b, key, 1000).ReadAt(make([]byte, 10), 0); err != nil {
		t.Fatal(err)
	}
	// A second instrumented bucket on the same registry shares the counters.
	b2 := Instrument(f.bucket(t, Config{}), reg)
	if err := b2.ReadAt(ctx, key, make([]byte, 1), 0); err != nil {
		t.Fatal(err)
	}

	want := `
# HELP retentiond_objstore_requests_total Calls to the object store by operation and result (ok, not_found, exists, error).
# TYPE retentiond_objstore_requests_total counter
retentiond_objstore_requests_total{op="put",result="ok"} 1
retentiond_objstore_requests_total{op="put_if_absent",result="exists"} 1
retentiond_objstore_requests_total{op="put_if_absent",result="ok"} 1
retentiond_objstore_requests_total{op="read_at",result="ok"} 3
retentiond_objstore_requests_total{op="stat",result="not_found"} 1
# HELP retentiond_objstore_transfer_bytes_total Object bytes moved to (upload) and from (download) the object store.
# TYPE retentiond_objstore_transfer_bytes_total counter
retentiond_objstore_transfer_bytes_total{direction="download"} 1101
retentiond_objstore_transfer_bytes_total{direction="upload"} 1001
# HELP retentiond_objstore_cache_bytes Bytes of remote segment pages held in the local cache.
# TYPE retentiond_objstore_cache_bytes gauge
retentiond_objstore_cache_bytes 1000
# HELP retentiond_objstore_cache_misses_total Pages of remote segments not in the local cache, fetched with range GETs.
# TYPE retentiond_objstore_cache_misses_total counter
retentiond_objstore_cache_misses_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"retentiond_objstore_requests_total", "retentiond_objstore_transfer_bytes_total",
		"retentiond_objstore_cache_bytes", "retentiond_objstore_cache_misses_total"); err != nil {
		t.Error(err)
	}
	// No key, node or other content in any label.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "secret") || strings.Contains(l.GetValue(), "/") {
					t.Errorf("%s has label %s=%q", mf.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
}
