package search

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/kmerge"
	"github.com/retentiond/retentiond/internal/metricsx"
	"github.com/retentiond/retentiond/internal/objstore"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/store"
)

// This file is the asking side of a cluster search (docs/scale-out.md,
// "Fresh data across nodes"): data not yet uploaded to the bucket lives
// only on the node that ingested it, so a search asks every peer for
// its part, concurrently, waits for each peer's first answer line (its
// node name and its objects in the bucket), takes its own snapshot with
// those objects in place of the bucket listing's (so that nothing is
// counted twice or missed while a peer uploads), and merges. peer.go is
// the answering side.

// PeerPath is the path prefix of the peer endpoints: PeerPath+op, op one
// of search, count, timeline or groups.
const PeerPath = "/api/v1/cluster/"

// NodeParam is the query parameter naming the asking node; the peer's
// audit line records it.
const NodeParam = "node"

// errPeerTimeout is why a peer whose first line did not come within
// cluster.peer_timeout is left out.
var errPeerTimeout = errors.New("no answer within cluster.peer_timeout")

// Peers asks the other nodes of a cluster for their data not yet in the
// bucket. It is safe for concurrent use.
type Peers struct {
	urls    []string
	token   string
	node    string
	timeout time.Duration
	client  *http.Client
	errors  *prometheus.CounterVec
	log     *slog.Logger
}

// PeersOptions configure NewPeers.
type PeersOptions struct {
	// URLs are the peers' base URLs (cluster.peers, validated: http or
	// https, no credentials, so they may be shown in answers and logs).
	URLs []string
	// Token is the node token (cluster.token), sent as a bearer token.
	Token string
	// Node is this node's name, sent with every request.
	Node string
	// Timeout bounds the wait for each peer's first line
	// (cluster.peer_timeout); default 10s.
	Timeout time.Duration
	// Client makes the requests; nil means a client of its own.
	Client     *http.Client
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// NewPeers returns the peers of o.URLs.
func NewPeers(o PeersOptions) *Peers {
	p := &Peers{token: o.Token, node: o.Node, timeout: cmp.Or(o.Timeout, 10*time.Second),
		client: o.Client, log: o.Logger,
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "retentiond_cluster_peer_errors_total",
			Help: "Peers that did not answer a cluster search (refused, timed out, failed or cut short mid-answer); the answer named them as partial. peer_index is the peer's position in cluster.peers.",
		}, []string{"peer_index"})}
	for _, u := range o.URLs {
		p.urls = append(p.urls, strings.TrimSuffix(u, "/"))
	}
	if p.client == nil {
		p.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	p.errors = metricsx.Reuse(o.Registerer, p.errors)
	// Every peer's series exists from the start, at 0, so that increase()
	// sees its first failure.
	for i := range p.urls {
		p.errors.WithLabelValues(strconv.Itoa(i))
	}
	return p
}

// fansOut reports whether req is asked of the peers too: with peers, and
// not itself a peer's request.
func (e *Executor) fansOut(req *Request) bool {
	return e.Peers != nil && len(e.Peers.urls) > 0 && !req.snap.Unshared
}

// peerFirst is a peer answer's first line.
type peerFirst struct {
	Node   string                `json:"node"`
	Shared []objstore.ObjectInfo `json:"shared"`
}

// peerLine is any later line of a peer's answer: records (a batch in
// record's binary codec, so that every byte of a record arrives as
// stored, which JSON strings would not promise for bytes that are not
// UTF-8), a count, a timeline or groups, and last either done (with the
// damaged files the peer left out) or error.
type peerLine struct {
	Records  []byte        `json:"records,omitempty"`
	Count    *int64        `json:"count,omitempty"`
	Timeline *peerTimeline `json:"timeline,omitempty"`
	Groups   *peerGroups   `json:"groups,omitempty"`
	Done     bool          `json:"done,omitempty"`
	Skipped  []SkippedFile `json:"skipped,omitempty"`
	Error    string        `json:"error,omitempty"`
}

// peerTimeline is a peer's count per bucket (histograms, stats by time).
type peerTimeline struct {
	Start  time.Time `json:"start"`
	Counts []int64   `json:"counts"`
}

// peerGroups is a peer's stats by value: every value it holds (exact, or
// its Space-Saving summary), so the asker can merge before cutting to the
// top. Keys are bytes, base64 in JSON, for the reason of Records.
type peerGroups struct {
	Buckets     []peerBucket `json:"buckets"`
	Total       int64        `json:"total"`
	Approximate bool         `json:"approximate"`
}

type peerBucket struct {
	Key   []byte `json:"k"`
	Count int64  `json:"c"`
	Error int64  `json:"e,omitempty"`
}

// peerStream is one peer's answer being read.
type peerStream struct {
	index  int
	base   string
	node   string
	shared []objstore.ObjectInfo
	body   io.ReadCloser
	dec    *json.Decoder
	cancel func()
	err    error // why the peer did not answer
	done   bool  // its last line was read
}

// close ends the request, whatever its state.
func (s *peerStream) close() {
	if s.cancel != nil {
		s.cancel()
	}
	if s.body != nil {
		s.body.Close()
	}
}

// params are the parameters every peer request carries: the query, the
// range the asker resolved (so that both search the same instants), the
// asking node, and the case and reason the asker's audit line recorded.
func (p *Peers) params(req *Request) url.Values {
	q := url.Values{}
	for k, vs := range req.forward {
		q[k] = slices.Clone(vs)
	}
	q.Set("q", req.Query.Text)
	q.Set("from", req.From.UTC().Format(time.RFC3339Nano))
	q.Set("to", req.To.UTC().Format(time.RFC3339Nano))
	q.Set(NodeParam, p.node)
	return q
}

// open sends op to every peer at once and returns when each has sent its
// first line, failed, or had cluster.peer_timeout to do so.
func (p *Peers) open(ctx context.Context, op string, q url.Values) []*peerStream {
	out := make([]*peerStream, len(p.urls))
	var wg sync.WaitGroup
	for i, base := range p.urls {
		s := &peerStream{index: i, base: base}
		out[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.err = p.start(ctx, s, op, q); s.err != nil {
				s.close()
			}
		}()
	}
	wg.Wait()
	return out
}

// start sends the request and reads the first line, within the timeout.
func (p *Peers) start(ctx context.Context, s *peerStream, op string, q url.Values) error {
	ctx, cancel := context.WithCancelCause(ctx)
	s.cancel = func() { cancel(nil) }
	timer := time.AfterFunc(p.timeout, func() { cancel(errPeerTimeout) })
	defer timer.Stop()
	fail := func(err error) error {
		if c := context.Cause(ctx); errors.Is(c, errPeerTimeout) {
			return errPeerTimeout
		}
		// A url.Error repeats the URL, whose query holds the search's
		// terms: record contents stay out of answers' reasons and logs.
		var ue *url.Error
		if errors.As(err, &ue) {
			return ue.Err
		}
		return err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+PeerPath+op+"?"+q.Encode(), nil)
	if err != nil {
		return fail(err)
	}
	hr.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := p.client.Do(hr)
	if err != nil {
		return fail(err)
	}
	s.body = resp.Body
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&e)
		return fmt.Errorf("answered %s: %s", resp.Status, record.Shorten(e.Error))
	}
	s.dec = json.NewDecoder(resp.Body)
	var first peerFirst
	if err := s.dec.Decode(&first); err != nil {
		return fail(fmt.Errorf("reading its first line: %w", err))
	}
	if !timer.Stop() {
		return errPeerTimeout
	}
	if first.Node == "" {
		return errors.New("its first line names no node")
	}
	s.node, s.shared = first.Node, first.Shared
	if s.shared == nil {
		s.shared = []objstore.ObjectInfo{}
	}
	return nil
}

// line reads the next line after the first; a line carrying an error, or
// an answer that ends without its done line, is an error.
func (s *peerStream) line() (*peerLine, error) {
	var l peerLine
	if err := s.dec.Decode(&l); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errors.New("its answer ended before its last line")
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("reading its answer: %w", err)
	}
	if l.Error != "" {
		return nil, fmt.Errorf("it failed: %s", l.Error)
	}
	return &l, nil
}

// finish takes a peer's done line: the damaged files it left out make this
// answer partial too.
func (s *peerStream) finish(req *Request, l *peerLine) error {
	s.done = true
	if len(l.Skipped) == 0 {
		return nil
	}
	if req.Skipped == nil {
		return fmt.Errorf("peer %s left out damaged segment files", s.base)
	}
	for _, f := range l.Skipped {
		f.Peer = s.base
		req.Skipped.addFile(f)
	}
	return nil
}

// result reads a count, timeline or groups answer: its one result line,
// then its done line.
func (s *peerStream) result(req *Request) (*peerLine, error) {
	res, err := s.line()
	if err != nil {
		return nil, err
	}
	end, err := s.line()
	if err != nil {
		return nil, err
	}
	if !end.Done {
		return nil, errors.New("its answer has more than one result")
	}
	return res, s.finish(req, end)
}

// peerFailed makes a peer that did not answer part of req's answer: named
// in req.Skipped (the answer is partial, and says which peer and why), or,
// for a request that accepts no partial answer, its error. It is counted
// and logged (the peer's index and base URL and the reason: no record
// contents).
func (e *Executor) peerFailed(req *Request, s *peerStream, err error) error {
	e.Peers.errors.WithLabelValues(strconv.Itoa(s.index)).Inc()
	e.Peers.log.Warn("cluster peer did not answer; the answer is partial", "peer_index", s.index, "peer", s.base, "err", err)
	if req.Skipped == nil {
		return fmt.Errorf("peer %s did not answer: %w", s.base, err)
	}
	req.Skipped.addFile(SkippedFile{Peer: s.base, Offset: -1, Reason: "did not answer: " + err.Error()})
	return nil
}

// openPeers sends op to every peer and returns the peers that answered,
// with their objects by node for the snapshot (store.SnapshotOptions);
// the others are made part of the answer by peerFailed.
func (e *Executor) openPeers(ctx context.Context, req *Request, op string, q url.Values) ([]*peerStream, map[string][]objstore.ObjectInfo, error) {
	all := e.Peers.open(ctx, op, q)
	objs := map[string][]objstore.ObjectInfo{}
	var self string
	if cs, ok := e.Source.(ClusterSource); ok {
		self = cs.Node()
	}
	var live []*peerStream
	for _, s := range all {
		if s.err == nil && (s.node == self || objs[s.node] != nil) {
			// Two nodes of one name would hide each other's objects.
			s.err = fmt.Errorf("it calls itself node %q, as another node of the cluster does (cluster.node must be unique)", s.node)
			s.close()
		}
		if s.err != nil {
			if err := ctx.Err(); err != nil {
				closePeers(all)
				return nil, nil, err
			}
			if err := e.peerFailed(req, s, s.err); err != nil {
				closePeers(all)
				return nil, nil, err
			}
			continue
		}
		objs[s.node] = s.shared
		live = append(live, s)
	}
	return live, objs, nil
}

func closePeers(ps []*peerStream) {
	for _, s := range ps {
		s.close()
	}
}

// local returns a copy of req for this node's part of a cluster search:
// its snapshot takes the answering peers' objects.
func (req *Request) local(objs map[string][]objstore.ObjectInfo) *Request {
	l := *req
	l.snap = store.SnapshotOptions{PeerObjects: objs}
	return &l
}

// runCluster is Run with peers: this node's search runs in a goroutine
// feeding a bounded channel, each peer's answer is read as it is merged,
// and the one k-way merge (internal/kmerge) interleaves them in req's
// time order (equal times: this node first, then the peers in the order
// of cluster.peers), stopping at the limit. A peer that fails mid-answer
// ends its part there and makes the answer partial.
func (e *Executor) runCluster(ctx context.Context, req *Request, emit func(record.Record) error) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	q := e.Peers.params(req)
	if req.Limit > 0 {
		q.Set("limit", strconv.Itoa(req.Limit))
	}
	if req.Desc {
		q.Set("order", "desc")
	}
	peers, objs, err := e.openPeers(ctx, req, "search", q)
	if err != nil {
		return 0, err
	}
	defer closePeers(peers)

	ch := make(chan []record.Record, defaultChanBatches)
	var localErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(ch)
		send := func(b []record.Record) error {
			select {
			case ch <- b:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		batch := make([]record.Record, 0, defaultBatchSize)
		_, localErr = e.runLocal(ctx, req.local(objs), func(r record.Record) error {
			if batch = append(batch, r); len(batch) < defaultBatchSize {
				return nil
			}
			err := send(batch)
			batch = make([]record.Record, 0, defaultBatchSize)
			return err
		})
		if localErr == nil && len(batch) > 0 {
			localErr = send(batch)
		}
	}()
	srcs := make([]kmerge.Source[record.Record], 0, 1+len(peers))
	var local []record.Record
	srcs = append(srcs, func() (*record.Record, bool, error) {
		for len(local) == 0 {
			b, ok := <-ch
			if !ok {
				return nil, false, localErr
			}
			local = b
		}
		r := &local[0] // each batch is a new slice, never written again
		local = local[1:]
		return r, true, nil
	})
	for _, s := range peers {
		var recs []record.Record
		srcs = append(srcs, func() (*record.Record, bool, error) {
			for len(recs) == 0 && !s.done {
				l, err := s.line()
				if err == nil && l.Done {
					err = s.finish(req, l)
					if err != nil {
						return nil, false, err
					}
					break
				}
				if err == nil {
					recs, err = record.DecodeBatch(l.Records)
				}
				if err != nil {
					s.done = true
					if cerr := ctx.Err(); cerr != nil {
						return nil, false, cerr
					}
					return nil, false, e.peerFailed(req, s, err)
				}
			}
			if len(recs) == 0 {
				return nil, false, nil
			}
			r := &recs[0] // DecodeBatch gives each line a new slice
			recs = recs[1:]
			return r, true, nil
		})
	}
	m := kmerge.New(req.compareTime, srcs...)
	var n int64
	for req.Limit <= 0 || n < int64(req.Limit) {
		r, ok, err := m.Next()
		if err != nil {
			return n, err
		}
		if !ok {
			break
		}
		if err := emit(*r); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// eachPeerResult reads every answering peer's result line for fn, in the
// order of cluster.peers; a peer whose answer fails is made part of the
// answer (peerFailed) and gives fn nothing, not a part of a result.
func (e *Executor) eachPeerResult(ctx context.Context, req *Request, peers []*peerStream, fn func(s *peerStream, l *peerLine) error) error {
	for _, s := range peers {
		l, err := s.result(req)
		if err == nil {
			err = fn(s, l)
		}
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			if err := e.peerFailed(req, s, err); err != nil {
				return err
			}
		}
	}
	return nil
}

// countCluster is Count with peers: the sum of this node's count and each
// answering peer's.
func (e *Executor) countCluster(ctx context.Context, req *Request) (int64, error) {
	peers, objs, err := e.openPeers(ctx, req, "count", e.Peers.params(req))
	if err != nil {
		return 0, err
	}
	defer closePeers(peers)
	n, err := e.countLocal(ctx, req.local(objs))
	if err != nil {
		return n, err
	}
	err = e.eachPeerResult(ctx, req, peers, func(s *peerStream, l *peerLine) error {
		if l.Count == nil {
			return errors.New("its answer holds no count")
		}
		n += *l.Count
		return nil
	})
	return n, err
}

// timelineCluster is timeline with peers: the counts of every bucket
// added.
func (e *Executor) timelineCluster(ctx context.Context, req *Request, step time.Duration, maxBuckets int) (time.Time, []int64, int64, error) {
	q := e.Peers.params(req)
	q.Set("step", strconv.FormatInt(int64(step/time.Second), 10)+"s")
	peers, objs, err := e.openPeers(ctx, req, "timeline", q)
	if err != nil {
		return time.Time{}, nil, 0, err
	}
	defer closePeers(peers)
	start, counts, total, err := e.timelineLocal(ctx, req.local(objs), step, maxBuckets)
	if err != nil {
		return start, counts, total, err
	}
	err = e.eachPeerResult(ctx, req, peers, func(s *peerStream, l *peerLine) error {
		t := l.Timeline
		if t == nil || !t.Start.Equal(start) || len(t.Counts) != len(counts) {
			return errors.New("its answer holds no timeline of this range and step")
		}
		for i, c := range t.Counts {
			counts[i] += c
			total += c
		}
		return nil
	})
	return start, counts, total, err
}

// groupsCluster is groupStats by value with peers: every value each side
// holds, merged (see mergeGroups), then cut to the top n.
func (e *Executor) groupsCluster(ctx context.Context, req *Request, by StatsBy, n, maxGroups, maxKeyBytes int) (StatsResult, error) {
	q := e.Peers.params(req)
	q.Set("by", string(by))
	peers, objs, err := e.openPeers(ctx, req, "groups", q)
	if err != nil {
		return StatsResult{}, err
	}
	defer closePeers(peers)
	local, _, err := e.groupStatsLocal(ctx, req.local(objs), by, 0, maxGroups, maxKeyBytes)
	if err != nil {
		return local, err
	}
	parts := []StatsResult{local}
	err = e.eachPeerResult(ctx, req, peers, func(s *peerStream, l *peerLine) error {
		if l.Groups == nil {
			return errors.New("its answer holds no groups")
		}
		p := StatsResult{Total: l.Groups.Total, Approximate: l.Groups.Approximate}
		for _, b := range l.Groups.Buckets {
			p.Buckets = append(p.Buckets, Bucket{Key: string(b.Key), Count: b.Count, Error: b.Error})
		}
		parts = append(parts, p)
		return nil
	})
	if err != nil {
		return StatsResult{}, err
	}
	return mergeGroups(parts, n, maxGroups), nil
}

// mergeGroups adds stats by value of several nodes, each holding every
// value it counted (n = 0), and returns the top n. Exact parts add
// exactly. An approximate part (a Space-Saving summary) keeps the answer
// approximate, and a value missing from it may still have occurred there
// up to its least count held, so that count is added to the value's count
// and its error: the true count stays in [Count-Error, Count].
func mergeGroups(parts []StatsResult, n, maxGroups int) StatsResult {
	res := StatsResult{MaxGroups: maxGroups}
	sum := map[string]*Bucket{}
	floors := make([]int64, len(parts))
	for i, p := range parts {
		res.Total += p.Total
		if !p.Approximate {
			continue
		}
		res.Approximate = true
		floors[i] = -1
		for _, b := range p.Buckets {
			if floors[i] < 0 || b.Count < floors[i] {
				floors[i] = b.Count
			}
		}
		floors[i] = max(floors[i], 0)
	}
	for i, p := range parts {
		for _, b := range p.Buckets {
			s := sum[b.Key]
			if s == nil {
				s = &Bucket{Key: b.Key}
				sum[b.Key] = s
				// Parts before this one that did not hold the value.
				for j := range i {
					if floors[j] > 0 {
						s.Count += floors[j]
						s.Error += floors[j]
					}
				}
			}
			s.Count += b.Count
			s.Error += b.Error
		}
		// Values already summed that this part does not hold.
		if floors[i] > 0 {
			held := make(map[string]bool, len(p.Buckets))
			for _, b := range p.Buckets {
				held[b.Key] = true
			}
			for k, s := range sum {
				if !held[k] {
					s.Count += floors[i]
					s.Error += floors[i]
				}
			}
		}
	}
	out := make([]Bucket, 0, len(sum))
	for _, b := range sum {
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b Bucket) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Key, b.Key))
	})
	if res.Approximate {
		res.Truncated = n == 0 || n > len(out)
	} else {
		res.Groups = int64(len(out))
	}
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	res.Buckets = out
	return res
}
