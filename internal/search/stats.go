package search

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
	"github.com/retentiond/retentiond/internal/store"
)

// StatsBy is a field to group statistics by.
type StatsBy string

// Stats groupings.
const (
	ByIP        StatsBy = "ip"
	ByDomain    StatsBy = "domain"
	ByPath      StatsBy = "path"
	ByUserAgent StatsBy = "user_agent"
	ByMinute    StatsBy = "minute"
	ByHour      StatsBy = "hour"
	ByDay       StatsBy = "day"
)

// MaxTimelineBuckets bounds the buckets of a stats timeline (by minute,
// hour or day): two years and two days by hour (17,568) fit, as do 13 days
// by minute. A timeline is never cut to its top values, so its size is
// bounded by the range instead: a longer range is refused.
const MaxTimelineBuckets = 20_000

// timelineStep returns the bucket width of a timeline grouping, or 0 for a
// grouping by value.
func (by StatsBy) timelineStep() time.Duration {
	switch by {
	case ByMinute:
		return time.Minute
	case ByHour:
		return time.Hour
	case ByDay:
		return 24 * time.Hour
	}
	return 0
}

// TimelineBuckets returns how many buckets a timeline grouping makes over
// req's range, for a caller that checks MaxTimelineBuckets before
// scanning; 0 for a grouping by value.
func TimelineBuckets(req *Request, by StatsBy) int64 {
	step := by.timelineStep()
	if step == 0 {
		return 0
	}
	_, n := buckets(req, step)
	return n
}

// Default bounds on what one stats request holds in memory. A scanner
// requesting random URLs makes millions of distinct paths in a day; without
// a bound, stats by path over a few weeks needed gigabytes and answered
// hundreds of megabytes.
const (
	// DefaultStatsMaxGroups is the number of distinct values counted
	// exactly before stats switches to an approximate summary of that
	// many values.
	DefaultStatsMaxGroups = 100_000
	// DefaultStatsMaxKeyBytes bounds the bytes of the values held, so that
	// long values (a path may be 64 KiB) cannot multiply the group bound.
	DefaultStatsMaxKeyBytes = 64 << 20
)

// Bucket is one row of statistics.
type Bucket struct {
	Key   string `json:"key"`
	Count int64  `json:"count"`
	// Error is non-zero only in an approximate answer: the true count lies
	// in [Count-Error, Count].
	Error int64 `json:"error,omitempty"`
}

// StatsResult is the answer to a stats request.
type StatsResult struct {
	Buckets []Bucket
	// Total is the exact number of matches, whatever the grouping.
	Total int64
	// Groups is the number of distinct values; it is known only when the
	// answer is exact (0 otherwise).
	Groups int64
	// Approximate is set when more distinct values matched than the bounds
	// allow to count exactly: the buckets then come from a Space-Saving
	// summary (Metwally et al., 2005) and carry their Error. Every value
	// that matched more often than the smallest count held is in the
	// summary; when the group bound (not the byte bound) is what limits,
	// that count is at most Total / MaxGroups.
	Approximate bool
	// Truncated is set when the buckets are not every value that matched
	// although the request asked for all of them (or for more than the
	// summary holds).
	Truncated bool
	// MaxGroups is the bound on distinct values the answer was computed
	// with.
	MaxGroups int
	// Start is, for a timeline (by minute, hour or day), the start of its
	// first bucket; bucket i starts i steps later.
	Start time.Time
}

// Stats counts matches per value of by and returns the top n (by count,
// then key), n = 0 meaning all. The memory it holds is bounded by the
// Executor's StatsMaxGroups and StatsMaxKeyBytes.
//
// By minute, hour or day it returns the timeline instead: every bucket of
// the range from From (aligned down to the bucket, UTC) to To, zeros
// included, in time order, whatever n (a timeline cut to its busiest or
// first buckets looks as if the activity stopped). Its keys are RFC 3339
// times, dates by day; more than MaxTimelineBuckets buckets is an error.
func (e *Executor) Stats(ctx context.Context, req *Request, by StatsBy, n int) (StatsResult, error) {
	res, _, err := e.groupStats(ctx, req, by, n, e.statsMaxGroups(), e.statsMaxKeyBytes())
	return res, err
}

func (e *Executor) statsMaxGroups() int   { return cmp.Or(e.StatsMaxGroups, DefaultStatsMaxGroups) }
func (e *Executor) statsMaxKeyBytes() int { return cmp.Or(e.StatsMaxKeyBytes, DefaultStatsMaxKeyBytes) }

// groupStats is Stats with explicit bounds; it also returns the counter, whose
// peak the tests inspect.
func (e *Executor) groupStats(ctx context.Context, req *Request, by StatsBy, n, maxGroups, maxKeyBytes int) (StatsResult, *groupCounter, error) {
	if step := by.timelineStep(); step != 0 {
		// Exact counts cost little (two years hold 17,544 hours), and an
		// approximate timeline would be no evidence at all.
		res, err := e.timelineStats(ctx, req, by, step)
		return res, newGroupCounter(0, 0), err
	}
	if e.fansOut(req) {
		res, err := e.groupsCluster(ctx, req, by, n, maxGroups, maxKeyBytes)
		return res, newGroupCounter(0, 0), err
	}
	return e.groupStatsLocal(ctx, req, by, n, maxGroups, maxKeyBytes)
}

// groupStatsLocal is groupStats by value over this node's snapshot only.
func (e *Executor) groupStatsLocal(ctx context.Context, req *Request, by StatsBy, n, maxGroups, maxKeyBytes int) (StatsResult, *groupCounter, error) {
	var mu sync.Mutex
	gc := newGroupCounter(maxGroups, maxKeyBytes)
	var total int64
	key := func(r *record.Record) string {
		switch by {
		case ByIP:
			return r.IP.String()
		case ByDomain:
			return r.Domain
		case ByPath:
			return r.Path
		default:
			return r.UserAgent
		}
	}
	need := map[StatsBy]segment.Columns{ByIP: segment.ColIP, ByDomain: segment.ColDomain, ByPath: segment.ColPath,
		ByUserAgent: segment.ColUserAgent}[by]
	add := func(r record.Record) bool {
		k := key(&r)
		mu.Lock()
		gc.add(k, 1)
		total++
		mu.Unlock()
		return true
	}
	err := e.forEachSource(ctx, req, func(ctx context.Context, v *store.DayView, sr *segment.Reader) error {
		if sr == nil {
			for _, i := range matchHead(v, req) {
				add(*v.Head.At(i))
			}
			return nil
		}
		if by == ByDomain || by == ByUserAgent {
			// A whole day grouped by domain or user agent is answered by
			// the footer's row count per dictionary entry: no block read.
			c := newSegCursor(ctx, sr, req, need, cursorOpts{footer: true})
			rows, ok := c.footerRows(map[StatsBy]Field{ByDomain: FieldDomain, ByUserAgent: FieldUserAgent}[by])
			c.close()
			if ok {
				dict := sr.Domains()
				if by == ByUserAgent {
					dict = sr.UserAgents()
				}
				mu.Lock()
				for id, n := range rows {
					if n > 0 {
						gc.add(dict[id], int64(n))
						total += int64(n)
					}
				}
				mu.Unlock()
				return nil
			}
		}
		return scanSegment(ctx, sr, req, need, add)
	})
	out := gc.buckets()
	slices.SortFunc(out, func(a, b Bucket) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Key, b.Key))
	})
	res := StatsResult{Total: total, Approximate: gc.approximate(), MaxGroups: maxGroups}
	if !res.Approximate {
		res.Groups = int64(len(out))
	} else {
		res.Truncated = n == 0 || n > len(out)
	}
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	res.Buckets = out
	return res, gc, err
}

// timelineStats answers a stats request by minute, hour or day: every
// bucket of the range, in time order.
func (e *Executor) timelineStats(ctx context.Context, req *Request, by StatsBy, step time.Duration) (StatsResult, error) {
	start, counts, total, err := e.timeline(ctx, req, step, MaxTimelineBuckets)
	if err != nil {
		return StatsResult{}, err
	}
	out := make([]Bucket, len(counts))
	for i, n := range counts {
		t := start.Add(time.Duration(i) * step)
		k := t.Format(time.RFC3339)
		if by == ByDay {
			k = record.DayString(t)
		}
		out[i] = Bucket{Key: k, Count: n}
	}
	return StatsResult{Buckets: out, Total: total, Groups: int64(len(out)), MaxGroups: MaxTimelineBuckets, Start: start}, nil
}

// groupCounter counts values exactly while they fit in its bounds, then
// switches to Space-Saving: it keeps the values it holds with their counts,
// and a new value replaces the least counted one, inheriting that count as
// its error. It never holds more than maxGroups values, nor more than
// maxKeyBytes of them (save a single value longer than that).
type groupCounter struct {
	maxGroups, maxKeyBytes int
	keyBytes               int
	exact                  map[string]int64 // nil once approximate
	summary                ssHeap           // the approximate counts, least first
	// floor is the most any value not held may have occurred: the count of
	// the last value evicted (evictions take the least count held, so it
	// never decreases).
	floor int64
	peak  int // most values held at once
}

func newGroupCounter(maxGroups, maxKeyBytes int) *groupCounter {
	return &groupCounter{maxGroups: maxGroups, maxKeyBytes: maxKeyBytes, exact: map[string]int64{}}
}

func (g *groupCounter) approximate() bool { return g.exact == nil }

// held is the number of values held.
func (g *groupCounter) held() int {
	if g.exact != nil {
		return len(g.exact)
	}
	return len(g.summary.e)
}

func (g *groupCounter) full(k string) bool {
	return g.held() >= g.maxGroups || g.keyBytes+len(k) > g.maxKeyBytes
}

// add counts n occurrences of k (weighted Space-Saving once approximate:
// a new value enters with the floor plus n, error the floor, which keeps
// the bound of the unweighted summary).
func (g *groupCounter) add(k string, n int64) {
	if g.exact != nil {
		if _, ok := g.exact[k]; ok || !g.full(k) {
			if !ok {
				g.keyBytes += len(k)
			}
			g.exact[k] += n
			g.peak = max(g.peak, len(g.exact))
			return
		}
		g.toSummary()
	}
	if i, ok := g.summary.pos[k]; ok {
		g.summary.e[i].count += n
		g.summary.down(i)
		return
	}
	// Evict the least counted values until k fits. k may have been held
	// and evicted before: it occurred at most floor times so far, so it
	// enters with count floor+1 and error floor. (The byte bound may evict
	// several values, leaving room later for a value that evicts none: it
	// still enters above the floor.)
	for len(g.summary.e) > 0 && g.full(k) {
		old := g.summary.popMin()
		g.keyBytes -= len(old.key)
		g.floor = old.count
	}
	g.summary.push(ssEntry{key: k, count: g.floor + n, err: g.floor})
	g.keyBytes += len(k)
	g.peak = max(g.peak, len(g.summary.e))
}

// toSummary turns the exact counts into a Space-Saving summary (error 0).
func (g *groupCounter) toSummary() {
	g.summary = ssHeap{e: make([]ssEntry, 0, len(g.exact))}
	g.summary.pos = make(map[string]int, len(g.exact))
	for k, c := range g.exact {
		g.summary.e = append(g.summary.e, ssEntry{key: k, count: c})
		g.summary.pos[k] = len(g.summary.e) - 1
	}
	g.summary.init()
	g.exact = nil
}

// buckets returns every value held, unsorted.
func (g *groupCounter) buckets() []Bucket {
	if g.exact != nil {
		out := make([]Bucket, 0, len(g.exact))
		for k, c := range g.exact {
			out = append(out, Bucket{Key: k, Count: c})
		}
		return out
	}
	out := make([]Bucket, 0, len(g.summary.e))
	for _, s := range g.summary.e {
		out = append(out, Bucket{Key: s.key, Count: s.count, Error: s.err})
	}
	return out
}

// ssEntry is one value of a Space-Saving summary: its true count lies in
// [count-err, count].
type ssEntry struct {
	key        string
	count, err int64
}

// ssHeap is a min-heap of entries by count that keeps pos (value -> index)
// up to date, so that a held value's count can be raised in O(log n). It
// is written out rather than built on container/heap, whose interface
// boxing cost an allocation per eviction.
type ssHeap struct {
	e   []ssEntry
	pos map[string]int
}

func (h *ssHeap) swap(i, j int) {
	h.e[i], h.e[j] = h.e[j], h.e[i]
	h.pos[h.e[i].key], h.pos[h.e[j].key] = i, j
}

// up moves entry i towards the root while it is less than its parent.
func (h *ssHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if h.e[p].count <= h.e[i].count {
			return
		}
		h.swap(i, p)
		i = p
	}
}

// down moves entry i towards the leaves while a child is less than it.
func (h *ssHeap) down(i int) {
	for {
		c := 2*i + 1
		if c >= len(h.e) {
			return
		}
		if c+1 < len(h.e) && h.e[c+1].count < h.e[c].count {
			c++
		}
		if h.e[i].count <= h.e[c].count {
			return
		}
		h.swap(i, c)
		i = c
	}
}

// init orders entries that were appended without ordering.
func (h *ssHeap) init() {
	for i := len(h.e)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *ssHeap) push(s ssEntry) {
	h.pos[s.key] = len(h.e)
	h.e = append(h.e, s)
	h.up(len(h.e) - 1)
}

// popMin removes and returns the least counted entry.
func (h *ssHeap) popMin() ssEntry {
	last := len(h.e) - 1
	h.swap(0, last)
	s := h.e[last]
	h.e = h.e[:last]
	delete(h.pos, s.key)
	h.down(0)
	return s
}
