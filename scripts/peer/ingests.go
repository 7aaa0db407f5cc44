//go:build linux

package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// ingestRun is what one ingest into a fresh data directory measured.
type ingestRun struct {
	wall    time.Duration
	cpu     float64
	hwm     int64
	refused int64
}

// ingestOnce ingests files into a server started on a fresh data
// directory dir, records the figures, and stops it and removes dir.
func (s *server) ingestOnce(dir string, files []string, clients int, settleMax time.Duration) {
	t := &server{name: s.name, kind: s.kind, streams: s.streams, bin: s.bin, dir: dir, ingests: s.ingests}
	t.ingestKept(files, clients, settleMax)
	t.stop()
	os.RemoveAll(dir)
	s.ingests = t.ingests
}

// ingestKept ingests files into the server, records the figures and
// leaves it running for the queries.
func (s *server) ingestKept(files []string, clients int, settleMax time.Duration) {
	log.Printf("%s: ingest %d", s.name, len(s.ingests)+1)
	s.refused.Store(0)
	s.start()
	s.ingest(files, clients)
	s.settle(settleMax)
	log.Printf("%s: %s wall, %.1f s CPU, VmHWM %s, %d refused%s",
		s.name, s.wall.Round(100*time.Millisecond), s.cpu, mib(s.hwm), s.refused.Load(), s.notes)
	s.ingests = append(s.ingests, ingestRun{wall: s.wall, cpu: s.cpu, hwm: s.hwm, refused: s.refused.Load()})
}

// useMedians sets the server's ingest figures to the medians of its
// ingests (the upper middle for an even count), and its refused batches
// to the most any ingest had.
func (s *server) useMedians() {
	if len(s.ingests) == 0 {
		return
	}
	med := func(v func(ingestRun) float64) float64 {
		var xs []float64
		for _, r := range s.ingests {
			xs = append(xs, v(r))
		}
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	s.wall = time.Duration(med(func(r ingestRun) float64 { return float64(r.wall) }))
	s.cpu = med(func(r ingestRun) float64 { return r.cpu })
	s.hwm = int64(med(func(r ingestRun) float64 { return float64(r.hwm) }))
	var most int64
	for _, r := range s.ingests {
		most = max(most, r.refused)
	}
	s.refused.Store(most)
}

// reportIngests prints each alternating pair of ingests of retentiond
// (rtd) and VictoriaLogs' no-stream layout (vl) with its CPU ratio, so that
// the medians of the main table can be checked against every pair.
func reportIngests(w io.Writer, rtd, vl *server) {
	if len(rtd.ingests) < 2 || len(rtd.ingests) != len(vl.ingests) {
		return
	}
	fmt.Fprintf(w, "\nEach ingest (the table above has the medians; pairs ran one after the other):\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ingest\tretentiond CPU\tno streams CPU\tCPU ratio\tretentiond wall\tno streams wall\tretentiond RSS\tno streams RSS\trefused\t")
	var ratios []string
	for i := range rtd.ingests {
		a, b := rtd.ingests[i], vl.ingests[i]
		ratios = append(ratios, fmt.Sprintf("%.2f×", a.cpu/b.cpu))
		fmt.Fprintf(tw, "%d\t%.1f s\t%.1f s\t%.2f×\t%.1f s\t%.1f s\t%s\t%s\t%d / %d\t\n",
			i+1, a.cpu, b.cpu, a.cpu/b.cpu, a.wall.Seconds(), b.wall.Seconds(), mib(a.hwm), mib(b.hwm), a.refused, b.refused)
	}
	tw.Flush()
	fmt.Fprintf(w, "CPU ratio of each pair: %s\n", strings.Join(ratios, " "))
}
