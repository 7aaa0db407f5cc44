// Package hold keeps legal holds: an admin's decision that the days of a
// time range must outlive their retention because a case needs them as
// evidence. A held day is skipped by the purge (which says so in its
// report and metrics) and destroyed at the first purge after the last hold
// on it is released; past its retention it is searchable only under the
// case that holds it. Every action is written to the audit log before it
// takes effect. The holds live in <data_dir>/holds/holds.json, so they
// survive restarts; a released hold is removed from it by the next purge
// (the audit log keeps its history).
package hold

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/audit"
	"github.com/retentiond/retentiond/internal/fsutil"
	"github.com/retentiond/retentiond/internal/metricsx"
	"github.com/retentiond/retentiond/internal/objstore"
	"github.com/retentiond/retentiond/internal/record"
)

// Names inside the data directory.
const (
	DirName  = "holds"
	fileName = "holds.json"
)

// Hold is one legal hold. From and To are UTC days, both included.
type Hold struct {
	ID        string    `json:"id"`
	Case      string    `json:"case"`
	From      string    `json:"from"` // YYYY-MM-DD
	To        string    `json:"to"`   // YYYY-MM-DD, included
	Reason    string    `json:"reason"`
	Until     string    `json:"until"` // YYYY-MM-DD: when the case expects to release it; an alert fires after it
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by,omitempty"` // token name
	// Released is set when the hold was released; the next purge then
	// removes the hold and destroys the days nothing else holds.
	Released        *time.Time `json:"released,omitempty"`
	ReleasedBy      string     `json:"released_by,omitempty"`
	ReleaseReason   string     `json:"release_reason,omitempty"`
	from, to, until time.Time
	node            string // for another node's hold read from the bucket
}

// Active reports whether the hold still keeps its days.
func (h *Hold) Active() bool { return h.Released == nil }

// covers reports whether the hold's range holds the UTC day d.
func (h *Hold) covers(d time.Time) bool { return !d.Before(h.from) && !d.After(h.to) }

// Request is what an admin gives to place a hold.
type Request struct {
	Case   string `json:"case"`
	From   string `json:"from"`
	To     string `json:"to"`
	Reason string `json:"reason"`
	Until  string `json:"until"`
}

// Actor is who asks for an action, for the audit log.
type Actor struct {
	Token  string // token name; "" in development mode
	Source string // client address
}

// Errors a caller maps to HTTP statuses.
var (
	// ErrInvalid wraps a request that cannot be accepted (400).
	ErrInvalid = errors.New("invalid hold")
	// ErrNotFound means no active hold has that id (404).
	ErrNotFound = errors.New("no such active hold")
)

// Options configure a Registry.
type Options struct {
	// Audit receives a line for every action, before it takes effect.
	Audit *audit.Log
	// CaseCheck, when set, must accept the case a hold names (the case
	// registry of issue 17 plugs in here: the case must exist and be
	// open). Nil accepts any well-formed case id.
	CaseCheck func(caseID string) error
	FS        fsutil.FS
	Now       func() time.Time
	Logger    *slog.Logger
	// Registerer receives the hold metrics; nil: none.
	Registerer prometheus.Registerer
	// Bucket, when set (a cluster on object storage), receives a copy of
	// every active hold under objstore.HoldKey(Node, id), and Refresh
	// reads the other nodes' copies: a hold placed on any node then keeps
	// its days from every node's purge, including the one that destroys
	// expired days in the shared bucket (cluster.go).
	Bucket objstore.Bucket
	// Node is this node's name (cluster.node); required with Bucket.
	Node string
}

// Registry is the set of holds. It is safe for concurrent use.
type Registry struct {
	dir  string
	opts Options
	log  *slog.Logger

	mu    sync.Mutex
	next  int
	holds []*Hold
	// cluster are the other nodes' active holds as Refresh last read them
	// from the bucket.
	cluster []*Hold
}

// state is holds.json.
type state struct {
	Version int     `json:"version"`
	NextID  int     `json:"next_id"`
	Holds   []*Hold `json:"holds"`
}

// Open reads the holds in dir (creating it if needed).
func Open(dir string, opts Options) (*Registry, error) {
	if opts.Audit == nil {
		return nil, errors.New("hold: no audit log")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Bucket != nil {
		if err := objstore.ValidNode(opts.Node); err != nil {
			return nil, fmt.Errorf("hold: %w", err)
		}
	}
	r := &Registry{dir: dir, opts: opts, log: cmp.Or(opts.Logger, slog.Default()), next: 1}
	if err := opts.FS.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("holds directory: %w", err)
	}
	if _, err := opts.FS.SweepLeftovers(dir); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, fileName))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read holds: %w", err)
	default:
		var st state
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, fileName), err)
		}
		for _, h := range st.Holds {
			if err := h.parse(); err != nil {
				return nil, fmt.Errorf("read %s: hold %s: %w", filepath.Join(dir, fileName), h.ID, err)
			}
		}
		r.next, r.holds = max(st.NextID, 1), st.Holds
	}
	if err := metricsx.Register(opts.Registerer, collector{r}); err != nil {
		return nil, fmt.Errorf("hold: %w", err)
	}
	return r, nil
}

func (h *Hold) parse() error {
	var err error
	if h.from, err = record.ParseDay(h.From); err != nil {
		return fmt.Errorf("from: %w", err)
	}
	if h.to, err = record.ParseDay(h.To); err != nil {
		return fmt.Errorf("to: %w", err)
	}
	if h.until, err = record.ParseDay(h.Until); err != nil {
		return fmt.Errorf("until: %w", err)
	}
	if h.to.Before(h.from) {
		return fmt.Errorf("to %s is before from %s", h.To, h.From)
	}
	return nil
}

// save writes the holds durably (temp file, fsync, rename). r.mu is held.
func (r *Registry) save(holds []*Hold, next int) error {
	b, err := json.MarshalIndent(state{Version: 1, NextID: next, Holds: holds}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode holds: %w", err)
	}
	if err := r.opts.FS.WriteFile(filepath.Join(r.dir, fileName), append(b, '\n'), 0o640); err != nil {
		return fmt.Errorf("write holds: %w", err)
	}
	return nil
}

// checkText applies the audit log's rule for a justification.
func checkText(name, v string, maxLen int) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("%w: %s is required", ErrInvalid, name)
	}
	if msg := audit.CheckText(name, v, maxLen); msg != "" {
		return fmt.Errorf("%w: %s", ErrInvalid, msg)
	}
	return nil
}

// Add places a hold. The audit line is written (and fsynced) first; the
// hold is in force once Add returns.
func (r *Registry) Add(req Request, who Actor) (Hold, error) {
	if err := checkText("case", req.Case, audit.MaxCaseLength); err != nil {
		return Hold{}, err
	}
	if err := checkText("reason", req.Reason, audit.MaxReasonLength); err != nil {
		return Hold{}, err
	}
	h := &Hold{Case: req.Case, From: req.From, To: req.To, Reason: req.Reason, Until: req.Until, CreatedBy: who.Token}
	if err := h.parse(); err != nil {
		return Hold{}, fmt.Errorf("%w: %w (days are YYYY-MM-DD, UTC; to is included)", ErrInvalid, err)
	}
	now := r.opts.Now().UTC()
	if !h.until.After(now) {
		return Hold{}, fmt.Errorf("%w: until %s is not in the future", ErrInvalid, h.Until)
	}
	if r.opts.CaseCheck != nil {
		if err := r.opts.CaseCheck(req.Case); err != nil {
			return Hold{}, fmt.Errorf("%w: case %q: %w", ErrInvalid, req.Case, err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	h.ID = "hold-" + strconv.Itoa(r.next)
	h.Created = now
	e := r.entry("add", who, h)
	e.Reason = req.Reason
	err := r.opts.Audit.Do(e, func(int64) (int64, error) {
		// The bucket's copy first: a hold that cannot reach the other
		// nodes is refused rather than in force on this node only.
		if err := r.mirror(h); err != nil {
			return 0, err
		}
		holds := append(slices.Clone(r.holds), h)
		if err := r.save(holds, r.next+1); err != nil {
			return 0, err
		}
		r.holds, r.next = holds, r.next+1
		return 1, nil
	})
	if err != nil {
		return Hold{}, err
	}
	r.log.Info("legal hold placed", "id", h.ID, "from", h.From, "to", h.To, "until", h.Until, "by", who.Token)
	return *h, nil
}

// Release releases an active hold. Its days go at the next purge unless
// another hold keeps them.
func (r *Registry) Release(id, reason string, who Actor) (Hold, error) {
	if err := checkText("reason", reason, audit.MaxReasonLength); err != nil {
		return Hold{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	i := slices.IndexFunc(r.holds, func(h *Hold) bool { return h.ID == id && h.Active() })
	if i < 0 {
		return Hold{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	h := *r.holds[i]
	now := r.opts.Now().UTC()
	h.Released, h.ReleasedBy, h.ReleaseReason = &now, who.Token, reason
	e := r.entry("release", who, &h)
	e.Reason = reason
	err := r.opts.Audit.Do(e, func(int64) (int64, error) {
		if err := r.unmirror(&h); err != nil {
			return 0, err
		}
		holds := slices.Clone(r.holds)
		holds[i] = &h
		if err := r.save(holds, r.next); err != nil {
			return 0, err
		}
		r.holds = holds
		return 1, nil
	})
	if err != nil {
		return Hold{}, err
	}
	r.log.Info("legal hold released", "id", h.ID, "by", who.Token)
	return h, nil
}

// entry is the audit line of an action on h.
func (r *Registry) entry(action string, who Actor, h *Hold) audit.Entry {
	return audit.Entry{
		Event: audit.EventHold, Endpoint: "hold " + action, Token: who.Token, Source: who.Source,
		Case: h.Case, From: h.From, To: h.To, Params: "id=" + h.ID + "&until=" + h.Until,
	}
}

// List returns every hold, active and released (until the purge removes
// it), in the order they were placed.
func (r *Registry) List() []Hold {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Hold, len(r.holds))
	for i, h := range r.holds {
		out[i] = *h
	}
	return out
}

// HeldBy returns the ids of the active holds covering the UTC day of d
// (purge.Holds).
func (r *Registry) HeldBy(d time.Time) []string {
	d = record.Day(d)
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for _, h := range r.holds {
		if h.Active() && h.covers(d) {
			ids = append(ids, h.ID)
		}
	}
	for _, h := range r.cluster {
		if h.covers(d) {
			ids = append(ids, h.node+"/"+h.ID)
		}
	}
	return ids
}

// ForCase returns what a search under caseID may read beyond the
// retention: the first day an active hold of the case keeps (zero when
// none), and the test of a day. Another case's holds never widen a
// search: past its retention a held day is evidence for its case only.
func (r *Registry) ForCase(caseID string) (earliest time.Time, held func(day time.Time) bool) {
	r.mu.Lock()
	var mine []*Hold
	for _, h := range r.holds {
		if h.Active() && caseID != "" && h.Case == caseID {
			mine = append(mine, h)
			if earliest.IsZero() || h.from.Before(earliest) {
				earliest = h.from
			}
		}
	}
	r.mu.Unlock()
	return earliest, func(day time.Time) bool {
		d := record.Day(day)
		return slices.ContainsFunc(mine, func(h *Hold) bool { return h.covers(d) })
	}
}

// Purge removes released holds (purge.Purgeable): their days are no
// longer kept, and the purge run that calls it has just destroyed the
// expired ones. Each removal is audited.
func (r *Registry) Purge(ctx context.Context, _ time.Time) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var gone []*Hold
	keep := slices.DeleteFunc(slices.Clone(r.holds), func(h *Hold) bool {
		if !h.Active() {
			gone = append(gone, h)
			return true
		}
		return false
	})
	if len(gone) == 0 {
		return 0, nil
	}
	for _, h := range gone {
		e := r.entry("purge", Actor{}, h)
		e.Reason = "released hold removed by the purge"
		if _, err := r.opts.Audit.Append(withOutcome(e)); err != nil {
			return 0, fmt.Errorf("audit hold purge: %w", err)
		}
	}
	if err := r.save(keep, r.next); err != nil {
		return 0, err
	}
	r.holds = keep
	r.log.Info("released legal holds removed", "holds", len(gone))
	return len(gone), nil
}

func withOutcome(e audit.Entry) audit.Entry {
	e.Outcome = audit.OutcomeDone
	e.Count = 1
	return e
}

// collector reports the holds at scrape time.
type collector struct{ r *Registry }

var (
	activeDesc = prometheus.NewDesc("retentiond_holds_active",
		"Legal holds in force.", nil, nil)
	overdueDesc = prometheus.NewDesc("retentiond_holds_overdue",
		"Legal holds in force past their until date: the case expected to release them by then. Alert on > 0.", nil, nil)
	untilDesc = prometheus.NewDesc("retentiond_holds_oldest_until_timestamp_seconds",
		"Unix time of the earliest until date of the holds in force. Absent while none is.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- activeDesc
	ch <- overdueDesc
	ch <- untilDesc
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	now := c.r.opts.Now()
	var active, overdue int
	var oldest time.Time
	for _, h := range c.r.List() {
		if !h.Active() {
			continue
		}
		active++
		// A hold runs until the end of its until day.
		if !now.Before(h.until.AddDate(0, 0, 1)) {
			overdue++
		}
		if oldest.IsZero() || h.until.Before(oldest) {
			oldest = h.until
		}
	}
	ch <- prometheus.MustNewConstMetric(activeDesc, prometheus.GaugeValue, float64(active))
	ch <- prometheus.MustNewConstMetric(overdueDesc, prometheus.GaugeValue, float64(overdue))
	if !oldest.IsZero() {
		ch <- prometheus.MustNewConstMetric(untilDesc, prometheus.GaugeValue, float64(oldest.Unix()))
	}
}
