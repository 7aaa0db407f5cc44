package main

import "log/slog"

// connectionCaps returns the HTTP and syslog TCP connection caps to use.
// Every open connection holds a file descriptor, and the store needs
// descriptors of its own (WAL, part and segment files being written, the
// audit log, the lock): if the listeners could use them all, a flood of
// connections would make the next WAL rotation fail with EMFILE. So the
// listeners together get at most half of the open-file limit; configured
// caps that add up to more are lowered in proportion. nofile is the soft
// RLIMIT_NOFILE (Go raises it to the hard limit at start-up; the systemd
// unit sets 65536), 0 when unknown (caps kept).
func connectionCaps(httpMax, syslogMax int, nofile uint64) (int, int, bool) {
	budget := nofile / 2
	total := uint64(httpMax + syslogMax)
	if nofile == 0 || total <= budget {
		return httpMax, syslogMax, false
	}
	h := max(1, int(uint64(httpMax)*budget/total))
	s := max(1, int(uint64(syslogMax)*budget/total))
	return h, s, true
}

// limitConnections applies connectionCaps to the configured caps and warns
// when it lowers them.
func limitConnections(log *slog.Logger, httpMax, syslogMax int) (int, int) {
	nofile := openFileLimit()
	h, s, lowered := connectionCaps(httpMax, syslogMax, nofile)
	if lowered {
		log.Warn("connection caps lowered to half of the open-file limit; raise LimitNOFILE (ulimit -n) or lower the caps",
			"open_file_limit", nofile, "http.max_connections", h, "ingest.syslog_max_connections", s)
	}
	return h, s
}
