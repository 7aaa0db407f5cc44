package purge

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/retentiond/retentiond/internal/policy"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/store"
	"github.com/retentiond/retentiond/internal/testkit"
)

// fakeStore is an in-memory Store. It records every deletion and the
// largest number of DeleteDay calls that were ever in flight at once, and can
// be told to fail or to block on chosen days.
type fakeStore struct {
	mu          sync.Mutex
	days        []store.DayInfo // sorted by day
	deleted     []time.Time
	fail        map[int64]error // DeleteDay of this day returns the error
	failAfter   map[int64]error // the day is removed, then the error is returned
	block       chan struct{}   // non-nil: DeleteDay waits for it (or ctx)
	entered     chan time.Time  // non-nil: DeleteDay reports each call here
	inflight    int
	maxInflight int
}

func newFakeStore() *fakeStore {
	return &fakeStore{fail: map[int64]error{}, failAfter: map[int64]error{}}
}

// find returns the index of day d in f.days and whether it is there.
func (f *fakeStore) find(d time.Time) (int, bool) {
	return slices.BinarySearchFunc(f.days, d, func(in store.DayInfo, d time.Time) int { return in.Day.Compare(d) })
}

// ingest stores n records spread over the UTC day of t, 100 bytes each.
func (f *fakeStore) ingest(t time.Time, n int) {
	d := record.Day(t)
	f.mu.Lock()
	defer f.mu.Unlock()
	i, ok := f.find(d)
	if !ok {
		f.days = slices.Insert(f.days, i, store.DayInfo{Day: d})
	}
	in := &f.days[i]
	lo := d.Add(time.Duration(1) * time.Minute)
	hi := d.Add(24*time.Hour - time.Millisecond)
	if in.MinTime.IsZero() || lo.Before(in.MinTime) {
		in.MinTime = lo
	}
	if hi.After(in.MaxTime) {
		in.MaxTime = hi
	}
	in.Records += int64(n)
	in.Bytes += int64(n) * 100
}

func (f *fakeStore) Days() []store.DayInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.days)
}

func (f *fakeStore) has(d time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.find(record.Day(d))
	return ok
}

func (f *fakeStore) DeleteDay(ctx context.Context, d time.Time) (store.DayInfo, error) {
	d = record.Day(d)
	f.mu.Lock()
	f.inflight++
	f.maxInflight = max(f.maxInflight, f.inflight)
	block, entered := f.block, f.entered
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
	}()
	if entered != nil {
		entered <- d
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return store.DayInfo{}, fmt.Errorf("delete day %s: waiting for searches: %w", record.DayString(d), ctx.Err())
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail[d.Unix()]; err != nil {
		return store.DayInfo{}, err
	}
	i, ok := f.find(d)
	if !ok {
		return store.DayInfo{}, nil
	}
	in := f.days[i]
	f.days = slices.Delete(f.days, i, i+1)
	f.deleted = append(f.deleted, d)
	return in, f.failAfter[d.Unix()]
}

// harness is a scheduler on a fake store and a simulated clock, with its own
// registry.
type harness struct {
	s     *Scheduler
	store *fakeStore
	clock *testkit.Clock
	reg   *prometheus.Registry
}

func newHarness(t *testing.T, ret string, opts Options) *harness {
	t.Helper()
	h := &harness{store: newFakeStore(), clock: testkit.NewClock(time.Time{}), reg: prometheus.NewRegistry()}
	opts.Policy = Policy{Retention: policy.MustParseRetention(ret)}
	opts.Store = h.store
	opts.Now = h.clock.Now
	opts.Registerer = h.reg
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := NewScheduler(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	t.Cleanup(func() { <-s.Stop().Done() })
	return h
}

// metric returns the value of the series name{labels} gathered from the
// registry, and whether it exists.
func (h *harness) metric(t *testing.T, name string, labels ...string) (float64, bool) {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			return value(m), true
		}
	}
	return 0, false
}

func (h *harness) mustMetric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, ok := h.metric(t, name, labels...)
	if !ok {
		t.Fatalf("metric %s%v not exposed", name, labels)
	}
	return v
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}
