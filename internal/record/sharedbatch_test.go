package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the batch fixtures in testdata")

// sharedRecords are records whose domains and user agents repeat as the
// ingest's parser hands them over (one string per value), with a copy of
// a value elsewhere, a shorter value at the same address, empty values,
// IPv6 and a path of 70,000 bytes.
func sharedRecords() []Record {
	ua := "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
	dom, other := "www.bakkerij-jansen.nl", "shop.example.nl"
	at := func(ms int64) time.Time { return time.UnixMilli(1763742428000 + ms).UTC() }
	v4, v6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::7")
	return []Record{
		{Time: at(0), Domain: dom, Path: "/", UserAgent: ua, IP: v4},
		{Time: at(1), Domain: dom, Path: "/a", UserAgent: ua, IP: v6},
		{Time: at(2), Domain: other, Path: "/b", UserAgent: ua[:20], IP: v4},                            // same address, fewer bytes
		{Time: at(3), Domain: strings.Clone(dom), Path: "/c", UserAgent: "", IP: v4},                    // same bytes elsewhere
		{Time: at(4), Domain: "", Path: "", UserAgent: "", IP: v6},                                      // empty values
		{Time: at(5), Domain: other, Path: "/\xff" + strings.Repeat("q", 70000), UserAgent: ua, IP: v4}, // a long path
		{Time: at(6), Domain: dom, Path: "/", UserAgent: ua[:20], IP: v4},
	}
}

// TestSharedBatch checks that a shared-string batch decodes to the records
// it was made of, writes each repeated value once, is smaller than the
// plain form, and that every truncation of it is reported as corrupt.
func TestSharedBatch(t *testing.T) {
	recs := sharedRecords()
	b := AppendSharedBatch(nil, recs)
	got, err := DecodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, recs) {
		t.Fatalf("round trip:\n got %q\nwant %q", got, recs)
	}
	// A value repeated by many records is written once: each repeat costs
	// a one-byte reference instead of its bytes.
	many := make([]Record, 100)
	for i := range many {
		many[i] = recs[i%2]
	}
	shared, plain := AppendSharedBatch(nil, many), AppendBatch(nil, many)
	if want := len(plain) - 98*(len(recs[0].Domain)+len(recs[0].UserAgent)); len(shared) > want {
		t.Fatalf("shared batch of %d bytes, plain %d: want at most %d", len(shared), len(plain), want)
	}
	if n := bytes.Count(shared, []byte(recs[0].UserAgent)); n != 1 {
		t.Fatalf("the user agent is written %d times", n)
	}
	for i := 0; i < len(b); i += 1 + i/50 {
		if _, err := DecodeBatch(b[:i]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated at %d of %d: err = %v, want ErrCorrupt", i, len(b), err)
		}
	}
	// A reference to an entry not yet defined is corrupt.
	bad := AppendSharedBatch(nil, recs[:1])
	bad = append(bad[:len(bad)-len(recs[0].UserAgent)-2], 3) // user agent: entry 1, which does not exist
	if _, err := DecodeBatch(bad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("dangling reference: err = %v, want ErrCorrupt", err)
	}
	// Batches encoded one after another do not refer to each other's
	// entries (the table is per batch).
	for range 3 {
		if got, err := DecodeBatch(AppendSharedBatch(nil, recs[2:])); err != nil || !reflect.DeepEqual(got, recs[2:]) {
			t.Fatalf("a later batch: %v", err)
		}
	}
}

// TestBatchFixtures pins both batch forms: the committed bytes of each
// decode to the records of batch.golden.json, and today's encoders write
// those bytes exactly, so that a WAL written by an earlier retentiond is
// read by this one and the forms cannot drift unnoticed (go test -update
// rewrites them after a deliberate change).
func TestBatchFixtures(t *testing.T) {
	recs := sharedRecords()
	recs[5].Path = "/" + strings.Repeat("q", 100) // small, and valid UTF-8 for the JSON golden
	for _, f := range []struct {
		name string
		enc  func([]byte, []Record) []byte
	}{{"batch-plain.bin", AppendBatch}, {"batch-shared.bin", AppendSharedBatch}} {
		t.Run(f.name, func(t *testing.T) {
			path := filepath.Join("testdata", f.name)
			b := f.enc(nil, recs)
			if *update {
				js, _ := json.MarshalIndent(recs, "", " ")
				if err := os.WriteFile(filepath.Join("testdata", "batch.golden.json"), js, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, want) {
				t.Fatalf("%s: the encoder writes other bytes than the fixture", f.name)
			}
			js, err := os.ReadFile(filepath.Join("testdata", "batch.golden.json"))
			if err != nil {
				t.Fatal(err)
			}
			var golden []Record
			if err := json.Unmarshal(js, &golden); err != nil {
				t.Fatal(err)
			}
			got, err := DecodeBatch(want)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(golden) {
				t.Fatalf("%d records, golden %d", len(got), len(golden))
			}
			for i := range got {
				if !got[i].Time.Equal(golden[i].Time) || got[i].Domain != golden[i].Domain || got[i].Path != golden[i].Path ||
					got[i].UserAgent != golden[i].UserAgent || got[i].IP != golden[i].IP {
					t.Fatalf("record %d: %+v, golden %+v", i, got[i], golden[i])
				}
			}
		})
	}
}

// FuzzSharedBatch builds records from the input, with values shared,
// copied and cut at the same address, and checks that their shared-string
// batch decodes to them.
func FuzzSharedBatch(f *testing.F) {
	f.Add([]byte("www.example.nl\x00Mozilla/5.0\x00/a\x00\x01\x02\x03"), uint64(5))
	f.Fuzz(func(t *testing.T, in []byte, pick uint64) {
		parts := strings.Split(string(in), "\x00")
		var recs []Record
		for i := range 3 * len(parts) {
			s := parts[(uint64(i)*pick+uint64(i)/2)%uint64(len(parts))]
			switch (pick >> (i % 60)) & 3 {
			case 1:
				s = strings.Clone(s)
			case 2:
				s = s[:len(s)/2]
			}
			ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
			if pick>>(i%64)&1 == 1 {
				ip = netip.AddrFrom16([16]byte{0x20, 0x01, 15: byte(i)})
			}
			recs = append(recs, Record{Time: time.UnixMilli(int64(i) * 7).UTC(), Domain: s, Path: parts[i%len(parts)], UserAgent: parts[(i+1)%len(parts)], IP: ip})
		}
		got, err := DecodeBatch(AppendSharedBatch(nil, recs))
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			recs = []Record{}
		}
		if !reflect.DeepEqual(got, recs) {
			t.Fatalf("round trip:\n got %q\nwant %q", got, recs)
		}
	})
}

// BenchmarkBatchForms encodes 50,000 loggen-like records whose domains and
// user agents are shared per value, as one request's parser hands them
// over, in both batch forms in the same run, and reports bytes and ns per
// record of each and the shared form's ratios to the plain one.
func BenchmarkBatchForms(b *testing.B) {
	// A few hundred user agents and a few thousand domains, as loggen's
	// days have, assigned by a fixed pattern.
	uas := make([]string, 300)
	for i := range uas {
		uas[i] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/" + strings.Repeat("1", i%7+1) + ".0 Safari/537.36 " + string(rune('a'+i%26))
	}
	doms := make([]string, 3000)
	for i := range doms {
		doms[i] = "www.bedrijf-" + strings.Repeat("x", i%9) + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + ".nl"
	}
	recs := make([]Record, 50_000)
	for i := range recs {
		recs[i] = Record{Time: time.UnixMilli(1763742428000 + int64(i)*37).UTC(), Domain: doms[(i*7919)%len(doms)],
			Path: "/blog/" + strings.Repeat("p", i%23), UserAgent: uas[(i*104729)%len(uas)], IP: netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)})}
	}
	var buf []byte
	var plainNs, sharedNs float64
	var plainB, sharedB int
	for b.Loop() {
		t0 := time.Now()
		buf = AppendBatch(buf[:0], recs)
		plainNs += float64(time.Since(t0).Nanoseconds())
		plainB = len(buf)
		t1 := time.Now()
		buf = AppendSharedBatch(buf[:0], recs)
		sharedNs += float64(time.Since(t1).Nanoseconds())
		sharedB = len(buf)
	}
	per := float64(b.N * len(recs))
	b.ReportMetric(float64(plainB)/float64(len(recs)), "plain_B/record")
	b.ReportMetric(float64(sharedB)/float64(len(recs)), "shared_B/record")
	b.ReportMetric(plainNs/per, "plain_ns/record")
	b.ReportMetric(sharedNs/per, "shared_ns/record")
	b.ReportMetric(float64(sharedB)/float64(plainB), "shared/plain_bytes")
	b.ReportMetric(sharedNs/plainNs, "shared/plain_ns")
	b.ReportMetric(0, "ns/op")
}
