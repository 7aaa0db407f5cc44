package search

import (
	"cmp"
	"context"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
	"github.com/retentiond/retentiond/internal/store"
)

// Source gives a consistent view of the stored days; *store.Store
// satisfies it.
type Source interface {
	Snapshot(from, to time.Time) (*store.Snapshot, error)
}

// Request is one search: a query over [From, To).
type Request struct {
	Query *Query
	From  time.Time
	To    time.Time
	Desc  bool // newest first
	Limit int  // 0: no limit
}

// Executor runs requests against a Source.
type Executor struct {
	Source      Source
	Concurrency int // days scanned at once; 0 means GOMAXPROCS
}

// plan is the per-segment evaluation of a query: dictionary ids that match,
// and the blocks that can hold matches.
type plan struct {
	domainOK []bool // per domain id: do all domain terms hold
	uaOK     []bool // per user-agent id: do all ua terms hold
	blocks   []int
	cols     segment.Columns
}

func (e *Executor) concurrency() int {
	if e.Concurrency > 0 {
		return e.Concurrency
	}
	return runtime.GOMAXPROCS(0)
}

// planSegment decides which blocks of sr to read. It returns nil when no
// record of the segment can match.
func planSegment(sr *segment.Reader, req *Request) *plan {
	from, to := req.From.UnixMilli(), req.To.UnixMilli()
	p := &plan{cols: segment.ColTime}
	// candidate is meaningful only once restricted: an index that answers
	// "no block" (a nil slice) must prune the segment, not mean "all blocks".
	var candidate []int
	restricted := false
	restrict := func(bs []int) {
		if !restricted {
			candidate, restricted = bs, true
			return
		}
		candidate = intersect(candidate, bs)
	}
	var dTerms, uTerms []*Term
	for i := range req.Query.Terms {
		t := &req.Query.Terms[i]
		switch t.Field {
		case FieldIP:
			p.cols |= segment.ColIP
			if !t.Negate {
				restrict(sr.BlocksForPrefix(t.Prefix))
			}
		case FieldDomain:
			p.cols |= segment.ColDomain
			dTerms = append(dTerms, t)
		case FieldUserAgent:
			p.cols |= segment.ColUserAgent
			uTerms = append(uTerms, t)
		case FieldPath:
			p.cols |= segment.ColPath
		}
	}
	// Each dictionary entry is tested once, not once per row.
	if len(dTerms) > 0 {
		doms := sr.Domains()
		p.domainOK = make([]bool, len(doms))
		var ids []uint32
		for id, d := range doms {
			ok := true
			for _, t := range dTerms {
				if !t.matchString(d) {
					ok = false
					break
				}
			}
			p.domainOK[id] = ok
			if ok {
				ids = append(ids, uint32(id))
			}
		}
		if len(ids) == 0 {
			return nil
		}
		restrict(sr.BlocksForDomains(ids))
	}
	if len(uTerms) > 0 {
		uas := sr.UserAgents()
		p.uaOK = make([]bool, len(uas))
		any := false
		for id, u := range uas {
			ok := true
			for _, t := range uTerms {
				if !t.matchString(u) {
					ok = false
					break
				}
			}
			p.uaOK[id] = ok
			any = any || ok
		}
		if !any {
			return nil
		}
	}
	if restricted && len(candidate) == 0 {
		return nil
	}
	if !restricted {
		candidate = make([]int, sr.NumBlocks())
		for i := range candidate {
			candidate[i] = i
		}
	}
	for _, b := range candidate {
		m := sr.Block(b)
		if m.MaxTime >= from && m.MinTime < to {
			p.blocks = append(p.blocks, b)
		}
	}
	if len(p.blocks) == 0 {
		return nil
	}
	return p
}

func intersect(a, b []int) []int {
	out := []int{}
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			out = append(out, a[i])
			i++
			j++
		case a[i] < b[j]:
			i++
		default:
			j++
		}
	}
	return out
}

// scanSegment calls fn for each matching record of sr, in time order. Only
// the columns in need (plus those the filters read) are filled in the
// records fn receives; count passes none, stats the one it groups by.
func scanSegment(ctx context.Context, sr *segment.Reader, req *Request, need segment.Columns, fn func(record.Record) bool) error {
	p := planSegment(sr, req)
	if p == nil {
		return nil
	}
	from, to := req.From.UnixMilli(), req.To.UnixMilli()
	// The first pass reads only the filter columns; the output columns of a
	// block are read only when a row of it matched. When a positive IP term
	// chose the blocks, they almost surely match, and one read of all the
	// columns is cheaper than two.
	first, rest := p.cols, need&^p.cols
	for _, t := range req.Query.Terms {
		if t.Field == FieldIP && !t.Negate {
			first, rest = p.cols|need, 0
			break
		}
	}
	doms, uas := sr.Domains(), sr.UserAgents()
	var hits []int
	for bi := range p.blocks {
		// Newest first walks the blocks, and the rows in them, backwards,
		// so that a limited descending search can stop early too.
		b := p.blocks[bi]
		if req.Desc {
			b = p.blocks[len(p.blocks)-1-bi]
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		blk, err := sr.ReadBlock(b, first)
		if err != nil {
			return err
		}
		hits = hits[:0]
	rows:
		for i, ts := range blk.Times {
			if ts < from || ts >= to {
				continue
			}
			if p.domainOK != nil && !p.domainOK[blk.DomainIDs[i]] {
				continue
			}
			if p.uaOK != nil && !p.uaOK[blk.UserAgentIDs[i]] {
				continue
			}
			for k := range req.Query.Terms {
				t := &req.Query.Terms[k]
				switch t.Field {
				case FieldIP:
					if !t.matchIP(blk.IPs[i]) {
						continue rows
					}
				case FieldPath:
					if !t.matchString(blk.Paths[i]) {
						continue rows
					}
				}
			}
			hits = append(hits, i)
		}
		if len(hits) == 0 {
			continue
		}
		if rest != 0 {
			more, err := sr.ReadBlock(b, rest)
			if err != nil {
				return err
			}
			if more.IPs != nil {
				blk.IPs = more.IPs
			}
			if more.DomainIDs != nil {
				blk.DomainIDs = more.DomainIDs
			}
			if more.UserAgentIDs != nil {
				blk.UserAgentIDs = more.UserAgentIDs
			}
			if more.Paths != nil {
				blk.Paths = more.Paths
			}
		}
		if req.Desc {
			slices.Reverse(hits)
		}
		for _, i := range hits {
			r := record.Record{Time: time.UnixMilli(blk.Times[i]).UTC()}
			if blk.DomainIDs != nil {
				r.Domain = doms[blk.DomainIDs[i]]
			}
			if blk.UserAgentIDs != nil {
				r.UserAgent = uas[blk.UserAgentIDs[i]]
			}
			if blk.Paths != nil {
				r.Path = blk.Paths[i]
			}
			if blk.IPs != nil {
				r.IP = blk.IPs[i]
			}
			if !fn(r) {
				return nil
			}
		}
	}
	return nil
}

// scanDay returns the matches of one day, sorted by time (in req order),
// at most req.Limit of them when a limit is set.
func scanDay(ctx context.Context, v *store.DayView, req *Request) ([]record.Record, error) {
	var out []record.Record
	from, to := req.From, req.To
	for i := range v.Head {
		r := &v.Head[i]
		if !r.Time.Before(from) && r.Time.Before(to) && req.Query.Match(r) {
			out = append(out, *r)
		}
	}
	for _, sr := range v.Segments {
		// A segment yields its matches in the requested order, so only its
		// first Limit matches can be among the day's first Limit.
		n := 0
		if err := scanSegment(ctx, sr, req, segment.ColAll, func(r record.Record) bool {
			out = append(out, r)
			n++
			return req.Limit <= 0 || n < req.Limit
		}); err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(out, func(a, b record.Record) int {
		c := a.Time.Compare(b.Time)
		if req.Desc {
			c = -c
		}
		return c
	})
	if req.Limit > 0 && len(out) > req.Limit {
		out = out[:req.Limit]
	}
	return out, nil
}

// Run streams the matches to emit in time order, stopping at the limit, at
// an emit error or when ctx is cancelled. Days are scanned in parallel, a
// bounded window ahead of the one being emitted.
func (e *Executor) Run(ctx context.Context, req *Request, emit func(record.Record) error) (int64, error) {
	snap, err := e.Source.Snapshot(req.From, req.To)
	if err != nil {
		return 0, err
	}
	defer snap.Release()
	days := slices.Clone(snap.Days)
	if req.Desc {
		slices.Reverse(days)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		recs []record.Record
		err  error
	}
	futures := make([]chan result, len(days))
	launch := func(i int) {
		futures[i] = make(chan result, 1)
		go func() {
			recs, err := scanDay(ctx, days[i], req)
			futures[i] <- result{recs, err}
		}()
	}
	window := e.concurrency()
	for i := 0; i < min(window, len(days)); i++ {
		launch(i)
	}
	var n int64
	for i := range days {
		res := <-futures[i]
		if next := i + window; next < len(days) {
			launch(next)
		}
		if res.err != nil {
			return n, res.err
		}
		for _, r := range res.recs {
			if err := emit(r); err != nil {
				return n, err
			}
			n++
			if req.Limit > 0 && n >= int64(req.Limit) {
				return n, nil
			}
		}
	}
	return n, ctx.Err()
}

// Count returns how many records match, scanning days in parallel.
func (e *Executor) Count(ctx context.Context, req *Request) (int64, error) {
	var total atomic.Int64
	err := e.each(ctx, req, 0, func(record.Record) bool {
		total.Add(1)
		return true
	})
	return total.Load(), err
}

// each calls fn (concurrently, from several goroutines) for every match.
func (e *Executor) each(ctx context.Context, req *Request, need segment.Columns, fn func(record.Record) bool) error {
	snap, err := e.Source.Snapshot(req.From, req.To)
	if err != nil {
		return err
	}
	defer snap.Release()
	type job struct {
		v  *store.DayView
		sr *segment.Reader // nil: the head
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	for w := 0; w < e.concurrency(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				var err error
				if j.sr == nil {
					for i := range j.v.Head {
						r := &j.v.Head[i]
						if !r.Time.Before(req.From) && r.Time.Before(req.To) && req.Query.Match(r) {
							fn(*r)
						}
					}
				} else {
					err = scanSegment(ctx, j.sr, req, need, fn)
				}
				if err != nil {
					errOnce.Do(func() { firstErr = err })
				}
			}
		}()
	}
	for _, v := range snap.Days {
		jobs <- job{v: v}
		for _, sr := range v.Segments {
			jobs <- job{v: v, sr: sr}
		}
	}
	close(jobs)
	wg.Wait()
	return cmp.Or(firstErr, ctx.Err())
}

// StatsBy is a field to group statistics by.
type StatsBy string

// Stats groupings.
const (
	ByIP        StatsBy = "ip"
	ByDomain    StatsBy = "domain"
	ByPath      StatsBy = "path"
	ByUserAgent StatsBy = "user_agent"
	ByHour      StatsBy = "hour"
	ByDay       StatsBy = "day"
)

// Bucket is one row of statistics.
type Bucket struct {
	Key   string `json:"key"`
	Count int64  `json:"count"`
}

// Stats counts matches per value of by and returns the top n (by count,
// then key), and the total.
func (e *Executor) Stats(ctx context.Context, req *Request, by StatsBy, n int) ([]Bucket, int64, error) {
	var mu sync.Mutex
	counts := map[string]int64{}
	var total int64
	key := func(r *record.Record) string {
		switch by {
		case ByIP:
			return r.IP.String()
		case ByDomain:
			return r.Domain
		case ByPath:
			return r.Path
		case ByUserAgent:
			return r.UserAgent
		case ByHour:
			return r.Time.Truncate(time.Hour).Format(time.RFC3339)
		default:
			return record.DayString(r.Time)
		}
	}
	need := map[StatsBy]segment.Columns{ByIP: segment.ColIP, ByDomain: segment.ColDomain, ByPath: segment.ColPath,
		ByUserAgent: segment.ColUserAgent}[by]
	err := e.each(ctx, req, need, func(r record.Record) bool {
		k := key(&r)
		mu.Lock()
		counts[k]++
		total++
		mu.Unlock()
		return true
	})
	out := make([]Bucket, 0, len(counts))
	for k, c := range counts {
		out = append(out, Bucket{k, c})
	}
	slices.SortFunc(out, func(a, b Bucket) int {
		if by == ByHour || by == ByDay {
			return cmp.Compare(a.Key, b.Key)
		}
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Key, b.Key))
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out, total, err
}

var _ = netip.Addr{}
