//go:build linux

package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"
)

// compareBuilds is the -baseline mode: it measures two retentiond builds
// on the same batches, ingest only, in alternating runs (baseline, then
// the build under test, runs times), each run a fresh server and data
// directory, and reports each build's figures per run, their medians and
// the ratio of the medians. VictoriaLogs' own CPU time moves by a fifth
// or more from run to run, more than most single changes to retentiond
// move its own, so a ratio to VictoriaLogs cannot tell two builds apart;
// the builds side by side can.
func compareBuilds(w io.Writer, tmp, bin, baseline string, files []string, clients, runs int, settleMax time.Duration) {
	if _, err := os.Stat(baseline); err != nil {
		log.Fatalf("-baseline: %v", err)
	}
	builds := []struct{ name, bin string }{{"baseline", baseline}, {"this build", bin}}
	all := make([][]*server, len(builds))
	for r := range runs {
		for i, b := range builds {
			s := &server{name: b.name, kind: "retentiond", bin: b.bin, dir: filepath.Join(tmp, fmt.Sprintf("rtd-%d-%d", i, r))}
			s.start()
			s.ingest(files, clients)
			s.settle(settleMax)
			s.stop()
			os.RemoveAll(s.dir)
			log.Printf("run %d, %s: %s wall, %.1f s CPU, VmHWM %s, %d refused%s",
				r+1, b.name, s.wall.Round(100*time.Millisecond), s.cpu, mib(s.hwm), s.refused.Load(), s.notes)
			all[i] = append(all[i], s)
		}
	}
	fmt.Fprintf(w, "\n%d alternating runs of each build; baseline %s, this build %s\n\n", runs, baseline, bin)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "figure\tbaseline, each run\tthis build, each run\tbaseline median\tthis build median\tthis / baseline\t")
	row := func(name string, val func(*server) float64, format func(float64) string) {
		var meds [2]float64
		var each [2]string
		for i, ss := range all {
			var v []float64
			for _, s := range ss {
				v = append(v, val(s))
				if each[i] != "" {
					each[i] += " "
				}
				each[i] += format(val(s))
			}
			slices.Sort(v)
			meds[i] = v[len(v)/2]
		}
		ratio := "–"
		if meds[0] != 0 {
			ratio = fmt.Sprintf("%.3f×", meds[1]/meds[0])
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", name, each[0], each[1], format(meds[0]), format(meds[1]), ratio)
	}
	row("ingest wall time (s)", func(s *server) float64 { return s.wall.Seconds() }, func(v float64) string { return fmt.Sprintf("%.1f", v) })
	row("server CPU incl. flushes and merges (s)", func(s *server) float64 { return s.cpu }, func(v float64) string { return fmt.Sprintf("%.2f", v) })
	row("peak RSS (MiB)", func(s *server) float64 { return float64(s.hwm) / (1 << 20) }, func(v float64) string { return fmt.Sprintf("%.0f", v) })
	row("batches answered 429/503", func(s *server) float64 { return float64(s.refused.Load()) }, func(v float64) string { return fmt.Sprintf("%.0f", v) })
	row("data directory after shutdown (MiB)", func(s *server) float64 { return float64(s.disk) / (1 << 20) }, func(v float64) string { return fmt.Sprintf("%.1f", v) })
	tw.Flush()
}
