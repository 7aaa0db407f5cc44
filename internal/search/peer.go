package search

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/retentiond/retentiond/internal/httpx"
	"github.com/retentiond/retentiond/internal/objstore"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/store"
)

// This file is the answering side of a cluster search (cluster.go is the
// asking side): a peer runs the asker's query over only its data not yet
// in the bucket (store.SnapshotOptions.Unshared) and streams NDJSON:
//
//	{"node": "b", "shared": [objects]}       first, as soon as the snapshot is taken
//	{"records": "<base64>"} ...              search: batches in the request's time order
//	{"count": N} | {"timeline": {...}} | {"groups": {...}}   count, timeline, groups
//	{"done": true, "skipped": [...]}         last, when complete
//	{"error": "..."}                         last, instead, when it failed
//
// An answer without its last line was cut short. The endpoint is
// authenticated by the node token (auth.RequireNode) and audited by the
// peer (audit.Forwarded) with the asking node and the case it forwarded.

// PeerOps are the operations of the peer endpoint (PeerPath+op).
var PeerOps = []string{"search", "count", "timeline", "groups"}

// peerBatch is how many records one records line carries.
const peerBatch = 256

// ServePeer answers a peer's request, POST PeerPath+op (the {op} path
// value): op is search (parameters limit and order), count, timeline
// (step) or groups (by), each with q, from, to and NodeParam.
func (h *Handler) ServePeer(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store") // records of this node, for a peer only
	op := r.PathValue("op")
	endpoint := "cluster/" + op
	if _, ok := endpointParams[endpoint]; !ok {
		httpx.WriteError(w, http.StatusNotFound, "no such cluster operation; want search, count, timeline or groups")
		return
	}
	req, observe := h.begin(w, r, endpoint)
	defer observe()
	if req == nil {
		return
	}
	qs := r.URL.Query()
	var step int64
	var by StatsBy
	switch op {
	case "search":
		if s := qs.Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				h.reject(w, r, req, "limit: want a whole number >= 0 (0 means no limit)")
				return
			}
			req.Limit = n
		}
		req.Desc = qs.Get("order") == "desc"
	case "timeline":
		d, err := ParseStep(qs.Get("step"))
		if err != nil {
			h.reject(w, r, req, err.Error())
			return
		}
		step = int64(d)
	case "groups":
		by = StatsBy(qs.Get("by"))
		if by != ByIP && by != ByDomain && by != ByPath && by != ByUserAgent {
			h.reject(w, r, req, "by: want ip, domain, path or user_agent")
			return
		}
	}
	ctx, cancel := h.scanContext(r.Context())
	defer cancel()
	req.snap = store.SnapshotOptions{Unshared: true}
	req.Skipped = &Skipped{}
	sw := h.stallWriter(w)
	bw := bufio.NewWriterSize(sw, 64<<10)
	var werr error // the first write error: the asker is gone
	line := func(v any) error {
		if werr == nil {
			b, _ := json.Marshal(v)
			_, werr = bw.Write(append(b, '\n'))
		}
		return werr
	}
	flush := func() error {
		if werr == nil {
			if werr = bw.Flush(); werr == nil {
				werr = sw.Flush()
			}
		}
		return werr
	}
	started := false
	req.onSnapshot = func(snap *store.Snapshot) {
		node := ""
		if cs, ok := h.exec.Source.(ClusterSource); ok {
			node = cs.Node()
		}
		shared := snap.Shared
		if shared == nil {
			shared = []objstore.ObjectInfo{}
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		started = true
		line(peerFirst{Node: node, Shared: shared})
		flush() // the asker waits for this line to take its own snapshot
	}
	var n int64
	var result *peerLine
	var err error
	switch op {
	case "search":
		batch := make([]record.Record, 0, peerBatch)
		n, err = h.exec.runLocal(ctx, req, func(rec record.Record) error {
			if batch = append(batch, rec); len(batch) < peerBatch {
				return nil
			}
			line(peerLine{Records: record.AppendBatch(nil, batch)})
			batch = batch[:0]
			return flush()
		})
		if err == nil && len(batch) > 0 {
			err = line(peerLine{Records: record.AppendBatch(nil, batch)})
		}
	case "count":
		n, err = h.exec.countLocal(ctx, req)
		result = &peerLine{Count: &n}
	case "timeline":
		t := &peerTimeline{}
		t.Start, t.Counts, n, err = h.exec.timelineLocal(ctx, req, time.Duration(step), MaxTimelineBuckets)
		result = &peerLine{Timeline: t}
	case "groups":
		var res StatsResult
		res, _, err = h.exec.groupStatsLocal(ctx, req, by, 0, h.exec.statsMaxGroups(), h.exec.statsMaxKeyBytes())
		n = res.Total
		g := &peerGroups{Total: res.Total, Approximate: res.Approximate, Buckets: make([]peerBucket, len(res.Buckets))}
		for i, b := range res.Buckets {
			g.Buckets[i] = peerBucket{Key: []byte(b.Key), Count: b.Count, Error: b.Error}
		}
		result = &peerLine{Groups: g}
	}
	files := h.skipped(r, endpoint, req)
	if err == nil && werr != nil {
		err = werr
	}
	h.done(r, req, n, err)
	if !started {
		if err == nil {
			err = errors.New("no snapshot was taken")
		}
		h.fail(sw, err)
		return
	}
	if err != nil {
		if _, msg, _ := describe(err); msg != "" && !sw.stalled(err) {
			line(peerLine{Error: msg})
		}
	} else {
		if result != nil {
			line(result)
		}
		line(peerLine{Done: true, Skipped: files})
	}
	sw.stalledCheck(flush())
}
