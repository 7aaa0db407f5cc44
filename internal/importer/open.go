package importer

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression magic numbers. Detection goes by content, not by name, because
// rotated logs are often renamed (access.log.2.gz copied as access.old).
var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// countingReader counts the raw (possibly compressed) bytes read, which is
// what a progress bar over file sizes must show.
type countingReader struct {
	r io.Reader
	n *int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

// input is an opened import source: its decompressed content, its on-disk
// size when known (-1 for stdin) and a counter of raw bytes read.
type input struct {
	content  io.Reader
	size     int64
	raw      int64
	closeFns []func() error
	reopen   bool // whether the source can be read again from the start
}

func (in *input) Close() error {
	var first error
	for i := len(in.closeFns) - 1; i >= 0; i-- {
		if err := in.closeFns[i](); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// openInput opens name ("-" is stdin) and wraps it in the decompressor its
// first bytes call for: gzip (including concatenated members, as logrotate
// and `cat a.gz b.gz` produce), zstd, or none.
func openInput(name string, stdin io.Reader) (*input, error) {
	in := &input{size: -1}
	var src io.Reader
	if name == "-" {
		if stdin == nil {
			stdin = os.Stdin
		}
		src = stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		in.closeFns = append(in.closeFns, f.Close)
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			in.size = fi.Size()
			in.reopen = true
		}
		src = f
	}
	br := bufio.NewReaderSize(countingReader{src, &in.raw}, 64<<10)
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			in.Close()
			return nil, fmt.Errorf("open gzip stream: %w", err)
		}
		in.closeFns = append(in.closeFns, zr.Close)
		in.content = zr
	case bytes.HasPrefix(magic, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			in.Close()
			return nil, fmt.Errorf("open zstd stream: %w", err)
		}
		in.closeFns = append(in.closeFns, func() error { zr.Close(); return nil })
		in.content = zr
	default:
		in.content = br
	}
	return in, nil
}
