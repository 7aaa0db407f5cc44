package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFooterRoundTrip decodes the meta section of every fixture and encodes
// it again with appendMeta: the bytes must be those in the file. It shows
// that the encoder and the decoder in footer.go describe one layout, also
// for format 1, which the writer no longer produces.
func TestFooterRoundTrip(t *testing.T) {
	for v := MinVersion; v <= Version; v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			path := filepath.Join("testdata", fmt.Sprintf("v%d.seg", v))
			r, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			file, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			tb := file[len(file)-trailerSize:]
			tr, _, err := parseTrailer(tb, byte(v), 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := tr.append(nil); !bytes.Equal(got, tb) {
				t.Fatalf("trailer re-encoded as %x, file has %x", got, tb)
			}
			metaLen := binary.LittleEndian.Uint32(file[tr.metaOff:])
			want, err := decompress(file[tr.metaOff+4:len(file)-trailerSize], int(metaLen))
			if err != nil {
				t.Fatal(err)
			}
			if got := r.footer.appendMeta(nil, byte(v)); !bytes.Equal(got, want) {
				t.Fatalf("meta section re-encoded differs from the file's (%d vs %d bytes)", len(got), len(want))
			}
		})
	}
}

// TestFormat3EmptyIDColumns: a format-3 meta section that gives the domain
// or user-agent column of a block any bytes is rejected. Those columns are
// never read (their ids are in the IP column), so bytes there would be
// covered by no checksum a read checks.
func TestFormat3EmptyIDColumns(t *testing.T) {
	r, err := Open(filepath.Join("testdata", "v3.seg"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	metaRel := r.footer.filterOff - r.footer.footerOff + int64(r.footer.filterLen)
	ok := r.footer.appendMeta(nil, 3)
	if _, err := parseMeta(ok, 3, r.blocks[0].off, r.footer.footerOff, metaRel); err != nil {
		t.Fatalf("the fixture's own meta section: %v", err)
	}
	for _, c := range []int{2, 3} {
		t.Run(columnNames[c], func(t *testing.T) {
			f := r.footer
			f.blocks = append([]blockMeta(nil), f.blocks...)
			// Move a byte from the path column into this one, so that
			// the columns still tile the blocks' bytes.
			f.blocks[1].cols[c].clen, f.blocks[1].cols[4].clen = 1, f.blocks[1].cols[4].clen-1
			_, err := parseMeta(f.appendMeta(nil, 3), 3, r.blocks[0].off, r.footer.footerOff, metaRel)
			if !errors.Is(err, errMalformed) || !strings.Contains(err.Error(), "block 1 has domain or user-agent column bytes") {
				t.Fatalf("parseMeta = %v, want a malformed-data error naming block 1's id columns", err)
			}
		})
	}
}
