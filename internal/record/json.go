package record

import (
	"time"
	"unicode/utf8"
)

// AppendNDJSON appends r as one line of the API's NDJSON row layout,
//
//	{"time":RFC 3339 UTC,"domain":…,"path":…,"user_agent":…,"ip":…}
//
// and a newline. The layout is a contract with operators' scripts, so it is
// written in one place; quote escapes each string field (nil means
// AppendJSONString), which lets search show invalid UTF-8 as evidence while
// the generator mirrors encoding/json.
func AppendNDJSON(b []byte, r *Record, quote func(b []byte, s string) []byte) []byte {
	if quote == nil {
		quote = AppendJSONString
	}
	b = append(b, `{"time":"`...)
	b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","domain":`...)
	b = quote(b, r.Domain)
	b = append(b, `,"path":`...)
	b = quote(b, r.Path)
	b = append(b, `,"user_agent":`...)
	b = quote(b, r.UserAgent)
	b = append(b, `,"ip":"`...)
	b = r.IP.AppendTo(b)
	return append(b, "\"}\n"...)
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string, escaped exactly as encoding/json.Marshal does (HTML-safe:
// <, > and & become \u003c, \u003e, \u0026; invalid UTF-8 becomes \ufffd;
// U+2028 and U+2029 are escaped), so tests can compare byte for byte.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[c&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
