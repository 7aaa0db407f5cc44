package main

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"time"
)

// setMemoryLimit gives the Go runtime a soft memory limit derived from
// storage.head_max_bytes (B), unless the operator set GOMEMLIMIT (then it
// returns false and the limit is left alone). Without a limit the garbage
// collector lets the heap grow to twice what is live before it collects
// (GOGC=100), and keeps freed pages. The limit follows what the head holds
// (adaptMemoryLimit): memoryLimit(B, used). The limit is soft: a search that needs more memory
// gets it, at the cost of more frequent collections.
//
// The limit counts only the Go runtime's own memory; the resident size is
// the limit plus the pages of memory-mapped segment files the process has
// touched (a merge reads every part of its day) plus the collector's brief
// overshoot, about 32 to 48 MiB in the measurements of docs/storage.md.
func setMemoryLimit(headMaxBytes int64, log *slog.Logger) bool {
	if os.Getenv("GOMEMLIMIT") != "" {
		log.Info("memory limit from GOMEMLIMIT", "bytes", debug.SetMemoryLimit(-1))
		return false
	}
	limit := memoryLimit(headMaxBytes, 0)
	debug.SetMemoryLimit(limit)
	log.Debug("memory limit from storage.head_max_bytes", "bytes", limit)
	return true
}

// memoryLimit is the soft limit for a head bound B when the head holds used
// bytes: 1.5 × used + 32 MiB, and never below B/2 + 48 MiB. The live heap
// is about what the head holds plus a few tens of MiB (encoders, parsed
// footers, chunks in flight), so the limit leaves the collector half the
// live heap as headroom, as GOGC=50 would, and makes the runtime return
// freed pages to the system instead of keeping them: in issue 15's peer
// benchmark (B = 256 MiB) sealed heads keep used near 75 MB, and this limit
// took the peak resident size from 289–295 MiB under a fixed B + 32 MiB to
// 227–244 MiB, for 5–10% more CPU. When ingest outruns the flushes the head
// fills to B and the limit reaches 1.5 × B + 32 MiB, as before, so that the
// collector does not run without pause; the floor keeps an idle daemon's
// searches and merges from collecting constantly.
func memoryLimit(headMaxBytes, used int64) int64 {
	return max(headMaxBytes/2+48<<20, min(used, headMaxBytes)*3/2+32<<20)
}

// adaptMemoryLimit moves the soft limit with the head's use (memoryLimit)
// every second until ctx ends. inUse is the store's MemoryInUse.
func adaptMemoryLimit(ctx context.Context, headMaxBytes int64, inUse func() int64) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := memoryLimit(headMaxBytes, 0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if l := memoryLimit(headMaxBytes, inUse()); l != last {
			debug.SetMemoryLimit(l)
			last = l
		}
	}
}
