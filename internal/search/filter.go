package search

import (
	"fmt"
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
// Its phases: the rows the query's alternatives select (filterAlts), the
// time range (filterTime), then the output columns of the rows that remain
// (readMatches).
func (c *segCursor) filterBlock(j *blockJob) error {
	j.hits = j.hits[:0]
	if err := c.ctx.Err(); err != nil {
		return err
	}
	j.v.Have = 0 // a recycled view may hold another block
	m := c.sr.Block(j.b)
	j.rows = m.Rows
	all, err := c.filterAlts(j)
	if err != nil || !all && len(j.hits) == 0 {
		return err
	}
	if all, err = c.filterTime(j, m, all); err != nil || !all && len(j.hits) == 0 {
		return err
	}
	if all {
		j.narrow(true, func(int) bool { return true })
	}
	return c.readMatches(j)
}

// filterAlts narrows the block's rows to those where an alternative of the
// query holds. all reports that every row is a candidate (j.hits is then
// not built), as filterAlt does; otherwise j.hits holds the rows in
// ascending order.
func (c *segCursor) filterAlts(j *blockJob) (all bool, err error) {
	if len(c.p.alts) == 1 {
		return c.filterAlt(j, c.p.alts[0])
	}
	// A row matches when any alternative holds: each alternative is
	// filtered in the blocks its indexes allow, and the (ascending) row
	// lists are united.
	j.union = j.union[:0]
	for _, a := range c.p.alts {
		if !a.has(j.b) {
			continue
		}
		j.hits = j.hits[:0]
		altAll, err := c.filterAlt(j, a)
		if err != nil {
			return false, err
		}
		if altAll {
			j.narrow(true, func(int) bool { return true })
		}
		j.merged = mergeRows(j.merged[:0], j.union, j.hits)
		j.union, j.merged = j.merged, j.union
	}
	j.hits = append(j.hits[:0], j.union...)
	return false, nil
}

// filterTime narrows the candidate rows to the search's time range. The
// time column is a filter only for a block that straddles the range;
// otherwise it is read only when the output needs it, and all is returned
// as given.
func (c *segCursor) filterTime(j *blockJob, m segment.BlockMeta, all bool) (bool, error) {
	if m.MinTime >= c.from && m.MaxTime < c.to {
		return all, nil
	}
	v := &j.v
	if err := c.sr.DecodeBlock(j.b, segment.ColTime, v); err != nil {
		return false, err
	}
	j.narrow(all, func(i int) bool { return v.Times[i] >= c.from && v.Times[i] < c.to })
	return false, nil
}

// readMatches decodes the columns the output needs and reads the matching
// rows' values: only those rows', not whole columns. For a descending
// search the rows are put in descending order first.
func (c *segCursor) readMatches(j *blockJob) error {
	v := &j.v
	if err := c.sr.DecodeBlock(j.b, c.need, v); err != nil {
		return err
	}
	if c.req.Desc {
		slices.Reverse(j.hits)
	}
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
// first: addresses, paths, then the dictionary columns. all reports that no
// term narrowed the rows (every row of the block is then a candidate and
// j.hits is not built); otherwise j.hits holds the matching rows in
// ascending order. Each phase leaves j.hits empty when no row remains.
func (c *segCursor) filterAlt(j *blockJob, a *altPlan) (all bool, err error) {
	v := &j.v
	all = true
	if len(a.ipTerms) > 0 {
		if err := c.filterIPs(j, a, all); err != nil || len(j.hits) == 0 {
			return false, err
		}
		all = false
	}
	if a.pathTerm != nil {
		if err := c.filterPaths(j, a, all); err != nil || len(j.hits) == 0 {
			return false, err
		}
		all = false
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
		if err := c.sr.DecodeBlock(j.b, f.col, v); err != nil {
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

// filterIPs narrows the candidate rows to those whose address every IP term
// of a accepts.
func (c *segCursor) filterIPs(j *blockJob, a *altPlan, all bool) error {
	v := &j.v
	if err := c.sr.DecodeBlock(j.b, segment.ColIP, v); err != nil {
		return err
	}
	if t := a.ipTerms[0]; len(a.ipTerms) == 1 && !t.Negate {
		// One prefix: its addresses are one run of the sorted
		// dictionary, found by binary search without building any.
		lo, hi := v.IPRange(t.Prefix)
		if lo == hi {
			j.hits = j.hits[:0]
			return nil
		}
		j.narrowRange(all, uint32(lo), uint32(hi), v.IPIdx)
		return nil
	}
	var any bool
	j.ipOK, any = markEntries(j.ipOK, v.NumIPs(), func(k int) bool {
		addr := v.IPAt(k)
		return allHold(a.ipTerms, func(t *Term) bool { return t.matchIP(addr) })
	})
	if !any {
		j.hits = j.hits[:0]
		return nil
	}
	j.narrowBy(all, j.ipOK, v.IPIdx)
	return nil
}

// filterPaths narrows the candidate rows to those whose path every path
// term of a matches. Each distinct path of the block is tested once. When
// none matches, which is the usual case for a rare path, the block's other
// columns are never decoded.
func (c *segCursor) filterPaths(j *blockJob, a *altPlan, all bool) error {
	v := &j.v
	if err := c.sr.DecodeBlock(j.b, segment.ColPath, v); err != nil {
		return err
	}
	n := v.NumPaths()
	j.pathOK = slices.Grow(j.pathOK[:0], n)[:n]
	any := false
	if nb := v.NumBasePaths(); nb > 0 {
		// Block 0's paths, which this block shares, were tested once for
		// the whole segment.
		baseOK, baseAny, err := a.basePaths(c.sr)
		if err != nil {
			return err
		}
		if len(baseOK) != nb {
			return fmt.Errorf("segment %s: block %d shares %d of block 0's %d paths", c.sr.Path(), j.b, nb, len(baseOK))
		}
		copy(j.pathOK, baseOK)
		any = baseAny
	}
	v.EachOwnPath(func(k int, path []byte) {
		ok := a.matchPath(path)
		j.pathOK[k] = ok
		any = any || ok
	})
	if !any {
		j.hits = j.hits[:0]
		return nil
	}
	idx, err := v.PathIdx()
	if err != nil {
		return err
	}
	j.narrowBy(all, j.pathOK, idx)
	return nil
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
