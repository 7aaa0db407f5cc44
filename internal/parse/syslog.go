package parse

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/retentiond/retentiond/internal/record"
)

// SyslogMessage returns the MSG part of one syslog frame, RFC 3164 or
// RFC 5424, without copying. The header's time is ignored on purpose: nginx
// writes local time without year or zone there, and relays rewrite it; the
// access-log line carries the real event time.
//
// It is hand-written rather than go-syslog because all it must do is find
// where MSG starts, which is a few byte scans; a full parser allocates every
// header field we then throw away.
func SyslogMessage(frame []byte) ([]byte, error) {
	b := frame
	if len(b) == 0 || b[0] != '<' {
		return nil, &SyntaxError{Column: 1, Msg: "syslog: expected <PRI>"}
	}
	i := 1
	for i < len(b) && i <= 4 && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == 1 || i >= len(b) || b[i] != '>' {
		return nil, &SyntaxError{Column: i + 1, Msg: "syslog: bad <PRI>"}
	}
	i++
	if i+1 < len(b) && b[i] >= '1' && b[i] <= '9' && b[i+1] == ' ' {
		return rfc5424Msg(b, i+2)
	}
	return rfc3164Msg(b, i)
}

// rfc5424Msg skips TIMESTAMP HOSTNAME APP-NAME PROCID MSGID and the
// structured data, starting after "VERSION ".
func rfc5424Msg(b []byte, i int) ([]byte, error) {
	for f := 0; f < 5; f++ {
		j := bytes.IndexByte(b[i:], ' ')
		if j < 0 {
			return nil, &SyntaxError{Column: len(b) + 1, Msg: "syslog: RFC 5424 header ends early"}
		}
		i += j + 1
	}
	// Structured data: "-" or one or more [id param="v\"al"] elements.
	if i < len(b) && b[i] == '-' {
		i++
	} else {
		for i < len(b) && b[i] == '[' {
			i++
			for i < len(b) && b[i] != ']' {
				if b[i] == '"' {
					i++
					for i < len(b) && b[i] != '"' {
						if b[i] == '\\' {
							i++
						}
						i++
					}
				}
				i++
			}
			if i >= len(b) {
				return nil, &SyntaxError{Column: len(b) + 1, Msg: "syslog: unterminated structured data"}
			}
			i++
		}
	}
	if i < len(b) && b[i] == ' ' {
		i++
	}
	msg := b[i:]
	msg = bytes.TrimPrefix(msg, []byte("\xef\xbb\xbf"))
	return trimMsg(msg), nil
}

// rfc3164Msg skips "Mmm dd hh:mm:ss [HOSTNAME ]TAG: ". nginx's nohostname
// option leaves the host name out, so the first word is the tag when it ends
// in ':' (or "]:" for TAG[PID]:).
func rfc3164Msg(b []byte, i int) ([]byte, error) {
	const stampLen = len("Nov 21 16:27:08 ")
	if len(b)-i < stampLen || b[i+3] != ' ' || b[i+6] != ' ' || b[i+9] != ':' || b[i+12] != ':' || b[i+15] != ' ' {
		// Not a BSD time stamp: some senders put the message right after PRI.
		return trimMsg(b[i:]), nil
	}
	i += stampLen
	for w := 0; w < 2; w++ {
		j := bytes.IndexByte(b[i:], ' ')
		if j < 0 {
			return nil, &SyntaxError{Column: len(b) + 1, Msg: "syslog: RFC 3164 header ends early"}
		}
		word := b[i : i+j]
		i += j + 1
		if len(word) > 0 && word[len(word)-1] == ':' {
			return trimMsg(b[i:]), nil
		}
	}
	return nil, &SyntaxError{Column: i + 1, Msg: "syslog: no TAG: in RFC 3164 header"}
}

// trimMsg removes the leading space rsyslog keeps before MSG and the
// trailing LF it puts inside octet-counted frames.
func trimMsg(m []byte) []byte {
	for len(m) > 0 && m[0] == ' ' {
		m = m[1:]
	}
	for len(m) > 0 && (m[len(m)-1] == '\n' || m[len(m)-1] == '\r' || m[len(m)-1] == 0) {
		m = m[:len(m)-1]
	}
	return m
}

// DetectMessageFormat says what a syslog MSG holds: a JSON object, a
// vhost_combined line (host or host:port before the client IP) or a
// combined line.
func DetectMessageFormat(msg []byte) Format {
	if len(msg) > 0 && msg[0] == '{' {
		return FormatJSON
	}
	// combined starts with the client IP and then ident ("-");
	// vhost_combined starts with a host name, or with a host IP followed by
	// the client IP.
	sp := bytes.IndexByte(msg, ' ')
	if sp < 0 {
		return FormatCombined
	}
	if _, err := record.ParseIP(string(msg[:sp])); err != nil {
		return FormatVhostCombined
	}
	rest := msg[sp+1:]
	if e := bytes.IndexByte(rest, ' '); e > 0 {
		rest = rest[:e]
	}
	if _, err := record.ParseIP(string(rest)); err == nil {
		return FormatVhostCombined
	}
	return FormatCombined
}

// ParseSyslog parses one syslog frame whose message is an access-log line
// in any of the accepted formats.
func ParseSyslog(frame []byte) (record.Record, error) {
	msg, err := SyslogMessage(frame)
	if err != nil {
		return record.Record{}, err
	}
	if len(msg) == 0 {
		return record.Record{}, errors.New("syslog: empty message")
	}
	rec, err := ParseLine(DetectMessageFormat(msg), msg, "")
	if err != nil {
		return rec, fmt.Errorf("syslog message: %w", err)
	}
	return rec, nil
}
