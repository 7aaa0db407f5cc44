package search

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
)

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
		ByUserAgent: segment.ColUserAgent, ByHour: segment.ColTime, ByDay: segment.ColTime}[by]
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
