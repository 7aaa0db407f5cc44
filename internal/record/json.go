package record

import "unicode/utf8"

// TimeLayout is how the API writes a record's time: RFC 3339 in UTC with
// exactly three fractional digits ("2026-11-21T10:00:00.120Z"), so every
// row's time has the same width and sorts as text. Records are stored to
// the millisecond, so nothing is lost.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// AppendNDJSON appends r as one line of the API's NDJSON row layout,
//
//	{"time":TimeLayout,"domain":…,"path":…,"user_agent":…,"ip":…}
//
// and a newline. The layout is a contract with operators' scripts, so it is
// written in one place; quote escapes each string field (nil means
// AppendJSONText: no HTML escaping, so a path with & < > reads as logged),
// which lets search show invalid UTF-8 as evidence while the generator
// mirrors encoding/json.
func AppendNDJSON(b []byte, r *Record, quote func(b []byte, s string) []byte) []byte {
	if quote == nil {
		quote = AppendJSONText
	}
	b = append(b, `{"time":"`...)
	b = r.Time.UTC().AppendFormat(b, TimeLayout)
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
func AppendJSONString(b []byte, s string) []byte { return appendJSON(b, s, true) }

// AppendJSONText appends s as a JSON string escaped as a json.Encoder with
// SetEscapeHTML(false) does: like AppendJSONString, but <, > and & stay as
// they are, so that a row read by a plain tool (grep, a text editor) shows
// the path byte for byte as it was logged.
func AppendJSONText(b []byte, s string) []byte { return appendJSON(b, s, false) }

func appendJSON(b []byte, s string, html bool) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!html || c != '<' && c != '>' && c != '&') {
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
