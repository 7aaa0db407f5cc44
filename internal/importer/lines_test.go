package importer

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

type lineResult struct {
	line    string
	tooLong bool
}

func readAll(t testing.TB, input []byte, max int, oneByte bool) ([]lineResult, *lineReader) {
	var r io.Reader = bytes.NewReader(input)
	if oneByte {
		r = iotest.OneByteReader(r)
	}
	lr := newLineReader(r, max)
	var out []lineResult
	for {
		line, err := lr.Next()
		switch {
		case err == io.EOF:
			return out, lr
		case errors.Is(err, errLineTooLong):
			out = append(out, lineResult{tooLong: true})
		case err != nil:
			t.Fatalf("Next: %v", err)
		default:
			out = append(out, lineResult{line: string(line)})
		}
	}
}

func TestLineReader(t *testing.T) {
	long := strings.Repeat("x", 5000)
	tests := []struct {
		name  string
		input string
		max   int
		want  []lineResult
	}{
		{"empty", "", 100, nil},
		{"one line", "a b c\n", 100, []lineResult{{line: "a b c"}}},
		{"no final newline", "a\nb", 100, []lineResult{{line: "a"}, {line: "b"}}},
		{"crlf", "a\r\nb\r\n", 100, []lineResult{{line: "a"}, {line: "b"}}},
		{"blank lines", "\n\nx\n", 100, []lineResult{{}, {}, {line: "x"}}},
		{"exactly max", "12345\n", 5, []lineResult{{line: "12345"}}},
		{"one over max", "123456\nok\n", 5, []lineResult{{tooLong: true}, {line: "ok"}}},
		{"far over max, beyond the buffer", long + "\nnext\n", 10, []lineResult{{tooLong: true}, {line: "next"}}},
		{"long last line without newline", "ok\n" + long, 10, []lineResult{{line: "ok"}, {tooLong: true}}},
	}
	for _, tc := range tests {
		for _, oneByte := range []bool{false, true} {
			name := tc.name
			if oneByte {
				name += "/one-byte-reads"
			}
			t.Run(name, func(t *testing.T) {
				got, lr := readAll(t, []byte(tc.input), tc.max, oneByte)
				if len(got) != len(tc.want) {
					t.Fatalf("got %d lines %+v, want %+v", len(got), got, tc.want)
				}
				for i := range got {
					if got[i] != tc.want[i] {
						t.Fatalf("line %d: got %+v, want %+v", i+1, got[i], tc.want[i])
					}
				}
				if lr.offset != int64(len(tc.input)) || lr.Sum() != sha256.Sum256([]byte(tc.input)) {
					t.Fatalf("offset %d / hash do not cover the whole input of %d bytes", lr.offset, len(tc.input))
				}
				if lr.line != int64(len(tc.want)) {
					t.Fatalf("line counter %d, want %d", lr.line, len(tc.want))
				}
			})
		}
	}
}

// FuzzLineReader checks that whatever the input, the reader never returns a
// line over the limit or with a newline, counts every line, skips nothing,
// and hashes exactly the input.
func FuzzLineReader(f *testing.F) {
	f.Add([]byte("a\nb\r\nccc"), 2)
	f.Add([]byte(strings.Repeat("y", 300)+"\n\n"), 7)
	f.Add([]byte("\r\n\r\n"), 1)
	f.Fuzz(func(t *testing.T, input []byte, max int) {
		max = 1 + (max&0xffff)%512
		got, lr := readAll(t, input, max, false)
		wantLines := bytes.Count(input, []byte("\n"))
		if len(input) > 0 && input[len(input)-1] != '\n' {
			wantLines++
		}
		if len(got) != wantLines || lr.line != int64(wantLines) {
			t.Fatalf("%d lines (counter %d), want %d", len(got), lr.line, wantLines)
		}
		parts := bytes.SplitAfter(input, []byte("\n"))
		for i, g := range got {
			raw := parts[i]
			content := bytes.TrimSuffix(bytes.TrimSuffix(raw, []byte("\n")), []byte("\r"))
			if !bytes.HasSuffix(raw, []byte("\n")) {
				content = raw
			}
			if g.tooLong != (len(bytes.TrimSuffix(raw, []byte("\n"))) > max) {
				t.Fatalf("line %d: tooLong=%v for %d bytes, max %d", i+1, g.tooLong, len(raw), max)
			}
			if !g.tooLong && g.line != string(content) {
				t.Fatalf("line %d: %q, want %q", i+1, g.line, content)
			}
		}
		if lr.offset != int64(len(input)) || lr.Sum() != sha256.Sum256(input) {
			t.Fatal("offset or hash does not cover the input")
		}
	})
}
