package record

import (
	"bytes"
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

// TestAppendJSONTextMatchesEncoderWithoutHTMLEscaping: the NDJSON rows'
// strings are escaped as a json.Encoder with SetEscapeHTML(false) does.
func TestAppendJSONTextMatchesEncoderWithoutHTMLEscaping(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back`, "<script>&amp;", "/a?x=1&y=<2>", "\x00\x01\x1f\x7f",
		"tab\tnl\ncr\r\b\f", "invalid \xff\xfe bytes", "line\u2028sep\u2029", "ünïcødé 日本", "\xed\xa0\x80"} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if got := string(AppendJSONText(nil, s)) + "\n"; got != want.String() {
			t.Errorf("AppendJSONText(%q) = %s, encoding/json without HTML escaping gives %s", s, got, want.String())
		}
	}
}

// TestAppendNDJSONIsFaithful: times have a fixed width (milliseconds
// always written) and & < > are written as they are, as docs/search.md
// promises; the old layout wrote "10:00:00Z" and "\u0026".
func TestAppendNDJSONIsFaithful(t *testing.T) {
	for _, tc := range []struct {
		ms   int
		want string
	}{
		{0, `{"time":"2026-11-21T10:00:00.000Z","domain":"a.nl","path":"/a?x=1&y=<2>","user_agent":"","ip":"192.0.2.1"}`},
		{120, `{"time":"2026-11-21T10:00:00.120Z","domain":"a.nl","path":"/a?x=1&y=<2>","user_agent":"","ip":"192.0.2.1"}`},
		{999, `{"time":"2026-11-21T10:00:00.999Z","domain":"a.nl","path":"/a?x=1&y=<2>","user_agent":"","ip":"192.0.2.1"}`},
	} {
		r := Record{Time: time.Date(2026, 11, 21, 11, 0, 0, tc.ms*1e6, time.FixedZone("CET", 3600)), Domain: "a.nl",
			Path: "/a?x=1&y=<2>", IP: netip.MustParseAddr("192.0.2.1")}
		if got := string(AppendNDJSON(nil, &r, nil)); got != tc.want+"\n" {
			t.Errorf("ms %d:\n got %s\nwant %s", tc.ms, got, tc.want)
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
