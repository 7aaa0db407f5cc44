package record

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestNormalize(t *testing.T) {
	ts := time.Date(2026, 11, 21, 16, 27, 8, 123456789, time.FixedZone("CET", 3600))
	good := func() Record {
		return Record{Time: ts, Domain: "Shop.Example.NL.", Path: "/a?b=c", UserAgent: "UA", IP: netip.MustParseAddr("::ffff:192.0.2.1")}
	}
	tests := []struct {
		name      string
		mod       func(*Record)
		wantField string // "" means valid
		check     func(t *testing.T, r Record)
	}{
		{name: "normalises every field", check: func(t *testing.T, r Record) {
			want := Record{Time: time.Date(2026, 11, 21, 15, 27, 8, 123000000, time.UTC), Domain: "shop.example.nl",
				Path: "/a?b=c", UserAgent: "UA", IP: netip.MustParseAddr("192.0.2.1")}
			if !reflect.DeepEqual(r, want) {
				t.Errorf("got %+v, want %+v", r, want)
			}
		}},
		{name: "port stripped", mod: func(r *Record) { r.Domain = "example.nl:8443" }, check: func(t *testing.T, r Record) {
			if r.Domain != "example.nl" {
				t.Errorf("domain = %q", r.Domain)
			}
		}},
		{name: "bracketed v6 host with port", mod: func(r *Record) { r.Domain = "[2001:DB8::1]:443" }, check: func(t *testing.T, r Record) {
			if r.Domain != "2001:db8::1" {
				t.Errorf("domain = %q", r.Domain)
			}
		}},
		{name: "dash user agent is empty", mod: func(r *Record) { r.UserAgent = "-" }, check: func(t *testing.T, r Record) {
			if r.UserAgent != "" {
				t.Errorf("ua = %q", r.UserAgent)
			}
		}},
		{name: "invalid utf-8 kept as evidence", mod: func(r *Record) { r.Path = "/\xff\xfe" }, check: func(t *testing.T, r Record) {
			if r.Path != "/\xff\xfe" {
				t.Errorf("path = %q", r.Path)
			}
		}},
		{name: "zone dropped", mod: func(r *Record) { r.IP = netip.MustParseAddr("fe80::1%eth0") }, check: func(t *testing.T, r Record) {
			if r.IP.Zone() != "" {
				t.Errorf("ip = %v", r.IP)
			}
		}},
		{name: "missing time", mod: func(r *Record) { r.Time = time.Time{} }, wantField: "time"},
		{name: "time before 1970", mod: func(r *Record) { r.Time = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) }, wantField: "time"},
		{name: "last millisecond of 1969", mod: func(r *Record) { r.Time = time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC) }, wantField: "time"},
		{name: "first instant of 1970", mod: func(r *Record) { r.Time = time.Unix(0, 0) }},
		{name: "last millisecond of 9999", mod: func(r *Record) { r.Time = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC) }, check: func(t *testing.T, r Record) {
			if want := time.Date(9999, 12, 31, 23, 59, 59, 999000000, time.UTC); !r.Time.Equal(want) {
				t.Errorf("time = %s, want %s", r.Time, want)
			}
		}},
		{name: "year 10000", mod: func(r *Record) { r.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, wantField: "time"},
		{name: "year 10000 in a zone east of UTC is 9999 in UTC", mod: func(r *Record) {
			r.Time = time.Date(10000, 1, 1, 0, 30, 0, 0, time.FixedZone("CET", 3600))
		}},
		{name: "empty domain", mod: func(r *Record) { r.Domain = "" }, wantField: "domain"},
		{name: "dash domain", mod: func(r *Record) { r.Domain = "-" }, wantField: "domain"},
		{name: "domain with space", mod: func(r *Record) { r.Domain = "a b" }, wantField: "domain"},
		{name: "domain too long", mod: func(r *Record) { r.Domain = strings.Repeat("a", 254) }, wantField: "domain"},
		{name: "empty path", mod: func(r *Record) { r.Path = "" }, wantField: "path"},
		{name: "path with NUL", mod: func(r *Record) { r.Path = "/a\x00b" }, wantField: "path"},
		{name: "path too long", mod: func(r *Record) { r.Path = "/" + strings.Repeat("a", MaxPathLen) }, wantField: "path"},
		{name: "ua too long", mod: func(r *Record) { r.UserAgent = strings.Repeat("a", MaxUserAgentLen+1) }, wantField: "user_agent"},
		{name: "missing ip", mod: func(r *Record) { r.IP = netip.Addr{} }, wantField: "ip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good()
			if tt.mod != nil {
				tt.mod(&r)
			}
			err := r.Normalize()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if tt.check != nil {
					tt.check(t, r)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.wantField {
				t.Fatalf("err = %v, want a FieldError for %s", err, tt.wantField)
			}
			if len(fe.Value) > maxShownValue+len("…") {
				t.Errorf("error repeats %d bytes of the bad value", len(fe.Value))
			}
		})
	}
}

func TestParseIP(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1": "192.0.2.1", "[2001:db8::1]": "2001:db8::1", "::ffff:10.0.0.1": "10.0.0.1", " 2001:DB8::A ": "2001:db8::a",
	} {
		got, err := ParseIP(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseIP(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-", "999.1.1.1", "example.nl", "1.2.3.4:80"} {
		if _, err := ParseIP(bad); err == nil {
			t.Errorf("ParseIP(%q) succeeded", bad)
		}
	}
}

// ipInputs are addresses for the comparisons of ParseIPBytes with ParseIP:
// the dotted quads it reads itself, and what it must hand to ParseIP.
var ipInputs = []string{
	"192.0.2.1", "0.0.0.0", "255.255.255.255", "10.0.0.10", "1.22.203.4",
	"256.1.1.1", "1.2.3.999", "01.2.3.4", "1.2.3.04", "00.1.1.1", "1.2.3", "1.2.3.4.5", "1..3.4", ".1.2.3",
	"1.2.3.", "1.2.3.4 ", " 1.2.3.4", "1.2.3.4:80", "1.2.3.-4", "1.2.3.4x", "1234.1.1.1", "",
	"[192.0.2.1]", "::ffff:10.0.0.1", "2001:db8::1", "[2001:db8::1]", "fe80::1%eth0", "-", "example.nl",
	"2a02:a440:1f3c:9b20:5d1e:77aa:0c41:e2f0", "2A02:A440::1", "::", "::1", "1::", "::1.2.3.4", "fe80::1%eth0 ",
	"fe80::1%", " ::1", "::1 ", "1:2:3:4:5:6:7:8:9", "::ffff:256.1.1.1", "2001:db8::1%25", "::% ", "::%\t",
}

// TestParseIPBytes: ParseIPBytes's dotted-quad fast path and ParseIP agree
// on every input, in the address and in the error.
func TestParseIPBytes(t *testing.T) {
	for _, in := range ipInputs {
		t.Run(in, func(t *testing.T) { checkParseIPBytes(t, []byte(in)) })
	}
}

// FuzzParseIPBytes is TestParseIPBytes on any input.
func FuzzParseIPBytes(f *testing.F) {
	for _, in := range ipInputs {
		f.Add([]byte(in))
	}
	f.Fuzz(checkParseIPBytes)
}

func checkParseIPBytes(t *testing.T, b []byte) {
	b = bytes.Clone(b) // overwritten below; the fuzzer's input is not ours to change
	want, wantErr := ParseIP(string(b))
	got, err := ParseIPBytes(b)
	if got != want || fmt.Sprint(err) != fmt.Sprint(wantErr) {
		t.Fatalf("ParseIPBytes(%q) = %v, %v; ParseIP says %v, %v", b, got, err, want, wantErr)
	}
	// The caller reuses its buffer: nothing of the answer may live in it.
	in, gotS, errS := string(b), got.String(), fmt.Sprint(err)
	for i := range b {
		b[i] = 'x'
	}
	if got.String() != gotS || fmt.Sprint(err) != errS {
		t.Fatalf("ParseIPBytes(%q) changed with its input: %v, %v", in, got, err)
	}
}

// TestNormalizeWithDomain: given NormalizeDomain's answer, NormalizeWithDomain
// does what Normalize does, whatever else is wrong with the record.
func TestNormalizeWithDomain(t *testing.T) {
	ts := time.Date(2026, 11, 21, 16, 27, 8, 123456789, time.FixedZone("CET", 3600))
	good := Record{Time: ts, Domain: "Shop.Example.NL.", Path: "/a?b=c", UserAgent: "UA", IP: netip.MustParseAddr("::ffff:192.0.2.1")}
	tests := []struct {
		name string
		mod  func(*Record)
	}{
		{"valid", func(*Record) {}},
		{"port and case", func(r *Record) { r.Domain = "[2001:DB8::1]:443" }},
		{"missing time", func(r *Record) { r.Time = time.Time{} }},
		{"time before 1970", func(r *Record) { r.Time = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"empty path", func(r *Record) { r.Path = "" }},
		{"dash user agent", func(r *Record) { r.UserAgent = "-" }},
		{"ua with NUL", func(r *Record) { r.UserAgent = "a\x00" }},
		{"missing ip", func(r *Record) { r.IP = netip.Addr{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := good
			tt.mod(&want)
			got := want
			d, err := NormalizeDomain(got.Domain)
			if err != nil {
				t.Fatal(err)
			}
			wantErr := want.Normalize()
			gotErr := got.NormalizeWithDomain(d)
			if !reflect.DeepEqual(got, want) || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Fatalf("NormalizeWithDomain: %+v, %v; Normalize: %+v, %v", got, gotErr, want, wantErr)
			}
		})
	}
}

func TestBatchRoundTrip(t *testing.T) {
	recs := []Record{
		{Time: time.UnixMilli(1763742428123).UTC(), Domain: "a.nl", Path: "/x", UserAgent: "", IP: netip.MustParseAddr("192.0.2.1")},
		{Time: time.UnixMilli(0).UTC(), Domain: "b.nl", Path: "/\xff" + strings.Repeat("q", 70000), UserAgent: "ua \"q\"", IP: netip.MustParseAddr("2001:db8::1")},
	}
	got, err := DecodeBatch(AppendBatch(nil, recs))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, recs) {
		t.Fatalf("round trip mismatch")
	}
	b := AppendBatch(nil, recs)
	for i := 0; i < len(b)-1; i += 97 {
		if _, err := DecodeBatch(b[:i]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated at %d: err = %v, want ErrCorrupt", i, err)
		}
	}
}

func TestDay(t *testing.T) {
	ts := time.Date(2026, 11, 21, 0, 30, 0, 0, time.FixedZone("CET", 3600))
	if got := DayString(ts); got != "2026-11-20" {
		t.Errorf("DayString = %s, want the UTC day 2026-11-20", got)
	}
	d, err := ParseDay("2024-02-29")
	if err != nil || !d.Equal(time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)) || !Day(d.Add(23*time.Hour)).Equal(d) {
		t.Errorf("ParseDay/Day: %v %v", d, err)
	}
	if _, err := ParseDay("2025-02-29"); err == nil {
		t.Error("ParseDay accepted 2025-02-29")
	}
	// Day's floor division agrees with the calendar, before 1970 too, in
	// any zone, at every edge of a day.
	zone := time.FixedZone("", -7*3600-30*60)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 20_000 {
		sec := rng.Int64N(400*365*86400) - 200*365*86400
		if i%4 == 0 {
			sec -= sec % 86400 // midnight UTC, and a nanosecond either side below
		}
		for _, tt := range []time.Time{time.Unix(sec, 0), time.Unix(sec, -1), time.Unix(sec, 1), time.Unix(sec, 0).In(zone)} {
			y, m, d := tt.UTC().Date()
			if want := time.Date(y, m, d, 0, 0, 0, 0, time.UTC); Day(tt) != want {
				t.Fatalf("Day(%v) = %v, want %v", tt, Day(tt), want)
			}
		}
	}
}

// FuzzDecodeBatch checks that no input makes the WAL payload decoder panic,
// and that whatever it accepts re-encodes to the same bytes.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(AppendBatch(nil, []Record{{Time: time.UnixMilli(5), Domain: "a", Path: "/", IP: netip.MustParseAddr("::1")}}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add(AppendSharedBatch(nil, sharedRecords()[:3]))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := DecodeBatch(b)
		if err != nil {
			return
		}
		if again := AppendBatch(nil, recs); string(again) != string(b) {
			// Varints have several encodings; only a decode of the
			// re-encoding must agree.
			recs2, err := DecodeBatch(again)
			if err != nil || !reflect.DeepEqual(recs, recs2) {
				t.Fatalf("re-encoding does not round-trip: %v", err)
			}
		}
	})
}

// TestNormalizeDomain pins the one host-name rule that ingest and the query
// parser share: Unicode lower-casing, a numeric port and one root dot
// removed, and everything else that is not a host name refused rather than
// silently altered.
func TestNormalizeDomain(t *testing.T) {
	tests := []struct {
		in, want string // want "" means refused
	}{
		{"Shop.Example.NL", "shop.example.nl"},
		{"shop.example.nl.", "shop.example.nl"},
		{" example.nl:8443 ", "example.nl"},
		{"BÜCHER.example", "bücher.example"},
		{"bücher.example", "bücher.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"[2001:DB8::1]:443", "2001:db8::1"},
		{"[2001:db8::1]", "2001:db8::1"},
		{"2001:DB8::1", "2001:db8::1"},
		{"192.0.2.1:80", "192.0.2.1"},
		{"localhost", "localhost"},
		{"shop.example.nl..", ""},
		{"a..b", ""},
		{".example.nl", ""},
		{".", ""},
		{"victim.nl:evil", ""},
		{"victim.nl:", ""},
		{"victim.nl:99999", ""},
		{"[2001:db8::1]evil", ""},
		{"[2001:db8::1]:x", ""},
		{"[victim.nl]", ""},
		{"[2001:db8::1", ""},
		{"a:b:c", ""},
		{"bad\xffhost", ""},
		{"a b", ""},
		{"a/b", ""},
		{"", ""},
		{"-", ""},
		{strings.Repeat("a", 254), ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			// Through Record.Normalize, the path every input takes.
			norm := func(d string) (string, error) {
				r := Record{Time: time.Unix(1e9, 0), Domain: d, Path: "/", IP: netip.MustParseAddr("192.0.2.1")}
				err := r.Normalize()
				return r.Domain, err
			}
			got, err := norm(tc.in)
			if tc.want == "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != "domain" {
					t.Fatalf("domain %q stored as %q (err %v); want a domain FieldError", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("domain %q stored as %q (err %v); want %q", tc.in, got, err, tc.want)
			}
			// Normalising a normalised name changes nothing.
			if again, err := norm(got); err != nil || again != got {
				t.Errorf("not idempotent: %q -> %q, %v", got, again, err)
			}
		})
	}
}
