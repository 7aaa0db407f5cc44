package record

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"
)

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back`, "<script>&amp;", "\x00\x01\x1f\x7f", "tab\tnl\ncr\r\b\f",
		"invalid \xff\xfe bytes", "line\u2028sep\u2029", "ünïcødé 日本", "\xed\xa0\x80"} {
		want, _ := json.Marshal(s)
		if got := string(AppendJSONString(nil, s)); got != string(want) {
			t.Errorf("AppendJSONString(%q) = %s, encoding/json gives %s", s, got, want)
		}
	}
}

func TestAppendNDJSONRoundTrips(t *testing.T) {
	r := Record{Time: time.Date(2026, 11, 21, 10, 0, 0, 123e6, time.UTC), Domain: "shop.example.nl",
		Path: `/a?q="x"&y=<1>`, UserAgent: "curl/8", IP: netip.MustParseAddr("2001:db8::7")}
	line := AppendNDJSON(nil, &r, nil)
	if line[len(line)-1] != '\n' {
		t.Fatalf("no trailing newline: %q", line)
	}
	var row struct {
		Time, Domain, Path, UserAgent, IP string
	}
	var raw map[string]string
	if err := json.Unmarshal(line, &raw); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	row.Time, row.Domain, row.Path, row.UserAgent, row.IP = raw["time"], raw["domain"], raw["path"], raw["user_agent"], raw["ip"]
	if len(raw) != 5 || row.Time != "2026-11-21T10:00:00.123Z" || row.Domain != r.Domain || row.Path != r.Path ||
		row.UserAgent != r.UserAgent || row.IP != "2001:db8::7" {
		t.Fatalf("row %q does not carry the record's five fields", line)
	}
}
