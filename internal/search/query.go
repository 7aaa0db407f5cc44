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
	"strings"
	"time"

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

// Query is a parsed query: all terms must hold.
type Query struct {
	Terms []Term
	Text  string
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
//	-term negates; terms are AND-ed; values with spaces in double quotes.
func Parse(q string) (*Query, error) {
	out := &Query{Text: q}
	i := 0
	for {
		for i < len(q) && (q[i] == ' ' || q[i] == '\t') {
			i++
		}
		if i >= len(q) {
			break
		}
		start := i
		neg := false
		if q[i] == '-' {
			neg = true
			i++
		}
		j := i
		for j < len(q) && q[j] != ':' && q[j] != '~' && q[j] != ' ' {
			j++
		}
		if j >= len(q) || q[j] == ' ' {
			end := j
			return nil, &QueryError{Pos: start, Term: q[start:end], Msg: "expected field:value or field~\"regex\" (fields: ip, domain, path, ua)"}
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
			k := j
			for k < len(q) && q[k] != ' ' && q[k] != '\t' {
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
		out.Terms = append(out.Terms, t)
		i = j
	}
	return out, nil
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
			return t, fmt.Errorf("bad regex: %v", err)
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
				return t, fmt.Errorf("bad CIDR: %v", err)
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
		v = strings.ToLower(v)
	}
	if t.Field == FieldDomain && t.Op != OpRegexp {
		// Stored names are already lower-cased; this finds non-ASCII names
		// an older ASCII-only rule stored ("bÜcher.example").
		v = record.LowerDomain(v)
	}
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

// Match reports whether r satisfies every term: the reference semantics,
// used for unflushed records and as the oracle in tests.
func (q *Query) Match(r *record.Record) bool {
	for i := range q.Terms {
		t := &q.Terms[i]
		var ok bool
		switch t.Field {
		case FieldIP:
			ok = t.matchIP(r.IP)
		case FieldDomain:
			ok = t.matchString(r.Domain)
		case FieldPath:
			ok = t.matchString(r.Path)
		case FieldUserAgent:
			ok = t.matchString(r.UserAgent)
		}
		if !ok {
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
