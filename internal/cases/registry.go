// Package cases keeps the case registry: the investigations under which the
// pageview data may be consulted. The hoster's policy is that the data is
// never consulted without exceptional permission, the only exception being a
// data leak; a case is that permission made explicit. An admin opens it
// (id, title, reason, time range, optional scope, expiry), a different admin
// approves it (four-eyes; an admin may approve their own case only as an
// audited emergency), and searches may then run under it, inside its range
// and scope, until it is closed or expires.
//
// Every change is first a line of the hash-chained audit log (fsynced), then
// a new version of the registry file (written atomically through fsutil),
// and only then acknowledged. The registry file holds the whole current
// state, so it never depends on replaying audit files that audit retention
// may already have purged.
package cases

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/audit"
	"github.com/retentiond/retentiond/internal/fsutil"
	"github.com/retentiond/retentiond/internal/search"
)

// State is where a case is in its life. Pending and approved cases are
// open; closed and expired ones are over and never reopen (a new
// investigation is a new case).
type State string

// The states of a case.
const (
	StatePending  State = "pending"  // opened, waiting for a second admin's approval
	StateApproved State = "approved" // searches may run under it
	StateClosed   State = "closed"   // closed by an admin
	StateExpired  State = "expired"  // its expiry passed
)

// Open reports whether s is a state of an open (not yet ended) case.
func (s State) Open() bool { return s == StatePending || s == StateApproved }

// Limits on what a case holds.
const (
	MaxTitleLength  = 200
	MaxReasonLength = audit.MaxReasonLength
	MaxScopeLength  = 4096
)

// idRE is what a case id may look like: a reference into an incident
// register, short and plain, so that it reads the same in every log, URL
// and terminal.
var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

// ValidID returns an error when id cannot name a case.
func ValidID(id string) error {
	if !idRE.MatchString(id) {
		return fmt.Errorf("case id %q: use 1-64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit", id)
	}
	return nil
}

// Case is one investigation. Times are UTC. The JSON form is the registry
// file's and the API's.
type Case struct {
	ID     string    `json:"id"`
	Title  string    `json:"title"`
	Reason string    `json:"reason"`
	From   time.Time `json:"from"` // searches may see records from here (inclusive) ...
	To     time.Time `json:"to"`   // ... to here (exclusive)
	// Scope, when set, is a query every search under the case is AND-ed
	// with (internal/search syntax), e.g. domain:*.shop.example.nl.
	Scope     string    `json:"scope,omitempty"`
	State     State     `json:"state"`
	OpenedBy  string    `json:"opened_by"` // token name; empty in development mode
	OpenedAt  time.Time `json:"opened_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Approval: who, when, and whether it was a break-glass self-approval
	// with its justification.
	ApprovedBy    string     `json:"approved_by,omitempty"`
	ApprovedAt    *time.Time `json:"approved_at,omitempty"`
	Emergency     bool       `json:"emergency,omitempty"`
	Justification string     `json:"justification,omitempty"`
	// End: closed (by whom, why) or expired.
	ClosedBy    string     `json:"closed_by,omitempty"`
	CloseReason string     `json:"close_reason,omitempty"`
	EndedAt     *time.Time `json:"ended_at,omitempty"`
	// Events are the registry events, each with the seq of its audit line.
	Events []Event `json:"events"`
}

// Event is one change of a case, pointing at its audit line.
type Event struct {
	Seq     int64     `json:"seq"`             // the audit line's seq
	Time    time.Time `json:"time"`            // when it happened
	Outcome string    `json:"event"`           // audit.OutcomeOpened, ...Approved, ...EmergencyApproved, ...Closed, ...Expired
	Token   string    `json:"token,omitempty"` // who did it; empty for expiry and in development mode
}

// StateAt is the case's state at now: an open case whose expiry has passed
// is expired even before the registry has recorded it.
func (c *Case) StateAt(now time.Time) State {
	if c.State.Open() && !now.Before(c.ExpiresAt) {
		return StateExpired
	}
	return c.State
}

// clone returns a deep copy, so that callers never share the registry's
// memory.
func (c *Case) clone() *Case {
	d := *c
	d.Events = slices.Clone(c.Events)
	return &d
}

// Actor is who asks for a change: the token name (empty in development
// mode, where nobody is identified) and the client address, for the audit
// line.
type Actor struct {
	Name   string
	Source string
}

// Error is a refused change. Status is the HTTP status the API answers.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

func errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// Options configure a Registry.
type Options struct {
	Dir string     // where cases.json lives (DATA_DIR/cases)
	Log *audit.Log // the audit log every event goes to first
	// FS performs every file effect; the zero value is the real file system.
	FS     fsutil.FS
	Now    func() time.Time // nil: time.Now
	Logger *slog.Logger
	// Registerer receives the metrics; nil: kept but not registered.
	Registerer     prometheus.Registerer
	DefaultExpires time.Duration // expiry of a case opened without one
	MaxExpires     time.Duration // the longest expiry accepted
	// RequireCase is search.require_case: searches must name an approved
	// case of the registry. DevMode reports whether no tokens are
	// configured (auth); then a case id the registry does not know is
	// accepted as free text. Both are asked at every search, so a reload
	// that adds the first token switches enforcement on at once.
	RequireCase bool
	DevMode     func() bool
}

// fileName is the registry file inside Options.Dir.
const fileName = "cases.json"

// fileVersion is the format of the registry file.
const fileVersion = 1

type file struct {
	Version int     `json:"version"`
	Cases   []*Case `json:"cases"`
}

// Registry is the open case registry. It is safe for concurrent use;
// changes are serialised.
type Registry struct {
	opts    Options
	path    string
	now     func() time.Time
	log     *slog.Logger
	metrics *metrics

	mu    sync.Mutex
	cases map[string]*Case
}

// Open loads the registry from opts.Dir (creating the directory if needed).
// A registry file that does not decode is an error naming the file: the
// daemon must not start with an unknown set of permissions.
func Open(opts Options) (*Registry, error) {
	if opts.Log == nil {
		return nil, errors.New("cases: an audit log is required")
	}
	if opts.MaxExpires <= 0 || opts.DefaultExpires <= 0 || opts.DefaultExpires > opts.MaxExpires {
		return nil, fmt.Errorf("cases: default expiry %s must be positive and at most the maximum %s", opts.DefaultExpires, opts.MaxExpires)
	}
	r := &Registry{
		opts:  opts,
		path:  filepath.Join(opts.Dir, fileName),
		now:   opts.Now,
		log:   cmp.Or(opts.Logger, slog.Default()),
		cases: map[string]*Case{},
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.opts.DevMode == nil {
		r.opts.DevMode = func() bool { return false }
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	r.metrics = m
	if err := opts.FS.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("case registry dir: %w", err)
	}
	b, err := os.ReadFile(r.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read case registry: %w", err)
	default:
		var f file
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) {
				return nil, fmt.Errorf("case registry %s offset %d: %w", r.path, se.Offset, err)
			}
			return nil, fmt.Errorf("case registry %s: %w", r.path, err)
		}
		if f.Version != fileVersion {
			return nil, fmt.Errorf("case registry %s: version %d, want %d", r.path, f.Version, fileVersion)
		}
		for _, c := range f.Cases {
			if err := ValidID(c.ID); err != nil {
				return nil, fmt.Errorf("case registry %s: %w", r.path, err)
			}
			if r.cases[c.ID] != nil {
				return nil, fmt.Errorf("case registry %s: case %s appears twice", r.path, c.ID)
			}
			r.cases[c.ID] = c
		}
	}
	r.mu.Lock()
	r.expireDueLocked(r.now())
	r.updateGaugeLocked()
	r.mu.Unlock()
	return r, nil
}

// save writes the registry with c replacing (or adding) its case and the
// cases named in drop left out, atomically and fsynced, and only then
// makes it the registry's state.
func (r *Registry) save(c *Case, drop map[string]bool) error {
	next := make(map[string]*Case, len(r.cases)+1)
	for id, x := range r.cases {
		if !drop[id] {
			next[id] = x
		}
	}
	if c != nil {
		next[c.ID] = c
	}
	f := file{Version: fileVersion, Cases: make([]*Case, 0, len(next))}
	for _, x := range next {
		f.Cases = append(f.Cases, x)
	}
	slices.SortFunc(f.Cases, func(a, b *Case) int { return strings.Compare(a.ID, b.ID) })
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode case registry: %w", err)
	}
	if err := r.opts.FS.WriteFile(r.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write case registry: %w", err)
	}
	r.cases = next
	r.updateGaugeLocked()
	return nil
}

// entry is the audit line of an event on c.
func entry(c *Case, action, outcome string, who Actor) audit.Entry {
	e := audit.Entry{
		Event:    audit.EventCase,
		Endpoint: action,
		Outcome:  outcome,
		Token:    who.Name,
		Source:   who.Source,
		Case:     c.ID,
		Count:    -1,
	}
	switch outcome {
	case audit.OutcomeOpened:
		e.Title, e.Reason, e.Query = c.Title, c.Reason, c.Scope
		e.From, e.To = c.From.Format(time.RFC3339Nano), c.To.Format(time.RFC3339Nano)
		e.Expires = c.ExpiresAt.Format(time.RFC3339Nano)
	case audit.OutcomeEmergencyApproved:
		e.Reason = c.Justification
	case audit.OutcomeClosed:
		e.Reason = c.CloseReason
	}
	return e
}

// commit records an event: first its audit line (fsynced), then the
// registry file. Only when both are durable does the change take effect and
// is it acknowledged. If the registry file cannot be written after the
// audit line was, the line stands for an attempt that did not take effect
// (the error says so, and the daemon logs the line's seq).
func (r *Registry) commit(c *Case, action, outcome string, who Actor, at time.Time) error {
	seq, err := r.opts.Log.Append(entry(c, action, outcome, who))
	if err != nil {
		return errorf(http.StatusServiceUnavailable, "the audit log cannot be written, so the case was not changed: %v", err)
	}
	c.Events = append(c.Events, Event{Seq: seq, Time: at, Outcome: outcome, Token: who.Name})
	if err := r.save(c, nil); err != nil {
		r.log.Error("case registry not written after its audit line; the change did not take effect", "audit_seq", seq, "action", action, "err", err)
		return errorf(http.StatusServiceUnavailable, "audit line %d was written but the case registry could not be, so the change did not take effect: %v", seq, err)
	}
	return nil
}

// refused records a refused attempt at a change of a case in the audit
// log: a refused approval is exactly what a reviewer wants to see.
func (r *Registry) refused(id, action string, who Actor, reason string, err *Error) *Error {
	e := audit.Entry{Event: audit.EventCase, Endpoint: action, Outcome: audit.OutcomeRefused, Token: who.Name,
		Source: who.Source, Case: id, Reason: reason, Status: err.Status, Error: err.Msg, Count: -1}
	if _, aerr := r.opts.Log.Append(e); aerr != nil {
		r.log.Error("audit line for a refused case change not written", "action", action, "err", aerr)
	}
	return err
}

// OpenRequest is what `retentiond case open` and POST /api/v1/cases send.
// Times take the forms of search's from and to (RFC 3339, a date, or
// relative like -7d) and are stored as absolute UTC times; Expires is a
// duration ("30d", "72h"), counted from the opening.
type OpenRequest struct {
	ID      string `json:"id"`
	Title   string `json:"title"`
	Reason  string `json:"reason"`
	From    string `json:"from"`
	To      string `json:"to"`
	Scope   string `json:"scope,omitempty"`
	Expires string `json:"expires,omitempty"`
}

// ParseExpires parses an expiry: whole days ("30d") or a Go duration
// ("72h", "90m").
func ParseExpires(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > 100000 {
			return 0, fmt.Errorf("expires %q: want whole days such as 30d, or a duration such as 72h", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("expires %q: want whole days such as 30d, or a duration such as 72h", s)
	}
	return v, nil
}

// checkText applies the audit log's text rule and requires a value.
func checkText(what, v string, max int, required bool) *Error {
	if required && strings.TrimSpace(v) == "" {
		return errorf(http.StatusBadRequest, "%s is required", what)
	}
	if msg := audit.CheckText(what, v, max); msg != "" {
		return errorf(http.StatusBadRequest, "%s", msg)
	}
	return nil
}

// Open registers a new case, pending approval. Only an admin may; the
// caller (the API) checks the role.
func (r *Registry) Open(who Actor, req OpenRequest) (Case, error) {
	now := r.now().UTC()
	if err := ValidID(req.ID); err != nil {
		return Case{}, errorf(http.StatusBadRequest, "%v", err)
	}
	c := &Case{ID: req.ID, Title: strings.TrimSpace(req.Title), Reason: strings.TrimSpace(req.Reason),
		Scope: strings.TrimSpace(req.Scope), State: StatePending, OpenedBy: who.Name, OpenedAt: now}
	if err := r.validateOpen(c, req, now); err != nil {
		// Not audited: nothing was registered and the request may not even
		// name a usable id. Refusals of state (a duplicate id) are.
		return Case{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireDueLocked(now)
	if old := r.cases[c.ID]; old != nil {
		return Case{}, r.refused(c.ID, "open", who, c.Reason,
			errorf(http.StatusConflict, "case %s already exists (%s); a new investigation needs a new id", c.ID, old.State))
	}
	if err := r.commit(c, "open", audit.OutcomeOpened, who, now); err != nil {
		return Case{}, err
	}
	r.log.Info("case opened; it needs a second admin's approval", "token_name", who.Name, "audit_seq", c.Events[len(c.Events)-1].Seq)
	return *c.clone(), nil
}

func (r *Registry) validateOpen(c *Case, req OpenRequest, now time.Time) error {
	if err := checkText("title", c.Title, MaxTitleLength, true); err != nil {
		return err
	}
	if err := checkText("reason", c.Reason, MaxReasonLength, true); err != nil {
		return err
	}
	if strings.TrimSpace(req.From) == "" || strings.TrimSpace(req.To) == "" {
		return errorf(http.StatusBadRequest, "from and to are required: a case bounds the time its searches may see")
	}
	var err error
	if c.From, err = search.ParseTime(strings.TrimSpace(req.From), now); err != nil {
		return errorf(http.StatusBadRequest, "from: %v", err)
	}
	if c.To, err = search.ParseTime(strings.TrimSpace(req.To), now); err != nil {
		return errorf(http.StatusBadRequest, "to: %v", err)
	}
	c.From, c.To = c.From.UTC(), c.To.UTC()
	if !c.From.Before(c.To) {
		return errorf(http.StatusBadRequest, "empty time range: from %s is not before to %s", c.From.Format(time.RFC3339), c.To.Format(time.RFC3339))
	}
	if c.Scope != "" {
		if err := checkText("scope", c.Scope, MaxScopeLength, false); err != nil {
			return err
		}
		q, err := search.Parse(c.Scope)
		if err != nil {
			return errorf(http.StatusBadRequest, "scope: %v", err)
		}
		if q.Empty() {
			c.Scope = ""
		}
	}
	exp := r.opts.DefaultExpires
	if strings.TrimSpace(req.Expires) != "" {
		if exp, err = ParseExpires(req.Expires); err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
	}
	if exp > r.opts.MaxExpires {
		return errorf(http.StatusBadRequest, "expires %s is longer than cases.max_expires (%s)", exp, r.opts.MaxExpires)
	}
	c.ExpiresAt = now.Add(exp)
	return nil
}

// Approve approves a pending case. The approver must be a different token
// than the opener (four-eyes). With emergency, the opener may approve alone
// (break-glass), giving a justification: that is allowed, recorded as an
// emergency approval in the audit log, counted in
// retentiond_cases_emergency_approvals_total and logged at warn level, so
// that the alert RetentiondCaseEmergencyApproval makes someone review it.
// In development mode nobody is identified, so only an emergency approval
// is possible there.
func (r *Registry) Approve(who Actor, id string, emergency bool, justification string) (Case, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, justification, now, err := r.lookupLocked(who, "approve", id, "justification", justification, emergency)
	if err != nil {
		return Case{}, err
	}
	if old.State != StatePending {
		return Case{}, r.refused(id, "approve", who, justification, errorf(http.StatusConflict, "case %s is %s, not pending approval", id, old.State))
	}
	self := who.Name == old.OpenedBy
	switch {
	case self && !emergency:
		return Case{}, r.refused(id, "approve", who, justification, errorf(http.StatusForbidden,
			"four-eyes: case %s was opened by %s; a different admin must approve it (or, in an emergency, approve with --emergency --justification, which is audited and alerted)",
			id, cmp.Or(old.OpenedBy, "the development-mode user")))
	case !self && emergency:
		return Case{}, r.refused(id, "approve", who, justification, errorf(http.StatusBadRequest,
			"--emergency is for approving your own case; as a second admin, approve case %s without it", id))
	}
	if !self && justification != "" {
		return Case{}, errorf(http.StatusBadRequest, "a justification goes with --emergency only")
	}
	c := old.clone()
	c.State, c.ApprovedBy, c.ApprovedAt, c.Emergency, c.Justification = StateApproved, who.Name, &now, emergency, justification
	outcome := audit.OutcomeApproved
	if emergency {
		outcome = audit.OutcomeEmergencyApproved
	}
	if err := r.commit(c, "approve", outcome, who, now); err != nil {
		return Case{}, err
	}
	seq := c.Events[len(c.Events)-1].Seq
	if emergency {
		r.metrics.emergency.Inc()
		r.log.Warn("case approved by its own opener in an emergency (break-glass): review it", "token_name", who.Name, "audit_seq", seq)
	} else {
		r.log.Info("case approved", "token_name", who.Name, "audit_seq", seq)
	}
	return *c.clone(), nil
}

// Close ends an open case: no search runs under it any more.
func (r *Registry) Close(who Actor, id, reason string) (Case, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, reason, now, err := r.lookupLocked(who, "close", id, "reason", reason, false)
	if err != nil {
		return Case{}, err
	}
	if !old.State.Open() {
		return Case{}, r.refused(id, "close", who, reason, errorf(http.StatusConflict, "case %s is already %s", id, old.State))
	}
	c := old.clone()
	c.State, c.ClosedBy, c.CloseReason, c.EndedAt = StateClosed, who.Name, reason, &now
	if err := r.commit(c, "close", audit.OutcomeClosed, who, now); err != nil {
		return Case{}, err
	}
	r.log.Info("case closed", "token_name", who.Name, "audit_seq", c.Events[len(c.Events)-1].Seq)
	return *c.clone(), nil
}

// lookupLocked is the prelude of a change to an existing case (Approve,
// Close): it checks the id and the text the change carries (trimmed; what
// names it in errors, required refuses it empty), records due expiries, and
// returns the case, the trimmed text and the time of the change. An
// unknown case is refused, and the refusal audited as action. r.mu must be
// held.
func (r *Registry) lookupLocked(who Actor, action, id, what, text string, required bool) (old *Case, trimmed string, now time.Time, err error) {
	now = r.now().UTC()
	if err := ValidID(id); err != nil {
		return nil, "", now, errorf(http.StatusBadRequest, "%v", err)
	}
	text = strings.TrimSpace(text)
	if err := checkText(what, text, MaxReasonLength, required); err != nil {
		return nil, "", now, err
	}
	r.expireDueLocked(now)
	if old = r.cases[id]; old == nil {
		return nil, "", now, r.refused(id, action, who, text, errorf(http.StatusNotFound, "no case %s", id))
	}
	return old, text, now, nil
}

// expireDueLocked records the expiry of every open case whose expiry has
// passed. A failure is logged and retried at the next call; meanwhile
// StateAt already treats the case as expired, so no search runs under it.
func (r *Registry) expireDueLocked(now time.Time) {
	for _, old := range r.cases {
		if !old.State.Open() || now.Before(old.ExpiresAt) {
			continue
		}
		c := old.clone()
		at := c.ExpiresAt
		c.State, c.EndedAt = StateExpired, &at
		if err := r.commit(c, "expire", audit.OutcomeExpired, Actor{}, now); err != nil {
			r.log.Error("case expiry not recorded; will retry", "err", err)
			continue
		}
		r.log.Info("case expired", "audit_seq", c.Events[len(c.Events)-1].Seq)
	}
}

// Tick records due expiries. The daemon calls it every minute (Run), so
// that an expiry is in the audit log near the time it happened even when
// nobody uses the registry.
func (r *Registry) Tick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireDueLocked(r.now().UTC())
}

// Run calls Tick every interval until ctx ends.
func (r *Registry) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.Tick()
		}
	}
}

// Get returns the case id, and whether it exists. This is also the lookup
// for legal holds (issue 19), which attach to cases by id: a hold may be
// placed under an open case and is reviewed when the case ends.
func (r *Registry) Get(id string) (Case, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireDueLocked(r.now().UTC())
	c := r.cases[id]
	if c == nil {
		return Case{}, false
	}
	return *c.clone(), true
}

// List returns the cases in the given states (all when none are given),
// newest first.
func (r *Registry) List(states ...State) []Case {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireDueLocked(r.now().UTC())
	var out []Case
	for _, c := range r.cases {
		if len(states) == 0 || slices.Contains(states, c.State) {
			out = append(out, *c.clone())
		}
	}
	slices.SortFunc(out, func(a, b Case) int {
		return cmp.Or(b.OpenedAt.Compare(a.OpenedAt), strings.Compare(a.ID, b.ID))
	})
	return out
}

// Purge removes closed and expired cases that ended before before (the
// audit retention's cutoff): by then the audit lines that tell their story
// are purged too, and a registry kept longer would keep their titles,
// reasons and scopes (which may name addresses) past the promised
// retention. Open cases are never purged.
func (r *Registry) Purge(_ context.Context, before time.Time) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	drop := map[string]bool{}
	for id, c := range r.cases {
		if !c.State.Open() && c.EndedAt != nil && c.EndedAt.Before(before) {
			drop[id] = true
		}
	}
	if len(drop) == 0 {
		return 0, nil
	}
	if err := r.save(nil, drop); err != nil {
		return 0, err
	}
	r.log.Info("ended cases removed from the case registry by audit retention", "cases", len(drop))
	return len(drop), nil
}

func (r *Registry) updateGaugeLocked() {
	n := map[State]int{}
	for _, c := range r.cases {
		n[c.State]++
	}
	r.metrics.open.WithLabelValues(string(StatePending)).Set(float64(n[StatePending]))
	r.metrics.open.WithLabelValues(string(StateApproved)).Set(float64(n[StateApproved]))
}
