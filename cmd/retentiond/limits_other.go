//go:build !unix

package main

// openFileLimit is 0 (unknown, caps kept): this system has no
// RLIMIT_NOFILE. Windows, for one, limits handles per process far above any
// configured connection cap.
func openFileLimit() uint64 { return 0 }
