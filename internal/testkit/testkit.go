// Package testkit holds what tests of several packages share: a settable
// clock and golden files. Only _test.go files import it.
package testkit

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// Update is the -update flag: tests rewrite their golden files (and
// fixtures, and generated documents) instead of comparing with them.
var Update = flag.Bool("update", false, "rewrite golden files, fixtures and generated documents instead of comparing with them")

// Clock is a settable clock, safe for concurrent use; pass its Now where a
// component takes a clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock set to t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Golden compares got with the golden file at path; with -update it writes
// got there first. A difference is reported at its first differing line.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *Update {
		if err := os.WriteFile(path, got, 0o644); err != nil { //nolint:gosec // G306: a golden file is committed source, readable like the rest of the tree
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (go test -run '%s' -update writes it): %v", t.Name(), err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from what the test produced (if the change is intended: go test -run '%s' -update, and review the diff)\n%s",
			path, t.Name(), firstDiff(got, want))
	}
}

// firstDiff describes the first line where got and want differ.
func firstDiff(got, want []byte) string {
	g, w := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl []byte
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if !bytes.Equal(gl, wl) || i >= len(g) || i >= len(w) {
			return fmt.Sprintf("line %d:\ngot:  %q\nwant: %q", i+1, gl, wl)
		}
	}
	return "no line differs"
}
