package metricsx

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRegister(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := prometheus.NewCounter(prometheus.CounterOpts{Name: "retentiond_test_a_total", Help: "a"})
	if err := Register(reg, a); err != nil {
		t.Fatal(err)
	}
	again := prometheus.NewCounter(prometheus.CounterOpts{Name: "retentiond_test_a_total", Help: "a"})
	if err := Register(reg, again); err == nil {
		t.Error("a name registered twice was accepted")
	}
	if err := Register(nil, again); err != nil {
		t.Errorf("nil registry: %v", err)
	}
}

func TestReuse(t *testing.T) {
	reg := prometheus.NewRegistry()
	first := Reuse(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "retentiond_test_b_total", Help: "b"}))
	first.Inc()
	second := Reuse(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "retentiond_test_b_total", Help: "b"}))
	second.Inc()
	if got := testutil.ToFloat64(first); got != 2 {
		t.Errorf("reopened component counts on a new collector: first = %v, want 2", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("a different metric of the same name did not panic")
		}
	}()
	Reuse(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "retentiond_test_b_total", Help: "other"}))
}
