// Package erasure carries out a data subject's erasure request (GDPR Art.
// 17) for one IP address or network: it writes the audit line first,
// removes every record of the address through store.Erase, and leaves a
// signed erasure report with the counts per day. Neither the report, the
// audit line nor the daemon's log repeats the address in clear: they name
// it by a keyed hash (HMAC-SHA256 with a key of the data directory), so the
// operator can later show that a given address was erased by hashing it
// again (`retentiond erase --hash-only`), while a reader of the report
// cannot recover the address from it.
package erasure

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/retentiond/retentiond/internal/audit"
	"github.com/retentiond/retentiond/internal/fsutil"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/report"
	"github.com/retentiond/retentiond/internal/signing"
	"github.com/retentiond/retentiond/internal/store"
)

// KeyFile is the HMAC key's file name in the data directory's key
// directory (signing.KeyDir).
const KeyFile = "erasure-hmac.key"

// Store is what an erasure needs from the data directory.
type Store interface {
	Erase(ctx context.Context, e store.Erasure) (store.ErasureResult, error)
}

// Holds tells which days a legal hold keeps (internal/hold): an erasure
// leaves them alone (Art. 17(3)(e): data needed for legal claims) and its
// report lists them.
type Holds interface {
	HeldBy(day time.Time) []string
}

// Options configure an Eraser.
type Options struct {
	Store   Store
	Audit   *audit.Log
	Reports *report.Dir
	Holds   Holds // nil: no holds
	// Cluster, when set with peers, makes every erasure asked of this
	// node also run on each peer (cluster.go); nil: a single node.
	Cluster *Cluster
	// Node is this node's name (cluster.node) when Cluster is nil.
	Node   string
	FS     fsutil.FS
	Now    func() time.Time
	Logger *slog.Logger
}

// Eraser runs erasures.
type Eraser struct {
	opts Options
	key  []byte
	log  *slog.Logger
}

// New loads (or creates on first use) the HMAC key of the data directory
// dataDir.
func New(dataDir string, opts Options) (*Eraser, error) {
	if opts.Store == nil || opts.Audit == nil || opts.Reports == nil {
		return nil, errors.New("erasure: store, audit log and reports are required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	key, err := loadKey(dataDir, opts.FS)
	if err != nil {
		return nil, err
	}
	return &Eraser{opts: opts, key: key, log: cmp.Or(opts.Logger, slog.Default())}, nil
}

// KeyPath returns the HMAC key's path in the data directory dataDir.
func KeyPath(dataDir string) string { return filepath.Join(dataDir, signing.KeyDir, KeyFile) }

func loadKey(dataDir string, fsys fsutil.FS) ([]byte, error) {
	path := KeyPath(dataDir)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		b = make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("generate erasure key: %w", err)
		}
		if err := fsys.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("erasure key directory: %w", err)
		}
		if err := fsys.WriteFile(path, b, 0o600); err != nil {
			return nil, fmt.Errorf("write erasure key: %w", err)
		}
		return b, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read erasure key: %w", err)
	}
	if len(b) != 32 {
		return nil, fmt.Errorf("erasure key %s: %d bytes, want 32", path, len(b))
	}
	return b, nil
}

// LoadKey reads the HMAC key of a data directory without creating it (for
// `retentiond erase --hash-only` on the daemon's host).
func LoadKey(dataDir string) ([]byte, error) {
	b, err := os.ReadFile(KeyPath(dataDir))
	if err != nil {
		return nil, fmt.Errorf("read erasure key: %w", err)
	}
	return b, nil
}

// Subject is how reports and logs name an erased prefix: the keyed hash
// of its canonical form (masked address / bits).
func Subject(key []byte, p netip.Prefix) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(p.Masked().String()))
	return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil))
}

// ParsePrefix reads an address (a whole /32 or /128) or a CIDR network.
// IPv4-mapped IPv6 addresses are taken as the IPv4 address, as the store
// keeps them.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, errors.New("not an address or a CIDR network")
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, errors.New("not an address or a CIDR network")
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Request is an erasure request. From and To are YYYY-MM-DD (UTC; To's
// day included) or RFC 3339 times (To excluded); empty means unbounded.
type Request struct {
	IP     string `json:"ip"`
	From   string `json:"from,omitempty"`
	To     string `json:"to,omitempty"`
	Case   string `json:"case"`
	Reason string `json:"reason"`
}

// Actor is who asked, for the audit line and the report.
type Actor struct {
	Token  string
	Source string
}

// ErrInvalid wraps a request that cannot be run (HTTP 400).
var ErrInvalid = errors.New("invalid erasure request")

func parseBound(s string, end bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := record.ParseDay(s); err == nil {
		if end {
			return d.AddDate(0, 0, 1), nil
		}
		return d, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither YYYY-MM-DD nor an RFC 3339 time", s)
	}
	return t.UTC(), nil
}

// Day is one day of an erasure report.
type Day struct {
	Day            string `json:"day"`
	RecordsRemoved int64  `json:"records_removed"`
	RecordsKept    int64  `json:"records_kept"` // other records of the rewritten files
	FilesRewritten int    `json:"files_rewritten"`
	FilesRemoved   int    `json:"files_removed"`
	BytesBefore    int64  `json:"bytes_before"`
	BytesAfter     int64  `json:"bytes_after"`
}

// HeldDay is a day the erasure left alone because a hold keeps it.
type HeldDay struct {
	Day   string   `json:"day"`
	Holds []string `json:"holds"`
}

// Report is the body of a signed erasure report.
type Report struct {
	Result         string    `json:"result"` // success, partial (see NotErased) or failure
	Error          string    `json:"error,omitempty"`
	Subject        string    `json:"subject"` // keyed hash of the prefix (Subject)
	PrefixBits     int       `json:"prefix_bits"`
	Family         string    `json:"family"` // ipv4 or ipv6
	From           string    `json:"from,omitempty"`
	To             string    `json:"to,omitempty"`
	Case           string    `json:"case"`
	Reason         string    `json:"reason"`
	RequestedBy    string    `json:"requested_by"` // token name
	Started        time.Time `json:"started"`
	Finished       time.Time `json:"finished"`
	AuditSeq       int64     `json:"audit_seq"` // the audit line written before the erasure ran
	Days           []Day     `json:"days"`
	RecordsRemoved int64     `json:"records_removed"` // on this node
	// ObjectsDestroyed are this node's objects in the bucket that held
	// the address: replaced by rewritten ones and destroyed with every
	// version.
	ObjectsDestroyed []string `json:"objects_destroyed"`
	// UploadsPending are days whose rewritten file is not in the bucket
	// yet (the upload loop retries; this node serves the day meanwhile).
	UploadsPending []string `json:"uploads_pending,omitempty"`
	// Nodes are the peers the erasure was fanned out to (cluster.peers).
	Nodes []NodeResult `json:"nodes,omitempty"`
	// NotErased names what may still hold the address: peers that did
	// not answer or failed, this node's objects the bucket did not let it
	// destroy, objects of nodes outside the cluster. Not empty: the
	// result is partial and the erasure must be run again.
	NotErased []string  `json:"not_erased"`
	Held      []HeldDay `json:"held"`
	// UncheckedFiles are damaged (quarantined) segment files in the
	// range, which cannot be read and so may still hold the address.
	UncheckedFiles []string `json:"unchecked_files"`
	ReportFile     string   `json:"-"`
}

// ErrPartial is returned (wrapped) when the erasure ran but something may
// still hold the address (Report.NotErased): run it again.
var ErrPartial = errors.New("erasure partial")

// Erase runs the erasure req: audit line first, then the store's erasure,
// then (with Options.Cluster) the same erasure on every peer, then the
// signed report. It returns the report (also on failure, when the
// erasure ran part-way); a partial erasure returns ErrPartial.
func (e *Eraser) Erase(ctx context.Context, req Request, who Actor) (Report, error) {
	return e.erase(ctx, req, who, true)
}

func (e *Eraser) erase(ctx context.Context, req Request, who Actor, fanOut bool) (Report, error) {
	p, err := ParsePrefix(req.IP)
	if err != nil {
		return Report{}, fmt.Errorf("%w: ip: %w", ErrInvalid, err)
	}
	if err := checkText("case", req.Case, audit.MaxCaseLength); err != nil {
		return Report{}, err
	}
	if err := checkText("reason", req.Reason, audit.MaxReasonLength); err != nil {
		return Report{}, err
	}
	// The address must not reach the report or the audit log through the
	// free text either.
	for _, v := range []string{req.Case, req.Reason} {
		if strings.Contains(v, p.Addr().String()) || strings.Contains(v, req.IP) {
			return Report{}, fmt.Errorf("%w: case and reason must not contain the address (reports name it by its keyed hash only)", ErrInvalid)
		}
	}
	from, err := parseBound(req.From, false)
	if err != nil {
		return Report{}, fmt.Errorf("%w: from: %w", ErrInvalid, err)
	}
	to, err := parseBound(req.To, true)
	if err != nil {
		return Report{}, fmt.Errorf("%w: to: %w", ErrInvalid, err)
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return Report{}, fmt.Errorf("%w: from is not before to", ErrInvalid)
	}
	rep := Report{
		Subject: Subject(e.key, p), PrefixBits: p.Bits(), Family: "ipv6",
		From: req.From, To: req.To, Case: req.Case, Reason: req.Reason, RequestedBy: who.Token,
		Started: e.opts.Now().UTC(), Days: []Day{}, Held: []HeldDay{}, UncheckedFiles: []string{},
		ObjectsDestroyed: []string{}, NotErased: []string{},
	}
	if p.Addr().Is4() {
		rep.Family = "ipv4"
	}
	ae := audit.Entry{Event: audit.EventErasure, Endpoint: "erase", Token: who.Token, Source: who.Source,
		Case: req.Case, Reason: req.Reason, Query: rep.Subject, From: req.From, To: req.To}
	var skip func(time.Time) bool
	if e.opts.Holds != nil {
		skip = func(d time.Time) bool { return len(e.opts.Holds.HeldBy(d)) > 0 }
	}
	var res store.ErasureResult
	runErr := e.opts.Audit.Do(ae, func(seq int64) (int64, error) {
		rep.AuditSeq = seq
		var err error
		res, err = e.opts.Store.Erase(ctx, store.Erasure{Prefix: p, From: from, To: to, Skip: skip})
		return res.Records, err
	})
	if rep.AuditSeq == 0 && runErr != nil {
		// The audit line could not be written: nothing ran.
		return Report{}, runErr
	}
	for _, o := range res.Destroyed {
		rep.ObjectsDestroyed = append(rep.ObjectsDestroyed, o.Key)
	}
	for _, o := range res.Pending {
		rep.NotErased = append(rep.NotErased, fmt.Sprintf("this node's object %s of day %s (%v)", o.Key, record.DayString(o.Day), o.Err))
	}
	for _, d := range res.UploadPending {
		rep.UploadsPending = append(rep.UploadsPending, record.DayString(d))
	}
	if c := e.opts.Cluster; fanOut && c != nil && len(c.URLs) > 0 {
		rep.Nodes = c.fanOut(ctx, req)
		for _, n := range rep.Nodes {
			if n.Result != "success" {
				rep.NotErased = append(rep.NotErased, fmt.Sprintf("peer %s (%s: %s)", n.Peer, n.Result, n.Error))
			}
		}
	}
	if fl, ok := e.opts.Store.(ForeignLister); ok && fanOut {
		// What the bucket still has of nodes that did not erase: peers
		// that failed, and nodes outside cluster.peers.
		var erased []string
		for _, n := range rep.Nodes {
			if n.Result == "success" && n.Node != "" {
				erased = append(erased, n.Node)
			}
		}
		objs, err := fl.ForeignObjects(ctx, p, from, to, skip, erased)
		if err != nil {
			rep.NotErased = append(rep.NotErased, "the bucket could not be listed to check other nodes' objects: "+err.Error())
		}
		for _, o := range objs {
			why := "not in cluster.peers or did not erase"
			if o.Unreadable {
				why += "; unreadable here"
			}
			rep.NotErased = append(rep.NotErased, fmt.Sprintf("node %s's object %s of day %s (%s)", o.Node, o.Key, record.DayString(o.Day), why))
		}
	}
	rep.Finished = e.opts.Now().UTC()
	for _, d := range res.Days {
		rep.Days = append(rep.Days, Day{Day: record.DayString(d.Day), RecordsRemoved: d.Records, RecordsKept: d.Kept,
			FilesRewritten: d.FilesRewritten, FilesRemoved: d.FilesRemoved, BytesBefore: d.BytesBefore, BytesAfter: d.BytesAfter,
		})
	}
	for _, d := range res.Skipped {
		var ids []string
		if e.opts.Holds != nil {
			ids = e.opts.Holds.HeldBy(d)
		}
		rep.Held = append(rep.Held, HeldDay{Day: record.DayString(d), Holds: append([]string{}, ids...)})
	}
	rep.UncheckedFiles = append(rep.UncheckedFiles, res.Unchecked...)
	rep.RecordsRemoved = res.Records
	rep.Result = "success"
	switch {
	case runErr != nil:
		rep.Result, rep.Error = "failure", runErr.Error()
	case len(rep.NotErased) > 0:
		runErr = fmt.Errorf("%w: %d place(s) may still hold the address (see not_erased); run the erasure again once they are reachable", ErrPartial, len(rep.NotErased))
		rep.Result, rep.Error = "partial", runErr.Error()
	}
	name, err := e.opts.Reports.Save(report.KindErasure, rep.Finished, rep)
	if err != nil {
		e.log.Error("erasure report not written", "subject", rep.Subject, "err", err)
		return rep, errors.Join(runErr, err)
	}
	rep.ReportFile = name
	e.log.Info("erasure finished", "subject", rep.Subject, "result", rep.Result, "days", len(rep.Days),
		"records", rep.RecordsRemoved, "held_days", len(rep.Held), "objects_destroyed", len(rep.ObjectsDestroyed),
		"peers", len(rep.Nodes), "not_erased", len(rep.NotErased), "report", name)
	return rep, runErr
}

func checkText(name, v string, maxLen int) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("%w: %s is required", ErrInvalid, name)
	}
	if msg := audit.CheckText(name, v, maxLen); msg != "" {
		return fmt.Errorf("%w: %s", ErrInvalid, msg)
	}
	return nil
}
