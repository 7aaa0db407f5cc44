// Package parse turns what hosting servers log (combined and vhost_combined
// access-log lines, JSON objects, syslog frames) into normalised records.
// Only the five fields of a record are extracted; status, size, referer and
// everything else are dropped while parsing (data minimisation).
//
// It is pure: no network, no store. ingest (HTTP, syslog and shipper
// endpoints) and importer (backfill) both call it, so a line is read the same
// way whichever way it arrives.
package parse

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/retentiond/retentiond/internal/record"
)

// Format names a line format.
type Format string

// The accepted line formats.
const (
	FormatCombined      Format = "combined"
	FormatVhostCombined Format = "vhost_combined"
	FormatJSON          Format = "json"
)

// ParseFormat validates a format name.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatCombined, FormatVhostCombined, FormatJSON:
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q: use combined, vhost_combined or json", record.Shorten(s))
}

// SyntaxError says where a line stopped making sense.
type SyntaxError struct {
	Column int // 1-based byte column
	Msg    string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("column %d: %s", e.Column, e.Msg) }

// Reason classifies a parse error for a metric label: the field a
// *record.FieldError names, "syntax" for a *SyntaxError, else "other". It is
// a small fixed set, never record contents.
func Reason(err error) string {
	var fe *record.FieldError
	var se *SyntaxError
	switch {
	case errors.As(err, &fe):
		return fe.Field
	case errors.As(err, &se):
		return "syntax"
	}
	return "other"
}

// ParseLine parses one log line of the given format into a normalised
// record. defaultDomain is used when the line carries no virtual host.
func ParseLine(format Format, line []byte, defaultDomain string) (record.Record, error) {
	line = bytes.TrimRight(line, "\r\n")
	switch format {
	case FormatJSON:
		return ParseJSON(line, defaultDomain)
	case FormatVhostCombined:
		return parseCombined(line, defaultDomain, true)
	case FormatCombined:
		return parseCombined(line, defaultDomain, false)
	}
	return record.Record{}, fmt.Errorf("unknown format %q", format)
}

// DetectFormat guesses the format of a log from its first lines: the format
// that parses most of them wins.
func DetectFormat(lines [][]byte) (Format, error) {
	best, bestN := Format(""), 0
	for _, f := range []Format{FormatJSON, FormatVhostCombined, FormatCombined} {
		n := 0
		for _, l := range lines {
			if _, err := ParseLine(f, l, "detect.invalid"); err == nil {
				n++
			}
		}
		if n > bestN {
			best, bestN = f, n
		}
	}
	if bestN == 0 {
		return "", errors.New("no line parses as combined, vhost_combined or json")
	}
	return best, nil
}

// parseCombined parses
//
//	[vhost[:port] ]client ident user [time] "request" status size "referer" "user agent"...
//
// by hand: it runs for every line of a backfill, where a regexp would be the
// bottleneck. Quoted fields accept both escapings seen in the wild: Apache's
// \" and \\, and nginx's \xHH.
func parseCombined(line []byte, defaultDomain string, vhost bool) (record.Record, error) {
	var r record.Record
	p := parser{b: line}
	if vhost {
		host := p.word()
		if host == "" {
			return r, p.errf("missing virtual host")
		}
		r.Domain = host
	} else {
		r.Domain = defaultDomain
	}
	ipStr := p.word()
	ip, err := record.ParseIP(ipStr)
	if err != nil {
		if !vhost {
			// A vhost_combined line sent as combined: say so.
			if _, err2 := record.ParseIP(p.peekWord()); err2 == nil {
				return r, p.errf("expected a client IP, got %q (is this vhost_combined?)", record.Shorten(ipStr))
			}
		}
		return r, fmt.Errorf("column %d: %w", p.col(), err)
	}
	r.IP = ip
	p.skip() // ident
	p.skip() // user
	ts, err := p.bracketTime()
	if err != nil {
		return r, err
	}
	r.Time = ts
	req, err := p.quoted()
	if err != nil {
		return r, err
	}
	r.Path = RequestTarget(req)
	p.skip()                               // status
	p.skip()                               // size
	if err := p.skipQuoted(); err != nil { // referer
		return r, err
	}
	// The user agent is the last field that matters; a line truncated in
	// it (by a syslog size limit) still carries usable evidence, so an
	// unterminated user agent is kept as far as it goes.
	ua, err := p.quotedLenient(true)
	if err != nil {
		return r, err
	}
	r.UserAgent = ua
	if err := r.Normalize(); err != nil {
		return r, err
	}
	return r, nil
}

// RequestTarget extracts the target from a request line "GET /x HTTP/1.1".
// A line that is not of that shape (a probe sending garbage) is kept whole:
// it is evidence.
func RequestTarget(req string) string {
	if sp := strings.IndexByte(req, ' '); sp > 0 {
		rest := req[sp+1:]
		if i := strings.LastIndex(rest, " HTTP/"); i >= 0 {
			return rest[:i]
		}
		if strings.HasPrefix(rest, "/") && !strings.Contains(rest, " ") {
			return rest // HTTP/0.9 style "GET /x"
		}
	}
	return req
}

// endsWithHTTPVersion reports whether p ends in " HTTP/1.1", " HTTP/1.0"
// or " HTTP/2.0": a whole request line logged where a path belongs. A path
// is refused at its first byte in most cases, where three suffix
// comparisons each cost a call.
func endsWithHTTPVersion(p string) bool {
	const n = len(" HTTP/1.1")
	if len(p) < n || p[len(p)-n] != ' ' {
		return false
	}
	switch p[len(p)-n:] {
	case " HTTP/1.1", " HTTP/1.0", " HTTP/2.0":
		return true
	}
	return false
}

type parser struct {
	b   []byte
	pos int
}

func (p *parser) col() int { return p.pos + 1 }

func (p *parser) errf(format string, args ...any) error {
	return &SyntaxError{Column: p.col(), Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) skipSpace() {
	for p.pos < len(p.b) && p.b[p.pos] == ' ' {
		p.pos++
	}
}

func (p *parser) word() string {
	p.skipSpace()
	start := p.pos
	for p.pos < len(p.b) && p.b[p.pos] != ' ' {
		p.pos++
	}
	return string(p.b[start:p.pos])
}

// skip passes over a field that is not stored, without allocating.
func (p *parser) skip() {
	p.skipSpace()
	for p.pos < len(p.b) && p.b[p.pos] != ' ' {
		p.pos++
	}
}

func (p *parser) peekWord() string {
	save := p.pos
	w := p.word()
	p.pos = save
	return w
}

func (p *parser) bracketTime() (time.Time, error) {
	p.skipSpace()
	if p.pos >= len(p.b) || p.b[p.pos] != '[' {
		return time.Time{}, p.errf("expected [time]")
	}
	end := bytes.IndexByte(p.b[p.pos:], ']')
	if end < 0 {
		return time.Time{}, p.errf("unterminated [time]")
	}
	s := p.b[p.pos+1 : p.pos+end]
	t, err := ParseCLFTime(s)
	if err != nil {
		return time.Time{}, &record.FieldError{Field: "time", Value: record.Shorten(string(s)), Reason: fmt.Sprintf("column %d: %v", p.col(), err)}
	}
	p.pos += end + 1
	return t, nil
}

// quoted reads a double-quoted field, undoing \" \\ and \xHH escapes. A bare
// - (no quotes) is accepted as empty, as some formats log it so.
func (p *parser) quoted() (string, error) { return p.quotedLenient(false) }

func (p *parser) quotedLenient(truncatedOK bool) (string, error) {
	p.skipSpace()
	if p.pos >= len(p.b) {
		return "", p.errf("missing quoted field")
	}
	if p.b[p.pos] != '"' {
		w := p.word()
		if w == "-" {
			return "", nil
		}
		return "", p.errf("expected a quoted field, got %q", record.Shorten(w))
	}
	p.pos++
	start := p.pos
	// Fast path: no escapes.
	for p.pos < len(p.b) {
		c := p.b[p.pos]
		if c == '"' {
			s := string(p.b[start:p.pos])
			p.pos++
			return s, nil
		}
		if c == '\\' {
			break
		}
		p.pos++
	}
	out := append([]byte(nil), p.b[start:p.pos]...)
	for p.pos < len(p.b) {
		c := p.b[p.pos]
		switch {
		case c == '"':
			p.pos++
			return string(out), nil
		case c == '\\' && p.pos+1 < len(p.b):
			n := p.b[p.pos+1]
			switch {
			case n == 'x' && p.pos+3 < len(p.b) && isHex(p.b[p.pos+2]) && isHex(p.b[p.pos+3]):
				if c := unhex(p.b[p.pos+2])<<4 | unhex(p.b[p.pos+3]); c != 0 {
					out = append(out, c)
				} else {
					// A NUL cannot be stored, but a TLS handshake sent to
					// the HTTP port is evidence: keep it escaped.
					out = append(out, p.b[p.pos:p.pos+4]...)
				}
				p.pos += 4
				continue
			case n == '"' || n == '\\':
				out = append(out, n)
			case n == 'n':
				out = append(out, '\n')
			case n == 't':
				out = append(out, '\t')
			default:
				out = append(out, c, n)
			}
			p.pos += 2
		default:
			out = append(out, c)
			p.pos++
		}
	}
	if truncatedOK {
		return string(out), nil
	}
	return "", p.errf("unterminated quoted field")
}

// skipQuoted passes over a quoted field that is not stored (the referer).
func (p *parser) skipQuoted() error {
	p.skipSpace()
	if p.pos >= len(p.b) {
		return p.errf("missing quoted field")
	}
	if p.b[p.pos] != '"' {
		p.skip()
		return nil
	}
	for i := p.pos + 1; i < len(p.b); i++ {
		switch p.b[i] {
		case '\\':
			i++
		case '"':
			p.pos = i + 1
			return nil
		}
	}
	return p.errf("unterminated quoted field")
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

var months = map[string]time.Month{"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6,
	"Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12}

// decimal reads b as an unsigned decimal number, -1 when a byte of it is
// not a digit (both time readers take fixed-width fields).
func decimal(b []byte) int {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// ParseCLFTime parses the common log format time "21/Nov/2026:16:27:08 +0100"
// (optionally with fractional seconds, as nginx's $time_local never has but
// custom formats do) by hand.
func ParseCLFTime(s []byte) (time.Time, error) {
	bad := errors.New("want dd/Mon/yyyy:hh:mm:ss +zzzz")
	if len(s) < 26 || s[2] != '/' || s[6] != '/' || s[11] != ':' || s[14] != ':' || s[17] != ':' {
		return time.Time{}, bad
	}
	day, year, hh, mm, ss := decimal(s[0:2]), decimal(s[7:11]), decimal(s[12:14]), decimal(s[15:17]), decimal(s[18:20])
	mon, ok := months[string(s[3:6])]
	if !ok || day < 1 || day > 31 || year < 0 || hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60 {
		return time.Time{}, bad
	}
	rest := s[20:]
	nsec := 0
	if len(rest) > 0 && rest[0] == '.' {
		i := 1
		scale := 100_000_000
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			nsec += int(rest[i]-'0') * scale
			scale /= 10
			i++
		}
		rest = rest[i:]
	}
	if len(rest) != 6 || rest[0] != ' ' || (rest[1] != '+' && rest[1] != '-') {
		return time.Time{}, bad
	}
	zh, zm := decimal(rest[2:4]), decimal(rest[4:6])
	if zh < 0 || zm < 0 || zh > 14 || zm > 59 {
		return time.Time{}, bad
	}
	off := (zh*60 + zm) * 60
	if rest[1] == '-' {
		off = -off
	}
	t := time.Date(year, mon, day, hh, mm, ss, nsec, time.FixedZone("", off))
	if t.Day() != day {
		return time.Time{}, fmt.Errorf("no such date")
	}
	return t, nil
}

// Field aliases accepted in JSON objects, in order of preference: when an
// object carries two aliases of one field, the earlier one wins wherever it
// stands. Of one key given twice the last value counts, as in encoding/json,
// JavaScript and jq.
var (
	timeKeys   = []string{"ts", "time", "timestamp", "@timestamp", "msec", "time_local", "time_iso8601"}
	domainKeys = []string{"domain", "host", "vhost", "server_name"}
	pathKeys   = []string{"path", "uri", "request_uri", "request"}
	uaKeys     = []string{"ua", "user_agent", "http_user_agent"}
	ipKeys     = []string{"ip", "remote_addr", "client_ip"}

	fieldKeys = [nFields][]string{timeKeys, domainKeys, pathKeys, uaKeys, ipKeys}
)

const (
	fTime = iota
	fDomain
	fPath
	fUA
	fIP
	nFields
)

// maxAliases bounds the aliases of one field (timeKeys has the most).
const maxAliases = 7

// jsonAlias is one alias key with the field and rank it stands for.
type jsonAlias struct {
	key         string
	field, rank int
}

// maxAliasLen is the length of the longest alias key ("http_user_agent").
const maxAliasLen = 15

// aliasesByLen holds the alias keys by their length. Most keys of a line
// are compared with at most four aliases of their own length instead of
// all 21; the table is built from fieldKeys, which stays the one list of
// aliases.
var aliasesByLen = func() (t [maxAliasLen + 1][]jsonAlias) {
	for f, keys := range fieldKeys {
		for r, k := range keys {
			t[len(k)] = append(t[len(k)], jsonAlias{k, f, r})
		}
	}
	return t
}()

// aliasesByFirst holds the alias keys by their first byte, for
// matchAlias; like aliasesByLen it is built from fieldKeys.
var aliasesByFirst = func() (t [256][]jsonAlias) {
	for f, keys := range fieldKeys {
		for r, k := range keys {
			t[k[0]] = append(t[k[0]], jsonAlias{k, f, r})
		}
	}
	return t
}()

// matchAlias recognises an alias key at the start of b, just after the
// key's opening quote, when it is written plainly, as it nearly always
// is: the alias's bytes, then the closing quote. An alias holds no byte
// that a JSON string must escape, so such a key is that alias whatever
// follows. n is the length with the quote. ok is false for every other
// key, and for an alias written with escapes, which the caller reads the
// general way (jsonScanner.str, jsonField); FuzzJSONDifferential and
// TestMatchAlias check that both ways agree.
func matchAlias(b []byte) (a jsonAlias, n int, ok bool) {
	if len(b) == 0 {
		return a, 0, false
	}
	for _, a := range aliasesByFirst[b[0]] {
		if len(b) > len(a.key) && b[len(a.key)] == '"' && string(b[:len(a.key)]) == a.key {
			return a, len(a.key) + 1, true
		}
	}
	return a, 0, false
}

// jsonField maps a key to (field, rank); ok is false for keys we drop.
func jsonField(key []byte) (field, rank int, ok bool) {
	if len(key) > maxAliasLen {
		return 0, 0, false
	}
	for _, a := range aliasesByLen[len(key)] {
		if string(key) == a.key {
			return a.field, a.rank, true
		}
	}
	return 0, 0, false
}

// The kinds of value an alias key last had.
const (
	kindAbsent = iota
	kindString
	kindNumber
	kindOther // object, array, true, false, null: counts as absent
)

// jsonSlot is the last value of one alias key: the decoded bytes of a
// string, the text of a number.
type jsonSlot struct {
	val  []byte
	kind uint8
}

// jsonFields is what scanJSON found: the last value of every alias key.
// set marks the slots scanJSON wrote (bit field*maxAliases+rank), so that
// a reused jsonFields is cleared slot by slot rather than whole: zeroing
// its 1,120 bytes for every line was a twentieth of the parser's time.
type jsonFields struct {
	slots [nFields][maxAliases]jsonSlot
	set   uint64
}

// set has a bit for every slot.
var _ [64 - nFields*maxAliases]struct{}

// reset makes j as new.
func (j *jsonFields) reset() {
	for m := j.set; m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		j.slots[i/maxAliases][i%maxAliases] = jsonSlot{}
	}
	j.set = 0
}

// put sets the slot of field f, rank r.
func (j *jsonFields) put(f, r int, v jsonSlot) {
	j.slots[f][r] = v
	j.set |= 1 << (f*maxAliases + r)
}

// pick returns the rank of the most preferred alias of field f whose value
// can be used (a string; for the time also a number), or -1.
func (j *jsonFields) pick(f int) int {
	for r := range fieldKeys[f] {
		switch j.slots[f][r].kind {
		case kindString:
			return r
		case kindNumber:
			if f == fTime {
				return r
			}
		}
	}
	return -1
}

func (j *jsonFields) present(f int) bool { return j.pick(f) >= 0 }

func (j *jsonFields) value(f int) string { return string(j.bytes(f)) }

// bytes is value without a copy: a sub-slice of the line or of a decoded
// string, valid while the line is.
func (j *jsonFields) bytes(f int) []byte {
	if r := j.pick(f); r >= 0 {
		return j.slots[f][r].val
	}
	return nil
}

// shared is value through an Interner.
func (j *jsonFields) shared(f int, in *Interner) string {
	if r := j.pick(f); r >= 0 {
		return in.intern(j.slots[f][r].val)
	}
	return ""
}

func (j *jsonFields) timeIsNum() bool {
	r := j.pick(fTime)
	return r >= 0 && j.slots[fTime][r].kind == kindNumber
}

// pathKey is the alias the path came from ("request" holds a whole request
// line).
func (j *jsonFields) pathKey() string {
	if r := j.pick(fPath); r >= 0 {
		return pathKeys[r]
	}
	return ""
}

// ParseJSON parses one JSON object with any of the accepted field aliases.
//
// It is a hand-written scanner rather than encoding/json for two reasons:
// speed (it only materialises the five values it keeps, and is several
// times faster than decoding into a map), and evidence: encoding/json turns
// bytes that are not valid UTF-8 into U+FFFD, while we keep them as sent.
// \u escapes decode as usual. Otherwise it accepts what encoding/json
// accepts and reads the same values (FuzzJSONDifferential), except that it
// refuses objects nested deeper than 64 levels.
func ParseJSON(b []byte, defaultDomain string) (record.Record, error) {
	return ParseJSONAt(b, defaultDomain, time.Time{})
}

// ParseJSONAt is ParseJSON with a time for objects that carry none: a
// shipper that wraps the object (a Loki entry, an OTLP record) stamps one of
// its own.
func ParseJSONAt(b []byte, defaultDomain string, defaultTime time.Time) (record.Record, error) {
	return parseJSON(b, defaultDomain, defaultTime, nil)
}

// Interner shares the strings of repeated domains and user agents between
// the records a caller parses: a batch of 50,000 lines holds a few thousand
// of each, and a string per field per line was a third of the bytes the
// daemon allocated while it ingested (the garbage collector's work grows
// with them). It also remembers what record.NormalizeDomain made of each
// domain as sent, so that a name is checked and lower-cased once per batch
// rather than once per line; the rule itself stays NormalizeDomain's. The
// zero value is ready; an Interner keeps at most maxInterned strings and
// maxInterned domains, and is not safe for concurrent use.
type Interner struct {
	// fields is parseJSON's scratch, cleared before each use.
	fields jsonFields
	m      map[string]string
	// domains maps a domain as sent to NormalizeDomain's answer for it.
	// Only names it accepted are kept: a refused one goes through
	// Normalize every time, which words the error.
	domains map[string]domainNames
	// slab holds the copies of paths (text): one allocation for hundreds
	// of them instead of one each.
	slab []byte
	// kept is the bytes of the strings m and domains keep.
	kept int
}

// maxKeptBytes is what an Interner may keep and still be reused (Reusable).
const maxKeptBytes = 1 << 20

// Reusable reports whether in is worth keeping for later requests: it has
// room for more strings and keeps at most maxKeptBytes of them. A reused
// Interner hands a domain or user agent out as the same string request
// after request, so the stages that recognise a string by its address
// (the WAL's batch encoder, the heads) find it again, and a domain is
// checked and lower-cased once rather than once per request.
func (in *Interner) Reusable() bool {
	return len(in.m) < maxInterned && len(in.domains) < maxInterned && in.kept <= maxKeptBytes
}

// domainNames is a domain as sent and NormalizeDomain's answer for it.
type domainNames struct {
	sent, normal string
}

// maxInterned bounds an Interner: a hostile body of unique values costs
// at most this many entries, then its strings are simply not shared.
const maxInterned = 1 << 14

// intern returns b as a string, shared with earlier calls for equal
// bytes. The lookup with string(b) does not allocate.
func (in *Interner) intern(b []byte) string {
	if in == nil {
		return string(b)
	}
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	s := string(b)
	if in.m == nil {
		in.m = make(map[string]string)
	}
	if len(in.m) < maxInterned {
		in.m[s] = s
		in.kept += len(s)
	}
	return s
}

// Paths are the one field that is new in nearly every record, and a
// string allocated for each was a tenth of the parser's CPU (the
// allocation, and the collector's work on five million small objects in
// issue 15's peer benchmark). text copies them into slabs of slabBytes
// instead; a slab lives as long as any of its paths, which the head lets
// go of when it seals them seconds later, so a slab costs at most its
// size beyond its paths. Longer values get their own allocation.
const (
	slabBytes   = 32 << 10
	slabMaxText = 1 << 10
)

// text returns a copy of b that shares an allocation with the other texts
// of in. The copied bytes are never written again, which is what makes
// handing them out as a string sound.
func (in *Interner) text(b []byte) string {
	if in == nil || len(b) == 0 || len(b) > slabMaxText {
		return string(b)
	}
	if cap(in.slab)-len(in.slab) < len(b) {
		in.slab = make([]byte, 0, slabBytes)
	}
	n := len(in.slab)
	in.slab = append(in.slab, b...)
	return unsafe.String(&in.slab[n], len(b)) //nolint:gosec // G103: the slab's bytes up to len are never changed again
}

// knownDomain returns the domain raw as sent (a shared string) and
// NormalizeDomain's answer for it, if an earlier record told them.
func (in *Interner) knownDomain(raw []byte) (domainNames, bool) {
	if in == nil {
		return domainNames{}, false
	}
	d, ok := in.domains[string(raw)]
	return d, ok
}

// rememberDomain keeps normal as NormalizeDomain's answer for the domain
// sent.
func (in *Interner) rememberDomain(sent, normal string) {
	if in == nil {
		return
	}
	if in.domains == nil {
		in.domains = make(map[string]domainNames)
	}
	if len(in.domains) < maxInterned {
		in.domains[sent] = domainNames{sent, normal}
		in.kept += len(sent) + len(normal)
	}
}

// ParseJSONWith is ParseJSON with the domain and user agent shared through
// in (nil: not shared).
func ParseJSONWith(b []byte, defaultDomain string, in *Interner) (record.Record, error) {
	return parseJSON(b, defaultDomain, time.Time{}, in)
}

func parseJSON(b []byte, defaultDomain string, defaultTime time.Time, in *Interner) (record.Record, error) {
	var r record.Record
	var scratch jsonFields // on the stack: scanJSON does not keep it
	j := &scratch
	if in != nil {
		j = &in.fields
		j.reset()
	}
	if err := scanJSON(b, j); err != nil {
		return r, err
	}
	if !j.present(fTime) && !defaultTime.IsZero() {
		r.Time = defaultTime
	} else {
		t, err := parseJSONTimeBytes(j.bytes(fTime), j.present(fTime), j.timeIsNum())
		if err != nil {
			return r, err
		}
		r.Time = t
	}
	// A domain the Interner has seen is not copied, checked or lower-cased
	// again: dom.normal is what NormalizeDomain made of it.
	rawDomain := j.bytes(fDomain)
	dom, known := in.knownDomain(rawDomain)
	if known {
		r.Domain = dom.sent
	} else {
		r.Domain = in.intern(rawDomain)
		if r.Domain == "" {
			r.Domain = defaultDomain
		}
	}
	r.Path = in.text(j.bytes(fPath))
	if j.pathKey() == "request" || endsWithHTTPVersion(r.Path) {
		r.Path = RequestTarget(r.Path)
	}
	r.UserAgent = j.shared(fUA, in)
	ipBytes := j.bytes(fIP)
	if len(ipBytes) == 0 {
		return r, &record.FieldError{Field: "ip", Reason: "missing (use ip, remote_addr or client_ip)"}
	}
	ip, err := record.ParseIPBytes(ipBytes)
	if err != nil {
		return r, err
	}
	r.IP = ip
	if known {
		return r, r.NormalizeWithDomain(dom.normal)
	}
	sent := r.Domain
	if err := r.Normalize(); err != nil {
		return r, err
	}
	if len(rawDomain) > 0 {
		in.rememberDomain(sent, r.Domain)
	}
	return r, nil
}

// scanJSON checks that b is one JSON object and collects the last value of
// every alias key in it into j. The values are sub-slices of b where they
// need no decoding.
func scanJSON(b []byte, j *jsonFields) error {
	s := jsonScanner{b: b}
	s.ws()
	if !s.eat('{') {
		return s.errf("not a JSON object")
	}
	s.ws()
	if !s.eat('}') {
		for {
			s.ws()
			f, rank, keep, err := s.key()
			if err != nil {
				return err
			}
			s.ws()
			if !s.eat(':') {
				return s.errf("expected ':' after key")
			}
			s.ws()
			switch {
			case !keep:
				if err := s.skipValue(0); err != nil {
					return err
				}
			case s.pos < len(s.b) && s.b[s.pos] == '"':
				v, err := s.str(nil)
				if err != nil {
					return err
				}
				j.put(f, rank, jsonSlot{val: v, kind: kindString})
			default:
				start := s.pos
				if err := s.skipValue(0); err != nil {
					return err
				}
				kind := uint8(kindOther)
				if c := s.b[start]; c == '-' || (c >= '0' && c <= '9') {
					kind = kindNumber
				}
				j.put(f, rank, jsonSlot{val: s.b[start:s.pos], kind: kind})
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			if s.eat('}') {
				break
			}
			return s.errf("expected ',' or '}'")
		}
	}
	s.ws()
	if s.pos != len(s.b) {
		return s.errf("unexpected data after the object")
	}
	return nil
}

type jsonScanner struct {
	b   []byte
	pos int
}

func (s *jsonScanner) errf(format string, args ...any) error {
	return &SyntaxError{Column: s.pos + 1, Msg: "invalid JSON: " + fmt.Sprintf(format, args...)}
}

func (s *jsonScanner) ws() {
	for s.pos < len(s.b) {
		switch s.b[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *jsonScanner) eat(c byte) bool {
	if s.pos < len(s.b) && s.b[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

// key reads an object's key at pos and says which field and rank it is an
// alias of (keep), without decoding it when it is an alias written
// plainly: keys were a third of the scanner's work.
func (s *jsonScanner) key() (field, rank int, keep bool, err error) {
	if s.pos < len(s.b) && s.b[s.pos] == '"' {
		if a, n, ok := matchAlias(s.b[s.pos+1:]); ok {
			s.pos += 1 + n
			return a.field, a.rank, true, nil
		}
	}
	k, err := s.str(nil)
	if err != nil {
		return 0, 0, false, err
	}
	field, rank, keep = jsonField(k)
	return field, rank, keep, nil
}

// str reads a string at pos and returns its decoded bytes: a sub-slice of
// the input when there are no escapes, else appended to buf.
func (s *jsonScanner) str(buf []byte) ([]byte, error) {
	if !s.eat('"') {
		return nil, s.errf("expected a string")
	}
	start := s.pos
	s.pos += plainLen(s.b[s.pos:])
	if s.pos < len(s.b) && s.b[s.pos] == '"' {
		s.pos++
		return s.b[start : s.pos-1], nil
	}
	out := append(buf, s.b[start:s.pos]...)
	for s.pos < len(s.b) {
		c := s.b[s.pos]
		switch {
		case c == '"':
			s.pos++
			return out, nil
		case c < 0x20:
			return nil, s.errf("control byte 0x%02x in a string", c)
		case c != '\\':
			n := plainLen(s.b[s.pos:])
			out = append(out, s.b[s.pos:s.pos+n]...)
			s.pos += n
			continue
		}
		if s.pos+1 >= len(s.b) {
			break
		}
		e := s.b[s.pos+1]
		s.pos += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return nil, s.errf("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := unicode.ReplacementChar
				if s.pos+1 < len(s.b) && s.b[s.pos] == '\\' && s.b[s.pos+1] == 'u' {
					save := s.pos
					s.pos += 2
					if lo, ok := s.hex4(); ok {
						r2 = utf16.DecodeRune(r, lo)
					}
					if r2 == unicode.ReplacementChar {
						s.pos = save
					}
				}
				r = r2
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, s.errf("bad escape \\%c", e)
		}
	}
	return nil, s.errf("unterminated string")
}

// Masks for looking at the eight bytes of a uint64 at once.
const (
	lowBits  = 0x0101010101010101 // the lowest bit of every byte
	highBits = 0x8080808080808080 // the highest bit of every byte
)

// plainLen returns the length of the prefix of b that a JSON string can
// hold as it is: up to the first '"', '\\' or control byte (below 0x20),
// or all of b. Strings are most of a line, so it looks at eight bytes at a
// time: the per-byte loop it replaced was a quarter of the parser's CPU.
func plainLen(b []byte) int {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if m := specialBytes(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' || c < 0x20 {
			break
		}
	}
	return i
}

// specialBytes sets the high bit of the bytes of x (little-endian) that
// plainLen stops at. Each of the three terms is the classic "has a byte
// less than n" test, (v - n*lowBits) &^ v & highBits, on x for n = 0x20 and
// on x with '"' and '\\' turned into zero bytes for n = 1. A byte's
// subtraction borrows only from the bytes above it, so the lowest set bit
// always marks the first such byte, which is all plainLen uses (bits above
// it may be false alarms). The XORs leave the high bits alone, so the
// three share one &^ x.
func specialBytes(x uint64) uint64 {
	q := x ^ (lowBits * '"')  // zero where x has '"'
	e := x ^ (lowBits * '\\') // zero where x has '\\'
	return ((x - lowBits*0x20) | (q - lowBits) | (e - lowBits)) &^ x & highBits
}

func (s *jsonScanner) hex4() (rune, bool) {
	if s.pos+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.pos : s.pos+4] {
		if !isHex(c) {
			return 0, false
		}
		r = r<<4 | rune(unhex(c))
	}
	s.pos += 4
	return r, true
}

// skipValue passes over any JSON value (checking its syntax); depth bounds
// the recursion of nested objects and arrays.
func (s *jsonScanner) skipValue(depth int) error {
	if depth > 64 {
		return s.errf("nested too deeply")
	}
	if s.pos >= len(s.b) {
		return s.errf("expected a value")
	}
	switch c := s.b[s.pos]; {
	case c == '"':
		_, err := s.str(nil)
		return err
	case c == '{' || c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		s.pos++
		s.ws()
		if s.eat(end) {
			return nil
		}
		for {
			s.ws()
			if c == '{' {
				if _, err := s.str(nil); err != nil {
					return err
				}
				s.ws()
				if !s.eat(':') {
					return s.errf("expected ':' after key")
				}
				s.ws()
			}
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			if s.eat(end) {
				return nil
			}
			return s.errf("expected ',' or '%c'", end)
		}
	case c == '-' || (c >= '0' && c <= '9'):
		if !s.number() {
			return s.errf("bad number")
		}
		return nil
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if bytes.HasPrefix(s.b[s.pos:], []byte(lit)) {
				s.pos += len(lit)
				return nil
			}
		}
		return s.errf("unexpected byte %q", c)
	}
}

// ParseTime reads a time value of a JSON document: RFC 3339, epoch seconds
// or milliseconds (a number, isNum, or a string, as nginx's $msec
// "1763742428.123"), or the common log format.
func ParseTime(s string, isNum bool) (time.Time, error) {
	return parseJSONTime(s, true, isNum)
}

// number passes over a number as RFC 8259 §6 writes it: an optional minus,
// an integer part without leading zeros, an optional fraction and exponent
// each with at least one digit. What follows it is the caller's to check.
func (s *jsonScanner) number() bool {
	s.eat('-')
	switch {
	case s.eat('0'):
	case s.digits() == 0:
		return false
	}
	if s.eat('.') && s.digits() == 0 {
		return false
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if s.digits() == 0 {
			return false
		}
	}
	return true
}

// digits passes over decimal digits and says how many.
func (s *jsonScanner) digits() int {
	start := s.pos
	for s.pos < len(s.b) && s.b[s.pos] >= '0' && s.b[s.pos] <= '9' {
		s.pos++
	}
	return s.pos - start
}

// parseJSONTimeBytes is parseJSONTime for a value in a byte slice. The
// form ingest mostly receives, RFC 3339 in UTC as record.TimeLayout writes
// it, it reads in place; everything else it hands to parseJSONTime as a
// string.
func parseJSONTimeBytes(b []byte, present, isNum bool) (time.Time, error) {
	if present && !isNum {
		if t, ok := parseRFC3339UTC(b); ok {
			return t, nil
		}
	}
	return parseJSONTime(string(b), present, isNum)
}

// parseRFC3339UTC reads "2006-01-02T15:04:05Z" with an optional fraction
// of one to nine digits ("2026-11-25T00:00:00.012Z") into what
// time.Parse(time.RFC3339Nano, …) returns for it. ok is false for anything
// else, a date that does not exist (the 31st of a month of 30 days) or a
// leap second included, so that the caller hands it to time.Parse and both
// its rule and its errors stay time.Parse's.
func parseRFC3339UTC(b []byte) (t time.Time, ok bool) {
	if len(b) < len("2006-01-02T15:04:05Z") || b[len(b)-1] != 'Z' ||
		b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return t, false
	}
	year, month, day := decimal(b[0:4]), decimal(b[5:7]), decimal(b[8:10])
	hour, minute, sec := decimal(b[11:13]), decimal(b[14:16]), decimal(b[17:19])
	if year < 0 || month < 1 || month > 12 || day < 1 || day > 31 ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return t, false
	}
	nsec := 0
	if frac := b[19 : len(b)-1]; len(frac) > 0 {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return t, false
		}
		if nsec = decimal(frac[1:]); nsec < 0 {
			return t, false
		}
		for range 10 - len(frac) {
			nsec *= 10
		}
	}
	t = time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if day > 28 && t.Day() != day {
		return time.Time{}, false // no such day: time.Date went on into the next month
	}
	return t, true
}

// parseJSONTime is ParseTime for a field that may be missing (present).
func parseJSONTime(s string, present, isNum bool) (time.Time, error) {
	if !present {
		return time.Time{}, &record.FieldError{Field: "time", Reason: "missing (use ts, time, timestamp, @timestamp or msec)"}
	}
	s = strings.TrimSpace(s)
	if !isNum && len(s) >= 20 && s[4] == '-' {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, nil
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 {
		if f > 1e11 { // milliseconds
			return time.UnixMilli(int64(f)), nil
		}
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)).Round(time.Millisecond), nil
	}
	clf := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if t, err := ParseCLFTime([]byte(clf)); err == nil {
		return t, nil
	}
	return time.Time{}, &record.FieldError{Field: "time", Value: record.Shorten(s), Reason: "not RFC 3339, epoch seconds/milliseconds or [dd/Mon/yyyy:hh:mm:ss +zzzz]"}
}
