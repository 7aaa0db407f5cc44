package auth

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/retentiond/retentiond/internal/metricsx"
)

type metrics struct {
	failures *prometheus.CounterVec
}

// newMetrics creates the authentication metrics and registers them on reg
// (when not nil). The only label is the failure reason, a fixed set of
// values: never a token, a name or an address.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "retentiond_auth_failures_total",
			Help: "API requests refused by authentication or authorisation, by reason.",
		}, []string{"reason"}),
	}
	for _, r := range []string{ReasonMissing, ReasonMalformed, ReasonInvalid, ReasonMissingRole, ReasonNotLoopback, ReasonSource, ReasonThrottled} {
		m.failures.WithLabelValues(r)
	}
	if err := metricsx.Register(reg, m.failures); err != nil {
		return nil, err
	}
	return m, nil
}
