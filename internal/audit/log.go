// Package audit keeps retentiond's search audit log: one JSON line per search
// attempt, allowed or refused, each line carrying the hash of the line before
// it, so that editing, deleting, inserting or reordering lines is detected
// by Verify. A search's line is fsynced before the search runs; if it cannot
// be written, the search does not run. Files rotate per UTC day and are
// purged on the data's schedule; a purge leaves an anchor, confirmed by a
// line in the chain, so the remaining files stay verifiable.
package audit

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/retentiond/retentiond/internal/fsutil"
)

// Options configure a Log.
type Options struct {
	Now        func() time.Time // clock, for tests; nil: time.Now
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: metrics are kept but not registered
	// FS performs every file-system effect; the zero value is the real file
	// system, tests inject faults through it.
	FS fsutil.FS
	// Signer, when set, signs the checkpoints of the audit witness
	// (witness.go), written to Logger; nil: no checkpoints.
	Signer Signer
	// CheckpointLines writes a checkpoint after every this many lines
	// (audit.checkpoint_lines); 0: none by count.
	CheckpointLines int
}

// Entry is what a caller records. Empty strings are left out of the line.
type Entry struct {
	Time     time.Time // zero: now
	Event    string    // EventSearch when empty
	Endpoint string    // search, count, stats, export
	Outcome  string    // OutcomeRefused, OutcomeAllowed, OutcomeDone, OutcomeError
	Ref      int64     // for done and error lines: the seq of the allowed line
	Token    string    // token name (never the token)
	Source   string    // client address
	Case     string
	Reason   string
	Query    string
	From, To string // time range as the client gave it
	Params   string // the other query parameters, URL-encoded
	Status   int    // HTTP status answered
	Count    int64  // result count for done/error lines; negative: unknown (not written)
	Bytes    int64  // response bytes for done/error lines
	// SHA256 is, for done and error lines, the hex SHA-256 of exactly the
	// response body bytes sent (Bytes of them), so that an exported file
	// can be matched to the search that produced it.
	SHA256   string
	Duration time.Duration
	Error    string
	// Case lines (EventCase) also carry the case's title and expiry; its
	// time range goes in From and To and its scope in Query.
	Title   string
	Expires string
}

// ErrFailed is returned by Append after a write or fsync of the log failed:
// the tail of the file is then unknown, so the log refuses further lines
// (and so further searches) until the daemon restarts and repairs it.
var ErrFailed = errors.New("audit log failed earlier; restart the daemon to repair it")

// ErrChainBroken is returned by Open when the existing chain does not
// verify. The daemon then refuses to append to it; see docs/security.md.
var ErrChainBroken = errors.New("audit chain is broken")

// Log is an open audit log. It is safe for concurrent use; appends are
// serialised because every line depends on the previous one.
type Log struct {
	dir     string
	fs      fsutil.FS
	now     func() time.Time
	log     *slog.Logger
	metrics *metrics
	signer  Signer
	every   int64 // checkpoint after every this many lines; 0: never

	// check, when set, decides whether a request may run under the case it
	// names (the case registry's rules); see SetCaseCheck.
	check atomic.Pointer[CaseCheck]

	mu     sync.Mutex
	f      *fsutil.Handle
	day    string // day of the newest file (the one appended to)
	seq    int64  // seq of the last line
	head   string // hash of the last line
	failed error
	closed bool
}

// Open opens (creating if needed) the audit log in dir. It verifies the whole
// existing chain; a torn last line (a crash during a write, never
// acknowledged) is cut off and the repair recorded in the chain. Any other
// break makes Open fail with ErrChainBroken, so that nobody appends to a
// log that may have been tampered with before an operator looks at it.
func Open(dir string, opts Options) (*Log, error) {
	l := &Log{dir: dir, fs: opts.FS, now: opts.Now, log: cmp.Or(opts.Logger, slog.Default()),
		signer: opts.Signer, every: int64(max(opts.CheckpointLines, 0))}
	if l.now == nil {
		l.now = time.Now
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	l.metrics = m
	if err := l.fs.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit dir: %w", err)
	}
	if _, err := l.fs.SweepLeftovers(dir); err != nil {
		return nil, err
	}
	res, err := Verify(dir)
	if err != nil {
		return nil, err
	}
	var repaired string
	if res.FirstBad != nil && res.FirstBad.torn {
		path := filepath.Join(dir, res.FirstBad.File)
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("repair audit tail: %w", err)
		}
		cut := fi.Size() - res.FirstBad.Offset
		if err := truncate(l.fs, path, res.FirstBad.Offset); err != nil {
			return nil, err
		}
		repaired = fmt.Sprintf("cut an incomplete last line of %d bytes at %s offset %d", cut, res.FirstBad.File, res.FirstBad.Offset)
		l.log.Warn("audit log: repaired a torn last line", "file", res.FirstBad.File, "offset", res.FirstBad.Offset, "bytes", cut)
		if res, err = Verify(dir); err != nil {
			return nil, err
		}
	}
	if res.FirstBad != nil {
		l.metrics.chainBroken.Set(1)
		return nil, fmt.Errorf("%w: %s", ErrChainBroken, res.FirstBad)
	}
	l.seq, l.head = res.HeadSeq, res.HeadHash
	if files, err := listFiles(dir); err == nil && len(files) > 0 {
		l.day = fileRE.FindStringSubmatch(files[len(files)-1])[1]
	}
	if repaired != "" {
		if _, err := l.Append(Entry{Event: EventRecovery, Error: repaired}); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func truncate(fsys fsutil.FS, path string, size int64) error {
	f, err := fsys.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("repair audit tail: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("repair audit tail of %s at offset %d: %w", path, size, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("repair audit tail: sync: %w", err)
	}
	return nil
}

// Dir returns the audit directory.
func (l *Log) Dir() string { return l.dir }

// Head returns the seq and hash of the last line. Record them somewhere the
// host's administrator cannot rewrite (a witness); `retentiond audit verify
// --expect-head SEQ:HASH` then proves the chain was not cut or rewritten.
func (l *Log) Head() (seq int64, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq, l.head
}

// Append writes e as the next line of the chain and returns its seq once the
// line is fsynced. After a failed write or fsync every later Append fails
// with ErrFailed.
func (l *Log) Append(e Entry) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.appendLocked(e, nil)
}

func (l *Log) appendLocked(e Entry, purge *line) (int64, error) {
	start := time.Now()
	if l.closed {
		return 0, errors.New("audit log is closed")
	}
	if l.failed != nil {
		l.metrics.appendFailures.Inc()
		return 0, fmt.Errorf("%w: %w", ErrFailed, l.failed)
	}
	now := l.now().UTC()
	if err := l.rotate(now); err != nil {
		l.metrics.appendFailures.Inc()
		return 0, err
	}
	ln := purge
	if ln == nil {
		ln = entryLine(e, now)
	}
	ln.Seq = l.seq + 1
	ln.Prev = l.head
	b, hash, err := encodeLine(ln)
	if err != nil {
		return 0, err
	}
	if _, err := l.f.Write(b); err != nil {
		return 0, l.fail(fmt.Errorf("write audit line %d: %w", ln.Seq, err))
	}
	if err := l.f.Sync(); err != nil {
		return 0, l.fail(fmt.Errorf("sync audit line %d: %w", ln.Seq, err))
	}
	l.seq, l.head = ln.Seq, hash
	l.metrics.lines.Inc()
	l.metrics.appendSeconds.Observe(time.Since(start).Seconds())
	// The head goes to the daemon's own log at every line: a cheap witness
	// kept apart from the audit files (no case, query or address in it).
	l.log.Info("audit line written", "seq", ln.Seq, "hash", hash, "file", l.f.Name())
	if l.every > 0 && ln.Seq%l.every == 0 {
		l.checkpointLocked("lines")
	}
	return ln.Seq, nil
}

func (l *Log) fail(err error) error {
	l.failed = err
	l.metrics.appendFailures.Inc()
	l.log.Error("audit log failed; searches are refused until restart", "err", err)
	return err
}

// rotate makes l.f the file for now's day. Files are never reopened for an
// earlier day: if the clock goes back, lines keep going to the newest file,
// so that name order stays chain order.
func (l *Log) rotate(now time.Time) error {
	day := dayOf(now)
	if l.f != nil && day <= l.day {
		return nil
	}
	if day < l.day {
		day = l.day
	}
	path := filepath.Join(l.dir, fileName(day))
	f, err := l.fs.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open audit file: %w", err)
	}
	// Always, not only when the file is new: an earlier attempt may have
	// created it and then failed this very fsync, and lines must never go
	// into a file whose name may not survive a crash.
	if err := l.fs.SyncDir(l.dir); err != nil {
		f.Close()
		return err
	}
	if l.f != nil {
		l.f.Close()
	}
	l.f, l.day = f, day
	return nil
}

func entryLine(e Entry, now time.Time) *line {
	t := e.Time
	if t.IsZero() {
		t = now
	}
	ln := &line{
		Time:     t.UTC().Format(time.RFC3339Nano),
		Event:    cmp.Or(e.Event, EventSearch),
		Endpoint: e.Endpoint,
		Outcome:  e.Outcome,
		Ref:      e.Ref,
		Token:    e.Token,
		Source:   e.Source,
		Case:     e.Case,
		Reason:   e.Reason,
		Query:    e.Query,
		From:     e.From,
		To:       e.To,
		Params:   e.Params,
		Status:   e.Status,
		Bytes:    e.Bytes,
		SHA256:   e.SHA256,
		Error:    e.Error,
		Title:    e.Title,
		Expires:  e.Expires,
	}
	if e.Outcome == OutcomeDone || e.Outcome == OutcomeError {
		if e.Count >= 0 {
			c := e.Count
			ln.Count = &c
		}
		d := e.Duration.Seconds()
		ln.Duration = &d
	}
	return ln
}

// Close closes the current file. Lines are already durable.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Purge removes audit files whose lines all lie before before (UTC), never
// the file being written. Expiry is decided by the newest line inside a
// file, not by its name: a file renamed to an older date while the daemon
// was stopped is kept and reported, not destroyed early. Only a run of the
// oldest files is removed, so the chain keeps a single start. It first
// appends a purge line naming the new chain start (the anchor), then writes
// anchor.json, then removes the files oldest first, so that a crash at any
// point leaves a verifiable log: files older than the anchor are reported
// as pending and removed by the next purge.
func (l *Log) Purge(ctx context.Context, before time.Time) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed != nil {
		return 0, fmt.Errorf("%w: %w", ErrFailed, l.failed)
	}
	files, err := listFiles(l.dir)
	if err != nil {
		return 0, err
	}
	cutDay := dayOf(before)
	target := max(l.day, dayOf(l.now()))
	victims, remaining := files, []string(nil)
	for i, f := range files {
		d := fileRE.FindStringSubmatch(f)[1]
		expired := d < cutDay && d < target
		if d < target {
			newest, ok, err := newestLineDay(filepath.Join(l.dir, f))
			if err != nil {
				return 0, err
			}
			if ok {
				if expired && newest >= cutDay {
					l.log.Warn("audit file holds lines newer than its name says; not purged (was it renamed?)",
						"file", f, "name_day", d, "newest_line_day", newest)
				}
				expired = newest < cutDay
			}
		}
		if !expired {
			victims, remaining = files[:i], files[i:]
			break
		}
	}
	if len(victims) == 0 {
		return 0, nil
	}
	// The new chain start: the first line of the oldest remaining file, or,
	// when every existing file goes, the purge line itself (it then opens
	// the target day's new file).
	anc := anchor{File: fileName(target), Seq: l.seq + 1, Prev: l.head}
	for _, f := range remaining {
		first, err := firstLine(filepath.Join(l.dir, f))
		if err != nil {
			return 0, err
		}
		if first != nil {
			anc = anchor{File: f, Seq: first.Seq, Prev: first.Prev}
			break
		}
	}
	anc.PurgedFiles = len(victims)
	anc.PurgedBefore = cutDay
	anc.Time = l.now().UTC().Format(time.RFC3339Nano)
	pl := &line{
		Time:         anc.Time,
		Event:        EventPurge,
		AnchorFile:   anc.File,
		AnchorSeq:    anc.Seq,
		AnchorPrev:   anc.Prev,
		PurgedFiles:  anc.PurgedFiles,
		PurgedBefore: anc.PurgedBefore,
	}
	if _, err := l.appendLocked(Entry{}, pl); err != nil {
		return 0, err
	}
	ab, err := jsonLine(anc)
	if err != nil {
		return 0, err
	}
	if err := l.fs.WriteFile(filepath.Join(l.dir, AnchorName), ab, 0o600); err != nil {
		return 0, fmt.Errorf("write audit anchor: %w", err)
	}
	n := 0
	for _, f := range victims {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		if err := l.fs.RemoveFile(filepath.Join(l.dir, f)); err != nil {
			return n, fmt.Errorf("purge audit file %s: %w", f, err)
		}
		n++
		l.metrics.purgedFiles.Inc()
	}
	l.log.Info("audit files purged", "files", n, "before", cutDay, "anchor_file", anc.File, "anchor_seq", anc.Seq)
	return n, nil
}

// firstLine returns the parsed first line of an audit file, or nil for an
// empty file.
func firstLine(path string) (*line, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read audit file: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 0, 4096)
	chunk := make([]byte, 4096)
	for {
		n, err := f.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if i := indexNL(buf); i >= 0 {
			ln, _, perr := parseLine(buf[:i])
			if perr != nil {
				return nil, fmt.Errorf("%s offset 0: %w", path, perr)
			}
			return ln, nil
		}
		if err == io.EOF {
			if len(buf) == 0 {
				return nil, nil
			}
			return nil, fmt.Errorf("%s offset 0: incomplete first line", path)
		}
		if err != nil {
			return nil, fmt.Errorf("read audit file: %w", err)
		}
	}
}

// newestLineDay returns the UTC day of the last line of an audit file, read
// from its end, and false for a file without a complete line.
func newestLineDay(path string) (string, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", false, fmt.Errorf("read audit file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", false, fmt.Errorf("read audit file: %w", err)
	}
	size := fi.Size()
	for n := int64(64 << 10); ; n *= 4 {
		start := max(size-n, 0)
		buf := make([]byte, size-start)
		if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
			return "", false, fmt.Errorf("read audit file %s: %w", path, err)
		}
		end := bytes.LastIndexByte(buf, '\n')
		if end < 0 {
			if start == 0 {
				return "", false, nil
			}
			continue
		}
		begin := bytes.LastIndexByte(buf[:end], '\n') + 1
		if begin == 0 && start > 0 {
			continue // the line starts before what was read
		}
		ln, _, err := parseLine(buf[begin:end])
		if err != nil {
			return "", false, fmt.Errorf("%s offset %d: %w", path, start+int64(begin), err)
		}
		t, _ := time.Parse(time.RFC3339Nano, ln.Time) // parseLine checked it
		return dayOf(t), true, nil
	}
}

func indexNL(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}
