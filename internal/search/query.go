// Package search answers investigators' questions over the stored records:
// it parses the query language, plans which days, segments and blocks to
// read (using the segment IP index and the domain and user-agent
// dictionaries), scans them in parallel, and streams the matches in time
// order in NDJSON, CSV or combined format.
package search

import (
	"bytes"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/retentiond/retentiond/internal/record"
)

// Field is a searchable record field.
type Field string

// The searchable fields.
const (
	FieldIP        Field = "ip"
	FieldDomain    Field = "domain"
	FieldPath      Field = "path"
	FieldUserAgent Field = "ua"
)

// Op is how a term compares.
type Op int

// Term operators.
const (
	OpExact     Op = iota // value equals
	OpPrefix              // value starts with
	OpSuffix              // value ends with (domain:*.example.nl)
	OpSubstr              // value contains
	OpRegexp              // RE2 match
	OpPrefixNet           // ip in CIDR
)

// Term is one condition of a query.
type Term struct {
	Field  Field
	Op     Op
	Negate bool
	Value  string         // lower-cased for domain and ua comparisons
	Prefix netip.Prefix   // for ip terms (exact IPs are /32 or /128)
	Re     *regexp.Regexp // for OpRegexp
	Pos    int            // byte offset in the query, for error messages
	Text   string         // the term as written
}

// Query is a parsed query.
type Query struct {
	// Terms are the query's terms when it is one conjunction (no OR, or
	// an OR that De Morgan's laws turn into one): every term must hold.
	// It is nil when the query has several alternatives; Alts is the
	// complete form.
	Terms []Term
	// Alts is the query in disjunctive normal form: a record matches when
	// every term of at least one alternative holds. The planner reads
	// each alternative with the indexes and unions their rows, so an OR
	// of addresses is a union of index ranges. An empty query has one
	// alternative without terms (everything matches).
	Alts [][]Term
	Text string
	// root is the query as written, the reference semantics of Match; nil
	// when the query is a plain conjunction (Alts[0] is then its terms as
	// written).
	root *node
}

// Empty reports whether the query has no term (it matches every record).
func (q *Query) Empty() bool { return len(q.Alts) == 1 && len(q.Alts[0]) == 0 }

// MaxAlternatives bounds the alternatives a query expands to: an AND of
// ORs multiplies them ((a OR b) (c OR d) is four), and each alternative
// costs a plan per segment.
const MaxAlternatives = 64

// node is one element of the parse tree: a term, or an AND or OR of
// nodes, negated by a leading '-' on a group.
type node struct {
	kind nodeKind
	neg  bool  // a negated group: -( ... )
	term *Term // for nodeTerm
	kids []*node
}

type nodeKind int

const (
	nodeTerm nodeKind = iota
	nodeAnd
	nodeOr
)

// match evaluates the tree for r, term by term.
func (n *node) match(r *record.Record) bool {
	var ok bool
	switch n.kind {
	case nodeTerm:
		ok = n.term.match(r)
	case nodeAnd:
		ok = true
		for _, k := range n.kids {
			if !k.match(r) {
				ok = false
				break
			}
		}
	case nodeOr:
		for _, k := range n.kids {
			if k.match(r) {
				ok = true
				break
			}
		}
	}
	return ok != n.neg
}

// plain reports whether the tree is a conjunction of terms as written: no
// OR and no negated group.
func (n *node) plain() bool {
	switch {
	case n.kind == nodeTerm:
		return true
	case n.kind == nodeOr || n.neg:
		return false
	}
	for _, k := range n.kids {
		if !k.plain() {
			return false
		}
	}
	return true
}

// dnf returns the alternatives of n (negated when neg), each a list of
// terms that must all hold: an AND multiplies its children's alternatives,
// an OR concatenates them, and a negation swaps the two (De Morgan) and
// flips each term.
func (n *node) dnf(neg bool) ([][]Term, bool) {
	neg = neg != n.neg
	if n.kind == nodeTerm {
		t := *n.term
		t.Negate = t.Negate != neg
		return [][]Term{{t}}, true
	}
	and := (n.kind == nodeAnd) != neg
	out := [][]Term{{}}
	if !and {
		out = nil
	}
	for _, k := range n.kids {
		alts, ok := k.dnf(neg)
		if !ok {
			return nil, false
		}
		if !and {
			out = append(out, alts...)
		} else {
			var prod [][]Term
			for _, a := range out {
				for _, b := range alts {
					prod = append(prod, append(slices.Clip(a), b...))
				}
			}
			out = prod
		}
		if len(out) > MaxAlternatives {
			return nil, false
		}
	}
	return out, true
}

// QueryError points at the offending term.
type QueryError struct {
	Pos  int
	Term string
	Msg  string
}

func (e *QueryError) Error() string {
	return fmt.Sprintf("query term %q at position %d: %s", e.Term, e.Pos+1, e.Msg)
}

// Parse parses the query language:
//
//	ip:203.0.113.7  ip:203.0.113.0/24  ip:2001:db8::/32
//	domain:shop.example.nl  domain:*.example.nl
//	path:/wp-login.php  path:/wp-admin/*  path:*passwd*
//	ua:*sqlmap*  ua:"exact agent"  path~"re"  ua~"re"
//	-term negates; terms separated by spaces (or AND) must all hold;
//	a OR b holds when either does (AND binds tighter); ( ) group, and
//	-( ... ) negates a group; values with spaces in double quotes.
//
// Inside parentheses an unquoted value ends before a ')' that closes a
// group (a ')' that closes a '(' of the value itself, as in path:/a(b), is
// part of it); outside any group a value ends only at a space, as before
// groups existed.
func Parse(q string) (*Query, error) {
	out := &Query{Text: q}
	p := &parser{q: q}
	p.skipSpace()
	if p.i >= len(q) {
		out.Alts = [][]Term{{}}
		out.Terms = []Term{}
		return out, nil
	}
	root, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if p.skipSpace(); p.i < len(q) {
		// Only a ')' without its '(' stops the top level early.
		return nil, &QueryError{Pos: p.i, Term: ")", Msg: "')' without a matching '('"}
	}
	alts, ok := root.dnf(false)
	if !ok {
		return nil, &QueryError{Pos: 0, Term: record.Shorten(q), Msg: fmt.Sprintf(
			"the query expands to more than %d alternatives (each AND of ORs multiplies them); split it into several searches", MaxAlternatives)}
	}
	out.Alts = alts
	if len(alts) == 1 {
		out.Terms = alts[0]
	}
	if !root.plain() {
		out.root = root
	}
	return out, nil
}

// parser reads a query left to right; depth is the number of groups open.
type parser struct {
	q     string
	i     int
	depth int
}

func (p *parser) skipSpace() {
	for p.i < len(p.q) && (p.q[p.i] == ' ' || p.q[p.i] == '\t') {
		p.i++
	}
}

// keyword reports whether the operator w (OR, AND) starts at the parser's
// position: upper case, followed by a space, a parenthesis or the end.
func (p *parser) keyword(w string) bool {
	if !strings.HasPrefix(p.q[p.i:], w) {
		return false
	}
	k := p.i + len(w)
	return k == len(p.q) || strings.IndexByte(" \t()", p.q[k]) >= 0
}

// parseOr reads and-expressions separated by OR.
func (p *parser) parseOr() (*node, error) {
	first, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	n := &node{kind: nodeOr, kids: []*node{first}}
	for {
		p.skipSpace()
		if p.i >= len(p.q) || !p.keyword("OR") {
			break
		}
		p.i += 2
		k, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		n.kids = append(n.kids, k)
	}
	if len(n.kids) == 1 {
		return first, nil
	}
	return n, nil
}

// parseAnd reads terms and groups until OR, a closing ')' or the end.
func (p *parser) parseAnd() (*node, error) {
	n := &node{kind: nodeAnd}
	for {
		p.skipSpace()
		if p.i >= len(p.q) || p.keyword("OR") || (p.q[p.i] == ')' && p.depth > 0) {
			break
		}
		if p.keyword("AND") {
			if len(n.kids) == 0 {
				return nil, &QueryError{Pos: p.i, Term: "AND", Msg: "AND needs a term before it"}
			}
			p.i += 3
			if p.skipSpace(); p.i >= len(p.q) || p.keyword("OR") || p.keyword("AND") || p.q[p.i] == ')' {
				return nil, &QueryError{Pos: p.i - 3, Term: "AND", Msg: "AND needs a term after it"}
			}
			continue
		}
		if p.q[p.i] == ')' {
			return nil, &QueryError{Pos: p.i, Term: ")", Msg: "')' without a matching '('"}
		}
		k, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		// A nested AND adds its terms to this one: (a b) c is a b c.
		if k.kind == nodeAnd && !k.neg {
			n.kids = append(n.kids, k.kids...)
		} else {
			n.kids = append(n.kids, k)
		}
	}
	if len(n.kids) == 0 {
		pos, what := min(p.i, len(p.q)), "end of the query"
		switch {
		case p.i < len(p.q) && p.q[p.i] == ')':
			what = ")"
		case p.i < len(p.q):
			what = "OR"
		}
		return nil, &QueryError{Pos: pos, Term: what, Msg: "expected a term here (OR needs a term on each side; () is empty)"}
	}
	if len(n.kids) == 1 {
		return n.kids[0], nil
	}
	return n, nil
}

// parseUnary reads a term, a group, or a negated group.
func (p *parser) parseUnary() (*node, error) {
	start := p.i
	if p.q[p.i] == '(' || strings.HasPrefix(p.q[p.i:], "-(") {
		neg := p.q[p.i] == '-'
		if neg {
			p.i++
		}
		p.i++
		p.depth++
		n, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		p.depth--
		if p.skipSpace(); p.i >= len(p.q) || p.q[p.i] != ')' {
			return nil, &QueryError{Pos: start, Term: p.q[start:min(start+2, len(p.q))], Msg: "'(' without a matching ')'"}
		}
		p.i++
		if neg {
			if n.kind == nodeTerm {
				t := *n.term
				t.Negate = !t.Negate
				n = &node{kind: nodeTerm, term: &t}
			} else {
				n.neg = !n.neg
			}
		}
		return n, nil
	}
	t, err := p.parseTerm()
	if err != nil {
		return nil, err
	}
	return &node{kind: nodeTerm, term: t}, nil
}

// parseTerm reads one field:value or field~"regex" term, negated by a
// leading '-'.
func (p *parser) parseTerm() (*Term, error) {
	q := p.q
	start := p.i
	i := start
	neg := false
	if q[i] == '-' {
		neg = true
		i++
	}
	j := i
	for j < len(q) && q[j] != ':' && q[j] != '~' && q[j] != ' ' && q[j] != '\t' && q[j] != '(' && q[j] != ')' {
		j++
	}
	if j >= len(q) || q[j] != ':' && q[j] != '~' {
		return nil, &QueryError{Pos: start, Term: q[start:j], Msg: "expected field:value or field~\"regex\" (fields: ip, domain, path, ua)"}
	}
	name, sep := q[i:j], q[j]
	j++
	var val string
	if j < len(q) && q[j] == '"' {
		k := j + 1
		var sb strings.Builder
		for k < len(q) && q[k] != '"' {
			if q[k] == '\\' && k+1 < len(q) {
				k++
			}
			sb.WriteByte(q[k])
			k++
		}
		if k >= len(q) {
			return nil, &QueryError{Pos: start, Term: q[start:], Msg: "unterminated double quote"}
		}
		val = sb.String()
		j = k + 1
	} else {
		k, open := j, 0
		for k < len(q) && q[k] != ' ' && q[k] != '\t' {
			if q[k] == '(' {
				open++
			} else if q[k] == ')' {
				if open == 0 && p.depth > 0 {
					break // closes a group
				}
				open = max(open-1, 0)
			}
			k++
		}
		val = q[j:k]
		j = k
	}
	text := q[start:j]
	t, err := makeTerm(name, sep, val)
	if err != nil {
		return nil, &QueryError{Pos: start, Term: text, Msg: err.Error()}
	}
	t.Negate, t.Pos, t.Text = neg, start, text
	p.i = j
	return &t, nil
}

func makeTerm(name string, sep byte, val string) (Term, error) {
	t := Term{Field: Field(strings.ToLower(name))}
	switch t.Field {
	case FieldIP, FieldDomain, FieldPath, FieldUserAgent:
	case "user_agent":
		t.Field = FieldUserAgent
	default:
		return t, fmt.Errorf("unknown field %q (fields: ip, domain, path, ua)", name)
	}
	if val == "" {
		return t, fmt.Errorf("empty value")
	}
	if sep == '~' {
		if t.Field == FieldIP {
			return t, fmt.Errorf("ip takes an address or CIDR, not a regex")
		}
		re, err := regexp.Compile(val)
		if err != nil {
			return t, fmt.Errorf("bad regex: %w", err)
		}
		if t.Field == FieldDomain {
			re, _ = regexp.Compile("(?i)" + val)
		}
		t.Op, t.Re, t.Value = OpRegexp, re, val
		return t, nil
	}
	switch t.Field {
	case FieldIP:
		if strings.Contains(val, "/") {
			p, err := netip.ParsePrefix(val)
			if err != nil {
				return t, fmt.Errorf("bad CIDR: %w", err)
			}
			if p.Addr().Is4In6() {
				p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
			}
			t.Prefix, t.Op = p.Masked(), OpPrefixNet
			return t, nil
		}
		a, err := record.ParseIP(val)
		if err != nil {
			return t, fmt.Errorf("bad IP address")
		}
		t.Prefix, t.Op = netip.PrefixFrom(a, a.BitLen()), OpPrefixNet
		return t, nil
	case FieldDomain:
		val = record.LowerDomain(val)
		if strings.HasPrefix(val, "*.") {
			t.Op, t.Value = OpSuffix, val[1:] // ".example.nl": any subdomain, not the apex
			return t, nil
		}
		if strings.Contains(val, "*") {
			return t, fmt.Errorf("domain takes an exact name or *.suffix")
		}
		d, err := record.NormalizeDomain(val)
		if err != nil {
			return t, err
		}
		t.Op, t.Value = OpExact, d
		return t, nil
	}
	// path and ua: exact, prefix*, *substring*; ua is case-insensitive.
	if t.Field == FieldUserAgent {
		val = strings.ToLower(val)
	}
	lead, trail := strings.HasPrefix(val, "*"), strings.HasSuffix(val, "*") && len(val) > 1
	core := strings.TrimSuffix(strings.TrimPrefix(val, "*"), "*")
	if strings.Contains(core, "*") {
		return t, fmt.Errorf("* only at the start and/or end of a value")
	}
	switch {
	case lead && trail:
		t.Op = OpSubstr
	case lead:
		t.Op = OpSuffix
	case trail:
		t.Op = OpPrefix
	default:
		t.Op = OpExact
	}
	t.Value = core
	return t, nil
}

// matchString applies a term to a string value (domain, path or ua).
func (t *Term) matchString(v string) bool {
	if t.Field == FieldUserAgent && t.Op != OpRegexp {
		if ok, ascii := t.matchASCIIFold(v); ascii {
			return ok != t.Negate
		}
		v = strings.ToLower(v)
	}
	if t.Field == FieldDomain && t.Op != OpRegexp {
		// Stored names are already lower-cased; this finds non-ASCII names
		// an older ASCII-only rule stored ("bÜcher.example").
		v = record.LowerDomain(v)
	}
	return t.matchLowered(v)
}

// matchASCIIFold applies a user-agent term (its value lower-cased by the
// parser) to an ASCII value as strings.ToLower would, without building the
// lower-cased copy; ascii is false, and ok meaningless, when v holds a
// byte outside ASCII. A user-agent term is tested against every entry of
// every segment's dictionary it plans, and a copy per entry made a search
// over two years of busy days allocate gigabytes.
func (t *Term) matchASCIIFold(v string) (ok, ascii bool) {
	for i := 0; i < len(v); i++ {
		if v[i] >= utf8.RuneSelf {
			return false, false
		}
	}
	w := t.Value
	switch t.Op {
	case OpExact:
		return len(v) == len(w) && lowerEqualASCII(v, w), true
	case OpPrefix:
		return len(v) >= len(w) && lowerEqualASCII(v[:len(w)], w), true
	case OpSuffix:
		return len(v) >= len(w) && lowerEqualASCII(v[len(v)-len(w):], w), true
	case OpSubstr:
		if len(w) == 0 {
			return true, true
		}
		// Test the first byte inline: it rules out almost every start.
		first := w[0]
		for i := 0; i+len(w) <= len(v); i++ {
			c := v[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c == first && lowerEqualASCII(v[i+1:i+len(w)], w[1:]) {
				return true, true
			}
		}
		return false, true
	}
	return false, false
}

// lowerEqualASCII reports whether ASCII a lower-cased equals b (of the same
// length).
func lowerEqualASCII(a, b string) bool {
	for i := 0; i < len(a); i++ {
		c := a[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != b[i] {
			return false
		}
	}
	return true
}

// matchLowered is matchString for a value already in the form the term
// compares (lower case for domain and user-agent terms): the planner
// uses it for a segment whose domains are all stored lower-cased
// (segment.Reader.DomainsLowerCase).
func (t *Term) matchLowered(v string) bool {
	var ok bool
	switch t.Op {
	case OpExact:
		ok = v == t.Value
	case OpPrefix:
		ok = strings.HasPrefix(v, t.Value)
	case OpSuffix:
		ok = strings.HasSuffix(v, t.Value)
	case OpSubstr:
		ok = strings.Contains(v, t.Value)
	case OpRegexp:
		ok = t.Re.MatchString(v)
	}
	return ok != t.Negate
}

// matchBytes applies a path term to a value held as bytes, without building
// a string; needle is t.Value as bytes, converted once by the caller.
func (t *Term) matchBytes(v, needle []byte) bool {
	var ok bool
	switch t.Op {
	case OpExact:
		ok = string(v) == t.Value // compiled without a copy
	case OpPrefix:
		ok = bytes.HasPrefix(v, needle)
	case OpSuffix:
		ok = bytes.HasSuffix(v, needle)
	case OpSubstr:
		ok = bytes.Contains(v, needle)
	case OpRegexp:
		ok = t.Re.Match(v)
	}
	return ok != t.Negate
}

func (t *Term) matchIP(a netip.Addr) bool { return t.Prefix.Contains(a) != t.Negate }

// match applies the term to r.
func (t *Term) match(r *record.Record) bool {
	switch t.Field {
	case FieldIP:
		return t.matchIP(r.IP)
	case FieldDomain:
		return t.matchString(r.Domain)
	case FieldPath:
		return t.matchString(r.Path)
	case FieldUserAgent:
		return t.matchString(r.UserAgent)
	}
	return false
}

// Match reports whether r satisfies the query: the reference semantics,
// used for unflushed records and as the oracle in tests. A query with OR
// or a negated group is evaluated on its tree as written, not on the
// alternatives the planner uses, so tests compare the two.
func (q *Query) Match(r *record.Record) bool {
	if q.root != nil {
		return q.root.match(r)
	}
	for _, alt := range q.Alts {
		if allTermsMatch(alt, r) {
			return true
		}
	}
	return false
}

// allTermsMatch reports whether every term holds for r.
func allTermsMatch(terms []Term, r *record.Record) bool {
	for i := range terms {
		if !terms[i].match(r) {
			return false
		}
	}
	return true
}

// ParseTime parses a query time bound: RFC 3339, a date (midnight UTC), or
// a relative duration before now ("-24h", "-7d").
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if strings.HasPrefix(s, "-") {
		if d, ok := strings.CutSuffix(s[1:], "d"); ok {
			var n int
			if _, err := fmt.Sscanf(d, "%d", &n); err == nil && n >= 0 && fmt.Sprint(n) == d {
				return now.AddDate(0, 0, -n).UTC(), nil
			}
		} else if dur, err := time.ParseDuration(s[1:]); err == nil && dur >= 0 {
			return now.Add(-dur).UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: use RFC 3339 (2026-11-20T13:00:00Z), a date (2026-11-20) or a relative time (-24h, -7d)", record.Shorten(s))
}
