package segment

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// The path dictionary (format 4). A block's path column stores its distinct
// paths sorted and front-coded, so every block repeats the text of the
// paths a site serves all day (its stylesheets, scripts, pages) and the
// shapes of the rest (upload names, query strings). Compressing each
// block's path text with the first block's path text as a zstd raw-content
// dictionary turns most of that repetition into matches: 0.38 bytes per
// record less on 500k-record loggen days (BenchmarkBytesPerRecord). The
// dictionary is not stored: it is the first pathDictMax bytes of block 0's
// decoded path text (the column's third stream), which a writer has in
// hand when it starts block 1 and a reader decodes once per segment.
const (
	// pathDictMax bounds the dictionary, and so what a reader keeps per
	// segment and what a writer's dictionary encoder hashes. On loggen
	// days block 0's whole path text is 54 KB; a larger block gives up
	// only its tail.
	pathDictMax = 64 << 10
	// pathDictID is the dictionary id written in the frame header of a
	// dictionary-compressed stream. Readers check it is this one.
	pathDictID = 1
	// pathTextStream is the path column stream compressed with the
	// dictionary: the distinct paths' own bytes (appendPaths).
	pathTextStream = 2
	// maxPathDicts bounds the dictionaries readers keep (pathDicts).
	maxPathDicts = 64
)

// newDictEncoder returns an encoder at level that compresses with dict as
// its initial history. Each writer builds its own when it starts its
// second block: klauspost encoders take their dictionary at construction
// and rebuild their match tables for it, so one cannot be shared between
// segments written at the same time. At the default level it holds about
// 12 MiB (its tables and the dictionary's) until the writer closes.
func newDictEncoder(level int, dict []byte) (*zstd.Encoder, error) {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithEncoderCRC(false), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(2<<20),
		zstd.WithEncoderDictRaw(pathDictID, dict))
	if err != nil {
		return nil, fmt.Errorf("zstd dictionary encoder: %w", err)
	}
	return e, nil
}

// dictDecoders are decoders that each decode one column at a time with the
// dictionary set just before (ResetWithOptions is not safe to call while
// another goroutine decodes with the same decoder).
var dictDecoders sync.Pool

// decompressDictInto is decompressInto for a column whose frames may use
// dict: a frame that names the path dictionary is decoded with it, any
// other frame as usual. A frame that names another dictionary is damage.
func decompressDictInto(dst, src []byte, rawLen int, dict []byte) ([]byte, error) {
	d, _ := dictDecoders.Get().(*zstd.Decoder)
	if d == nil {
		var err error
		if d, err = zstd.NewReader(nil, zstd.WithDecodeAllCapLimit(true),
			zstd.WithDecoderMaxMemory(maxMetaRaw), zstd.WithDecoderConcurrency(1)); err != nil {
			return nil, fmt.Errorf("zstd decoder: %w", err)
		}
	}
	defer dictDecoders.Put(d)
	if err := d.ResetWithOptions(nil, zstd.WithDecoderDictRaw(pathDictID, dict)); err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	return decodeAllInto(d, dst, src, rawLen)
}

// pathDicts holds the readers whose path dictionary is loaded, oldest
// first. A search over two years reads every day's segment, and keeping
// 730 dictionaries of up to 64 KiB would hold 46 MiB that no setting
// bounds: only the maxPathDicts loaded last are kept (4 MiB at most), and
// an evicted one is decoded again when next needed.
var pathDicts struct {
	mu      sync.Mutex
	readers []*Reader
}

// pathDictionary returns the dictionary of the path text of blocks 1 and
// later: the first pathDictMax bytes of block 0's path text.
func (r *Reader) pathDictionary() ([]byte, error) {
	if d := r.pathDict.Load(); d != nil {
		return *d, nil
	}
	d, err := r.loadPathDict()
	if err != nil {
		return nil, err
	}
	r.pathDict.Store(&d)
	pathDicts.mu.Lock()
	defer pathDicts.mu.Unlock()
	pathDicts.readers = append(pathDicts.readers, r)
	if n := len(pathDicts.readers) - maxPathDicts; n > 0 {
		for _, old := range pathDicts.readers[:n] {
			old.pathDict.Store(nil)
		}
		// Copied down, so that the evicted readers are not kept
		// reachable by the slice's backing array.
		k := copy(pathDicts.readers, pathDicts.readers[n:])
		clear(pathDicts.readers[k:])
		pathDicts.readers = pathDicts.readers[:k]
	}
	return d, nil
}

// loadPathDict decodes block 0's path column and returns a copy of the
// start of its path text. It does not count as a block decode (r.decoded):
// tests count decodes to prove an index spared blocks.
func (r *Reader) loadPathDict() ([]byte, error) {
	if len(r.blocks) == 0 {
		return nil, nil
	}
	b := &r.blocks[0]
	off := b.off
	for c := 0; c < 4; c++ {
		off += int64(b.cols[c].clen)
	}
	cm := b.cols[4]
	comp, err := r.readAt(off, int64(cm.clen))
	if err != nil {
		return nil, err
	}
	comp, err = r.openColumn(nil, comp, off, 0, 4, cm.crc)
	if err != nil {
		return nil, err
	}
	raw, err := decompress(comp, int(cm.rlen))
	var p pathDict
	if err == nil {
		err = p.decode(raw, b.rows)
	}
	if err != nil {
		return nil, r.corrupt(off, "block 0 path column (the path dictionary): %w", err)
	}
	return bytes.Clone(p.suffixes[:min(len(p.suffixes), pathDictMax)]), nil
}
