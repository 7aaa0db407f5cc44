package main

import (
	"log/slog"
	"os"
	"runtime/debug"
)

// setMemoryLimit gives the Go runtime a soft memory limit derived from
// storage.head_max_bytes, unless the operator set GOMEMLIMIT. The head and
// everything on its way in (reserved per chunk) stay under head_max_bytes;
// without a limit the garbage collector lets the heap grow to twice what is
// live before it collects (GOGC=100), so the process would take about twice
// the bound. With the limit it collects earlier as the heap nears it, which
// keeps the resident size near 1.5 × head_max_bytes + 64 MiB (docs/storage.md
// has the measurement and the documented bound). The limit is soft: a search that needs more memory
// gets it, at the cost of more frequent collections.
//
// The limit counts only the Go runtime's own memory, and the runtime lets the
// heap reach it before it collects: the resident size is the limit plus the
// pages of memory-mapped segment files the process has touched (a merge reads
// every part of its day) plus the runtime's brief overshoot. The limit
// therefore lies 48 MiB under the 1.5 × head_max_bytes + 64 MiB aimed at for
// the resident size.
func setMemoryLimit(headMaxBytes int64, log *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		log.Info("memory limit from GOMEMLIMIT", "bytes", debug.SetMemoryLimit(-1))
		return
	}
	limit := memoryLimit(headMaxBytes)
	debug.SetMemoryLimit(limit)
	log.Debug("memory limit from storage.head_max_bytes", "bytes", limit)
}

// memoryLimit is the soft limit for a head bound: 1.5 × head_max_bytes for the
// head, records in flight, the zstd state and the garbage collector's slack,
// plus 16 MiB; the other 48 MiB of the resident aim are for mapped segment
// pages and the collector's overshoot.
func memoryLimit(headMaxBytes int64) int64 { return headMaxBytes*3/2 + 16<<20 }
