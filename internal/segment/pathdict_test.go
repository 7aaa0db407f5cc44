package segment

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/retentiond/retentiond/internal/record"
)

// pathColumn returns block i's stored path column and where it starts.
func pathColumn(r *Reader, i int) ([]byte, int64, colMeta) {
	b := &r.blocks[i]
	off := b.off
	for c := 0; c < 4; c++ {
		off += int64(b.cols[c].clen)
	}
	cm := b.cols[4]
	return r.data[off : off+int64(cm.clen)], off, cm
}

// TestPathDictionary checks format 4's path dictionary: the records come
// back exactly, the path text of every block after the first needs the
// dictionary (a plain decoder refuses it), and it is smaller than the same
// streams compressed without one.
func TestPathDictionary(t *testing.T) {
	recs := genRecords(3, 20_000)
	p := filepath.Join(t.TempDir(), "dict.seg")
	if _, err := Write(p, recs, Options{BlockRows: 2048}); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, p)
	if len(got) != len(recs) {
		t.Fatalf("read %d records, wrote %d", len(got), len(recs))
	}
	for i := range recs {
		if got[i].Path != recs[i].Path || got[i].IP != recs[i].IP || !got[i].Time.Equal(recs[i].Time) {
			t.Fatalf("record %d: got %+v, want %+v", i, got[i], recs[i])
		}
	}
	r, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.NumBlocks() < 5 {
		t.Fatalf("%d blocks, want several", r.NumBlocks())
	}
	enc, err := encoderFor(DefaultLevel)
	if err != nil {
		t.Fatal(err)
	}
	var stored, plain int
	for i := range r.NumBlocks() {
		comp, _, cm := pathColumn(r, i)
		_, plainErr := decompress(comp, int(cm.rlen))
		if i == 0 {
			if plainErr != nil {
				t.Fatalf("block 0's path column needs a dictionary: %v", plainErr)
			}
			continue
		}
		if !errors.Is(plainErr, zstd.ErrUnknownDictionary) {
			t.Fatalf("block %d: decoded without the dictionary (err %v): the path text is not compressed with it", i, plainErr)
		}
		blk, err := r.ReadBlock(i, ColPath)
		if err != nil {
			t.Fatal(err)
		}
		var raw parts
		appendPaths(&raw, blk.Paths, map[string]uint32{}, nil)
		for s := range raw.ends {
			plain += len(enc.EncodeAll(raw.stream(s), nil))
		}
		stored += len(comp)
	}
	t.Logf("path columns of blocks 1-%d: %d bytes, %d without the dictionary", r.NumBlocks()-1, stored, plain)
	if float64(stored) > 0.95*float64(plain) {
		t.Fatalf("path columns after block 0: %d bytes with the dictionary, %d without", stored, plain)
	}
}

// TestPathDictionaryBounded checks that readers keep at most maxPathDicts
// dictionaries, that an evicted one is decoded again when needed, and that
// Close drops a reader's.
func TestPathDictionaryBounded(t *testing.T) {
	p := filepath.Join(t.TempDir(), "two.seg")
	recs := genRecords(4, 300)
	if _, err := Write(p, recs, Options{BlockRows: 150}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	readers := make([]*Reader, maxPathDicts+10)
	for i := range readers {
		if readers[i], err = OpenBytes(b, "two.seg", OpenOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := readers[i].ReadBlock(1, ColPath); err != nil {
			t.Fatal(err)
		}
	}
	loaded := func() int {
		n := 0
		for _, r := range readers {
			if r.pathDict.Load() != nil {
				n++
			}
		}
		return n
	}
	if n := loaded(); n > maxPathDicts {
		t.Fatalf("%d readers hold a path dictionary, want at most %d", n, maxPathDicts)
	}
	if readers[0].pathDict.Load() != nil {
		t.Fatal("the oldest dictionary was not evicted")
	}
	blk, err := readers[0].ReadBlock(1, ColPath)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(blk.Paths, pathsOf(recs[150:])) {
		t.Fatal("block 1's paths after the dictionary was evicted and decoded again differ")
	}
	last := readers[len(readers)-1]
	if last.pathDict.Load() == nil {
		t.Fatal("the newest dictionary is not kept")
	}
	last.Close()
	if last.pathDict.Load() != nil {
		t.Fatal("Close kept the path dictionary")
	}
}

func pathsOf(recs []record.Record) []string {
	out := make([]string, len(recs))
	for i := range recs {
		out[i] = recs[i].Path
	}
	return out
}

// TestPathDictionaryDamage checks that damage to block 0's path column is
// reported, at its offset, by a read of a later block's paths (which need
// it as their dictionary), and spares that block's other columns.
func TestPathDictionaryDamage(t *testing.T) {
	p := filepath.Join(t.TempDir(), "damaged.seg")
	if _, err := Write(p, genRecords(5, 600), Options{BlockRows: 200}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	_, off, cm := pathColumn(r, 0)
	r.Close()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[off+int64(cm.clen)/2] ^= 0xff
	r, err = OpenBytes(b, "damaged.seg", OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.ReadBlock(2, ColTime|ColIP); err != nil {
		t.Fatalf("block 2 without its paths: %v", err)
	}
	_, err = r.ReadBlock(2, ColPath)
	var ce *CorruptionError
	if !errors.As(err, &ce) || ce.Offset != off {
		t.Fatalf("block 2's paths with block 0's path column damaged: %v, want a corruption error at offset %d", err, off)
	}
}

// BenchmarkPathColumnDecode measures decoding a block's path column as
// format 4 stores it (the text compressed with block 0's as dictionary)
// against the same streams compressed without a dictionary, in the same
// run: the dictionary's price for a search that reads paths.
func BenchmarkPathColumnDecode(b *testing.B) {
	p := filepath.Join(b.TempDir(), "bench.seg")
	if _, err := Write(p, genRecords(6, 8*8192), Options{}); err != nil {
		b.Fatal(err)
	}
	r, err := Open(p)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	enc, err := encoderFor(DefaultLevel)
	if err != nil {
		b.Fatal(err)
	}
	type col struct {
		dict, plain []byte
		rlen        int
	}
	var cols []col
	for i := 1; i < r.NumBlocks(); i++ {
		comp, _, cm := pathColumn(r, i)
		blk, err := r.ReadBlock(i, ColPath)
		if err != nil {
			b.Fatal(err)
		}
		var raw parts
		appendPaths(&raw, blk.Paths, map[string]uint32{}, nil)
		var plain []byte
		for s := range raw.ends {
			plain = enc.EncodeAll(raw.stream(s), plain)
		}
		cols = append(cols, col{dict: comp, plain: plain, rlen: int(cm.rlen)})
	}
	dict, err := r.pathDictionary()
	if err != nil {
		b.Fatal(err)
	}
	var dst []byte
	measure := func(f func(c col) error) float64 {
		start := time.Now()
		for range b.N {
			for _, c := range cols {
				if err := f(c); err != nil {
					b.Fatal(err)
				}
			}
		}
		return float64(time.Since(start).Nanoseconds()) / float64(b.N*len(cols))
	}
	b.ResetTimer()
	withDict := measure(func(c col) (err error) { dst, err = decompressDictInto(dst, c.dict, c.rlen, dict); return err })
	without := measure(func(c col) (err error) { dst, err = decompressInto(dst, c.plain, c.rlen); return err })
	b.ReportMetric(withDict/1e3, "µs/column")
	b.ReportMetric(without/1e3, "µs/column_no_dict")
	b.ReportMetric(withDict/without, "ratio_vs_no_dict")
	b.ReportMetric(0, "ns/op")
}
