package parse

import (
	"net/netip"
	"testing"

	"github.com/retentiond/retentiond/internal/record"
)

// Frames as captured byte for byte from nginx 1.22, logger 2.38 and rsyslog
// 8.2302 (research 03-ecosystem.md §1.1–1.3).
var syslogFrames = []struct {
	name, frame, msg string
}{
	{"nginx combined", `<190>Nov 21 16:27:08 vm nginx: 127.0.0.1 - - [21/Nov/2026:16:27:08 +0000] "GET /checkout/order?id=42&x=%22y%22 HTTP/1.1" 200 3 "https://ref.example/a?b=c" "Mozilla/5.0 (X11; Linux x86_64) \x22quoted\x22 UA"`,
		`127.0.0.1 - - [21/Nov/2026:16:27:08 +0000] "GET /checkout/order?id=42&x=%22y%22 HTTP/1.1" 200 3 "https://ref.example/a?b=c" "Mozilla/5.0 (X11; Linux x86_64) \x22quoted\x22 UA"`},
	{"nginx vhost tag", `<173>Nov 21 16:27:08 vm hostA_vhosts: shop.example.com:8088 127.0.0.1 - - [21/Nov/2026:16:27:08 +0000] "GET /c HTTP/1.1" 200 3 "-" "UA"`,
		`shop.example.com:8088 127.0.0.1 - - [21/Nov/2026:16:27:08 +0000] "GET /c HTTP/1.1" 200 3 "-" "UA"`},
	{"nginx nohostname json", `<190>Nov  1 16:27:08 nginx: {"time":"2026-11-21T16:27:08+00:00","host":"shop.example.com","remote_addr":"127.0.0.1","request_uri":"/c","status":200,"user_agent":"M \"q\" UA"}`,
		`{"time":"2026-11-21T16:27:08+00:00","host":"shop.example.com","remote_addr":"127.0.0.1","request_uri":"/c","status":200,"user_agent":"M \"q\" UA"}`},
	{"logger rfc5424 with SD", `<182>1 2026-11-21T16:28:28.736032+00:00 vm apache_tcp - - [timeQuality tzKnown="1" isSynced="0"] www.customer-a.test:80 127.0.0.1 - - [21/Nov/2026:16:28:28 +0000] "GET /index.html?q=1 HTTP/1.1" 200 206 "-" "Mozilla/5.0 \"x\""`,
		`www.customer-a.test:80 127.0.0.1 - - [21/Nov/2026:16:28:28 +0000] "GET /index.html?q=1 HTTP/1.1" 200 206 "-" "Mozilla/5.0 \"x\""`},
	{"rsyslog rfc5424 double space and LF", "<190>1 2026-11-21T16:29:05+00:00 vm nginx - - -  127.0.0.1 - - [21/Nov/2026:16:29:05 +0000] \"GET /p?x=1 HTTP/1.1\" 200 3 \"-\" \"UA/1.0\"\n",
		`127.0.0.1 - - [21/Nov/2026:16:29:05 +0000] "GET /p?x=1 HTTP/1.1" 200 3 "-" "UA/1.0"`},
	{"tag with pid", `<182>Nov 21 16:28:28 vm apache[123]: h.example 192.0.2.1 - - [21/Nov/2026:16:28:28 +0000] "GET / HTTP/1.1" 200 1 "-" "-"`,
		`h.example 192.0.2.1 - - [21/Nov/2026:16:28:28 +0000] "GET / HTTP/1.1" 200 1 "-" "-"`},
	{"sd with escaped bracket", `<182>1 - - - - - [a b="x\]y"][c d="e"] h.example 192.0.2.1 - - [21/Nov/2026:16:28:28 +0000] "GET / HTTP/1.1" 200 1 "-" "-"`,
		`h.example 192.0.2.1 - - [21/Nov/2026:16:28:28 +0000] "GET / HTTP/1.1" 200 1 "-" "-"`},
}

func TestSyslogMessage(t *testing.T) {
	for _, tt := range syslogFrames {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := SyslogMessage([]byte(tt.frame))
			if err != nil {
				t.Fatal(err)
			}
			if string(msg) != tt.msg {
				t.Fatalf("msg\n%q\nwant\n%q", msg, tt.msg)
			}
			if DetectMessageFormat(msg) == FormatCombined {
				return // no vhost: rejected, see TestParseSyslogFields
			}
			if _, err := ParseSyslog([]byte(tt.frame)); err != nil {
				t.Fatalf("ParseSyslog: %v", err)
			}
		})
	}
	for _, bad := range []string{"", "hello", "<190", "<abc>x", "<190>1 2026 vm"} {
		if _, err := ParseSyslog([]byte(bad)); err == nil {
			t.Errorf("ParseSyslog(%q) succeeded", bad)
		}
	}
}

func TestParseSyslogFields(t *testing.T) {
	rec, err := ParseSyslog([]byte(syslogFrames[3].frame))
	if err != nil {
		t.Fatal(err)
	}
	want := record.Record{Time: mustTime(t, "2026-11-21T16:28:28Z"), Domain: "www.customer-a.test", Path: "/index.html?q=1",
		UserAgent: `Mozilla/5.0 "x"`, IP: netip.MustParseAddr("127.0.0.1")}
	checkRecord(t, rec, want)
	// A combined line over syslog has no vhost: rejected, with the reason.
	if _, err := ParseSyslog([]byte(syslogFrames[0].frame)); err == nil || Reason(err) != "domain" {
		t.Errorf("combined over syslog: err %v (reason %s), want a domain error", err, Reason(err))
	}
}

func FuzzSyslogFrame(f *testing.F) {
	for _, tt := range syslogFrames {
		f.Add([]byte(tt.frame))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		msg, err := SyslogMessage(frame)
		if err == nil && len(msg) > len(frame) {
			t.Fatal("message longer than frame")
		}
		rec, err := ParseSyslog(frame)
		if err != nil {
			return
		}
		again := rec
		if err := again.Normalize(); err != nil {
			t.Fatalf("accepted record does not validate: %v", err)
		}
	})
}
