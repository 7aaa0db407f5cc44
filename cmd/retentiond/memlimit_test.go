package main

import "testing"

// TestMemoryLimit: B + 32 MiB while the head is at most half full (it is
// flushed there), rising to 1.5 × B + 32 MiB when it is full, never more.
func TestMemoryLimit(t *testing.T) {
	const B, MiB = 256 << 20, 1 << 20
	for _, c := range []struct {
		name string
		used int64
		want int64
	}{
		{"empty", 0, B/2 + 48*MiB},
		{"peer benchmark's sealed head", 75 * MiB, B/2 + 48*MiB},
		{"a third full", B / 3, B/2 + 32*MiB + 16*MiB},
		{"half full", B / 2, 3*B/4 + 32*MiB},
		{"full", B, B + B/2 + 32*MiB},
		{"over (reservations race)", 2 * B, B + B/2 + 32*MiB},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := memoryLimit(B, c.used); got != c.want {
				t.Fatalf("memoryLimit(%d MiB, %d MiB) = %d MiB, want %d MiB", B/MiB, c.used/MiB, got/MiB, c.want/MiB)
			}
		})
	}
}
