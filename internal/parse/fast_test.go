package parse

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/record"
)

// plainLenSlow is the byte-at-a-time loop plainLen replaced: the reference
// it must agree with.
func plainLenSlow(b []byte) int {
	for i, c := range b {
		if c == '"' || c == '\\' || c < 0x20 {
			return i
		}
	}
	return len(b)
}

// TestPlainLen puts every byte value at every position of strings long
// enough for the eight-byte steps and their tail, among bytes on either
// side of the thresholds (and after a borrow-causing byte, which may set
// false bits above the first stop).
func TestPlainLen(t *testing.T) {
	fill := []byte("aZ \x7f\x80\xff!#[]\x00\x21\x5d\x5b" + "é")
	for _, n := range []int{0, 1, 7, 8, 9, 16, 17, 31} {
		t.Run(fmt.Sprintf("%d bytes", n), func(t *testing.T) {
			for v := range 256 {
				for at := 0; at <= n; at++ {
					b := make([]byte, n)
					for i := range b {
						b[i] = fill[(i+at+v)%len(fill)]
					}
					if at < n {
						b[at] = byte(v)
					}
					if got, want := plainLen(b), plainLenSlow(b); got != want {
						t.Fatalf("plainLen(%q) = %d, want %d", b, got, want)
					}
				}
			}
		})
	}
}

// FuzzPlainLen is TestPlainLen on any input.
func FuzzPlainLen(f *testing.F) {
	f.Add([]byte(`Mozilla/5.0 (X11; Linux x86_64) "q" \ \x01`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := plainLen(b), plainLenSlow(b); got != want {
			t.Fatalf("plainLen(%q) = %d, want %d", b, got, want)
		}
	})
}

// timeInputs are values for the comparisons of parseRFC3339UTC with
// time.Parse: the common forms it reads itself and what it must hand on.
var timeInputs = []string{
	"2026-11-25T00:00:00.012Z", "2026-11-25T23:59:59Z", "2026-11-25T00:00:00.1Z", "2026-11-25T00:00:00.123456789Z",
	"2024-02-29T12:00:00.000Z", "2025-02-29T12:00:00.000Z", "2026-04-31T00:00:00Z", "2026-01-31T00:00:00Z",
	"2026-12-31T23:59:59.999Z", "0000-01-01T00:00:00Z", "1969-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z",
	"2026-11-25T24:00:00Z", "2026-11-25T00:60:00Z", "2026-11-25T00:00:60Z", "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z",
	"2026-11-00T00:00:00Z", "2026-11-25T00:00:00.Z", "2026-11-25T00:00:00.1234567891Z", "2026-11-25T00:00:00,012Z",
	"2026-11-25t00:00:00Z", "2026-11-25T00:00:00z", "2026-11-25 00:00:00Z", "2026-11-25T00:00:00+01:00",
	"2026-11-25T00:00:00.012+00:00", " 2026-11-25T00:00:00Z", "2026-11-25T00:00:00Z ", "2026-1x-25T00:00:00Z",
	"+026-11-25T00:00:00Z", "2026-11-25T00:00:00.01xZ", "2026-11-25T0:00:00.000Z", "[25/Nov/2026:00:00:00 +0000]",
	"1795278428", "1795278428.123", "", "Z",
}

// TestParseJSONTimeBytes: the RFC 3339 fast path agrees with time.Parse
// wherever it answers, and parseJSONTimeBytes with parseJSONTime always.
func TestParseJSONTimeBytes(t *testing.T) {
	for _, in := range timeInputs {
		t.Run(in, func(t *testing.T) { checkTimeBytes(t, []byte(in)) })
	}
}

// FuzzParseJSONTimeBytes is TestParseJSONTimeBytes on any input.
func FuzzParseJSONTimeBytes(f *testing.F) {
	for _, in := range timeInputs {
		f.Add([]byte(in))
	}
	f.Fuzz(checkTimeBytes)
}

func checkTimeBytes(t *testing.T, b []byte) {
	if got, ok := parseRFC3339UTC(b); ok {
		want, err := time.Parse(time.RFC3339Nano, string(b))
		if err != nil || !sameTime(got, want) {
			t.Fatalf("parseRFC3339UTC(%q) = %v; time.Parse says %v, %v", b, got, want, err)
		}
	}
	for _, isNum := range []bool{false, true} {
		want, wantErr := parseJSONTime(string(b), true, isNum)
		got, err := parseJSONTimeBytes(b, true, isNum)
		if !sameTime(got, want) || fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("parseJSONTimeBytes(%q, %v) = %v, %v; parseJSONTime says %v, %v", b, isNum, got, err, want, wantErr)
		}
	}
}

// sameTime reports whether a and b are the same instant in the same zone:
// == would also compare the *time.Location pointers, and every
// time.FixedZone call makes a new one.
func sameTime(a, b time.Time) bool { return a.Equal(b) && a.String() == b.String() }

// sameRecord is == for records, with their times compared by sameTime.
func sameRecord(a, b record.Record) bool {
	ta, tb := a.Time, b.Time
	a.Time, b.Time = time.Time{}, time.Time{}
	return a == b && sameTime(ta, tb)
}

// internerLines are objects for the comparison of parsing through an
// Interner (whose second sight of a domain skips NormalizeDomain) with
// parsing without one: odd domains, and records that a later field
// refuses after their domain was accepted.
var internerLines = []string{
	`{"time":"2026-11-25T00:00:00.012Z","domain":"shop.example.nl","path":"/","user_agent":"ua","ip":"192.0.2.1"}`,
	`{"time":"2026-11-25T00:00:00.012Z","domain":"Shop.Example.NL.","path":"/","user_agent":"ua","ip":"192.0.2.1"}`,
	`{"time":"2026-11-25T00:00:00.012Z","domain":"shop.example.nl:8443","path":"/","ip":"2001:db8::1"}`,
	`{"time":"2026-11-25T00:00:00.012Z","domain":"[2001:DB8::1]:443","path":"/","ip":"192.0.2.1"}`,
	`{"time":"2026-11-25T00:00:00.012Z","domain":"BÜCHER.example","path":"/","ip":"192.0.2.1"}`,
	`{"time":"2026-11-25T00:00:00.012Z","domain":"a..b","path":"/","ip":"192.0.2.1"}`,
	`{"time":"2026-11-25T00:00:00.012Z","domain":"","path":"/","ip":"192.0.2.1"}`,
	`{"time":"2026-11-25T00:00:00.012Z","path":"/","ip":"192.0.2.1"}`,
	`{"time":"2026-11-25T00:00:00.012Z","domain":"shop.example.nl","path":"","ip":"192.0.2.1"}`,
	`{"time":"2026-11-25T00:00:00.012Z","domain":"shop.example.nl","path":"/","ip":"192.0.2.999"}`,
	`{"time":"2026-11-25T00:00:00.012Z","domain":"shop.example.nl","path":"/"}`,
	`{"time":"1969-11-25T00:00:00.012Z","domain":"shop.example.nl","path":"/","ip":"192.0.2.1"}`,
	`{"time":"yesterday","domain":"shop.example.nl","path":"/","ip":"192.0.2.1"}`,
	`{"ts":1795278428,"host":"Shop.Example.NL.","request":"GET /r HTTP/1.1","ua":"-","remote_addr":"::ffff:192.0.2.1"}`,
	`{"time":"2026-11-25T00:00:00.012Z","domain":"shop.example.nl","path":"/","user_agent":"a\u0000b","ip":"192.0.2.1"}`,
}

// TestInternerAgrees: every line, parsed through an Interner the first
// time and again once the Interner knows its domain, gives the record and
// the error ParseJSON gives.
func TestInternerAgrees(t *testing.T) {
	for _, line := range internerLines {
		t.Run(line, func(t *testing.T) { checkInterner(t, []byte(line), "default.example") })
	}
}

func checkInterner(t *testing.T, line []byte, defaultDomain string) {
	want, wantErr := ParseJSON(line, defaultDomain)
	var in Interner
	for i := range 3 {
		// Each time through a copy of the line that is wiped after: what
		// the Interner keeps must not alias the bytes it was given.
		l := bytes.Clone(line)
		got, err := ParseJSONWith(l, defaultDomain, &in)
		if !sameRecord(got, want) || fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("pass %d through an Interner: %+v, %v; without one: %+v, %v", i+1, got, err, want, wantErr)
		}
		clear(l)
	}
}

// FuzzInterner is TestInternerAgrees on any input, with a domain the
// Interner learnt from another line before.
func FuzzInterner(f *testing.F) {
	for _, line := range internerLines {
		f.Add([]byte(line), "default.example")
	}
	f.Fuzz(func(t *testing.T, line []byte, defaultDomain string) {
		if strings.ContainsRune(defaultDomain, 0) {
			return
		}
		checkInterner(t, line, defaultDomain)
	})
}

// TestEndsWithHTTPVersion: the early-out of endsWithHTTPVersion answers as
// the three suffix tests it replaced.
func TestEndsWithHTTPVersion(t *testing.T) {
	for _, p := range []string{
		"", "/", "GET / HTTP/1.1", "GET / HTTP/1.0", "GET / HTTP/2.0", " HTTP/1.1", "HTTP/1.1", "GET / HTTP/3.0",
		"GET / HTTP/1.1 ", "GET / http/1.1", "/a b HTTP/1.x", "/aaaaaaaaaaaa", "/a HTTP/2.0x", "x HTTP/2.0",
	} {
		t.Run(p, func(t *testing.T) {
			want := strings.HasSuffix(p, " HTTP/1.1") || strings.HasSuffix(p, " HTTP/1.0") || strings.HasSuffix(p, " HTTP/2.0")
			if got := endsWithHTTPVersion(p); got != want {
				t.Errorf("endsWithHTTPVersion(%q) = %v, want %v", p, got, want)
			}
		})
	}
}

// TestMatchAlias: where matchAlias recognises a key, reading it the
// general way (jsonScanner.str, then jsonField) gives the same alias and
// ends at the same place; every alias written plainly is recognised.
func TestMatchAlias(t *testing.T) {
	keys := []string{`"x`, `"`, ``, `"t\u0069me"`, `"tim"`, `"times"`, `"ts"`, `"ip"x`, `"ip`, `"@timestamp"`,
		`"status"`, `"host\""`, `"time\n"`, `"TIME"`, `"uri_"`}
	keys = append(keys, aliasKeysQuoted()...)
	for _, k := range keys {
		t.Run(k, func(t *testing.T) {
			b := []byte(k + `:1`)
			if len(b) == 0 || b[0] != '"' {
				return
			}
			a, n, ok := matchAlias(b[1:])
			s := jsonScanner{b: b}
			key, err := s.str(nil)
			f, rank, keep := jsonField(key)
			plain := err == nil && !bytes.ContainsRune(b[1:s.pos-1], '\\') && keep
			if ok != plain {
				t.Fatalf("matchAlias ok = %v; read the general way: %q, %v, alias %v", ok, key, err, keep)
			}
			if ok && (a.field != f || a.rank != rank || 1+n != s.pos) {
				t.Fatalf("matchAlias: field %d rank %d end %d; general: field %d rank %d end %d", a.field, a.rank, 1+n, f, rank, s.pos)
			}
		})
	}
}

// aliasKeysQuoted returns every alias key as a JSON string.
func aliasKeysQuoted() []string {
	var out []string
	for _, keys := range fieldKeys {
		for _, k := range keys {
			out = append(out, `"`+k+`"`)
		}
	}
	return out
}
