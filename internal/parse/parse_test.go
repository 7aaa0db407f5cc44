package parse

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/loggen"
	"github.com/retentiond/retentiond/internal/record"
)

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm.UTC()
}

func checkRecord(t *testing.T, got, want record.Record) {
	t.Helper()
	if !got.Time.Equal(want.Time) || got.Domain != want.Domain || got.Path != want.Path ||
		got.UserAgent != want.UserAgent || got.IP != want.IP {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestParseLine(t *testing.T) {
	ua := "Mozilla/5.0 (X11; Linux x86_64)"
	ts := "2026-11-21T16:27:08Z"
	tests := []struct {
		name   string
		format Format
		line   string
		domain string
		want   record.Record
	}{
		{"combined", FormatCombined,
			`127.0.0.1 - - [21/Nov/2026:16:27:08 +0000] "GET /checkout/order?id=42 HTTP/1.1" 200 3 "https://ref.example/" "` + ua + `"`,
			"Shop.Example.com", record.Record{Domain: "shop.example.com", Path: "/checkout/order?id=42", UserAgent: ua, IP: netip.MustParseAddr("127.0.0.1")}},
		{"nginx \\x22 escapes", FormatCombined,
			`127.0.0.1 - - [21/Nov/2026:16:27:08 +0000] "GET /a?x=%22y%22 HTTP/1.1" 200 3 "-" "Mozilla \x22quoted\x22 UA"`,
			"d.example", record.Record{Domain: "d.example", Path: "/a?x=%22y%22", UserAgent: `Mozilla "quoted" UA`, IP: netip.MustParseAddr("127.0.0.1")}},
		{"apache \\\" escapes", FormatVhostCombined,
			`www.customer-a.test:80 127.0.0.1 - - [21/Nov/2026:16:27:08 +0000] "GET /index.html?q=1 HTTP/1.1" 200 206 "-" "Mozilla/5.0 \"x\" \\ y"`,
			"", record.Record{Domain: "www.customer-a.test", Path: "/index.html?q=1", UserAgent: `Mozilla/5.0 "x" \ y`, IP: netip.MustParseAddr("127.0.0.1")}},
		{"vhost without port, time zone", FormatVhostCombined,
			`Blog.Example.NL 2001:db8::7 - alice [21/Nov/2026:17:27:08 +0100] "POST /wp-login.php HTTP/2.0" 302 0 "-" "-"`,
			"", record.Record{Domain: "blog.example.nl", Path: "/wp-login.php", UserAgent: "", IP: netip.MustParseAddr("2001:db8::7")}},
		{"ipv4-mapped and empty UA", FormatCombined,
			`::ffff:192.0.2.9 - - [21/Nov/2026:16:27:08 +0000] "GET / HTTP/1.0" 200 1 "-" ""`,
			"x.example", record.Record{Domain: "x.example", Path: "/", IP: netip.MustParseAddr("192.0.2.9")}},
		{"utf-8 path as nginx \\xHH", FormatCombined,
			`127.0.0.1 - - [21/Nov/2026:16:27:08 +0000] "GET /caf\xC3\xA9 HTTP/1.1" 200 3 "-" "ua"`,
			"x.example", record.Record{Domain: "x.example", Path: "/café", UserAgent: "ua", IP: netip.MustParseAddr("127.0.0.1")}},
		{"invalid utf-8 kept as evidence", FormatCombined,
			"127.0.0.1 - - [21/Nov/2026:16:27:08 +0000] \"GET /\xff\xfe HTTP/1.1\" 200 3 \"-\" \"ua\xc3\"",
			"x.example", record.Record{Domain: "x.example", Path: "/\xff\xfe", UserAgent: "ua\xc3", IP: netip.MustParseAddr("127.0.0.1")}},
		{"garbage request kept whole", FormatCombined,
			`127.0.0.1 - - [21/Nov/2026:16:27:08 +0000] "\x16\x03\x01" 400 0 "-" "-"`,
			"x.example", record.Record{Domain: "x.example", Path: "\x16\x03\x01", IP: netip.MustParseAddr("127.0.0.1")}},
		{"truncated in the user agent", FormatCombined,
			`127.0.0.1 - - [21/Nov/2026:16:27:08 +0000] "GET /t HTTP/1.1" 200 3 "-" "Mozilla/5.0 (trunc`,
			"x.example", record.Record{Domain: "x.example", Path: "/t", UserAgent: "Mozilla/5.0 (trunc", IP: netip.MustParseAddr("127.0.0.1")}},
		{"long line over 8 KiB", FormatCombined,
			`127.0.0.1 - - [21/Nov/2026:16:27:08 +0000] "GET /q?` + strings.Repeat("a", 10<<10) + ` HTTP/1.1" 200 3 "-" "ua"`,
			"x.example", record.Record{Domain: "x.example", Path: "/q?" + strings.Repeat("a", 10<<10), UserAgent: "ua", IP: netip.MustParseAddr("127.0.0.1")}},
		{"trailing CRLF and extra fields", FormatCombined,
			"127.0.0.1 - - [21/Nov/2026:16:27:08 +0000] \"GET /x HTTP/1.1\" 200 3 \"-\" \"ua\" \"10.0.0.1\"\r\n",
			"x.example", record.Record{Domain: "x.example", Path: "/x", UserAgent: "ua", IP: netip.MustParseAddr("127.0.0.1")}},
		{"json aliases", FormatJSON,
			`{"@timestamp":"2026-11-21T17:27:08+01:00","vhost":"j.example","request":"GET /j?a=1 HTTP/1.1","http_user_agent":"ua \"q\" \u00e9","client_ip":"203.0.113.7","status":200}`,
			"", record.Record{Domain: "j.example", Path: "/j?a=1", UserAgent: `ua "q" é`, IP: netip.MustParseAddr("203.0.113.7")}},
		{"json msec", FormatJSON,
			`{"msec":"1795278428.000","host":"m.example","uri":"/m","ua":"u","remote_addr":"198.51.100.1"}`,
			"", record.Record{Time: time.Unix(1795278428, 0), Domain: "m.example", Path: "/m", UserAgent: "u", IP: netip.MustParseAddr("198.51.100.1")}},
		{"json epoch ms and clf time", FormatJSON,
			`{"ts":1795278428000,"domain":"e.example","path":"/e","ip":"198.51.100.2"}`,
			"", record.Record{Time: time.Unix(1795278428, 0), Domain: "e.example", Path: "/e", IP: netip.MustParseAddr("198.51.100.2")}},
		{"json clf time, default domain", FormatJSON,
			`{"time":"[21/Nov/2026:16:27:08 +0000]","path":"/c","ip":"198.51.100.3"}`,
			"def.example", record.Record{Domain: "def.example", Path: "/c", IP: netip.MustParseAddr("198.51.100.3")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLine(tt.format, []byte(tt.line), tt.domain)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want.Time.IsZero() {
				want.Time = mustTime(t, ts)
			}
			checkRecord(t, got, want)
		})
	}
}

func TestParseLineErrors(t *testing.T) {
	good := `127.0.0.1 - - [21/Nov/2026:16:27:08 +0000] "GET /x HTTP/1.1" 200 3 "-" "ua"`
	tests := []struct {
		name, line, domain string
		format             Format
		want               []string // substrings of the error
		reason             string
	}{
		{"no domain", good, "", FormatCombined, []string{"domain", "missing"}, "domain"},
		{"bad ip", strings.Replace(good, "127.0.0.1", "127.0.0.999", 1), "d", FormatCombined, []string{"ip", "127.0.0.999"}, "ip"},
		{"bad month", strings.Replace(good, "Nov", "Nvv", 1), "d", FormatCombined, []string{"time", "column 15"}, "time"},
		{"feb 30", strings.Replace(good, "21/Nov", "30/Feb", 1), "d", FormatCombined, []string{"time", "no such date"}, "time"},
		{"request dash", strings.Replace(good, `"GET /x HTTP/1.1"`, `"-"`, 1), "d", FormatCombined, []string{"path", "missing"}, "path"},
		{"no time", "127.0.0.1 - - ", "d", FormatCombined, []string{"column 15", "expected [time]"}, "syntax"},
		{"unterminated request", `127.0.0.1 - - [21/Nov/2026:16:27:08 +0000] "GET /x`, "d", FormatCombined, []string{"unterminated"}, "syntax"},
		{"vhost sent as combined", "h.example " + good, "d", FormatCombined, []string{"vhost_combined"}, "syntax"},
		{"json broken", `{"ts":`, "", FormatJSON, []string{"column", "JSON"}, "syntax"},
		{"json no ip", `{"ts":1795278428,"domain":"a","path":"/"}`, "", FormatJSON, []string{"ip", "missing"}, "ip"},
		{"json bad time", `{"ts":"yesterday","domain":"a","path":"/","ip":"1.2.3.4"}`, "", FormatJSON, []string{"time", "yesterday"}, "time"},
		{"json NUL in path", `{"ts":1795278428,"domain":"a","path":"/\u0000","ip":"1.2.3.4"}`, "", FormatJSON, []string{"path", "NUL"}, "path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseLine(tt.format, []byte(tt.line), tt.domain)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if r := Reason(err); r != tt.reason {
				t.Errorf("reason %q, want %q", r, tt.reason)
			}
		})
	}
}

func TestDetectFormat(t *testing.T) {
	c := []byte(`127.0.0.1 - - [21/Nov/2026:16:27:08 +0000] "GET /x HTTP/1.1" 200 3 "-" "ua"`)
	v := append([]byte("h.example:443 "), c...)
	j := []byte(`{"ts":1795278428,"domain":"a.example","path":"/","ip":"1.2.3.4"}`)
	for _, tt := range []struct {
		lines [][]byte
		want  Format
	}{{[][]byte{c, c}, FormatCombined}, {[][]byte{v, c}, FormatVhostCombined}, {[][]byte{j}, FormatJSON}} {
		got, err := DetectFormat(tt.lines)
		if err != nil || got != tt.want {
			t.Errorf("DetectFormat = %q, %v; want %q", got, err, tt.want)
		}
	}
	if _, err := DetectFormat([][]byte{[]byte("hello")}); err == nil {
		t.Error("DetectFormat(garbage) succeeded")
	}
}

// apacheSample is the public 10,000-line Apache combined log of 2015, kept
// outside the repository (../shared/data relative to the repo root).
const apacheSample = "../../../shared/data/apache_combined_2015.log"

func TestApacheSample(t *testing.T) {
	f, err := os.Open(apacheSample)
	if err != nil {
		if os.Getenv("RTD_TEST_E2E") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var n, bad int
	got := map[int]record.Record{}
	for sc.Scan() {
		n++
		rec, err := ParseLine(FormatCombined, sc.Bytes(), "semicomplete.com")
		if err != nil {
			bad++
			t.Errorf("line %d: %v", n, err)
			continue
		}
		got[n] = rec
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	// Every line of this file is well-formed combined (no "-" requests, no
	// hostnames for %h), so all 10,000 must parse.
	if n != 10000 || bad != 0 {
		t.Fatalf("%d lines, %d rejected; want 10000, 0", n, bad)
	}
	spot := map[int]record.Record{
		1: {Time: mustTime(t, "2015-05-17T10:05:03Z"), Domain: "semicomplete.com",
			Path:      "/presentations/logstash-monitorama-2013/images/kibana-search.png",
			UserAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/32.0.1700.77 Safari/537.36",
			IP:        netip.MustParseAddr("83.149.9.216")},
		44: {Time: mustTime(t, "2015-05-17T10:05:36Z"), Domain: "semicomplete.com", Path: "/reset.css",
			IP: netip.MustParseAddr("200.49.190.101")},
		9158: {Time: mustTime(t, "2015-05-20T14:05:16Z"), Domain: "semicomplete.com", Path: "/projects/xdotool/",
			UserAgent: "Microsoft Office Protocol Discovery", IP: netip.MustParseAddr("64.131.102.243")},
	}
	for line, want := range spot {
		t.Run("line", func(t *testing.T) { checkRecord(t, got[line], want) })
	}
}

func FuzzParseLine(f *testing.F) {
	f.Add(0, []byte(`127.0.0.1 - - [21/Nov/2026:16:27:08 +0000] "GET /x HTTP/1.1" 200 3 "-" "u\x22a\"b"`))
	f.Add(1, []byte(`h:80 ::1 - - [21/Nov/2026:16:27:08 -0130] "GET /x HTTP/1.1" 200 3 "-" "ua`))
	f.Add(2, []byte(`{"ts":1795278428,"domain":"a","path":"/","ip":"1.2.3.4"}`))
	formats := []Format{FormatCombined, FormatVhostCombined, FormatJSON}
	f.Fuzz(func(t *testing.T, fi int, line []byte) {
		format := formats[uint(fi)%3]
		rec, err := ParseLine(format, line, "fuzz.example")
		if err != nil {
			return
		}
		// Whatever parses must be a normalised, storable record.
		again := rec
		if err := again.Normalize(); err != nil {
			t.Fatalf("accepted record does not normalise: %v", err)
		}
		checkRecordEq(t, rec, again)
	})
}

func checkRecordEq(t *testing.T, a, b record.Record) {
	if !a.Time.Equal(b.Time) || a.Domain != b.Domain || a.Path != b.Path || a.UserAgent != b.UserAgent || a.IP != b.IP {
		t.Fatalf("normalise is not idempotent: %+v vs %+v", a, b)
	}
}

var benchLines = map[Format][]byte{
	FormatCombined:      []byte(`83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/logstash-monitorama-2013/images/kibana-search.png HTTP/1.1" 200 203023 "http://semicomplete.com/presentations/logstash-monitorama-2013/" "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/32.0.1700.77 Safari/537.36"`),
	FormatVhostCombined: []byte(`shop.example.com:443 83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/logstash-monitorama-2013/images/kibana-search.png HTTP/1.1" 200 203023 "http://semicomplete.com/presentations/logstash-monitorama-2013/" "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/32.0.1700.77 Safari/537.36"`),
	FormatJSON:          []byte(`{"time":"2015-05-17T10:05:03+00:00","host":"shop.example.com","remote_addr":"83.149.9.216","request_uri":"/presentations/logstash-monitorama-2013/images/kibana-search.png","status":200,"user_agent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/32.0.1700.77 Safari/537.36"}`),
}

func BenchmarkParseLine(b *testing.B) {
	for _, f := range []Format{FormatCombined, FormatVhostCombined, FormatJSON} {
		line := benchLines[f]
		b.Run(string(f), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				if _, err := ParseLine(f, line, "semicomplete.com"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

// BenchmarkJSONStdlibBaseline decodes the same JSON line with encoding/json
// into a map: the baseline BenchmarkParseLine/json is compared against.
func BenchmarkJSONStdlibBaseline(b *testing.B) {
	line := benchLines[FormatJSON]
	b.ReportAllocs()
	for b.Loop() {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// loggenNDJSON returns n realistic NDJSON lines (the peer benchmark's
// shape: loggen records as cmd/loggen writes them), without their newlines.
// They lie one after the other in one buffer, as in ingest's chunks, so
// that reading them costs what it costs there.
func loggenNDJSON(n int) [][]byte {
	g := loggen.New(loggen.Options{Seed: 1, Start: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), Days: 1, Total: n})
	var buf []byte
	var ends []int
	for !g.Done() {
		r := g.Next()
		buf = loggen.AppendNDJSON(buf, &r)
		ends = append(ends, len(buf))
	}
	lines := make([][]byte, 0, n)
	start := 0
	for _, end := range ends {
		lines = append(lines, bytes.TrimSuffix(buf[start:end], []byte("\n")))
		start = end
	}
	return lines
}

// BenchmarkParseNDJSON parses loggen NDJSON lines as HTTP ingest does (one
// Interner per batch of lines) and reports ns/record. The stdlib
// sub-benchmark decodes the same lines with encoding/json into a map, and
// ParseJSONWith's figure over stdlib's is reported as x_stdlib (only when
// both run, as with -bench BenchmarkParseNDJSON), so that a comparison of
// two builds on a busy machine has a yardstick measured beside it.
func BenchmarkParseNDJSON(b *testing.B) {
	const batch = 50_000 // lines per Interner: one POST of the peer benchmark
	lines := loggenNDJSON(batch)
	var std float64 // ns/record of the stdlib baseline
	b.Run("stdlib", func(b *testing.B) {
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			for _, l := range lines {
				var m map[string]any
				if err := json.Unmarshal(l, &m); err != nil {
					b.Fatal(err)
				}
			}
			n += len(lines)
		}
		std = float64(b.Elapsed().Nanoseconds()) / float64(n)
		b.ReportMetric(std, "ns/record")
	})
	var fresh float64 // ns/record with a new Interner per batch
	b.Run("ParseJSONWith", func(b *testing.B) {
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			in := new(Interner)
			for _, l := range lines {
				if _, err := ParseJSONWith(l, "", in); err != nil {
					b.Fatal(err)
				}
			}
			n += len(lines)
		}
		fresh = float64(b.Elapsed().Nanoseconds()) / float64(n)
		b.ReportMetric(fresh, "ns/record")
		if std > 0 {
			b.ReportMetric(fresh/std, "x_stdlib")
		}
	})
	// The HTTP ingest keeps a request's Interner for the next requests
	// (internal/ingest/interners.go): every batch after the first finds
	// its domains and user agents already there. x_fresh is its figure
	// over the one above.
	b.Run("ParseJSONWith, Interner kept", func(b *testing.B) {
		b.ReportAllocs()
		in := new(Interner)
		for _, l := range lines {
			if _, err := ParseJSONWith(l, "", in); err != nil {
				b.Fatal(err)
			}
		}
		n := 0
		for b.Loop() {
			for _, l := range lines {
				if _, err := ParseJSONWith(l, "", in); err != nil {
					b.Fatal(err)
				}
			}
			n += len(lines)
		}
		per := float64(b.Elapsed().Nanoseconds()) / float64(n)
		b.ReportMetric(per, "ns/record")
		if std > 0 {
			b.ReportMetric(per/std, "x_stdlib")
		}
		if fresh > 0 {
			b.ReportMetric(per/fresh, "x_fresh")
		}
	})
}
