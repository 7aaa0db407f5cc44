package store

import "testing"

// TestNewFrame: a frame buffer, new or reused from released frames whose
// bytes were left dirty, has the asked-for room for a header, zeroed, and
// at least the asked-for capacity, on either side of the pooled sizes.
func TestNewFrame(t *testing.T) {
	for _, n := range []int{100, minPooledFrame - 1, minPooledFrame, 1 << 20, maxPooledFrame, maxPooledFrame + 1} {
		for round := range 3 {
			const head = 30
			f := newFrame(head, n)
			if len(f) != head || cap(f) < n {
				t.Fatalf("newFrame(%d, %d), round %d: len %d cap %d", head, n, round, len(f), cap(f))
			}
			for i, c := range f {
				if c != 0 {
					t.Fatalf("newFrame(%d, %d), round %d: header byte %d is %d", head, n, round, i, c)
				}
			}
			dirty := f[:cap(f)]
			for i := range dirty {
				dirty[i] = 0xff
			}
			releaseFrames([][]byte{f})
		}
	}
}
