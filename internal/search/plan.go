package search

import (
	"slices"
	"sync"

	"github.com/retentiond/retentiond/internal/segment"
	"github.com/retentiond/retentiond/internal/store"
)

// plan is the per-segment evaluation of a query: for each alternative of
// the query (see Query.Alts) that can match in the segment, its dictionary
// answers and blocks, and the union of those blocks.
type plan struct {
	alts   []*altPlan
	blocks []int
	// exact holds, per planned block, a number of rows that certainly
	// match (the index's row counts of single positive IP alternatives,
	// their largest for an OR), or -1 when none is known (a block that
	// straddles the time range). When counts is set, that number is the
	// block's exact count of matches (the query is one positive IP term).
	exact  []int
	counts bool
	cols   segment.Columns
}

// altPlan is one alternative's plan: every one of its terms must hold.
type altPlan struct {
	// domainOK marks per domain id whether all domain terms hold; a
	// dictionary-only plan of one exact domain leaves it nil (domainIDs
	// hold the answer: see domainMarks).
	domainOK []bool
	// domainIDs are the domain ids domainOK marks, ascending: a count
	// from the footer adds up their rows without a pass over domainOK.
	domainIDs []uint32
	uaOK      []bool  // per user-agent id: do all ua terms hold
	pathTerm  []*Term // path terms, tested once per distinct path of a block
	needles   [][]byte
	ipTerms   []*Term
	// blocks are the candidate blocks of the alternative, sorted; all is
	// set when its indexes do not narrow them.
	blocks []int
	all    bool
	rowsOf map[int]int // block -> matching rows, for a single positive ip: term

	// base holds the path terms' answers for block 0's paths, which every
	// later block of a format-4 segment shares (segment.Reader.EachBasePath):
	// tested once per segment, by the first block that needs them.
	baseOnce sync.Once
	baseOK   []bool
	baseAny  bool
	baseErr  error
}

// matchPath reports whether every path term of a holds for path.
func (a *altPlan) matchPath(path []byte) bool {
	for ti, t := range a.pathTerm {
		if !t.matchBytes(path, a.needles[ti]) {
			return false
		}
	}
	return true
}

// basePaths returns the path terms' answers for block 0's shared paths of
// sr, and whether any holds.
func (a *altPlan) basePaths(sr *segment.Reader) ([]bool, bool, error) {
	a.baseOnce.Do(func() {
		a.baseErr = sr.EachBasePath(func(j int, path []byte) {
			ok := a.matchPath(path)
			a.baseOK = append(a.baseOK, ok)
			a.baseAny = a.baseAny || ok
		})
	})
	return a.baseOK, a.baseAny, a.baseErr
}

// domainMarks returns a.domainOK, or for an alternative that holds its
// domain terms' answer only as ids, the marks those ids make among n
// entries.
func (a *altPlan) domainMarks(n int) []bool {
	if a.domainOK != nil || a.domainIDs == nil {
		return a.domainOK
	}
	m := make([]bool, n)
	for _, id := range a.domainIDs {
		m[id] = true
	}
	return m
}

// has reports whether block b is a candidate of the alternative.
func (a *altPlan) has(b int) bool {
	if a.all {
		return true
	}
	_, ok := slices.BinarySearch(a.blocks, b)
	return ok
}

// planSegment decides which blocks of sr to read: the union of the blocks
// each alternative of the query can match in. It returns nil when no
// record of the segment can match.
//
// With dictOnly, only the alternatives' dictionary answers are planned and
// no block: the caller answers from the footer's row counts (footerField),
// and the indexes' block lists (a domain's posting, checksummed and
// decoded) and the blocks' time ranges would be read for nothing. A count
// over a head sealed into many parts paid that per part.
func planSegment(sr *segment.Reader, req *Request, memo *termMemo, dictOnly bool) *plan {
	from, to := req.From.UnixMilli(), req.To.UnixMilli()
	p := &plan{cols: segment.ColTime}
	var union []int
	all := false
	for i, alt := range req.Query.Alts {
		a := planAlt(sr, alt, p, memo, i, dictOnly)
		if a == nil {
			continue
		}
		p.alts = append(p.alts, a)
		if a.all {
			all = true
		} else if !all {
			union = mergeRows(nil, union, a.blocks)
		}
	}
	if len(p.alts) == 0 {
		return nil
	}
	if dictOnly {
		return p
	}
	p.counts = len(req.Query.Alts) == 1 && p.alts[0].rowsOf != nil
	if all {
		union = make([]int, sr.NumBlocks())
		for i := range union {
			union[i] = i
		}
	}
	// Lower bounds from the index's row counts are known only when
	// some alternative is a single positive ip: term.
	withRows := false
	for _, a := range p.alts {
		withRows = withRows || a.rowsOf != nil
	}
	for _, b := range union {
		m := sr.Block(b)
		if m.MaxTime >= from && m.MinTime < to {
			p.blocks = append(p.blocks, b)
			if withRows {
				n := -1
				if m.MinTime >= from && m.MaxTime < to {
					n = 0
					for _, a := range p.alts {
						n = max(n, a.rowsOf[b])
					}
				}
				p.exact = append(p.exact, n)
			}
		}
	}
	if len(p.blocks) == 0 {
		return nil
	}
	return p
}

// planAlt plans one alternative of a query over sr, adding the columns its
// filters read to p.cols. It returns nil when the alternative cannot match
// in the segment. With dictOnly its domain terms do not restrict its
// blocks (see planSegment).
func planAlt(sr *segment.Reader, terms []Term, p *plan, memo *termMemo, alt int, dictOnly bool) *altPlan {
	a := &altPlan{all: true}
	// blocks is meaningful only once restricted: an index that answers
	// "no block" (a nil slice) must prune the alternative, not mean "all
	// blocks".
	restrict := func(bs []int) {
		if a.all {
			a.blocks, a.all = bs, false
			return
		}
		a.blocks = intersect(a.blocks, bs)
	}
	var dTerms, uTerms []*Term
	for i := range terms {
		t := &terms[i]
		switch t.Field {
		case FieldIP:
			p.cols |= segment.ColIP
			a.ipTerms = append(a.ipTerms, t)
			if !t.Negate {
				// Row counts mean "matches" only when this is the
				// alternative's one term.
				single := len(terms) == 1
				blocks, rows := sr.BlockRowsForPrefix(t.Prefix, single)
				restrict(blocks)
				if single && rows != nil {
					a.rowsOf = make(map[int]int, len(blocks))
					for i, b := range blocks {
						a.rowsOf[b] = rows[i]
					}
				}
			}
		case FieldDomain:
			p.cols |= segment.ColDomain
			dTerms = append(dTerms, t)
		case FieldUserAgent:
			p.cols |= segment.ColUserAgent
			uTerms = append(uTerms, t)
		case FieldPath:
			// The path column is read as a dictionary instead (see
			// segCursor.filterBlock), so it is not among p.cols.
			a.pathTerm = append(a.pathTerm, t)
			a.needles = append(a.needles, []byte(t.Value))
		}
	}
	// An exact domain is looked up; otherwise each dictionary entry is
	// tested once, not once per row.
	if lookedUpDomain(sr, dTerms) {
		id, ok := sr.DomainID(dTerms[0].Value)
		if !ok {
			return nil
		}
		a.domainIDs = []uint32{id}
		// A footer answer needs only the id: the marks, one byte per
		// dictionary entry, were most of a count's cost per part.
		if !dictOnly {
			a.domainOK = make([]bool, len(sr.Domains()))
			a.domainOK[id] = true
			restrict(sr.BlocksForDomains(a.domainIDs))
		}
	} else if len(dTerms) > 0 {
		doms := sr.Domains()
		match := (*Term).matchString
		if sr.DomainsLowerCase() {
			match = (*Term).matchLowered
		}
		var any bool
		a.domainOK, any = markEntries(nil, len(doms), func(id int) bool {
			return allHold(dTerms, func(t *Term) bool { return match(t, doms[id]) })
		})
		if !any {
			return nil
		}
		for id, ok := range a.domainOK {
			if ok {
				a.domainIDs = append(a.domainIDs, uint32(id))
			}
		}
		if !dictOnly {
			restrict(sr.BlocksForDomains(a.domainIDs))
		}
	}
	if len(uTerms) > 0 {
		uas := sr.UserAgents()
		test := func(id int) bool {
			return allHold(uTerms, func(t *Term) bool { return t.matchString(uas[id]) })
		}
		var any bool
		if nums := memo.numbered(alt, sr); nums != nil {
			a.uaOK, any = markEntries(nil, len(uas), func(id int) bool { return memo.byNumber(alt, nums[id], id, test) })
		} else {
			uaMemo := memo.ua(alt, len(uas))
			a.uaOK, any = markEntries(nil, len(uas), func(id int) bool {
				if ok, seen := uaMemo[uas[id]]; seen {
					return ok
				}
				ok := test(id)
				if uaMemo != nil {
					uaMemo[uas[id]] = ok
				}
				return ok
			})
		}
		if !any {
			return nil
		}
	}
	if !a.all && len(a.blocks) == 0 {
		return nil
	}
	return a
}

// lookedUpDomain reports whether the domain terms of an alternative are
// one exact, positive domain that sr's dictionary can be searched for
// (Reader.DomainID: its domains are stored lower-cased, as terms are).
func lookedUpDomain(sr *segment.Reader, dTerms []*Term) bool {
	return len(dTerms) == 1 && dTerms[0].Field == FieldDomain && dTerms[0].Op == OpExact && !dTerms[0].Negate &&
		sr.DomainsLowerCase()
}

// termMemo remembers, for the segments of one day of one search, what the
// user-agent terms of each alternative answered for each user agent. A
// day's sealed parts (and successive flushes) repeat most of each other's
// user agents, and a substring or wildcard term costs 0.1–1.3 µs per user
// agent, where the memo costs a lookup: a user-agent search over a head
// sealed into several parts tested every part's whole dictionary. Parts of
// one head carry the head's numbers for their entries (segment.Numbers),
// and their answers are kept by number, in a slice; other segments'
// answers by string, in a map, which costs a hash of every entry of every
// segment. Domain terms are cheaper to test than to look up. Not safe for
// concurrent use.
type termMemo struct {
	byAlt []map[string]bool
	// space is the numbering answers are kept in by number (the first
	// numbered segment's), and byNum per alternative the answers by
	// number: 0 not yet known, 1 no, 2 yes.
	space uint64
	byNum [][]uint8
}

// newTermMemo returns a memo for req's alternatives.
func newTermMemo(req *Request) *termMemo {
	return &termMemo{byAlt: make([]map[string]bool, len(req.Query.Alts)), byNum: make([][]uint8, len(req.Query.Alts))}
}

// ua returns alternative i's user-agent answers by string; nil without a
// memo. The first call makes room for hint answers (the first segment's
// dictionary), since a day's parts mostly repeat the same user agents:
// growing the map entry by entry was a quarter of the memo's cost.
func (m *termMemo) ua(i, hint int) map[string]bool {
	if m == nil {
		return nil
	}
	if m.byAlt[i] == nil {
		m.byAlt[i] = make(map[string]bool, hint)
	}
	return m.byAlt[i]
}

// maxMemoNumber bounds the numbers the memo keeps answers by (a head
// flooded with distinct user agents numbers millions of strings): the
// slice of one alternative takes a byte per number up to the largest.
const maxMemoNumber = 1 << 20

// numbered returns sr's user-agent numbers when alternative i's answers
// can be kept by number for it: sr is numbered in the memo's space (the
// first numbered segment sets it), and every number is below
// maxMemoNumber. Otherwise nil: the answers are kept by string.
func (m *termMemo) numbered(i int, sr *segment.Reader) []uint32 {
	n := sr.Numbers()
	if m == nil || n == nil || n.Space == 0 || m.space != 0 && n.Space != m.space {
		return nil
	}
	top := -1
	for _, v := range n.UserAgents {
		if v >= maxMemoNumber {
			return nil // NoNumber included
		}
		top = max(top, int(v))
	}
	m.space = n.Space
	if len(m.byNum[i]) <= top {
		m.byNum[i] = slices.Grow(m.byNum[i], top+1-len(m.byNum[i]))[:top+1]
	}
	return n.UserAgents
}

// byNumber returns alternative i's answer for the entry id numbered num,
// testing it only the first time the number is seen.
func (m *termMemo) byNumber(i int, num uint32, id int, test func(id int) bool) bool {
	s := m.byNum[i]
	if s[num] == 0 {
		s[num] = 1
		if test(id) {
			s[num] = 2
		}
	}
	return s[num] == 2
}

// markEntries sets ok[k] (ok is reused when large enough) to match(k) for
// each of n dictionary entries and reports whether any holds: a term is
// evaluated once per distinct value, and rows then look their answer up.
func markEntries(ok []bool, n int, match func(k int) bool) ([]bool, bool) {
	ok = slices.Grow(ok[:0], n)[:n]
	any := false
	for k := range ok {
		ok[k] = match(k)
		any = any || ok[k]
	}
	return ok, any
}

// allHold reports whether match holds for every term.
func allHold(terms []*Term, match func(t *Term) bool) bool {
	for _, t := range terms {
		if !match(t) {
			return false
		}
	}
	return true
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

// dayMayMatch reports whether day v may hold a match of req: false when
// the day has no head and every alternative of the query has an ip: term
// naming an address or network that every segment's address filter rules
// out (see
// segment.Reader.MayHoldPrefix). It is a cheap pre-check; the planner still
// decides what to read.
func dayMayMatch(v *store.DayView, req *Request) bool {
	if v.Head.Len() > 0 {
		return true // the head is filtered as it is
	}
	for _, alt := range req.Query.Alts {
		if altMayMatch(v, alt) {
			return true
		}
	}
	return false
}

// altMayMatch reports whether the day's segments may hold a record where
// every term of one alternative holds: false when one of its positive ip:
// terms is ruled out by every segment's address filter.
func altMayMatch(v *store.DayView, terms []Term) bool {
	for i := range terms {
		t := &terms[i]
		if t.Field != FieldIP || t.Negate {
			continue
		}
		may := false
		for _, sr := range v.Segments {
			if sr.MayHoldPrefix(t.Prefix) {
				may = true
				break
			}
		}
		if !may {
			return false
		}
	}
	return true
}
