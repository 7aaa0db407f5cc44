package loggen

import (
	"strconv"
	"strings"

	"github.com/retentiond/retentiond/internal/record"
)

// AppendNDJSON appends r as one NDJSON line in the API's row layout
// (record.AppendNDJSON: millisecond times, strings escaped as encoding/json
// does without HTML escaping), and a trailing newline.
func AppendNDJSON(b []byte, r *record.Record) []byte { return record.AppendNDJSON(b, r, nil) }

const hexDigits = "0123456789abcdef"

// AppendCombined appends r as an Apache/nginx "combined" log line. The
// status, size, method, protocol and referer are plausible noise derived
// from the record itself (so the output stays deterministic); a parser must
// drop them. Time has second precision, as in real logs. Quotes and
// backslashes in the path and user agent are escaped as Apache does (\" and
// \\), other control bytes as \xhh; an empty user agent is written as "-".
func AppendCombined(b []byte, r *record.Record) []byte {
	h := noiseHash(r)
	b = r.IP.AppendTo(b)
	b = append(b, " - - "...)
	b = r.Time.UTC().AppendFormat(b, "[02/Jan/2006:15:04:05 -0700]")
	b = append(b, " \""...)
	b = append(b, method(r.Path, h)...)
	b = append(b, ' ')
	b = appendApacheEscaped(b, r.Path)
	if h>>8&7 < 3 {
		b = append(b, " HTTP/2.0\" "...)
	} else {
		b = append(b, " HTTP/1.1\" "...)
	}
	status, size := statusSize(r.Path, h)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	if size == 0 {
		b = append(b, '-')
	} else {
		b = strconv.AppendInt(b, int64(size), 10)
	}
	b = append(b, " \""...)
	b = appendReferer(b, r, h)
	b = append(b, "\" \""...)
	if r.UserAgent == "" {
		b = append(b, '-')
	} else {
		b = appendApacheEscaped(b, r.UserAgent)
	}
	return append(b, "\"\n"...)
}

// AppendVhostCombined appends r in Apache's vhost_combined format: the
// virtual host and port, a space, then the combined line.
func AppendVhostCombined(b []byte, r *record.Record) []byte {
	b = append(b, r.Domain...)
	b = append(b, ":443 "...)
	return AppendCombined(b, r)
}

// appendApacheEscaped escapes like Apache's ap_escape_logitem: backslash and
// double quote get a backslash, control bytes become \xhh.
func appendApacheEscaped(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != 0x7f && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	return append(b, s[start:]...)
}

// noiseHash mixes the record's time and path (FNV-1a, then a finaliser) so
// the noise fields vary between records yet repeat for the same record.
func noiseHash(r *record.Record) uint64 {
	h := uint64(14695981039346656037) ^ uint64(r.Time.UnixMilli())
	for i := 0; i < len(r.Path); i++ {
		h ^= uint64(r.Path[i])
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}

func pathOnly(p string) string {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		return p[:i]
	}
	return p
}

func method(p string, h uint64) string {
	switch pathOnly(p) {
	case "/xmlrpc.php", "/wp-admin/admin-ajax.php", "/wp-cron.php":
		if h&15 != 0 {
			return "POST"
		}
	case "/wp-login.php":
		if h&1 == 0 {
			return "POST"
		}
	case "/":
		if h&63 == 0 {
			return "HEAD"
		}
	}
	return "GET"
}

func isAsset(p string) bool {
	p = pathOnly(p)
	for _, ext := range []string{".css", ".js", ".jpg", ".png", ".webp", ".ico", ".gif", ".svg", ".woff2"} {
		if strings.HasSuffix(p, ext) {
			return true
		}
	}
	return false
}

// probeSet lets the noise fields treat scanner probes like a server would:
// mostly "404 Not Found", and never with a referer.
var probeSet = func() map[string]bool {
	m := make(map[string]bool, len(probes))
	for _, p := range probes {
		m[p] = true
	}
	return m
}()

func statusSize(p string, h uint64) (status, size int) {
	x := int(h>>16) & 1023
	sz := int(h >> 32 & 0xffffff)
	switch {
	case strings.HasPrefix(p, "/wp-admin/") && probeSet[p]:
		return 302, 0
	case strings.HasPrefix(p, "/xmlrpc.php"):
		return []int{403, 405, 200}[x%3], 40 + sz%400
	case strings.HasPrefix(p, "/wp-login.php"):
		if x%4 == 0 {
			return 302, 0
		}
		return 200, 4000 + sz%3000
	case probeSet[p]:
		return 404, 150 + sz%350
	case strings.HasPrefix(p, "/.") || strings.Contains(p, ".php.") || strings.HasSuffix(pathOnly(p), ".zip") ||
		strings.Contains(p, "phpunit") || strings.Contains(p, "cgi-bin") || strings.Contains(p, "invokefunction"):
		return 404, 150 + sz%350
	case isAsset(p):
		if x < 300 {
			return 304, 0
		}
		if x < 320 {
			return 404, 150 + sz%350
		}
		if strings.HasSuffix(pathOnly(p), ".css") || strings.HasSuffix(pathOnly(p), ".js") {
			return 200, 1500 + sz%250000
		}
		return 200, 5000 + sz%900000
	case x < 40:
		return 301, 0
	case x < 80:
		return 404, 150 + sz%20000
	case x < 85:
		return 500, 500 + sz%1000
	}
	return 200, 8000 + sz%120000
}

var searchReferers = []string{"https://www.google.com/", "https://www.google.nl/", "https://www.bing.com/", "https://duckduckgo.com/", "https://www.facebook.com/", "https://l.instagram.com/"}

func appendReferer(b []byte, r *record.Record, h uint64) []byte {
	x := int(h>>40) & 255
	if probeSet[r.Path] {
		return append(b, '-')
	}
	if isAsset(r.Path) {
		if x < 230 {
			b = append(b, "https://"...)
			b = append(b, r.Domain...)
			return append(b, '/')
		}
		return append(b, '-')
	}
	switch {
	case x < 110:
		return append(b, '-')
	case x < 200:
		return append(b, searchReferers[x%len(searchReferers)]...)
	}
	b = append(b, "https://"...)
	b = append(b, r.Domain...)
	return append(b, '/')
}
