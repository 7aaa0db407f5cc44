package search

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/httpx"
	"github.com/retentiond/retentiond/internal/metricsx"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/store"
)

// Options configure the HTTP handlers.
type Options struct {
	Source         Source
	MaxConcurrency int
	// Timeout bounds one request's scan; 0 means no limit (search.timeout),
	// which is safe because a stalled client is cut off by
	// WriteStallTimeout and a purge cancels searches after its grace.
	Timeout time.Duration
	// WriteStallTimeout bounds how long one write of a response may make no
	// progress. A client that stops reading (its TCP window at zero) would
	// otherwise block the handler, and with it the search's snapshot, for
	// ever; after this long the response is abandoned and the snapshot
	// released. A slow client that keeps reading is never cut off. Default
	// 30s.
	WriteStallTimeout time.Duration
	// DefaultLimit applies to /search when no limit is given; limit=0 asks
	// for everything.
	DefaultLimit int
	// StatsMaxGroups and StatsMaxKeyBytes bound the distinct values a stats
	// request counts exactly; beyond them its answer is approximate (see
	// Executor.Stats). 0 means the defaults.
	StatsMaxGroups, StatsMaxKeyBytes int
	// Retention returns the oldest time that may be returned at now: a day
	// past retention is never served, even while a purge is late.
	Retention func(now time.Time) time.Time
	// Held, when set, widens Retention for one request: it returns the
	// first day past the retention that the request may still read
	// (zero: none) and the test of such a day. The daemon passes the legal
	// holds of the case the request names (internal/hold), so that a held
	// day is evidence for its case only and destroyed for every other.
	Held func(r *http.Request) (earliest time.Time, held func(day time.Time) bool)
	// OnCount, if set, is told how many records a request returned (the
	// audit log records it).
	OnCount func(ctx context.Context, n int64)
	// OnDone, if set, is called once per request after it has been answered
	// (or has failed), with the parsed query (nil when the query did not
	// parse), the number of records returned or counted, and the error. An
	// auth or audit layer that wraps the handlers learns from it what was
	// asked and how much was disclosed.
	OnDone func(r *http.Request, q *Query, count int64, err error)
	// OnSkipped, if set, is told when an answer left out damaged segment
	// files (see SkippedHeader); the audit log records the answer as
	// partial.
	OnSkipped func(ctx context.Context, files []SkippedFile)
	// OnAborted, if set, is told why a request ended in an error: a failed
	// or timed-out search, a destroyed day, a client that stopped reading or
	// went away. Its status line may already say 200, so without this the
	// audit log would record a cut-short disclosure as complete.
	OnAborted func(ctx context.Context, why string)
	// Peers, when it lists any, makes every search, count, stats, histogram
	// and export ask the other nodes of the cluster for their data not yet
	// in the bucket (cluster.peers); Source must then be a ClusterSource.
	// ServePeer answers them.
	Peers *Peers
	// GuardParams are query parameters that layers around the handlers
	// read: a request may carry them besides its endpoint's own. nil means
	// the audit guard's case and reason, which every search carries (and
	// Held reads). Any other parameter is refused (400), so that a
	// misspelt or foreign one (Loki's start and end) never silently widens
	// a search to the whole retention.
	GuardParams []string
	Now         func() time.Time
	Logger      *slog.Logger
	// Registerer receives the search metrics; nil means none.
	Registerer prometheus.Registerer
}

// SkippedHeader names, one value per file, the damaged segment files an
// answer left out: each value is a SkippedFile as JSON. Files known before
// the first record is sent come as a header; files found later in a
// streamed search come as a trailer of the same name (read it after the
// body). Count and stats answers also list them in their "skipped" field.
const SkippedHeader = "Retentiond-Skipped"

// ErrorTrailer is the HTTP trailer that carries the error which ended a
// search response after its first row, when the status 200 is already sent
// (for example a day destroyed by the purge while the search read it).
// NDJSON responses also end with a line {"error": "..."} then. A response
// without it is complete.
const ErrorTrailer = "Retentiond-Error"

// TruncatedTrailer is the HTTP trailer of a search answer that stopped at
// its limit while more records match: a JSON object
// {"limit": N, "total": M} when the indexes gave the number of matches
// cheaply (an ip: term, or domain and user-agent terms over whole
// segments), otherwise {"limit": N, "total_at_least": N+1}. A search
// answer without it holds every match (or ends with ErrorTrailer).
const TruncatedTrailer = "Retentiond-Truncated"

// Truncation is the value of TruncatedTrailer.
type Truncation struct {
	Limit        int   `json:"limit"`
	Total        int64 `json:"total,omitempty"`
	TotalAtLeast int64 `json:"total_at_least,omitempty"`
}

// errLimitReached stops a search at its limit once one more match than
// the limit was found, which proves the answer is cut.
var errLimitReached = errors.New("limit reached with more matches")

// Handler serves /api/v1/search, /count and /stats.
type Handler struct {
	opts     Options
	exec     *Executor
	duration *prometheus.HistogramVec
	partial  *prometheus.CounterVec
	stalled  prometheus.Counter
}

// NewHandler builds the search handlers.
func NewHandler(opts Options) *Handler {
	opts.WriteStallTimeout = cmp.Or(opts.WriteStallTimeout, 30*time.Second)
	if opts.GuardParams == nil {
		opts.GuardParams = []string{"case", "reason"}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	h := &Handler{opts: opts, exec: &Executor{Source: opts.Source, Concurrency: opts.MaxConcurrency,
		StatsMaxGroups: opts.StatsMaxGroups, StatsMaxKeyBytes: opts.StatsMaxKeyBytes, Peers: opts.Peers},
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "retentiond_search_duration_seconds", Help: "Time to answer a search, count or stats request.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"endpoint"}),
		partial: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "retentiond_search_partial_results_total",
			Help: "Search, count and stats answers that left out damaged segment files or cluster peers that did not answer (named in the answer).",
		}, []string{"endpoint"}),
		stalled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "retentiond_search_stalled_responses_total",
			Help: "Search, count and stats responses abandoned because the client stopped reading for search.write_stall_timeout.",
		})}
	// NewHandler returns no error, so its metrics are registered as
	// ingest's are: a handler built again on one registry counts on the
	// first one's collectors.
	h.duration = metricsx.Reuse(opts.Registerer, h.duration)
	h.partial = metricsx.Reuse(opts.Registerer, h.partial)
	h.stalled = metricsx.Reuse(opts.Registerer, h.stalled)
	return h
}

// done reports a finished request to OnCount, OnAborted and OnDone.
func (h *Handler) done(r *http.Request, req *Request, n int64, err error) {
	if req != nil && h.opts.OnCount != nil {
		h.opts.OnCount(r.Context(), n)
	}
	if err != nil && h.opts.OnAborted != nil {
		h.opts.OnAborted(r.Context(), abortReason(err))
	}
	if h.opts.OnDone != nil {
		var q *Query
		if req != nil {
			q = req.Query
		}
		h.opts.OnDone(r, q, n, err)
	}
}

// skipped returns the files req's answer left out, and counts, logs and
// reports a partial answer.
func (h *Handler) skipped(r *http.Request, endpoint string, req *Request) []SkippedFile {
	files := req.Skipped.Files()
	if len(files) == 0 {
		return nil
	}
	h.partial.WithLabelValues(endpoint).Inc()
	var names, peers []string
	for _, f := range files {
		if f.File != "" {
			names = append(names, f.File)
		} else {
			peers = append(peers, f.Peer)
		}
	}
	h.opts.Logger.Warn("answer partial: it left out damaged segment files or cluster peers that did not answer", "endpoint", endpoint,
		"files", names, "peers", peers)
	if h.opts.OnSkipped != nil {
		h.opts.OnSkipped(r.Context(), files)
	}
	return files
}

// setSkipped adds a SkippedHeader value to hdr for each file.
func setSkipped(hdr http.Header, key string, files []SkippedFile) {
	for _, f := range files {
		b, _ := json.Marshal(f)
		hdr.Add(key, string(b))
	}
}

// reject answers 400 for a bad parameter and reports it to OnDone.
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, req *Request, msg string) {
	if h.opts.OnDone != nil {
		h.opts.OnDone(r, req.Query, 0, errors.New(msg))
	}
	httpx.WriteError(w, http.StatusBadRequest, msg)
}

// endpointParams are the query parameters each endpoint reads; "export"
// is the evidence bundle's (see Prepare).
var endpointParams = map[string][]string{
	"search":    {"q", "from", "to", "limit", "order", "format"},
	"count":     {"q", "from", "to"},
	"stats":     {"q", "from", "to", "by", "top"},
	"histogram": {"q", "from", "to", "step"},
	"export":    {"q", "from", "to"},
	// The peer endpoints (peer.go): the asker resolves the range and
	// names itself.
	"cluster/search":   {"q", "from", "to", "limit", "order", NodeParam},
	"cluster/count":    {"q", "from", "to", NodeParam},
	"cluster/timeline": {"q", "from", "to", "step", NodeParam},
	"cluster/groups":   {"q", "from", "to", "by", NodeParam},
}

// checkParams returns an error naming every query parameter of r that
// endpoint does not read (and no guard layer reads), or nil.
func (h *Handler) checkParams(r *http.Request, endpoint string) error {
	known := append(slices.Clone(endpointParams[endpoint]), h.opts.GuardParams...)
	var unknown []string
	for k := range r.URL.Query() {
		if !slices.Contains(known, k) {
			unknown = append(unknown, strconv.Quote(record.Shorten(k)))
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	word := "parameter"
	if len(unknown) > 1 {
		word = "parameters"
	}
	return fmt.Errorf("unknown %s %s: %s takes %s (a time range is from and to)", word, strings.Join(unknown, ", "),
		endpoint, strings.Join(known, ", "))
}

// begin starts timing a request to endpoint and parses its common
// parameters. When they are bad (or a parameter is unknown) it answers
// 400, tells OnDone, and returns a nil request. The caller defers observe
// to record the duration either way.
func (h *Handler) begin(w http.ResponseWriter, r *http.Request, endpoint string) (req *Request, observe func()) {
	// Answers hold confidential records: no cache (a browser's, a proxy's)
	// may keep them, streamed NDJSON and CSV included.
	w.Header().Set("Cache-Control", "no-store")
	start := time.Now()
	observe = func() { h.duration.WithLabelValues(endpoint).Observe(time.Since(start).Seconds()) }
	err := h.checkParams(r, endpoint)
	if err == nil {
		req, err = h.request(r)
	}
	if err != nil {
		h.done(r, nil, 0, err)
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return nil, observe
	}
	return req, observe
}

// request parses the common parameters q, from, to.
func (h *Handler) request(r *http.Request) (*Request, error) {
	qs := r.URL.Query()
	q, err := Parse(qs.Get("q"))
	if err != nil {
		return nil, err
	}
	now := h.opts.Now()
	req := &Request{Query: q, To: now.Add(48 * time.Hour).UTC(), forward: url.Values{}}
	for _, k := range h.opts.GuardParams {
		if vs, ok := qs[k]; ok {
			req.forward[k] = vs
		}
	}
	if h.opts.Retention != nil {
		req.From = h.opts.Retention(now)
		if h.opts.Held != nil {
			if earliest, held := h.opts.Held(r); !earliest.IsZero() && earliest.Before(req.From) {
				cutoff := req.From
				req.From = earliest
				req.Days = func(d time.Time) bool { return !d.Before(cutoff) || held(d) }
			}
		}
	}
	if s := qs.Get("from"); s != "" {
		t, err := ParseTime(s, now)
		if err != nil {
			return nil, fmt.Errorf("from: %w", err)
		}
		if t.After(req.From) {
			req.From = t
		}
	}
	if s := qs.Get("to"); s != "" {
		t, err := ParseTime(s, now)
		if err != nil {
			return nil, fmt.Errorf("to: %w", err)
		}
		req.To = t
	}
	if !req.From.Before(req.To) {
		return nil, fmt.Errorf("empty time range: from %s is not before to %s", req.From.Format(time.RFC3339), req.To.Format(time.RFC3339))
	}
	return req, nil
}

// ServeSearch streams matching records.
func (h *Handler) ServeSearch(w http.ResponseWriter, r *http.Request) {
	req, observe := h.begin(w, r, "search")
	defer observe()
	if req == nil {
		return
	}
	qs := r.URL.Query()
	req.Limit = h.opts.DefaultLimit
	if s := qs.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			h.reject(w, r, req, "limit: want a whole number >= 0 (0 means no limit)")
			return
		}
		req.Limit = n
	}
	switch o := qs.Get("order"); o {
	case "", "asc":
	case "desc":
		req.Desc = true
	default:
		h.reject(w, r, req, "order: want asc or desc")
		return
	}
	format := cmp.Or(qs.Get("format"), "ndjson")
	enc, ctype, err := encoder(format)
	if err != nil {
		h.reject(w, r, req, err.Error())
		return
	}
	ctx, cancel := h.scanContext(r.Context())
	defer cancel()
	req.Skipped = &Skipped{}
	// One match more than the limit is asked for, and not sent: it is the
	// proof that the limit cut the answer.
	limit := req.Limit
	if limit > 0 {
		req.Limit = limit + 1
	}
	truncated := false
	var inHeader int // skipped files already named in the header
	sw := h.stallWriter(w)
	bw := bufio.NewWriterSize(sw, 64<<10)
	started := false
	var buf []byte
	var rows int64
	n, err := h.exec.Run(ctx, req, func(rec record.Record) error {
		if limit > 0 && rows == int64(limit) {
			truncated = true
			return errLimitReached
		}
		if !started {
			w.Header().Set("Content-Type", ctype)
			known := req.Skipped.Files()
			setSkipped(w.Header(), SkippedHeader, known)
			inHeader = len(known)
			w.WriteHeader(http.StatusOK)
			if format == "csv" {
				bw.WriteString("time,domain,path,user_agent,ip\n")
			}
			started = true
		}
		buf = enc(buf[:0], &rec)
		if _, err := bw.Write(buf); err != nil {
			return err
		}
		rows++
		if rows%1024 == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
			return sw.Flush()
		}
		return nil
	})
	req.Limit = limit
	if errors.Is(err, errLimitReached) {
		err = nil
	}
	files := h.skipped(r, "search", req)
	h.done(r, req, n, err)
	if err != nil && !started {
		h.fail(sw, err)
		return
	}
	if started && len(files) > inHeader {
		// Found after the header was sent: a trailer names every file.
		setSkipped(w.Header(), http.TrailerPrefix+SkippedHeader, files)
	}
	if !started {
		w.Header().Set("Content-Type", ctype)
		setSkipped(w.Header(), SkippedHeader, files)
		w.WriteHeader(http.StatusOK)
		if format == "csv" {
			bw.WriteString("time,domain,path,user_agent,ip\n")
		}
	}
	if err != nil {
		h.failStream(sw, bw, format, err)
	}
	if truncated && err == nil {
		t := Truncation{Limit: limit, TotalAtLeast: int64(limit) + 1}
		if total, ok, cerr := h.exec.CountIfCheap(ctx, req); cerr == nil && ok && total > int64(limit) {
			t = Truncation{Limit: limit, Total: total}
		}
		v, _ := json.Marshal(t)
		w.Header().Set(http.TrailerPrefix+TruncatedTrailer, string(v))
	}
	if err := bw.Flush(); err == nil {
		sw.Flush()
	}
	sw.stalledCheck(err)
}

// failStream ends a response whose status line is already sent: the client
// learns the error from a last NDJSON line and from ErrorTrailer, since
// otherwise a truncated answer would look complete.
func (h *Handler) failStream(sw *stallWriter, bw *bufio.Writer, format string, err error) {
	_, msg, internal := describe(err)
	switch {
	case msg == "", sw.stalled(err):
		return // the client is gone or stopped reading: nobody to tell
	case internal:
		// Headers are gone; the truncated stream and the log must say it.
		h.opts.Logger.Error("search aborted mid-stream", "err", err)
	}
	if format == "ndjson" || format == "json" {
		line, _ := json.Marshal(map[string]string{"error": msg})
		bw.Write(append(line, '\n'))
	}
	bw.Flush()
	sw.Header().Set(http.TrailerPrefix+ErrorTrailer, msg)
}

// describe says how an error that ended a request is answered: the status
// before any output, the message for the client ("" when the client went
// away and nothing is to be said), and whether it is an internal failure
// worth an error log line.
func describe(err error) (status int, msg string, internal bool) {
	switch {
	case errors.Is(err, store.ErrDayDestroyed):
		// Asking again answers without the destroyed day.
		return http.StatusServiceUnavailable, err.Error(), false
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "search timed out; narrow the time range or the query", false
	case errors.Is(err, context.Canceled):
		return 0, "", false
	}
	return http.StatusInternalServerError, "search failed: " + err.Error(), true
}

// scanContext bounds a request's scan by Options.Timeout, if any.
func (h *Handler) scanContext(parent context.Context) (context.Context, context.CancelFunc) {
	if h.opts.Timeout <= 0 {
		return context.WithCancel(parent)
	}
	return context.WithTimeout(parent, h.opts.Timeout)
}

// abortReason says in a few words why a request ended in err, for the
// audit log: describe's message where the client was told one, otherwise
// what happened to the client.
func abortReason(err error) string {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "the client stopped reading; the answer was abandoned after search.write_stall_timeout"
	case errors.Is(err, context.Canceled):
		return "the client went away before the answer was complete"
	}
	_, msg, _ := describe(err)
	return msg
}

func (h *Handler) fail(w http.ResponseWriter, err error) {
	status, msg, internal := describe(err)
	if msg == "" {
		return
	}
	if internal {
		h.opts.Logger.Error("search failed", "err", err)
	}
	httpx.WriteError(w, status, msg)
}

// stallWriter writes a response in pieces of at most stallChunk bytes, each
// with its own write deadline (http.ResponseController): a client that
// stops reading fails the write after the stall limit instead of blocking
// the handler, its search and its snapshot for ever, while a slow client
// that keeps reading is never cut off. (The deadline is not capped at
// search.timeout: a search ended by it still gets to write the error that
// says so.)
type stallWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	limit   time.Duration
	counter prometheus.Counter
	log     *slog.Logger
}

// stallChunk is the most written under one deadline.
const stallChunk = 64 << 10

func (h *Handler) stallWriter(w http.ResponseWriter) *stallWriter {
	return &stallWriter{ResponseWriter: w, rc: http.NewResponseController(w), limit: h.opts.WriteStallTimeout,
		counter: h.stalled, log: h.opts.Logger}
}

// deadline arms the deadline of the next write. A writer without deadlines
// (an in-memory recorder in tests) cannot stall, so that is not an error.
func (s *stallWriter) deadline() error {
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.limit)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

func (s *stallWriter) Write(p []byte) (int, error) {
	var n int
	for len(p) > 0 {
		if err := s.deadline(); err != nil {
			return n, err
		}
		m, err := s.ResponseWriter.Write(p[:min(len(p), stallChunk)])
		n += m
		if err != nil {
			return n, err
		}
		p = p[m:]
	}
	return n, nil
}

// Flush sends what the server buffered, under a deadline.
func (s *stallWriter) Flush() error {
	if err := s.deadline(); err != nil {
		return err
	}
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// stalled reports whether err is a write that hit its deadline.
func (s *stallWriter) stalled(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// stalledCheck counts and logs a response abandoned because its client
// stopped reading.
func (s *stallWriter) stalledCheck(err error) {
	if s.stalled(err) {
		s.counter.Inc()
		s.log.Warn("search response abandoned: the client stopped reading", "stall_limit", s.limit)
	}
}

// ServeCount answers {"count": N, "from", "to"}.
func (h *Handler) ServeCount(w http.ResponseWriter, r *http.Request) {
	req, observe := h.begin(w, r, "count")
	defer observe()
	if req == nil {
		return
	}
	ctx, cancel := h.scanContext(r.Context())
	defer cancel()
	req.Skipped = &Skipped{}
	n, err := h.exec.Count(ctx, req)
	files := h.skipped(r, "count", req)
	h.done(r, req, n, err)
	sw := h.stallWriter(w)
	if err != nil {
		h.fail(sw, err)
		return
	}
	out := map[string]any{"count": n, "query": req.Query.Text,
		"from": req.From.Format(time.RFC3339Nano), "to": req.To.Format(time.RFC3339Nano)}
	if files != nil {
		out["skipped"] = files
		setSkipped(w.Header(), SkippedHeader, files)
	}
	sw.stalledCheck(httpx.WriteJSON(sw, http.StatusOK, out))
}

// ServeStats answers the top values of a field among the matches.
func (h *Handler) ServeStats(w http.ResponseWriter, r *http.Request) {
	req, observe := h.begin(w, r, "stats")
	defer observe()
	if req == nil {
		return
	}
	qs := r.URL.Query()
	by := StatsBy(qs.Get("by"))
	switch by {
	case ByIP, ByDomain, ByPath, ByUserAgent, ByMinute, ByHour, ByDay:
	default:
		h.reject(w, r, req, "by: want ip, domain, path, user_agent, minute, hour or day")
		return
	}
	if n := TimelineBuckets(req, by); n > MaxTimelineBuckets {
		h.reject(w, r, req, fmt.Sprintf("by: %s over this range makes %d buckets, more than %d; narrow the range or group by a longer unit",
			by, n, MaxTimelineBuckets))
		return
	}
	top := 10
	if s := qs.Get("top"); s != "" {
		var err error
		if top, err = strconv.Atoi(s); err != nil || top < 0 {
			h.reject(w, r, req, "top: want a whole number >= 0 (0 means all)")
			return
		}
	}
	ctx, cancel := h.scanContext(r.Context())
	defer cancel()
	req.Skipped = &Skipped{}
	res, err := h.exec.Stats(ctx, req, by, top)
	files := h.skipped(r, "stats", req)
	h.done(r, req, res.Total, err)
	sw := h.stallWriter(w)
	if err != nil {
		h.fail(sw, err)
		return
	}
	if step := by.timelineStep(); step != 0 {
		trimFuture(&res, h.opts.Now(), step)
	}
	for i := range res.Buckets {
		res.Buckets[i].Key = string(appendEscaped(nil, res.Buckets[i].Key))
	}
	// approximate and truncated are always present, so that a reader who
	// checks for them never mistakes a missing field for an exact answer.
	out := map[string]any{"by": by, "total": res.Total, "top": res.Buckets, "query": req.Query.Text,
		"from": req.From.Format(time.RFC3339Nano), "to": req.To.Format(time.RFC3339Nano),
		"approximate": res.Approximate, "truncated": res.Truncated, "shown": len(res.Buckets)}
	if res.Approximate {
		out["max_groups"] = res.MaxGroups
	} else {
		out["groups"] = res.Groups
	}
	if files != nil {
		out["skipped"] = files
		setSkipped(w.Header(), SkippedHeader, files)
	}
	sw.stalledCheck(httpx.WriteJSON(sw, http.StatusOK, out))
}

// trimFuture drops the empty buckets of a timeline that start after now:
// the default range ends 48 hours ahead (for clocks that run fast), and
// rows of zeros for hours to come would only pad the answer. A bucket
// with a match is kept wherever it lies.
func trimFuture(res *StatsResult, now time.Time, step time.Duration) {
	b := res.Buckets
	for len(b) > 0 && b[len(b)-1].Count == 0 && res.Start.Add(time.Duration(len(b)-1)*step).After(now) {
		b = b[:len(b)-1]
	}
	res.Buckets, res.Groups = b, int64(len(b))
}

type encodeFunc func(b []byte, r *record.Record) []byte

func encoder(format string) (encodeFunc, string, error) {
	switch format {
	case "ndjson", "json":
		return AppendNDJSON, "application/x-ndjson", nil
	case "csv":
		return AppendCSV, "text/csv; charset=utf-8", nil
	case "combined":
		return AppendCombined, "text/plain; charset=utf-8", nil
	}
	return nil, "", fmt.Errorf("format: want ndjson, csv or combined")
}

// appendEscaped appends s with every byte that is not valid UTF-8 written as
// the four characters \xHH, the convention nginx uses in its logs: invalid
// bytes are evidence and are shown, never silently replaced.
func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = fmt.Appendf(b, `\x%02X`, s[i])
			i++
			continue
		}
		b = append(b, s[i:i+size]...)
		i += size
	}
	return b
}

// AppendNDJSON appends r in the API's row layout (record.AppendNDJSON):
// millisecond times, no HTML escaping, invalid UTF-8 shown as \xHH.
func AppendNDJSON(b []byte, r *record.Record) []byte {
	return record.AppendNDJSON(b, r, appendJSONEvidence)
}

// appendJSONEvidence JSON-quotes s (record.AppendJSONText: & < > as they
// are) after writing each byte that is not valid UTF-8 as the text \xHH;
// valid strings, the usual case, are quoted directly.
func appendJSONEvidence(b []byte, s string) []byte {
	if utf8.ValidString(s) {
		return record.AppendJSONText(b, s)
	}
	return record.AppendJSONText(b, string(appendEscaped(nil, s)))
}

// AppendCSV appends an RFC 4180 row; its time is written as in NDJSON
// (record.TimeLayout).
func AppendCSV(b []byte, r *record.Record) []byte {
	b = r.Time.UTC().AppendFormat(b, record.TimeLayout)
	for _, s := range []string{r.Domain, r.Path, r.UserAgent} {
		b = append(b, ',')
		b = appendCSVField(b, string(appendEscaped(nil, s)))
	}
	b = append(b, ',')
	b = r.IP.AppendTo(b)
	return append(b, '\n')
}

func appendCSVField(b []byte, s string) []byte {
	if !strings.ContainsAny(s, "\",\r\n") && (s == "" || (s[0] != ' ' && s[0] != '=' && s[0] != '+' && s[0] != '-' && s[0] != '@')) {
		return append(b, s...)
	}
	// Quote, and defuse spreadsheet formulas (a path starting with = is
	// attacker-controlled text in an investigator's spreadsheet).
	b = append(b, '"')
	if s != "" && strings.ContainsRune("=+-@", rune(s[0])) {
		b = append(b, '\'')
	}
	b = append(b, strings.ReplaceAll(s, `"`, `""`)...)
	return append(b, '"')
}

// AppendCombined appends a combined-format line (vhost_combined style, with
// the domain first) that access-log tools read. What retentiond never
// stores is "-": the method and protocol around the request target, the
// status, the size and the referer (a "GET" or a 0 would be a statement
// the evidence does not support). Its time has whole seconds, as the
// format has.
func AppendCombined(b []byte, r *record.Record) []byte {
	b = appendCombinedField(b, r.Domain)
	b = append(b, ' ')
	b = r.IP.AppendTo(b)
	b = append(b, " - - ["...)
	b = r.Time.UTC().AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, `] "- `...)
	b = appendCombinedField(b, r.Path)
	b = append(b, ` -" - - "-" "`...)
	b = appendCombinedField(b, r.UserAgent)
	return append(b, "\"\n"...)
}

func appendCombinedField(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1, r < 0x20, r == 0x7f:
			b = fmt.Appendf(b, `\x%02X`, s[i])
		case r == '"' || r == '\\':
			b = append(b, '\\', s[i])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return b
}
