// Package record defines the one thing retentiond stores: a pageview reduced to
// the five fields the privacy policy names (time, domain, path, user agent and
// client IP), with the normalisation and validation every input shares.
//
// Keeping the type this small is the data-minimisation promise made concrete:
// there is no field in which a status code, referer or cookie could be kept.
package record

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Limits on field sizes. They are generous enough for real traffic (query
// strings of tens of KiB, long bot user agents) and small enough that one
// hostile record cannot balloon memory.
const (
	MaxDomainLen    = 253      // the DNS limit for a fully qualified name without the trailing dot
	MaxPathLen      = 64 << 10 // 64 KiB of request target
	MaxUserAgentLen = 16 << 10 // 16 KiB of user agent
	maxShownValue   = 64       // how much of a bad value an error message repeats
	timePrecision   = time.Millisecond
)

// Record is one pageview. The zero value is not a valid record; build one and
// call Normalize before storing it.
type Record struct {
	// Time is when the request was served, in UTC, truncated to the millisecond.
	Time time.Time
	// Domain is the virtual host in the form NormalizeDomain gives it:
	// lower-cased, without port or trailing dot.
	Domain string
	// Path is the request target (path and query) exactly as the server logged it.
	Path string
	// UserAgent is the browser identification; empty when the client sent none.
	UserAgent string
	// IP is the client address; IPv4-mapped IPv6 addresses are stored as IPv4.
	IP netip.Addr
}

// FieldError says which field of a record is wrong and why. Parsers wrap it
// with the line number, so an operator can find the bad input.
type FieldError struct {
	Field  string // "time", "domain", "path", "user_agent" or "ip"
	Value  string // the offending value, truncated for display
	Reason string
}

func (e *FieldError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("%s %q: %s", e.Field, e.Value, e.Reason)
}

// Shorten truncates s for an error message, so that a 60 KiB hostile value
// does not end up in a log line or an HTTP answer.
func Shorten(s string) string {
	if len(s) <= maxShownValue {
		return s
	}
	cut := maxShownValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func fieldErr(field, value, reason string) error {
	return &FieldError{Field: field, Value: Shorten(value), Reason: reason}
}

// NormalizeDomain is the one rule for host names, shared by every input and
// by the query parser, so that what is stored is exactly what a query looks
// for. It trims surrounding space, removes the brackets of an IPv6 literal
// ("[2001:db8::1]:443") and a numeric port, removes one trailing dot (the
// DNS root) and lower-cases with LowerDomain. It refuses, with a
// *FieldError for "domain", what is not a host name instead of silently
// altering it: an empty or "-" name, invalid UTF-8, a port that is not a
// number ("victim.nl:evil"), an empty label ("shop.example.nl..",
// "a..b", ".a"), a colon outside an IPv6 literal, spaces, control
// characters, '/' and '"', and names longer than MaxDomainLen bytes.
func NormalizeDomain(d string) (string, error) {
	d = strings.TrimSpace(d)
	if d == "" || d == "-" {
		return "", fieldErr("domain", d, "missing")
	}
	if !utf8.ValidString(d) {
		return "", fieldErr("domain", strings.ToValidUTF8(d, "\ufffd"), "not valid UTF-8")
	}
	orig := d
	var port string
	hasPort, literal := false, false
	if strings.HasPrefix(d, "[") {
		i := strings.IndexByte(d, ']')
		if i < 0 {
			return "", fieldErr("domain", orig, "unclosed '[' of an IPv6 literal")
		}
		rest := d[i+1:]
		d, literal = d[1:i], true
		if rest != "" {
			var ok bool
			if port, ok = strings.CutPrefix(rest, ":"); !ok {
				return "", fieldErr("domain", orig, "unexpected text after an IPv6 literal")
			}
			hasPort = true
		}
	} else if n := strings.Count(d, ":"); n == 1 {
		// Exactly one colon: host:port. More than one is a bare IPv6 literal.
		i := strings.IndexByte(d, ':')
		d, port, hasPort = d[:i], d[i+1:], true
	} else if n > 1 {
		literal = true
	}
	if hasPort && !validPort(port) {
		return "", fieldErr("domain", orig, "the port after ':' is not a number from 0 to 65535")
	}
	if literal {
		if a, err := netip.ParseAddr(d); err != nil || !a.Is6() {
			return "", fieldErr("domain", orig, "not a host name or an IPv6 literal")
		}
	}
	d = strings.TrimSuffix(d, ".")
	if d == "" {
		return "", fieldErr("domain", orig, "missing")
	}
	if !literal && (strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, "..")) {
		return "", fieldErr("domain", orig, "empty label (two dots in a row, or a leading dot)")
	}
	for i := 0; i < len(d); i++ {
		if c := d[i]; c <= ' ' || c == 0x7f || c == '/' || c == '"' || (c == ':' && !literal) {
			return "", fieldErr("domain", orig, fmt.Sprintf("invalid byte 0x%02x at %d", c, i))
		}
	}
	d = LowerDomain(d)
	if len(d) > MaxDomainLen {
		return "", fieldErr("domain", orig, fmt.Sprintf("longer than %d bytes", MaxDomainLen))
	}
	return d, nil
}

// LowerDomain is the case rule for host names: Unicode lower-casing, so
// that "BÜCHER.example" and "bücher.example" are one name (IDNs may arrive
// in Unicode as well as punycoded). For ASCII it is plain ASCII
// lower-casing, so names stored before this rule are unchanged. The search
// applies it to stored names too, which makes non-ASCII names stored by the
// older ASCII-only rule findable.
func LowerDomain(s string) string { return strings.ToLower(s) }

// validPort reports whether p is a decimal port number, 0 to 65535.
func validPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
		n = n*10 + int(p[i]-'0')
	}
	return n <= 65535
}

// Normalize brings r into its stored form and validates it. It returns a
// *FieldError naming the first bad field.
func (r *Record) Normalize() error { return r.normalize("", false) }

// NormalizeWithDomain is Normalize for a caller that already holds
// NormalizeDomain's answer d for r.Domain: a parser that keeps the answers
// for the names it has seen, because a batch repeats a few thousand names
// tens of thousands of times and the domain rule is the costliest step of
// Normalize. d takes the place of that step, so the result is Normalize's
// provided d is what NormalizeDomain(r.Domain) returned without an error.
func (r *Record) NormalizeWithDomain(d string) error { return r.normalize(d, true) }

// normalize is Normalize, with the domain step's answer given (known) or
// computed.
// unixYear10000 is 10000-01-01T00:00:00Z in Unix seconds.
const unixYear10000 = 253402300800

func (r *Record) normalize(d string, known bool) error {
	if r.Time.IsZero() {
		return fieldErr("time", "", "missing")
	}
	r.Time = r.Time.UTC().Truncate(timePrecision)
	// Years 1970 to 9999 are the Unix seconds from 0 up to the start of
	// year 10000: compared as a number, without computing the date (a
	// tenth of the record's normalisation).
	if sec := r.Time.Unix(); sec < 0 || sec >= unixYear10000 {
		return fieldErr("time", r.Time.Format(time.RFC3339), "year out of range 1970-9999")
	}

	if !known {
		var err error
		if d, err = NormalizeDomain(r.Domain); err != nil {
			return err
		}
	}
	r.Domain = d

	switch {
	case r.Path == "" || r.Path == "-":
		return fieldErr("path", r.Path, "missing")
	case len(r.Path) > MaxPathLen:
		return fieldErr("path", r.Path, fmt.Sprintf("longer than %d bytes", MaxPathLen))
	case strings.IndexByte(r.Path, 0) >= 0:
		return fieldErr("path", r.Path, "contains a NUL byte")
	}

	if r.UserAgent == "-" {
		r.UserAgent = ""
	}
	switch {
	case len(r.UserAgent) > MaxUserAgentLen:
		return fieldErr("user_agent", r.UserAgent, fmt.Sprintf("longer than %d bytes", MaxUserAgentLen))
	case strings.IndexByte(r.UserAgent, 0) >= 0:
		return fieldErr("user_agent", r.UserAgent, "contains a NUL byte")
	}

	if !r.IP.IsValid() {
		return fieldErr("ip", "", "missing")
	}
	r.IP = r.IP.Unmap().WithZone("")
	return nil
}

// ParseIP parses a client address as servers log it: a bare IPv4 or IPv6
// address, optionally bracketed, with IPv4-mapped IPv6 unmapped.
func ParseIP(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fieldErr("ip", s, "not an IP address")
	}
	if a.Zone() != "" {
		a = a.WithZone("")
	}
	return a.Unmap(), nil
}

// ParseIPBytes is ParseIP for an address in a byte slice. The form most
// logs carry, a plain dotted-quad IPv4 address, it reads in place, without
// the string ParseIP needs; a bare address without a zone that netip
// accepts (IPv6) it parses without copying the bytes either, since netip
// keeps nothing of a valid input; the rest (zones, brackets, spaces,
// anything unusual or wrong) goes to ParseIP, so that the rule and its errors stay ParseIP's. A quarter of the
// loggen addresses are IPv6, and their string copies were a fifth of this
// function and 50 MB of the peer benchmark's allocations.
func ParseIPBytes(b []byte) (netip.Addr, error) {
	if a, ok := parseDottedQuad(b); ok {
		return a, nil
	}
	// Without a zone, what netip accepts is hex digits, colons and dots
	// only, with nothing at either end that ParseIP would trim first; a
	// zone may end in a space ("::% " is "::" in zone " " to netip, but
	// ParseIP trims it to "::%", an empty zone, and refuses it), so an
	// address with a zone takes ParseIP's way.
	if len(b) > 0 && bytes.IndexByte(b, '%') < 0 {
		if a, err := netip.ParseAddr(unsafe.String(&b[0], len(b))); err == nil { //nolint:gosec // G103: netip keeps no reference to a valid input
			return a.Unmap(), nil
		}
	}
	return ParseIP(string(b))
}

// parseDottedQuad reads exactly four decimal octets of 0 to 255 separated
// by dots, without leading zeros (which netip.ParseAddr refuses, as they
// once meant octal). ok is false for anything else, including what
// netip.ParseAddr would accept in another way.
func parseDottedQuad(b []byte) (a netip.Addr, ok bool) {
	var quad [4]byte
	i := 0
	for k := range quad {
		if k > 0 {
			if i >= len(b) || b[i] != '.' {
				return a, false
			}
			i++
		}
		start, n := i, 0
		for i < len(b) && i-start < 3 && '0' <= b[i] && b[i] <= '9' {
			n = n*10 + int(b[i]-'0')
			i++
		}
		if i == start || n > 255 || (b[start] == '0' && i-start > 1) {
			return a, false
		}
		quad[k] = byte(n)
	}
	if i != len(b) {
		return a, false
	}
	return netip.AddrFrom4(quad), true
}

// Day returns the UTC calendar day t belongs to, as midnight UTC. Records are
// stored and destroyed per UTC day. A UTC day is exactly 86,400 Unix
// seconds (Go's time has no leap seconds), so the day is a floor division,
// without computing the date: the store asks for every record's day, and
// the date was a sixth of its insert.
func Day(t time.Time) time.Time {
	s := t.Unix()
	d := s / secondsPerDay
	if s%secondsPerDay < 0 {
		d-- // floor, for times before 1970
	}
	return time.Unix(d*secondsPerDay, 0).UTC()
}

const secondsPerDay = 24 * 60 * 60

// DayString formats the UTC day of t as YYYY-MM-DD, the name of its directory.
func DayString(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// ParseDay parses a YYYY-MM-DD day name into midnight UTC.
func ParseDay(s string) (time.Time, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse day %q: %w", Shorten(s), err)
	}
	return t, nil
}
