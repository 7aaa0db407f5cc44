package cases

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/retentiond/retentiond/internal/audit"
	"github.com/retentiond/retentiond/internal/search"
)

// Reasons a search is refused under a case: the values of the reason label
// of retentiond_cases_refused_searches_total.
const (
	RefusedUnknown     = "unknown_case" // the registry has no such case (and search.require_case applies)
	RefusedNotApproved = "not_approved" // opened, not yet approved
	RefusedClosed      = "closed"
	RefusedExpired     = "expired"
	RefusedOutside     = "outside_range" // from or to outside the case's time range
	RefusedBadRequest  = "bad_request"   // from, to or q does not parse, so the bounds cannot be checked
)

// stateUnregistered is the state label of a search under a case id the
// registry does not know, allowed as free text (development mode, or
// search.require_case false); stateUnknown is the same id refused.
const (
	stateUnregistered = "unregistered"
	stateUnknown      = "unknown"
)

// Check is the registry's audit.CaseCheck: it decides whether a guarded
// request (search, count, stats, export) may run under the case it names,
// and bounds it to the case.
//
// A case the registry knows is always enforced: it must be approved, not
// closed and not expired. Its time range is a limit, not a default the
// client may widen: a request whose from or to lies outside it is refused
// (403, outside_range) rather than clamped, because a clamped answer looks
// like a complete one ("nothing before the 1st") when it is not. A request
// without from or to gets the case's bounds. The case's scope is AND-ed
// with the request's query: the query language is a conjunction of terms,
// so "SCOPE QUERY" matches exactly the records both match, and the check
// confirms that the joined text parses to the scope's terms followed by the
// query's. The request passed on carries the absolute from and to and the
// joined query, so the audit line records what actually ran.
//
// A case id the registry does not know is refused (403, unknown_case) when
// search.require_case is on and tokens are configured; otherwise (in
// development mode) it is allowed as a free-text case, as before the
// registry existed.
func (r *Registry) Check(req *http.Request, endpoint string) (*http.Request, *audit.Refusal) {
	now := r.now().UTC()
	q := req.URL.Query()
	id := q.Get(audit.ParamCase)
	c, ok := r.Get(id)
	if !ok {
		if !r.opts.RequireCase || r.opts.DevMode() {
			r.metrics.searches.WithLabelValues(stateUnregistered).Inc()
			return req, nil
		}
		r.metrics.searches.WithLabelValues(stateUnknown).Inc()
		return nil, r.refuse(RefusedUnknown, "case %q is not in the case registry: an admin opens it with 'retentiond case open' and a second admin approves it", id)
	}
	state := c.StateAt(now)
	r.metrics.searches.WithLabelValues(string(state)).Inc()
	switch state {
	case StatePending:
		return nil, r.refuse(RefusedNotApproved, "case %s is not approved yet: a second admin must approve it ('retentiond case approve %s')", c.ID, c.ID)
	case StateClosed:
		return nil, r.refuse(RefusedClosed, "case %s is closed: no more searches run under it", c.ID)
	case StateExpired:
		return nil, r.refuse(RefusedExpired, "case %s expired at %s: open a new case to continue", c.ID, c.ExpiresAt.Format(time.RFC3339))
	}

	from, to := c.From, c.To
	if s := q.Get("from"); s != "" {
		t, err := search.ParseTime(s, now)
		if err != nil {
			return nil, r.bad("from: %v", err)
		}
		if t.Before(c.From) {
			return nil, r.refuse(RefusedOutside, "from %s is before the start of case %s (%s); the case's range is [%s, %s)",
				t.UTC().Format(time.RFC3339Nano), c.ID, c.From.Format(time.RFC3339), c.From.Format(time.RFC3339), c.To.Format(time.RFC3339))
		}
		from = t
	}
	if s := q.Get("to"); s != "" {
		t, err := search.ParseTime(s, now)
		if err != nil {
			return nil, r.bad("to: %v", err)
		}
		if t.After(c.To) {
			return nil, r.refuse(RefusedOutside, "to %s is after the end of case %s (%s); the case's range is [%s, %s)",
				t.UTC().Format(time.RFC3339Nano), c.ID, c.To.Format(time.RFC3339), c.From.Format(time.RFC3339), c.To.Format(time.RFC3339))
		}
		to = t
	}
	query := q.Get("q")
	if c.Scope != "" {
		joined, err := within(c.Scope, query)
		if err != nil {
			return nil, r.bad("%v", err)
		}
		query = joined
	}
	q.Set("from", from.UTC().Format(time.RFC3339Nano))
	q.Set("to", to.UTC().Format(time.RFC3339Nano))
	q.Set("q", query)
	out := req.Clone(req.Context())
	u := *req.URL
	u.RawQuery = q.Encode()
	out.URL = &u
	out.RequestURI = u.RequestURI()
	return out, nil
}

// within returns the query that matches what both scope and query match:
// the two texts joined by a space, each in parentheses when either has
// alternatives (an OR), since "s a OR b" would mean "(s a) OR b". It parses
// both and the result and confirms that the result's alternatives are
// exactly those of scope AND query (each of the scope's followed by each of
// the query's, term for term), so no quoting or parenthesis in either can
// change what the other means.
func within(scope, query string) (string, error) {
	sq, err := search.Parse(scope)
	if err != nil {
		return "", fmt.Errorf("the case's scope does not parse: %w", err)
	}
	uq, err := search.Parse(query)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(query) == "" {
		return scope, nil
	}
	joined := scope + " " + query
	if len(sq.Alts) > 1 || len(uq.Alts) > 1 {
		joined = "(" + scope + ") (" + query + ")"
	}
	jq, err := search.Parse(joined)
	if err != nil {
		return "", fmt.Errorf("the query cannot be combined with the case's scope: %w", err)
	}
	var want [][]search.Term
	for _, s := range sq.Alts {
		for _, u := range uq.Alts {
			want = append(want, append(slices.Clip(s), u...))
		}
	}
	same := func(a, b search.Term) bool { return a.Text == b.Text && a.Negate == b.Negate }
	if !slices.EqualFunc(jq.Alts, want, func(a, b []search.Term) bool { return slices.EqualFunc(a, b, same) }) {
		return "", fmt.Errorf("the query cannot be combined with the case's scope")
	}
	return joined, nil
}

func (r *Registry) refuse(reason, format string, args ...any) *audit.Refusal {
	r.metrics.refused.WithLabelValues(reason).Inc()
	return &audit.Refusal{Status: http.StatusForbidden, Message: fmt.Sprintf(format, args...)}
}

func (r *Registry) bad(format string, args ...any) *audit.Refusal {
	r.metrics.refused.WithLabelValues(RefusedBadRequest).Inc()
	return &audit.Refusal{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}
