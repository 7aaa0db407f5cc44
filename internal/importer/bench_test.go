package importer

import (
	"bytes"
	"context"
	"flag"
	"sync"
	"testing"

	"github.com/retentiond/retentiond/internal/loggen"
	"github.com/retentiond/retentiond/internal/parse"
	"github.com/retentiond/retentiond/internal/record"
)

var benchLines = flag.Int("importlines", 1_000_000, "generated combined lines per import benchmark run")

var (
	combinedOnce sync.Once
	combinedData []byte
)

// combinedLog returns *benchLines generated combined lines, built once.
func combinedLog() []byte {
	combinedOnce.Do(func() {
		g := loggen.New(loggen.Options{Seed: 1, Total: *benchLines, Days: 10})
		b := make([]byte, 0, *benchLines*260)
		for !g.Done() {
			r := g.Next()
			b = loggen.AppendCombined(b, &r)
		}
		combinedData = b
	})
	return combinedData
}

type discardSink struct{ n int }

func (d *discardSink) Append(_ context.Context, recs []record.Record) error {
	d.n += len(recs)
	return nil
}

// benchImport runs a whole import of the generated log from memory (as
// stdin, so the disk is not measured) into a discarding sink.
func benchImport(b *testing.B, parseLine func(parse.Format, []byte, string) (record.Record, error)) {
	data := combinedLog()
	lines := bytes.Count(data, []byte("\n"))
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		l, err := OpenLedger(b.TempDir() + "/imports.json")
		if err != nil {
			b.Fatal(err)
		}
		sink := &discardSink{}
		im := New(Options{Sink: sink, Ledger: l, Dest: "bench", Format: "combined", Stdin: bytes.NewReader(data)})
		if parseLine != nil {
			im.parseLine = parseLine
		}
		if err := im.ImportFile(context.Background(), "-"); err != nil {
			b.Fatal(err)
		}
		if s := im.Summary(); s.Lines != int64(lines) {
			b.Fatalf("read %d lines, want %d", s.Lines, lines)
		}
		l.Close()
	}
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkImportOverhead measures the importer's own cost per line
// (reading, hashing, batching, ledger writes) with a parser that does no
// work: the ceiling of the import path.
func BenchmarkImportOverhead(b *testing.B) {
	var fixed record.Record
	fixed.Time = record.Day(fixed.Time.AddDate(2026, 0, 0))
	fixed.Domain, fixed.Path = "x.nl", "/"
	fixed.IP, _ = record.ParseIP("192.0.2.1")
	benchImport(b, func(parse.Format, []byte, string) (record.Record, error) { return fixed, nil })
}
