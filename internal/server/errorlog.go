package server

import (
	"log"
	"log/slog"
	"net/netip"
	"regexp"
	"strings"
)

// newErrorLog returns the logger for http.Server.ErrorLog. net/http writes
// connection-level errors there, and many name the client ("http: TLS
// handshake error from 198.51.100.7:51234: EOF", "http: panic serving
// ..."). A client address is personal data and never goes into the
// daemon's log (docs/security.md), so every address in such a line is
// replaced by <addr> before it reaches slog.
func newErrorLog(l *slog.Logger) *log.Logger {
	return log.New(scrubWriter{l}, "", 0)
}

type scrubWriter struct{ log *slog.Logger }

func (w scrubWriter) Write(p []byte) (int, error) {
	w.log.Warn(scrubAddrs(strings.TrimSuffix(string(p), "\n")), "source", "net/http")
	return len(p), nil
}

// addrCandidate matches words that may be an IP address, with or without a
// port (IPv4, bracketed or bare IPv6); scrubAddrs keeps only those that
// parse as one.
var addrCandidate = regexp.MustCompile(`\[[0-9A-Fa-f:.%]+\](?::[0-9]+)?|[0-9A-Fa-f:.]*[0-9A-Fa-f][:.][0-9A-Fa-f:.]*`)

// scrubAddrs replaces every IP address (and its port) in s by <addr>.
func scrubAddrs(s string) string {
	return addrCandidate.ReplaceAllStringFunc(s, func(c string) string {
		if isAddr(c) {
			return "<addr>"
		}
		if core := strings.TrimRight(c, ":."); isAddr(core) {
			return "<addr>" + c[len(core):]
		}
		return c
	})
}

func isAddr(s string) bool {
	if _, err := netip.ParseAddrPort(s); err == nil {
		return true
	}
	_, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	return err == nil
}
