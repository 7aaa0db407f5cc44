// Command loggen writes deterministic, realistic access-log records to
// standard output, for benchmarks, demos and load tests of retentiond:
//
//	loggen -n 1000000 -days 10 -seed 1 -format ndjson|combined|vhost_combined [-start 2026-01-01]
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/retentiond/retentiond/internal/loggen"
	"github.com/retentiond/retentiond/internal/record"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "loggen:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("loggen", flag.ContinueOnError)
	n := fs.Int("n", 1_000_000, "number of records")
	days := fs.Int("days", 1, "number of UTC days the records spread over")
	seed := fs.Int64("seed", 1, "seed; the same flags always give the same output")
	format := fs.String("format", "ndjson", "output format: ndjson, combined or vhost_combined")
	start := fs.String("start", "2026-01-01", "first UTC day (YYYY-MM-DD)")
	vhosts := fs.Int("vhosts", 5000, "distinct virtual hosts")
	uas := fs.Int("user-agents", 1500, "distinct user agents")
	visitors := fs.Int("visitors", 100_000, "distinct visitors (client IPs)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var appendFn func([]byte, *record.Record) []byte
	switch *format {
	case "ndjson", "json":
		appendFn = loggen.AppendNDJSON
	case "combined":
		appendFn = loggen.AppendCombined
	case "vhost_combined":
		appendFn = loggen.AppendVhostCombined
	default:
		return fmt.Errorf("unknown -format %q (want ndjson, combined or vhost_combined)", *format)
	}
	day, err := time.Parse(time.DateOnly, *start)
	if err != nil {
		return fmt.Errorf("parse -start: %w", err)
	}
	if *n <= 0 || *days <= 0 {
		return errors.New("-n and -days must be positive")
	}
	g := loggen.New(loggen.Options{
		Seed: *seed, Start: day, Days: *days, Total: *n,
		Vhosts: *vhosts, UserAgents: *uas, Visitors: *visitors,
	})
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	buf := make([]byte, 0, 128<<10)
	for !g.Done() {
		r := g.Next()
		buf = appendFn(buf, &r)
		if len(buf) >= 64<<10 {
			if _, err := w.Write(buf); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			buf = buf[:0]
		}
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}
