package importer

import (
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress receives the progress of an import. Update is called every few
// thousand lines with the raw (on-disk, possibly compressed) bytes read of
// the current file and the lines read in the whole run.
type Progress interface {
	StartFile(name string, size int64) // size -1 when unknown (stdin)
	Update(rawBytes, lines int64)
	EndFile()
}

type nopProgress struct{}

func (nopProgress) StartFile(string, int64) {}
func (nopProgress) Update(int64, int64)     {}
func (nopProgress) EndFile()                {}

// NewProgress returns a progress display on w: a progress bar (bytes,
// lines/s, ETA) when w is a terminal, otherwise a plain line every interval,
// which suits logs and CI.
func NewProgress(w io.Writer, terminal bool, interval time.Duration) Progress {
	if terminal {
		return &barProgress{w: w}
	}
	return &lineProgress{w: w, interval: interval}
}

type barProgress struct {
	w          io.Writer
	bar        *progressbar.ProgressBar
	name       string
	start      time.Time
	startLines int64
	lastUpdate time.Time
}

func (p *barProgress) StartFile(name string, size int64) {
	p.name, p.start, p.startLines = filepath.Base(name), time.Now(), -1
	p.bar = progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(p.name),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }),
	)
}

func (p *barProgress) Update(raw, lines int64) {
	if p.bar == nil {
		return
	}
	if p.startLines < 0 {
		p.startLines = lines
	}
	if now := time.Now(); now.Sub(p.lastUpdate) >= 200*time.Millisecond {
		p.lastUpdate = now
		rate := float64(lines-p.startLines) / max(now.Sub(p.start).Seconds(), 1e-3)
		p.bar.Describe(fmt.Sprintf("%s %d lines %.0f lines/s", p.name, lines, rate))
	}
	p.bar.Set64(raw)
}

func (p *barProgress) EndFile() {
	if p.bar != nil {
		p.bar.Finish()
		p.bar = nil
	}
}

type lineProgress struct {
	w          io.Writer
	interval   time.Duration
	name       string
	size       int64
	start      time.Time
	last       time.Time
	startLines int64
}

func (p *lineProgress) StartFile(name string, size int64) {
	p.name, p.size, p.start, p.last, p.startLines = name, size, time.Now(), time.Now(), -1
}

func (p *lineProgress) Update(raw, lines int64) {
	if p.startLines < 0 {
		p.startLines = lines
	}
	now := time.Now()
	if now.Sub(p.last) < p.interval {
		return
	}
	p.last = now
	elapsed := now.Sub(p.start)
	rate := float64(lines-p.startLines) / max(elapsed.Seconds(), 1e-3)
	if p.size > 0 && raw > 0 {
		eta := time.Duration(float64(elapsed) * float64(p.size-raw) / float64(raw)).Round(time.Second)
		fmt.Fprintf(p.w, "import: %s: %s of %s (%.0f%%), %d lines, %.0f lines/s, ETA %s\n",
			p.name, mib(raw), mib(p.size), 100*float64(raw)/float64(p.size), lines, rate, eta)
		return
	}
	fmt.Fprintf(p.w, "import: %s: %s read, %d lines, %.0f lines/s\n", p.name, mib(raw), lines, rate)
}

func (p *lineProgress) EndFile() {}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
