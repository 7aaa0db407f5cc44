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
// (GOGC=100). The limit follows what the head holds (adaptMemoryLimit):
// memoryLimit(B, used). The limit is soft: a search that needs more memory
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
// bytes: B + 32 MiB while the head is at most half full, rising linearly to
// 1.5 × B + 32 MiB when it is full. Sealed heads keep the live heap far
// below B most of the time (the peer benchmark: 178 MB live at its peak for
// B = 256 MiB), and a limit that low keeps the resident size within B +
// 64 MiB; but when ingest outruns the flushes the head fills to B, the
// live heap is B plus the encoders and chunks in flight, and a limit
// below that would make the collector run without pause. The head is
// flushed at half of B, so the limit only rises while a flush is behind.
func memoryLimit(headMaxBytes, used int64) int64 {
	extra := max(0, min(used, headMaxBytes)-headMaxBytes/2)
	return headMaxBytes + extra + 32<<20
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
