package search

import (
	"slices"

	"github.com/retentiond/retentiond/internal/segment"
)

// narrowBy keeps the candidate rows whose dictionary entry ok[idx[row]]
// holds: the same as narrow with that test, without a call per row.
func (j *blockJob) narrowBy(all bool, ok []bool, idx []uint32) {
	if all {
		j.hits = j.hits[:0]
		for i, k := range idx[:j.rows] {
			if ok[k] {
				j.hits = append(j.hits, i)
			}
		}
		return
	}
	n := 0
	for _, i := range j.hits {
		if ok[idx[i]] {
			j.hits[n] = i
			n++
		}
	}
	j.hits = j.hits[:n]
}

// narrowRange keeps the candidate rows whose dictionary index idx[row]
// lies in [lo, hi).
func (j *blockJob) narrowRange(all bool, lo, hi uint32, idx []uint32) {
	width := hi - lo
	if all {
		j.hits = j.hits[:0]
		for i, k := range idx[:j.rows] {
			if k-lo < width { // unsigned: also false below lo
				j.hits = append(j.hits, i)
			}
		}
		return
	}
	n := 0
	for _, i := range j.hits {
		if idx[i]-lo < width {
			j.hits[n] = i
			n++
		}
	}
	j.hits = j.hits[:n]
}

// narrow keeps the candidate rows for which keep holds. all says that every
// row of the block is still a candidate (j.hits is then not yet built).
func (j *blockJob) narrow(all bool, keep func(i int) bool) {
	if all {
		j.hits = j.hits[:0]
		for i := range j.rows {
			if keep(i) {
				j.hits = append(j.hits, i)
			}
		}
		return
	}
	n := 0
	for _, i := range j.hits {
		if keep(i) {
			j.hits[n] = i
			n++
		}
	}
	j.hits = j.hits[:n]
}

// filterBlock decodes block j.b and finds its matching rows. It reads only
// the cursor's immutable state, so jobs of one cursor run concurrently.
func (c *segCursor) filterBlock(j *blockJob) error {
	j.hits = j.hits[:0]
	if err := c.ctx.Err(); err != nil {
		return err
	}
	b, v, p := j.b, &j.v, c.p
	v.Have = 0 // a recycled view may hold another block
	m := c.sr.Block(b)
	j.rows = m.Rows
	decode := func(col segment.Columns) error { return c.sr.DecodeBlock(b, col, v) }
	var all bool // every row is a candidate (each branch below sets it)
	if len(p.alts) == 1 {
		var err error
		if all, err = c.filterAlt(j, p.alts[0]); err != nil || !all && len(j.hits) == 0 {
			return err
		}
	} else {
		// A row matches when any alternative holds: each alternative is
		// filtered in the blocks its indexes allow, and the (ascending)
		// row lists are united.
		j.union = j.union[:0]
		for _, a := range p.alts {
			if !a.has(b) {
				continue
			}
			j.hits = j.hits[:0]
			altAll, err := c.filterAlt(j, a)
			if err != nil {
				return err
			}
			if altAll {
				j.narrow(true, func(int) bool { return true })
			}
			j.merged = mergeRows(j.merged[:0], j.union, j.hits)
			j.union, j.merged = j.merged, j.union
		}
		j.hits = append(j.hits[:0], j.union...)
		all = false
		if len(j.hits) == 0 {
			return nil
		}
	}
	// The time column is a filter only for a block that straddles the
	// range; otherwise it is read only when the output needs it.
	if m.MinTime < c.from || m.MaxTime >= c.to {
		if err := decode(segment.ColTime); err != nil {
			return err
		}
		j.narrow(all, func(i int) bool { return v.Times[i] >= c.from && v.Times[i] < c.to })
		all = false
		if len(j.hits) == 0 {
			return nil
		}
	}
	if all {
		j.narrow(true, func(int) bool { return true })
	}
	if err := decode(c.need); err != nil {
		return err
	}
	if c.req.Desc {
		slices.Reverse(j.hits)
	}
	// Only the matching rows' values are read, not whole columns.
	var err error
	if c.need&segment.ColPath != 0 {
		if j.paths, err = v.PathsOfRows(j.hits); err != nil {
			return err
		}
	}
	for _, col := range []struct {
		c   segment.Columns
		at  func(int) (uint32, error)
		out *[]uint32
	}{{segment.ColDomain, v.DomainID, &j.doms}, {segment.ColUserAgent, v.UserAgentID, &j.uas}} {
		if c.need&col.c == 0 {
			continue
		}
		*col.out = (*col.out)[:0]
		for _, i := range j.hits {
			id, err := col.at(i)
			if err != nil {
				return err
			}
			*col.out = append(*col.out, id)
		}
	}
	return nil
}

// filterAlt narrows j.hits (empty on entry) to the rows of block j.b where
// every term of alternative a holds, one column at a time, most selective
// first. all reports that no term narrowed the rows (every row of the
// block is then a candidate and j.hits is not built); otherwise j.hits
// holds the matching rows in ascending order.
func (c *segCursor) filterAlt(j *blockJob, a *altPlan) (all bool, err error) {
	v := &j.v
	decode := func(col segment.Columns) error { return c.sr.DecodeBlock(j.b, col, v) }
	all = true
	if len(a.ipTerms) > 0 {
		if err := decode(segment.ColIP); err != nil {
			return false, err
		}
		if t := a.ipTerms[0]; len(a.ipTerms) == 1 && !t.Negate {
			// One prefix: its addresses are one run of the sorted
			// dictionary, found by binary search without building any.
			lo, hi := v.IPRange(t.Prefix)
			if lo == hi {
				return false, nil
			}
			j.narrowRange(all, uint32(lo), uint32(hi), v.IPIdx)
		} else {
			var any bool
			j.ipOK, any = markEntries(j.ipOK, v.NumIPs(), func(k int) bool {
				addr := v.IPAt(k)
				return allHold(a.ipTerms, func(t *Term) bool { return t.matchIP(addr) })
			})
			if !any {
				return false, nil
			}
			j.narrowBy(all, j.ipOK, v.IPIdx)
		}
		all = false
		if len(j.hits) == 0 {
			return false, nil
		}
	}
	if a.pathTerm != nil {
		// Each distinct path of the block is tested once. When none
		// matches, which is the usual case for a rare path, the block's
		// other columns are never decoded.
		if err := decode(segment.ColPath); err != nil {
			return false, err
		}
		n := v.NumPaths()
		j.pathOK = slices.Grow(j.pathOK[:0], n)[:n]
		any := false
		v.EachPath(func(k int, path []byte) {
			ok := true
			for ti, t := range a.pathTerm {
				if !t.matchBytes(path, a.needles[ti]) {
					ok = false
					break
				}
			}
			j.pathOK[k] = ok
			any = any || ok
		})
		if !any {
			j.hits = j.hits[:0]
			return false, nil
		}
		idx, err := v.PathIdx()
		if err != nil {
			return false, err
		}
		j.narrowBy(all, j.pathOK, idx)
		all = false
		if len(j.hits) == 0 {
			return false, nil
		}
	}
	// Domain and user-agent terms were evaluated per dictionary entry when
	// the segment was planned; rows look their answer up by id.
	for _, f := range []struct {
		ok  []bool
		col segment.Columns
		ids func() ([]uint32, error)
	}{{a.domainOK, segment.ColDomain, v.DomainIDs}, {a.uaOK, segment.ColUserAgent, v.UserAgentIDs}} {
		if f.ok == nil {
			continue
		}
		if err := decode(f.col); err != nil {
			return false, err
		}
		ids, err := f.ids()
		if err != nil {
			return false, err
		}
		j.narrowBy(all, f.ok, ids)
		all = false
		if len(j.hits) == 0 {
			return false, nil
		}
	}
	return all, nil
}

// mergeRows appends to dst the ascending union, without duplicates, of the
// ascending lists a and b (rows of a block, or blocks of a segment).
func mergeRows(dst, a, b []int) []int {
	i, k := 0, 0
	for i < len(a) || k < len(b) {
		switch {
		case k >= len(b) || i < len(a) && a[i] < b[k]:
			dst = append(dst, a[i])
			i++
		case i >= len(a) || b[k] < a[i]:
			dst = append(dst, b[k])
			k++
		default:
			dst = append(dst, a[i])
			i++
			k++
		}
	}
	return dst
}
