package wal

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetricsRegistries checks that two WALs in one process keep separate
// metrics on separate registries, and that reopening a WAL on the same
// registry neither panics nor loses the earlier counts.
func TestMetricsRegistries(t *testing.T) {
	regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
	dirA := t.TempDir()
	a := openT(t, dirA, Options{Registerer: regA})
	b := openT(t, t.TempDir(), Options{Registerer: regB})
	for i := 0; i < 3; i++ {
		if _, err := a.Append(payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Append(payload(0)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		reg  *prometheus.Registry
		want float64
	}{
		{"first registry", regA, 3},
		{"second registry", regB, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mfs, err := tc.reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			names := map[string]bool{}
			for _, mf := range mfs {
				names[mf.GetName()] = true
			}
			for _, n := range []string{
				"retentiond_wal_fsync_duration_seconds", "retentiond_wal_appends_total",
				"retentiond_wal_written_bytes_total", "retentiond_wal_fsyncs_total",
				"retentiond_wal_torn_tail_repairs_total", "retentiond_wal_segments",
			} {
				if !names[n] {
					t.Errorf("metric %s not registered", n)
				}
			}
		})
	}
	if got := testutil.ToFloat64(a.m.appends); got != 3 {
		t.Fatalf("appends on first WAL = %v, want 3", got)
	}
	if got := testutil.ToFloat64(b.m.appends); got != 1 {
		t.Fatalf("appends on second WAL = %v, want 1", got)
	}
	a.Close()
	b.Close()

	a = openT(t, dirA, Options{Registerer: regA})
	defer a.Close()
	if _, err := a.Append(payload(9)); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(a.m.appends); got != 4 {
		t.Fatalf("appends after reopen on the same registry = %v, want 4", got)
	}
}
