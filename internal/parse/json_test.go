package parse

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"github.com/retentiond/retentiond/internal/record"
)

// jsonBase is a valid object; tests add one member in front of it.
const jsonBase = `"ts":1795278428,"domain":"a.example","path":"/","ip":"192.0.2.1"}`

// TestJSONNumbers pins the JSON number grammar (RFC 8259 §6): what
// encoding/json refuses, ParseJSON refuses too, wherever the number is.
func TestJSONNumbers(t *testing.T) {
	for _, tt := range []struct {
		num string
		ok  bool
	}{
		{"0", true}, {"-0", true}, {"12", true}, {"1.5", true}, {"-1.5e-3", true}, {"1E+2", true}, {"0.0e0", true},
		{"01", false}, {"-01", false}, {"00", false}, {"1.", false}, {"1.e5", false}, {"-", false}, {"1e", false},
		{"1e+", false}, {"--1", false}, {"1-", false}, {"1.5.5", false}, {"0x10", false}, {"1e5e5", false}, {"-.5", false},
	} {
		for _, where := range []string{"other", "nested", "time"} {
			t.Run(where+" "+tt.num, func(t *testing.T) {
				var line string
				switch where {
				case "other":
					line = `{"status":` + tt.num + `,` + jsonBase
				case "nested":
					line = `{"x":{"y":[` + tt.num + `]},` + jsonBase
				case "time":
					line = `{"msec":` + tt.num + `,` + jsonBase
				}
				if std := json.Valid([]byte(line)); std != tt.ok {
					t.Fatalf("test table disagrees with encoding/json on %s", line)
				}
				_, err := ParseJSON([]byte(line), "")
				var se *SyntaxError
				if got := !errors.As(err, &se); got != tt.ok {
					t.Errorf("ParseJSON(%s): err %v; want syntax ok = %v", line, err, tt.ok)
				}
			})
		}
	}
}

// TestJSONDuplicateKeys: of a key given twice the last value counts, as in
// encoding/json, JavaScript and jq; among different aliases of one field the
// preferred alias counts wherever it stands.
func TestJSONDuplicateKeys(t *testing.T) {
	for _, tt := range []struct {
		name, line, wantIP, wantPath string
	}{
		{"same key twice", `{"ip":"192.0.2.1","ip":"192.0.2.2","ts":1795278428,"domain":"a.example","path":"/"}`, "192.0.2.2", "/"},
		{"same key thrice", `{"path":"/1","ip":"192.0.2.1","path":"/2","ts":1795278428,"domain":"a.example","path":"/3"}`, "192.0.2.1", "/3"},
		{"last value not a string", `{"ip":"192.0.2.1","ip":5,"remote_addr":"192.0.2.3","ts":1795278428,"domain":"a.example","path":"/"}`, "192.0.2.3", "/"},
		{"preferred alias after", `{"remote_addr":"192.0.2.3","ip":"192.0.2.1","ts":1795278428,"domain":"a.example","path":"/"}`, "192.0.2.1", "/"},
		{"preferred alias before", `{"ip":"192.0.2.1","remote_addr":"192.0.2.3","ts":1795278428,"domain":"a.example","path":"/"}`, "192.0.2.1", "/"},
		{"request then path", `{"request":"GET /r HTTP/1.1","path":"/p","ip":"192.0.2.1","ts":1795278428,"domain":"a.example"}`, "192.0.2.1", "/p"},
		{"path then request twice", `{"request":"GET /r HTTP/1.1","uri":"/u","request":"GET /s HTTP/1.1","ip":"192.0.2.1","ts":1795278428,"domain":"a.example"}`, "192.0.2.1", "/u"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := ParseJSON([]byte(tt.line), "")
			if err != nil {
				t.Fatal(err)
			}
			if rec.IP.String() != tt.wantIP || rec.Path != tt.wantPath {
				t.Errorf("ip %s path %q; want %s %q", rec.IP, rec.Path, tt.wantIP, tt.wantPath)
			}
		})
	}
	// A time given twice: the last one.
	rec, err := ParseJSON([]byte(`{"ts":1795278428,"ts":1795278429,"domain":"a.example","path":"/","ip":"192.0.2.1"}`), "")
	if err != nil || rec.Time.Unix() != 1795278429 {
		t.Errorf("time given twice: %v, %v; want the second", rec.Time, err)
	}
}

// TestInterner: records parsed through an Interner equal those parsed
// without one, equal domains and user agents share one string, and a body
// of unique values stops being shared at maxInterned entries.
func TestInterner(t *testing.T) {
	var in Interner
	line := func(i int) []byte {
		return fmt.Appendf(nil, `{"time":"2026-03-01T00:00:0%dZ","domain":"shop.example","path":"/p%d","user_agent":"UA %d","ip":"192.0.2.%d"}`, i%10, i, i%2, i%200)
	}
	var first, second record.Record
	for i := range 4 {
		want, err := ParseJSON(line(i), "")
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseJSONWith(line(i), "", &in)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("line %d: %+v through the interner, %+v without", i, got, want)
		}
		switch i {
		case 0:
			first = got
		case 2:
			second = got
		}
	}
	if unsafe.StringData(first.UserAgent) != unsafe.StringData(second.UserAgent) {
		t.Fatal("two records with the same user agent hold two copies of it")
	}
	if unsafe.StringData(first.Domain) != unsafe.StringData(second.Domain) {
		t.Fatal("two records with the same domain hold two copies of it")
	}
	for i := range maxInterned + 10 {
		in.intern(fmt.Appendf(nil, "unique-%d", i))
	}
	if len(in.m) != maxInterned {
		t.Fatalf("the interner holds %d strings, want at most %d", len(in.m), maxInterned)
	}
	if s := (*Interner)(nil).intern([]byte("x")); s != "x" {
		t.Fatalf("a nil interner returned %q", s)
	}
}

// TestInternerPaths parses lines through one Interner into one reused
// buffer, as a request's chunks are: every path must still read as sent
// after the buffer and the Interner's slabs have moved on, paths longer
// than a slab entry included, and an escaped path must be decoded.
func TestInternerPaths(t *testing.T) {
	var in Interner
	var buf []byte
	var recs []record.Record
	var want []string
	for i := range 3 * slabBytes / 16 {
		path := fmt.Sprintf("/p%d", i)
		switch i % 97 {
		case 5:
			path = "/" + strings.Repeat("x", slabMaxText+i%3)
		case 7:
			path = "/" + strings.Repeat("y", slabMaxText-1)
		}
		sent := path
		if i%13 == 0 {
			sent += `é`
			path += "é"
		}
		buf = fmt.Appendf(buf[:0], `{"time":"2026-03-01T00:00:00Z","domain":"shop.example","path":"%s","ip":"192.0.2.1"}`, sent)
		r, err := ParseJSONWith(buf, "", &in)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
		want = append(want, path)
		clear(buf)
	}
	for i, r := range recs {
		if r.Path != want[i] {
			t.Fatalf("record %d: path %q, want %q", i, r.Path, want[i])
		}
	}
	if s := (*Interner)(nil).text([]byte("/x")); s != "/x" {
		t.Fatalf("a nil interner returned %q", s)
	}
}

// TestInternerForgetsEarlierLines parses lines that use different aliases,
// and lack different fields, through one Interner (whose scratch keeps
// what scanJSON found between lines) and each alone: every answer,
// record or error, must be the same, so that no value of an earlier line
// stands in for one a later line lacks.
func TestInternerForgetsEarlierLines(t *testing.T) {
	lines := []string{
		`{"ts":1795278428,"domain":"a.example","path":"/","ip":"192.0.2.1"}`,
		`{"time":"2026-11-24T00:00:00.012Z","host":"b.example","request":"GET /x HTTP/1.1","remote_addr":"192.0.2.2","http_user_agent":"ua"}`,
		`{"ts":1795278428,"path":"/only","ip":"192.0.2.3"}`,
		`{"ts":1795278428,"domain":"a.example","path":"/"}`,
		`{"domain":"a.example","path":"/","ip":"192.0.2.4"}`,
		`{"ts":1795278428,"domain":"a.example","path":"/","client_ip":"192.0.2.5","user_agent":"other"}`,
		`{"msec":"1795278428.5","domain":"c.example","uri":"/u","ip":"2001:db8::1"}`,
		`{"ts":1795278428,"domain":null,"path":{"x":1},"ip":"192.0.2.6"}`,
		`{}`,
	}
	answer := func(r record.Record, err error) string {
		if err != nil {
			return "error: " + err.Error()
		}
		return fmt.Sprintf("%+v", r)
	}
	in := new(Interner)
	for round := range 3 {
		for i := range lines {
			line := lines[(i*(round+2))%len(lines)]
			alone := answer(ParseJSON([]byte(line), "default.example"))
			shared := answer(ParseJSONWith([]byte(line), "default.example", in))
			if shared != alone {
				t.Fatalf("%s\nafter other lines: %s\nalone: %s", line, shared, alone)
			}
		}
	}
}
