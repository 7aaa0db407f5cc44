package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/purge"
)

// TestPrintRemote checks the CLI's lines for the bucket step: the proof of
// each destroyed day, a skip with its reason, a failure with the expired
// days left in the bucket.
func TestPrintRemote(t *testing.T) {
	day := time.Date(2024, 2, 27, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		r    *purge.RemoteReport
		want []string
	}{
		{"none", nil, nil},
		{"destroyed", &purge.RemoteReport{Store: "http://s3/logs", Objects: 4, Bytes: 3000, Markers: 1,
			Days: []purge.RemoteDay{{Day: day, Objects: 4, Bytes: 3000, Markers: 1, Verified: true}}},
			[]string{"Bucket http://s3/logs: destroyed 1 day, 4 objects and versions, 2.9 KiB, 1 delete marker.",
				"2024-02-27  4 objects  2.9 KiB  listed again: empty"}},
		{"lease", &purge.RemoteReport{Store: "s", Skipped: purge.SkipLeaseHeld, By: "b", At: day},
			[]string{"left alone, node b holds the purge lease (until 2024-02-27T00:00:00Z)"}},
		{"failed", &purge.RemoteReport{Store: "s", Error: "objstore s: list: connection refused", Remaining: []time.Time{day}},
			[]string{"Bucket purge FAILED: objstore s: list: connection refused",
				"Expired days still in the bucket (the next run retries): 2024-02-27"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			printRemote(&b, tc.r)
			if tc.want == nil && b.Len() != 0 {
				t.Fatalf("printed %q", b.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("missing %q in\n%s", w, b.String())
				}
			}
		})
	}
}
