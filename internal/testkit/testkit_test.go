package testkit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	c := NewClock(t0)
	c.Add(time.Hour)
	if !c.Now().Equal(t0.Add(time.Hour)) {
		t.Errorf("Add: %v", c.Now())
	}
	c.Set(t0)
	if !c.Now().Equal(t0) {
		t.Errorf("Set: %v", c.Now())
	}
}

// recorder catches what Golden reports.
type recorder struct {
	testing.TB
	msgs []string
}

func (r *recorder) Errorf(format string, args ...any) { r.msgs = append(r.msgs, format) }
func (r *recorder) Helper()                           {}
func (r *recorder) Name() string                      { return "TestX" }

func TestGolden(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.golden")
	if err := os.WriteFile(path, []byte("a\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		got  string
		fail bool
	}{{"a\nb\n", false}, {"a\nc\n", true}, {"a\nb\nc\n", true}, {"a\n", true}} {
		r := &recorder{TB: t}
		Golden(r, path, []byte(tt.got))
		if (len(r.msgs) > 0) != tt.fail {
			t.Errorf("Golden(%q): reported %v, want failure %v", tt.got, r.msgs, tt.fail)
		}
	}
	if d := firstDiff([]byte("a\nc\n"), []byte("a\nb\n")); !strings.Contains(d, "line 2") {
		t.Errorf("firstDiff: %s", d)
	}
}
