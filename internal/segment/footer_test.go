package segment

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
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
