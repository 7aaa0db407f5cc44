package segment

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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

// writeOpen writes recs as a segment at path and opens it; the test closes
// it when it ends.
func writeOpen(t testing.TB, path string, recs []record.Record, opts Options) *Reader {
	t.Helper()
	if _, err := Write(path, recs, opts); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func pathsOf(recs []record.Record) []string {
	out := make([]string, len(recs))
	for i := range recs {
		out[i] = recs[i].Path
	}
	return out
}

// TestBasePaths checks format 4's shared block-0 paths: every path comes
// back exactly through every accessor (ReadBlock, EachPath with PathIdx,
// PathsOfRows, EachOwnPath after EachBasePath), later blocks index block
// 0's paths instead of storing them, and their path columns are smaller
// than the same blocks written on their own.
func TestBasePaths(t *testing.T) {
	recs := genRecords(3, 20_000)
	r := writeOpen(t, filepath.Join(t.TempDir(), "base.seg"), recs, Options{BlockRows: 2048})
	if r.NumBlocks() < 5 {
		t.Fatalf("%d blocks, want several", r.NumBlocks())
	}
	var base []string
	if err := r.EachBasePath(func(_ int, path []byte) { base = append(base, string(path)) }); err != nil {
		t.Fatal(err)
	}
	if len(base) == 0 || !slices.IsSorted(base) {
		t.Fatalf("block 0 shares %d paths (sorted: %v)", len(base), slices.IsSorted(base))
	}
	var shared, alone int
	for i := range r.NumBlocks() {
		lo := i * 2048
		want := pathsOf(recs[lo:min(lo+2048, len(recs))])
		blk, err := r.ReadBlock(i, ColPath)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(blk.Paths, want) {
			t.Fatalf("block %d: ReadBlock's paths differ", i)
		}
		var v BlockView
		if err := r.DecodeBlock(i, ColPath, &v); err != nil {
			t.Fatal(err)
		}
		if nb := v.NumBasePaths(); (i == 0) != (nb == 0) || (i > 0 && nb != len(base)) {
			t.Fatalf("block %d shares %d of block 0's %d paths", i, nb, len(base))
		}
		dict := make([]string, v.NumPaths())
		v.EachPath(func(j int, path []byte) { dict[j] = string(path) })
		own := slices.Clone(dict)
		for j := range v.NumBasePaths() {
			if dict[j] != base[j] {
				t.Fatalf("block %d entry %d is %q, block 0's is %q", i, j, dict[j], base[j])
			}
			own[j] = ""
		}
		v.EachOwnPath(func(j int, path []byte) {
			if j < v.NumBasePaths() || own[j] != string(path) {
				t.Fatalf("block %d: EachOwnPath gave entry %d %q", i, j, path)
			}
			own[j] = ""
		})
		if slices.ContainsFunc(own, func(s string) bool { return s != "" }) {
			t.Fatalf("block %d: EachOwnPath missed entries", i)
		}
		idx, err := v.PathIdx()
		if err != nil {
			t.Fatal(err)
		}
		rows := make([]int, len(want))
		for k, j := range idx {
			if dict[j] != want[k] {
				t.Fatalf("block %d row %d: entry %d is %q, want %q", i, k, j, dict[j], want[k])
			}
			rows[len(rows)-1-k] = k
		}
		got, err := v.PathsOfRows(rows)
		if err != nil {
			t.Fatal(err)
		}
		for k, row := range rows {
			if got[k] != want[row] {
				t.Fatalf("block %d: PathsOfRows row %d = %q, want %q", i, row, got[k], want[row])
			}
		}
		if i == 0 {
			continue
		}
		// The same rows as a block of their own, sharing nothing.
		comp, _, _ := pathColumn(r, i)
		sr := writeOpen(t, filepath.Join(t.TempDir(), "solo.seg"), recs[lo:min(lo+2048, len(recs))], Options{BlockRows: 2048})
		soloComp, _, _ := pathColumn(sr, 0)
		shared, alone = shared+len(comp), alone+len(soloComp)
	}
	t.Logf("path columns of blocks 1-%d: %d bytes, %d written alone", r.NumBlocks()-1, shared, alone)
	if float64(shared) > 0.95*float64(alone) {
		t.Fatalf("path columns after block 0: %d bytes sharing block 0's paths, %d alone", shared, alone)
	}
}

// TestBasePathsTooLong checks that a block 0 whose distinct paths are too
// long to keep shares none, and that its segment reads back.
func TestBasePathsTooLong(t *testing.T) {
	recs := genRecords(7, 300)
	for i := range recs[:100] {
		recs[i].Path = "/" + strings.Repeat("x", basePathsMax/64) + recs[i].Path
	}
	p := filepath.Join(t.TempDir(), "long.seg")
	r := writeOpen(t, p, recs, Options{BlockRows: 100})
	if got := readAll(t, p); !slices.Equal(pathsOf(got), pathsOf(recs)) {
		t.Fatal("paths differ")
	}
	var v BlockView
	if err := r.DecodeBlock(2, ColPath, &v); err != nil {
		t.Fatal(err)
	}
	if v.NumBasePaths() != 0 {
		t.Fatalf("block 2 shares %d paths of a block 0 of %d KiB of paths", v.NumBasePaths(), basePathsMax/64*100>>10)
	}
}

// TestBasePathsBounded checks that readers keep at most maxBasePaths
// block-0 dictionaries, that an evicted one is decoded again when needed,
// and that Close drops a reader's.
func TestBasePathsBounded(t *testing.T) {
	p := filepath.Join(t.TempDir(), "two.seg")
	recs := genRecords(4, 300)
	if _, err := Write(p, recs, Options{BlockRows: 150}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	readers := make([]*Reader, maxBasePaths+10)
	for i := range readers {
		if readers[i], err = OpenBytes(b, "two.seg", OpenOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := readers[i].ReadBlock(1, ColPath); err != nil {
			t.Fatal(err)
		}
	}
	loaded := 0
	for _, r := range readers {
		if r.basePaths.Load() != nil {
			loaded++
		}
	}
	if loaded > maxBasePaths {
		t.Fatalf("%d readers hold block 0's paths, want at most %d", loaded, maxBasePaths)
	}
	if readers[0].basePaths.Load() != nil {
		t.Fatal("the oldest dictionary was not evicted")
	}
	blk, err := readers[0].ReadBlock(1, ColPath)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(blk.Paths, pathsOf(recs[150:])) {
		t.Fatal("block 1's paths after block 0's were evicted and decoded again differ")
	}
	last := readers[len(readers)-1]
	if last.basePaths.Load() == nil {
		t.Fatal("the newest dictionary is not kept")
	}
	last.Close()
	if last.basePaths.Load() != nil {
		t.Fatal("Close kept block 0's paths")
	}
	basePathCache.mu.Lock()
	kept := slices.Contains(basePathCache.readers, last)
	basePathCache.mu.Unlock()
	if kept {
		t.Fatal("a closed reader is still in the cache")
	}
}

// TestBasePathsDamage checks that damage to block 0's path column is
// reported, at its offset, by a read of a later block's paths (which
// share it), and spares that block's other columns.
func TestBasePathsDamage(t *testing.T) {
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

// FuzzPathColumn decodes arbitrary raw path columns of every format, with
// and without block 0's paths to share: each must decode to an error, or
// to row indexes inside the dictionary whose every accessor works. Whole
// files rarely get past a column's CRC; this reaches the decoder itself.
func FuzzPathColumn(f *testing.F) {
	recs := genRecords(8, 600)
	var p parts
	_, distinct := appendPaths(&p, pathsOf(recs[:300]), &pathScratch{}, nil, nil)
	var base pathDict
	if err := base.decode(slices.Clone(p.buf), 300, Version, nil); err != nil {
		f.Fatal(err)
	}
	base.build()
	f.Add(slices.Clone(p.buf), uint16(300), byte(Version))
	p.reset()
	appendPaths(&p, pathsOf(recs[300:]), &pathScratch{}, nil, basePaths(distinct))
	f.Add(slices.Clone(p.buf), uint16(300), byte(Version))
	f.Add(slices.Clone(p.buf[1:]), uint16(300), byte(3))
	f.Fuzz(func(t *testing.T, raw []byte, rows uint16, version byte) {
		var d pathDict
		if d.decode(raw, int(rows), version, &base) != nil {
			return
		}
		idx, err := d.idx.values()
		if err != nil {
			return
		}
		want := make([]uint32, 0, len(idx))
		for i, k := range idx {
			if int(k) >= d.len() {
				t.Fatalf("row %d: path index %d of %d", i, k, d.len())
			}
			d.bytes(int(k))
			want = append(want, k)
		}
		d.strings(want)
		n := 0
		d.walk(func(int, []byte) { n++ })
		if n != d.len() {
			t.Fatalf("walk visited %d of %d paths", n, d.len())
		}
	})
}

// BenchmarkPathColumnDecode measures decoding a block's path column and
// walking its dictionary as format 4 stores it (sharing block 0's paths)
// against the same rows written as a block of their own, in the same run.
func BenchmarkPathColumnDecode(b *testing.B) {
	recs := genRecords(6, 8*8192)
	dir := b.TempDir()
	shared := writeOpen(b, filepath.Join(dir, "shared.seg"), recs, Options{})
	var alone []*Reader
	for i := 1; i < shared.NumBlocks(); i++ {
		q := filepath.Join(dir, fmt.Sprintf("alone-%d.seg", i))
		alone = append(alone, writeOpen(b, q, recs[i*8192:min((i+1)*8192, len(recs))], Options{}))
	}
	var v BlockView
	decode := func(r *Reader, i int) {
		if err := r.DecodeBlock(i, ColPath, &v); err != nil {
			b.Fatal(err)
		}
		n := 0
		v.EachPath(func(int, []byte) { n++ })
		v = BlockView{Times: v.Times[:0]} // the next read decodes again
	}
	var tShared, tAlone time.Duration
	for b.Loop() {
		start := time.Now()
		for i := 1; i < shared.NumBlocks(); i++ {
			decode(shared, i)
		}
		tShared += time.Since(start)
		start = time.Now()
		for _, r := range alone {
			decode(r, 0)
		}
		tAlone += time.Since(start)
	}
	per := float64(b.N * len(alone))
	b.ReportMetric(float64(tShared.Microseconds())/per, "µs/column")
	b.ReportMetric(float64(tAlone.Microseconds())/per, "µs/column_alone")
	b.ReportMetric(float64(tShared)/float64(tAlone), "ratio_vs_alone")
}

// TestAppendPathsOrder checks that a block's own paths come out in byte
// order and that every row's index names its path, for paths that tie on
// their first eight bytes (prefix8) and differ after them, end inside them,
// or differ only by trailing zero bytes, which the number pads with.
func TestAppendPathsOrder(t *testing.T) {
	paths := []string{
		"/wp-content/b", "/wp-content/a", "/wp-cont", "/wp-cont\x00", "/wp-con", "/wp-cont\x00\x00",
		"/", "", "/a", "/a\x00", "/\xff", "/wp-content/a", "/wp-contenT", "/wp-cont\x01", "/wp-conu",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		rng.Shuffle(len(paths), func(i, j int) { paths[i], paths[j] = paths[j], paths[i] })
		var p parts
		idx, distinct := appendPaths(&p, paths, &pathScratch{}, nil, nil)
		want := slices.Compact(slices.Sorted(slices.Values(paths)))
		if !slices.Equal(distinct, want) {
			t.Fatalf("distinct paths %q, want %q", distinct, want)
		}
		for i, s := range paths {
			if distinct[idx[i]] != s {
				t.Fatalf("row %d (%q) indexes %q", i, s, distinct[idx[i]])
			}
		}
	}
}
