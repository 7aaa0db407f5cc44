package erasure

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/retentiond/retentiond/internal/auth"
	"github.com/retentiond/retentiond/internal/httpx"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/store"
)

// This file carries an erasure across a cluster (docs/scale-out.md,
// "Erasure across the cluster"): every node erases its own data (heads,
// local files and its objects in the bucket, which only it may rewrite
// and, with encryption, only it can read), so the node asked fans the
// request out to every cluster.peers node's PeerPath, authenticated with
// the node token. A peer that does not answer makes the erasure partial:
// the report and the answer name it, and the operator runs the erasure
// again (it is idempotent). Objects of nodes that are in the bucket but
// not in the cluster (a decommissioned node) are not rewritten by another
// node, see ForeignObjects: they are named as not erased.

// PeerPath is the peer endpoint of an erasure.
const PeerPath = "/api/v1/cluster/erase"

// NodeParam names the asking node (as the cluster search's).
const NodeParam = "node"

// Cluster is the other nodes an erasure is fanned out to.
type Cluster struct {
	// URLs are the peers' base URLs (cluster.peers).
	URLs []string
	// Token is the node token (cluster.token).
	Token string
	// Node is this node's name (cluster.node).
	Node string
	// Timeout bounds each peer's erasure; default 10 minutes (a peer may
	// rewrite many days).
	Timeout time.Duration
	// Client makes the requests; nil: a client of its own.
	Client *http.Client
}

// ForeignLister finds objects of nodes that did not erase (the store's
// ForeignObjects); a Store without it has no bucket.
type ForeignLister interface {
	ForeignObjects(ctx context.Context, p netip.Prefix, from, to time.Time, skip func(time.Time) bool, except []string) ([]store.ForeignObject, error)
}

// NodeResult is one peer's part of an erasure.
type NodeResult struct {
	Peer           string `json:"peer"`           // its base URL
	Node           string `json:"node,omitempty"` // its name, from its answer
	Result         string `json:"result"`         // success, partial, failure, or not_answered
	RecordsRemoved int64  `json:"records_removed"`
	ReportFile     string `json:"report_file,omitempty"` // its signed report, on that node
	Error          string `json:"error,omitempty"`
}

// peerAnswer is the peer endpoint's answer.
type peerAnswer struct {
	Node   string  `json:"node"`
	Error  string  `json:"error,omitempty"`
	Report *Report `json:"report,omitempty"`
}

// fanOut asks every peer to erase req and returns their results, in the
// order of the URLs.
func (c *Cluster) fanOut(ctx context.Context, req Request) []NodeResult {
	out := make([]NodeResult, len(c.URLs))
	client := c.Client
	if client == nil {
		client = http.DefaultClient
	}
	body, _ := json.Marshal(req)
	var wg sync.WaitGroup
	for i, u := range c.URLs {
		out[i].Peer = strings.TrimSuffix(u, "/")
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = c.ask(ctx, client, out[i].Peer, req.Case, body)
		}()
	}
	wg.Wait()
	return out
}

func (c *Cluster) ask(ctx context.Context, client *http.Client, base, caseID string, body []byte) NodeResult {
	res := NodeResult{Peer: base, Result: "not_answered"}
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(c.Timeout, 10*time.Minute))
	defer cancel()
	q := url.Values{NodeParam: {c.Node}, "case": {caseID}}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, base+PeerPath+"?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		res.Error = err.Error()
		return res
	}
	hr.Header.Set("Authorization", "Bearer "+c.Token)
	hr.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(hr)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in Peer already
		}
		res.Error = err.Error()
		return res
	}
	defer resp.Body.Close()
	var a peerAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&a); err != nil {
		res.Error = fmt.Sprintf("answered %s, unreadable: %v", resp.Status, err)
		return res
	}
	res.Node = a.Node
	if a.Report != nil {
		res.Result, res.RecordsRemoved, res.ReportFile = a.Report.Result, a.Report.RecordsRemoved, a.Report.ReportFile
	}
	switch {
	case resp.StatusCode == http.StatusOK && a.Report != nil && a.Report.Result == "success":
	case a.Report != nil:
		res.Error = cmp.Or(a.Error, "its erasure is "+a.Report.Result)
	default:
		res.Result = "failure"
		res.Error = fmt.Sprintf("answered %s: %s", resp.Status, record.Shorten(a.Error))
	}
	return res
}

// ServePeer is POST PeerPath: another node of the cluster asks this node
// to erase its own data (it does not fan out again). Mount it behind the
// node token (auth.RequireNode); the erasure's audit line names the
// asking node as the requester (node:<name>) with the forwarded case, and
// this node keeps its own signed report.
func (e *Eraser) ServePeer(w http.ResponseWriter, r *http.Request) {
	req, ok := readRequest(w, r)
	if !ok {
		return
	}
	who := actorOf(r)
	rep, err := e.erase(r.Context(), req, who, false)
	a := peerAnswer{Node: e.node()}
	if rep.Result != "" {
		a.Report = &rep
	}
	switch {
	case err == nil:
		httpx.WriteJSON(w, http.StatusOK, a)
	case errors.Is(err, ErrInvalid):
		a.Error = err.Error()
		httpx.WriteJSON(w, http.StatusBadRequest, a)
	default:
		a.Error = err.Error()
		httpx.WriteJSON(w, http.StatusInternalServerError, a)
	}
}

// node is this node's name, for peer answers.
func (e *Eraser) node() string {
	if e.opts.Cluster != nil && e.opts.Cluster.Node != "" {
		return e.opts.Cluster.Node
	}
	return e.opts.Node
}

func actorOf(r *http.Request) Actor {
	var who Actor
	if p, ok := auth.PrincipalFrom(r.Context()); ok {
		who.Token = p.Name
	}
	if a := auth.SourceAddr(r); a.IsValid() {
		who.Source = a.String()
	}
	return who
}
