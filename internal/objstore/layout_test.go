package objstore

import (
	"strings"
	"testing"
	"time"
)

func TestLayoutKeys(t *testing.T) {
	day := time.Date(2026, 1, 2, 23, 59, 0, 0, time.FixedZone("x", -3600)) // 2026-01-03 UTC
	if got := DayPrefix(day); got != "days/2026-01-03/" {
		t.Errorf("DayPrefix = %q", got)
	}
	key := SegmentKey(day, "node-a.1", "seg-00000001-00000004.seg")
	if key != "days/2026-01-03/node-a.1/seg-00000001-00000004.seg" {
		t.Errorf("SegmentKey = %q", key)
	}
	if !strings.HasPrefix(key, DayPrefix(day)) {
		t.Errorf("segment key %q outside its day prefix", key)
	}
	d, node, file, ok := ParseSegmentKey(key)
	if !ok || !d.Equal(time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)) || node != "node-a.1" || file != "seg-00000001-00000004.seg" {
		t.Errorf("ParseSegmentKey = %v %q %q %v", d, node, file, ok)
	}
	if LeaseKey() != "leases/purge" {
		t.Errorf("LeaseKey = %q", LeaseKey())
	}
	if got := PurgeRunKey(time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC)); got != "purges/2024-02-29" {
		t.Errorf("PurgeRunKey = %q", got)
	}
}

func TestParseSegmentKeyRejects(t *testing.T) {
	for _, key := range []string{
		"",
		"days/",
		"days/2026-01-02/",
		"days/2026-01-02/node",
		"days/2026-01-02/node/",
		"days/2026-1-2/node/f.seg",
		"days/2026-02-30/node/f.seg",
		"days/2026-01-02/../f.seg",
		"days/2026-01-02/node/sub/f.seg",
		"days/2026-01-02/no de/f.seg",
		"leases/purge",
		"purges/2026-01-02",
		"xdays/2026-01-02/node/f.seg",
	} {
		if _, _, _, ok := ParseSegmentKey(key); ok {
			t.Errorf("ParseSegmentKey(%q) accepted", key)
		}
	}
}

func TestValidNode(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"node-01.example_com", true},
		{strings.Repeat("x", MaxNodeLen), true},
		{strings.Repeat("x", MaxNodeLen+1), false},
		{"", false},
		{".", false},
		{"..", false},
		{"a/b", false},
		{"a b", false},
		{"knoten-ü", false},
		{"a\x00", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidNode(tc.name)
			if (err == nil) != tc.ok {
				t.Errorf("ValidNode(%q) = %v, want ok=%v", tc.name, err, tc.ok)
			}
		})
	}
}

func TestSegmentKeyPanicsOnInvalidNode(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("SegmentKey with node \"a/b\" did not panic")
		}
	}()
	SegmentKey(time.Now(), "a/b", "f.seg")
}
