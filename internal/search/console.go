package search

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/retentiond/retentiond/internal/httpx"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
)

// This file holds what the investigator console and the evidence bundle
// need from search beyond the three classic endpoints: a histogram of
// matches over time, and a whole-result export that another package
// (internal/evidence) packages.

// MaxHistogramBuckets bounds the buckets one histogram answer holds: a
// console draws a few hundred; 730 days by day, 14 days by hour and a day by
// minute all fit.
const MaxHistogramBuckets = 5000

// Prepare parses a request's q, from and to exactly as the search
// endpoints do (the retention cutoff applied), for handlers outside this
// package that run a search (the evidence export); any other parameter
// than those and Options.GuardParams is an error.
func (h *Handler) Prepare(r *http.Request) (*Request, error) {
	if err := h.checkParams(r, "export"); err != nil {
		return nil, err
	}
	return h.request(r)
}

// Export runs req with no limit, in time order, handing each record to
// emit, and reports the outcome like a search (OnCount, OnDone, OnSkipped).
// It returns the records emitted and the damaged files left out.
func (h *Handler) Export(r *http.Request, req *Request, emit func(record.Record) error) (int64, []SkippedFile, error) {
	start := time.Now()
	defer func() { h.duration.WithLabelValues("export").Observe(time.Since(start).Seconds()) }()
	ctx, cancel := h.scanContext(r.Context())
	defer cancel()
	req.Limit, req.Desc = 0, false
	req.Skipped = &Skipped{}
	n, err := h.exec.Run(ctx, req, emit)
	files := h.skipped(r, "export", req)
	h.done(r, req, n, err)
	return n, files, err
}

// GuardWrites wraps w for a streamed answer written outside this package
// (the evidence bundle) with the same per-write deadline as the search
// endpoints (WriteStallTimeout): a client that stops reading fails the write
// instead of holding the search and its snapshot for ever. Call finish with
// the error that ended the answer (nil when complete): it counts and logs a
// stalled client.
func (h *Handler) GuardWrites(w http.ResponseWriter) (out io.Writer, finish func(err error)) {
	sw := h.stallWriter(w)
	return sw, sw.stalledCheck
}

// ParseStep reads a histogram step: 1m, 5m, 1h, 1d, or any Go duration of
// at least a second that divides a day.
func ParseStep(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("step: required (1m, 1h or 1d)")
	}
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		k, err := strconv.Atoi(n)
		if err != nil || k < 1 {
			return 0, fmt.Errorf("step: %q is not a duration (1m, 1h, 1d)", record.Shorten(s))
		}
		d = time.Duration(k) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("step: %q is not a duration (1m, 1h, 1d)", record.Shorten(s))
		}
	}
	if d < time.Second || (d < 24*time.Hour && (24*time.Hour)%d != 0) || (d >= 24*time.Hour && d%(24*time.Hour) != 0) {
		return 0, fmt.Errorf("step: want at least 1s and a divisor or multiple of a day")
	}
	return d, nil
}

// Histogram counts the matches of req in buckets of step starting at
// start (aligned down to step in UTC); every bucket of the range is in the
// answer, zeros included, in time order.
func (e *Executor) Histogram(ctx context.Context, req *Request, step time.Duration) (start time.Time, counts []int64, total int64, err error) {
	return e.timeline(ctx, req, step, MaxHistogramBuckets)
}

// timeline counts the matches of req per bucket of step from the range's
// start aligned down to step (UTC), every bucket included; more than
// maxBuckets is an error. Histograms and stats by time share it.
//
// With Peers, the peers' counts are added (see timelineCluster).
func (e *Executor) timeline(ctx context.Context, req *Request, step time.Duration, maxBuckets int) (start time.Time, counts []int64, total int64, err error) {
	if e.fansOut(req) {
		if _, n := buckets(req, step); n > int64(maxBuckets) {
			return time.Time{}, nil, 0, fmt.Errorf("step: %s over this range makes %d buckets, more than %d", step, n, maxBuckets)
		}
		return e.timelineCluster(ctx, req, step, maxBuckets)
	}
	return e.timelineLocal(ctx, req, step, maxBuckets)
}

// timelineLocal is timeline over this node's snapshot only.
func (e *Executor) timelineLocal(ctx context.Context, req *Request, step time.Duration, maxBuckets int) (start time.Time, counts []int64, total int64, err error) {
	start, n64 := buckets(req, step)
	if n64 > int64(maxBuckets) {
		return start, nil, 0, fmt.Errorf("step: %s over this range makes %d buckets, more than %d", step, n64, maxBuckets)
	}
	n := int(max(n64, 0))
	c := make([]atomic.Int64, n)
	err = e.each(ctx, req, segment.ColTime, func(r record.Record) bool {
		if i := int(r.Time.Sub(start) / step); i >= 0 && i < n {
			c[i].Add(1)
		}
		return true
	})
	counts = make([]int64, n)
	for i := range c {
		counts[i] = c[i].Load()
		total += counts[i]
	}
	return start, counts, total, err
}

// buckets returns the start of the first bucket of step (at least a
// second) over req's range, aligned down in UTC, and how many buckets the
// range spans. It counts in whole seconds, which cannot overflow over any
// range of dates, where a time.Duration saturates past 292 years.
func buckets(req *Request, step time.Duration) (start time.Time, n int64) {
	start = req.From.UTC().Truncate(step)
	secs := int64(step / time.Second)
	return start, (req.To.Unix() - start.Unix() + secs - 1) / secs
}

// ServeHistogram answers GET /api/v1/histogram?q&from&to&step with
// {"start", "step_seconds", "counts": [...], "total", "from", "to"}: the
// matches per step-long bucket from start, every bucket included.
func (h *Handler) ServeHistogram(w http.ResponseWriter, r *http.Request) {
	req, observe := h.begin(w, r, "histogram")
	defer observe()
	if req == nil {
		return
	}
	step, err := ParseStep(r.URL.Query().Get("step"))
	if err != nil {
		h.reject(w, r, req, err.Error())
		return
	}
	if _, n := buckets(req, step); n > MaxHistogramBuckets {
		h.reject(w, r, req, fmt.Sprintf("step: %s over this range makes more than %d buckets; choose a longer step", step, MaxHistogramBuckets))
		return
	}
	ctx, cancel := h.scanContext(r.Context())
	defer cancel()
	req.Skipped = &Skipped{}
	start, counts, total, err := h.exec.Histogram(ctx, req, step)
	files := h.skipped(r, "histogram", req)
	h.done(r, req, total, err)
	if err != nil {
		h.fail(w, err)
		return
	}
	out := map[string]any{"start": start.Format(time.RFC3339), "step_seconds": int64(step / time.Second),
		"counts": counts, "total": total, "query": req.Query.Text,
		"from": req.From.Format(time.RFC3339Nano), "to": req.To.Format(time.RFC3339Nano)}
	if files != nil {
		out["skipped"] = files
		setSkipped(w.Header(), SkippedHeader, files)
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}
