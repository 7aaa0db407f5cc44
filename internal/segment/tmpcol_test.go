package segment

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func BenchmarkTmpColumns(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join(os.TempDir(), "retentiond-bench-v2-s1-10d-5000000", "*.seg"))
	r, err := Open(files[3])
	if err != nil {
		b.Fatal(err)
	}
	for c := 0; c < numColumns; c++ {
		col := Columns(1) << c
		b.Run(columnNames[c], func(b *testing.B) {
			var v BlockView
			i := 0
			var raw, comp int64
			for b.Loop() {
				blk := i % r.NumBlocks()
				if err := r.DecodeBlock(blk, col, &v); err != nil {
					b.Fatal(err)
				}
				raw += int64(r.blocks[blk].cols[c].rlen)
				comp += int64(r.blocks[blk].cols[c].clen)
				i++
				v.Have = 0
			}
			b.ReportMetric(float64(raw)/float64(b.N), "raw/op")
			b.ReportMetric(float64(comp)/float64(b.N), "comp/op")
			_ = fmt.Sprint()
		})
	}
}
