package main

import "testing"

func TestConnectionCaps(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		http, syslog         int
		nofile               uint64
		wantHTTP, wantSyslog int
		wantLowered          bool
	}{
		{"systemd unit", 512, 1024, 65536, 512, 1024, false},
		{"by hand, 1024 soft", 512, 1024, 1024, 170, 341, true},
		{"exactly half", 256, 256, 1024, 256, 256, false},
		{"unknown limit", 512, 1024, 0, 512, 1024, false},
		{"tiny limit keeps one each", 512, 1024, 2, 1, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, s, lowered := connectionCaps(tc.http, tc.syslog, tc.nofile)
			if h != tc.wantHTTP || s != tc.wantSyslog || lowered != tc.wantLowered {
				t.Fatalf("connectionCaps(%d, %d, %d) = %d, %d, %v; want %d, %d, %v",
					tc.http, tc.syslog, tc.nofile, h, s, lowered, tc.wantHTTP, tc.wantSyslog, tc.wantLowered)
			}
			if tc.nofile > 0 && uint64(h+s) > max(tc.nofile/2, 2) {
				t.Fatalf("caps %d + %d exceed half of %d", h, s, tc.nofile)
			}
		})
	}
}
