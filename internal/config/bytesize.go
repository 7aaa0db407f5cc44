package config

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
)

// ByteSize is a size in bytes. In YAML and in the environment it is written
// in binary units ("64MiB", "512KiB", "1GiB") or as a plain number of bytes
// ("1000000"), and `config show` prints it back in the largest unit that
// represents it exactly, so operators read the same form they wrote.
type ByteSize int64

// byteUnits are the accepted suffixes, largest first so that String picks
// the most readable exact form. Decimal units (MB, GB) are rejected on
// purpose: "64MB" is ambiguous between 64·10⁶ and 64·2²⁰.
var byteUnits = []struct {
	suffix string
	size   int64
}{
	{"TiB", 1 << 40},
	{"GiB", 1 << 30},
	{"MiB", 1 << 20},
	{"KiB", 1 << 10},
	{"B", 1},
}

var byteSizeRE = regexp.MustCompile(`^\s*([0-9]+)\s*([A-Za-z]*)\s*$`)

// ParseByteSize parses "64MiB", "512KiB", "1GiB", "10B" or "1000000".
func ParseByteSize(s string) (ByteSize, error) {
	m := byteSizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a byte size; write a whole number with a binary unit, e.g. \"64MiB\", \"512KiB\", \"1GiB\", or plain bytes \"1000000\"", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is too large for a byte size; the maximum is 8EiB", s)
	}
	mult := int64(1)
	if m[2] != "" {
		mult = 0
		for _, u := range byteUnits {
			if m[2] == u.suffix {
				mult = u.size
			}
		}
		if mult == 0 {
			return 0, fmt.Errorf("%q has unknown unit %q; use B, KiB, MiB, GiB or TiB (binary units: 1KiB = 1024 bytes)", s, m[2])
		}
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large for a byte size; the maximum is 8EiB", s)
	}
	return ByteSize(n * mult), nil
}

// String returns the size in the largest binary unit that represents it
// exactly ("64MiB"), or as plain bytes ("1000000").
func (b ByteSize) String() string {
	if b == 0 {
		return "0"
	}
	for _, u := range byteUnits[:len(byteUnits)-1] {
		if int64(b)%u.size == 0 {
			return strconv.FormatInt(int64(b)/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// MarshalText writes the human form, so YAML and JSON output read like the
// configuration file.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText accepts every form ParseByteSize accepts.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}
