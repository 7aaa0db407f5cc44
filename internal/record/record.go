// Package record defines the one thing retentiond stores: a pageview reduced to
// the five fields the privacy policy names (time, domain, path, user agent and
// client IP), with the normalisation and validation every input shares.
//
// Keeping the type this small is the data-minimisation promise made concrete:
// there is no field in which a status code, referer or cookie could be kept.
package record

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"
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
	// Domain is the virtual host, lower-cased, without port or trailing dot.
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

// NormalizeDomain lower-cases a host name and strips a port and a trailing dot.
// It accepts the bracketed IPv6 literal form ("[2001:db8::1]:443") that a
// Host header may carry.
func NormalizeDomain(d string) string {
	d = strings.TrimSpace(d)
	if strings.HasPrefix(d, "[") {
		if i := strings.IndexByte(d, ']'); i > 0 {
			d = d[1:i]
		}
	} else if i := strings.LastIndexByte(d, ':'); i >= 0 && strings.Count(d, ":") == 1 {
		// Exactly one colon: host:port. More than one colon is a bare IPv6 literal.
		d = d[:i]
	}
	d = strings.TrimSuffix(d, ".")
	return toLowerASCII(d)
}

// toLowerASCII lower-cases ASCII letters only: host names are ASCII (IDNs
// arrive punycoded), and strings.ToLower would rewrite invalid UTF-8 bytes.
func toLowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// Normalize brings r into its stored form and validates it. It returns a
// *FieldError naming the first bad field.
func (r *Record) Normalize() error {
	if r.Time.IsZero() {
		return fieldErr("time", "", "missing")
	}
	r.Time = r.Time.UTC().Truncate(timePrecision)
	if y := r.Time.Year(); y < 1970 || y > 9999 {
		return fieldErr("time", r.Time.Format(time.RFC3339), "year out of range 1970-9999")
	}

	r.Domain = NormalizeDomain(r.Domain)
	switch {
	case r.Domain == "" || r.Domain == "-":
		return fieldErr("domain", r.Domain, "missing")
	case len(r.Domain) > MaxDomainLen:
		return fieldErr("domain", r.Domain, fmt.Sprintf("longer than %d bytes", MaxDomainLen))
	}
	for i := 0; i < len(r.Domain); i++ {
		if c := r.Domain[i]; c <= ' ' || c == 0x7f || c == '/' || c == '"' {
			return fieldErr("domain", r.Domain, fmt.Sprintf("invalid byte 0x%02x at %d", c, i))
		}
	}

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

// Day returns the UTC calendar day t belongs to, as midnight UTC. Records are
// stored and destroyed per UTC day.
func Day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

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
