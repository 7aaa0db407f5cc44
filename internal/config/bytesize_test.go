package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    ByteSize
		wantErr string
	}{
		{"64MiB", 64 << 20, ""},
		{"512KiB", 512 << 10, ""},
		{"1GiB", 1 << 30, ""},
		{"2TiB", 2 << 40, ""},
		{"1000000", 1000000, ""},
		{"10B", 10, ""},
		{" 8 KiB ", 8 << 10, ""},
		{"0", 0, ""},
		{"64MB", 0, "unknown unit"},
		{"64mib", 0, "unknown unit"},
		{"1.5GiB", 0, "not a byte size"},
		{"-1", 0, "not a byte size"},
		{"", 0, "not a byte size"},
		{"9999999999TiB", 0, "too large"},
		{"99999999999999999999", 0, "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseByteSize(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestByteSizeString(t *testing.T) {
	for in, want := range map[ByteSize]string{0: "0", 1: "1", 1023: "1023", 1024: "1KiB", 1536: "1536",
		64 << 20: "64MiB", 1 << 30: "1GiB", 3 << 40: "3TiB", 1000000: "1000000"} {
		if got := in.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int64(in), got, want)
		}
	}
}

// FuzzParseByteSize checks that whatever parses prints back to a form that
// parses to the same size.
func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"64MiB", "1000000", "0", "1GiB", "10B", "64MB", " 1 KiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseByteSize(s)
		if err != nil {
			return
		}
		if b < 0 {
			t.Fatalf("%q parsed to negative %d", s, b)
		}
		back, err := ParseByteSize(b.String())
		if err != nil || back != b {
			t.Fatalf("%q -> %d -> %q -> %d, %v", s, b, b.String(), back, err)
		}
	})
}

// FuzzParse feeds arbitrary YAML to the loader: it must never panic, and a
// configuration it accepts must print to YAML that loads back equal.
func FuzzParse(f *testing.F) {
	f.Add([]byte("retention: 2y\n"))
	f.Add([]byte("listen:\n  http: \":9000\"\ningest:\n  allow: [10.0.0.0/8]\n"))
	f.Add([]byte("auth:\n  tokens:\n    - {name: a, sha256: " + strings.Repeat("ab", 32) + ", roles: [search]}\n"))
	f.Add([]byte("storage: {block_rows: 10, head_max_bytes: 1000000}\n"))
	f.Add([]byte("purge: [1, 2]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		out, err := c.YAML()
		if err != nil {
			t.Fatalf("YAML of an accepted config: %v", err)
		}
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("printed config does not load: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", c, back)
		}
	})
}
