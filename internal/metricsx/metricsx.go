// Package metricsx holds the one way components register their metrics on
// the registry they are given (never the global one). Metric names are
// written whole, "retentiond_<component>_<what>_<unit>", so that a grep for
// a name an alert uses finds the code that defines it.
package metricsx

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers cs on reg, stopping at the first error (a name
// registered twice), which it returns. A nil reg registers nothing: tests
// and tools run components without metrics.
func Register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	return nil
}

// Reuse registers c on reg, or returns the collector of the same type
// already registered under its name: a component opened again in the same
// process on the same registry (a store closed and reopened, a second
// listener of one handler) keeps counting on the first collector instead of
// failing. Any other clash (two different metrics of one name) is a
// programming error and panics. A nil reg returns c unregistered.
func Reuse[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("register metric: %v", err))
	}
	return c
}
