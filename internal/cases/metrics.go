package cases

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/retentiond/retentiond/internal/metricsx"
)

// metrics of the registry. No label carries a case id, a token name or a
// query: the audit log is where those are.
type metrics struct {
	open      *prometheus.GaugeVec
	searches  *prometheus.CounterVec
	refused   *prometheus.CounterVec
	emergency prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "retentiond_cases_open",
			Help: "Open cases by state: pending (awaiting approval) or approved (searchable).",
		}, []string{"state"}),
		searches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "retentiond_cases_searches_total",
			Help: "Guarded requests (search, count, stats, export) by the state of the case they named: approved, pending, closed, expired, unknown (refused), unregistered (free text allowed).",
		}, []string{"state"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "retentiond_cases_refused_searches_total",
			Help: "Guarded requests refused by the case registry, by reason.",
		}, []string{"reason"}),
		emergency: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_cases_emergency_approvals_total",
			Help: "Cases approved by their own opener in an emergency (break-glass); each one needs a review.",
		}),
	}
	// Every label value exists from the start, so that a rate or an alert
	// sees the first increase.
	for _, s := range []State{StatePending, StateApproved} {
		m.open.WithLabelValues(string(s))
	}
	for _, s := range []string{string(StateApproved), string(StatePending), string(StateClosed), string(StateExpired), stateUnknown, stateUnregistered} {
		m.searches.WithLabelValues(s)
	}
	for _, s := range []string{RefusedUnknown, RefusedNotApproved, RefusedClosed, RefusedExpired, RefusedOutside, RefusedBadRequest} {
		m.refused.WithLabelValues(s)
	}
	if err := metricsx.Register(reg, m.open, m.searches, m.refused, m.emergency); err != nil {
		return nil, err
	}
	return m, nil
}
