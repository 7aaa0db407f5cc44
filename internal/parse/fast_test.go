package parse

import (
	"fmt"
	"testing"
)

// plainLenSlow is the byte-at-a-time loop plainLen replaced: the reference
// it must agree with.
func plainLenSlow(b []byte) int {
	for i, c := range b {
		if c == '"' || c == '\\' || c < 0x20 {
			return i
		}
	}
	return len(b)
}

// TestPlainLen puts each byte that ends a plain run at every position of
// strings long enough for the eight-byte steps and their tail, with bytes
// on either side of the thresholds around it.
func TestPlainLen(t *testing.T) {
	fill := []byte("aZ \x7f\x80\xff!#[]" + "é")
	for _, stop := range []byte{'"', '\\', 0x00, 0x1f, '\n'} {
		for _, n := range []int{0, 1, 7, 8, 9, 16, 17, 31} {
			t.Run(fmt.Sprintf("%q in %d bytes", stop, n), func(t *testing.T) {
				for at := 0; at <= n; at++ {
					b := make([]byte, n)
					for i := range b {
						b[i] = fill[(i+at)%len(fill)]
					}
					if at < n {
						b[at] = stop
					}
					if got, want := plainLen(b), plainLenSlow(b); got != want {
						t.Fatalf("plainLen(%q) = %d, want %d", b, got, want)
					}
				}
			})
		}
	}
}
