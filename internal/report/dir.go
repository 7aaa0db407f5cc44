package report

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/fsutil"
	"github.com/retentiond/retentiond/internal/metricsx"
	"github.com/retentiond/retentiond/internal/signing"
)

// DirName is the reports directory inside the data directory.
const DirName = "reports"

// nameLayout makes file names sort in creation order.
const nameLayout = "20060102T150405.000000000Z"

var nameRE = regexp.MustCompile(`^\d{8}T\d{6}\.\d{9}Z-([a-z]+)(-\d+)?\.json$`)

// Info describes one stored report.
type Info struct {
	Name    string    `json:"name"`
	Kind    string    `json:"kind"`
	Created time.Time `json:"created"`
	Bytes   int64     `json:"bytes"`
}

// DirOptions configure a Dir.
type DirOptions struct {
	FS         fsutil.FS
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: metrics kept but not registered
}

// Dir is the reports directory: it signs, stores, lists and purges reports.
type Dir struct {
	dir                   string
	key                   *signing.Key
	fs                    fsutil.FS
	log                   *slog.Logger
	wrote, failed, purged *prometheus.CounterVec
}

// OpenDir opens (creating if needed) the reports directory dir; reports
// are signed with key.
func OpenDir(dir string, key *signing.Key, opts DirOptions) (*Dir, error) {
	d := &Dir{dir: dir, key: key, fs: opts.FS, log: cmp.Or(opts.Logger, slog.Default()),
		wrote: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "retentiond_reports_written_total",
			Help: "Signed reports written to the reports directory, by kind (purge, erasure).",
		}, []string{"kind"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "retentiond_reports_write_failures_total",
			Help: "Signed reports that could not be written, by kind; what the run did is still in the daemon log.",
		}, []string{"kind"}),
		purged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "retentiond_reports_purged_total",
			Help: "Report files destroyed because they were older than the audit retention.",
		}, nil),
	}
	for _, k := range []string{KindPurge, KindErasure} {
		d.wrote.WithLabelValues(k)
		d.failed.WithLabelValues(k)
	}
	if err := metricsx.Register(opts.Registerer, d.wrote, d.failed, d.purged); err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	if err := d.fs.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("reports directory: %w", err)
	}
	if _, err := d.fs.SweepLeftovers(dir); err != nil {
		return nil, err
	}
	return d, nil
}

// Save signs body as a report of kind created at created and stores it
// durably (temp file, fsync, rename, directory fsync). It returns the
// file name.
func (d *Dir) Save(kind string, created time.Time, body any) (string, error) {
	b, err := Sign(d.key, kind, created, body)
	if err == nil {
		var name string
		if name, err = d.write(kind, created, b); err == nil {
			d.wrote.WithLabelValues(kind).Inc()
			d.log.Info("signed report written", "kind", kind, "file", name)
			return name, nil
		}
	}
	d.failed.WithLabelValues(kind).Inc()
	return "", fmt.Errorf("write %s report: %w", kind, err)
}

func (d *Dir) write(kind string, created time.Time, b []byte) (string, error) {
	base := created.UTC().Format(nameLayout) + "-" + kind
	name := base + ".json"
	for i := 2; ; i++ {
		if _, err := os.Lstat(filepath.Join(d.dir, name)); errors.Is(err, fs.ErrNotExist) {
			break
		}
		name = fmt.Sprintf("%s-%d.json", base, i)
	}
	return name, d.fs.WriteFile(filepath.Join(d.dir, name), b, 0o640)
}

// List returns the stored reports, oldest first.
func (d *Dir) List() ([]Info, error) {
	ents, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, fmt.Errorf("list reports: %w", err)
	}
	var out []Info
	for _, e := range ents {
		m := nameRE.FindStringSubmatch(e.Name())
		if m == nil || !e.Type().IsRegular() {
			continue
		}
		in := Info{Name: e.Name(), Kind: m[1]}
		in.Created, _ = time.Parse(nameLayout, e.Name()[:len(nameLayout)])
		if fi, err := e.Info(); err == nil {
			in.Bytes = fi.Size()
		}
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b Info) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// ErrNotFound means no report has that name.
var ErrNotFound = errors.New("no such report")

// Read returns the bytes of the report called name.
func (d *Dir) Read(name string) ([]byte, error) {
	if !nameRE.MatchString(name) {
		return nil, ErrNotFound
	}
	b, err := os.ReadFile(filepath.Join(d.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	return b, err
}

// Purge destroys the reports created before before (the audit
// retention's cutoff: reports are the audit trail of destruction and are
// kept as long as it). A report's age is the later of its name and its
// created field, so that a file renamed to an older date is not
// destroyed early.
func (d *Dir) Purge(ctx context.Context, before time.Time) (files int, bytes int64, err error) {
	list, err := d.List()
	if err != nil {
		return 0, 0, err
	}
	for _, in := range list {
		if !in.Created.Before(before) {
			break
		}
		if err := ctx.Err(); err != nil {
			return files, bytes, err
		}
		path := filepath.Join(d.dir, in.Name)
		if b, err := os.ReadFile(path); err == nil {
			var c struct {
				Created time.Time `json:"created"`
			}
			if json.Unmarshal(b, &c) == nil && !c.Created.Before(before) {
				d.log.Warn("report file holds a newer report than its name says; not purged (was it renamed?)", "file", in.Name)
				continue
			}
		}
		if err := d.fs.RemoveFile(path); err != nil {
			return files, bytes, fmt.Errorf("purge report %s: %w", in.Name, err)
		}
		files++
		bytes += in.Bytes
		d.purged.WithLabelValues().Inc()
	}
	return files, bytes, nil
}

// Key returns the signing key (for the public key endpoint).
func (d *Dir) Key() *signing.Key { return d.key }
