// Package importer backfills existing log files into retentiond: it reads
// plain, gzip and zstd files (or stdin), parses each line with the ingest
// parsers, drops records already past retention, and writes the rest in
// batches to a Sink (the running daemon's API, or a stopped daemon's store).
//
// Imports are exactly-once per destination: a ledger records, after every
// acknowledged batch, how much of a file's content went in and the SHA-256 of
// that prefix. Running the same import again is refused, an interrupted one
// resumes after its last acknowledged batch, and a log that has grown since
// its import (or was renamed, or compressed by logrotate) continues where
// the earlier import stopped. docs/import.md describes the design.
package importer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/retentiond/retentiond/internal/parse"
	"github.com/retentiond/retentiond/internal/record"
)

// Sink receives batches of normalised records. Append returns nil only once
// every record is durably stored; then the batch counts as acknowledged.
// *store.Store satisfies it (wrap it in StoreSink for back-pressure retries).
type Sink interface {
	Append(ctx context.Context, recs []record.Record) error
}

// Rejection is one record of a batch that the destination refused.
type Rejection struct {
	Index int    // position in the batch
	Err   string // the destination's reason
}

// PartialSink is a Sink that may accept part of a batch and says which
// records it refused (the daemon's ingest API does). Rejected records count
// as handled: the batch is acknowledged and they are reported.
type PartialSink interface {
	Sink
	AppendPartial(ctx context.Context, recs []record.Record) ([]Rejection, error)
}

// RetryableError is an error after which the same batch may be sent again
// once RetryAfter has passed (back-pressure: HTTP 429/503, store.ErrBusy).
type RetryableError interface {
	error
	RetryAfter() time.Duration
}

// Errors a caller may test for with errors.Is.
var (
	// ErrAlreadyImported means the file's whole content was imported before.
	ErrAlreadyImported = errors.New("already imported")
	// ErrInterrupted means Stop was called; progress up to the last
	// acknowledged batch is in the ledger.
	ErrInterrupted = errors.New("import interrupted")
)

// Defaults for Options.
const (
	DefaultBatchSize    = 5000
	DefaultMaxLineBytes = 256 << 10
	detectLines         = 32
	maxExamples         = 3
	maxRetryWait        = 30 * time.Second
)

// Options configure an Importer. Parsing is injected (cmd/retentiond wires
// the ingest parsers) so that this package stays about reading, batching
// and bookkeeping.
type Options struct {
	// Sink receives the records. Required.
	Sink Sink
	// Ledger records what was imported. Required: without it nothing
	// prevents importing a file twice.
	Ledger *Ledger
	// Dest names the destination in the ledger (the daemon's URL or the
	// data directory), so that importing into two daemons is not confused.
	Dest string
	// Format is the log format of the files (parse.ParseLine reads each
	// line, as HTTP ingest does); "" or "auto" detects it from each file's
	// first lines (parse.DetectFormat).
	Format string
	// Domain is the virtual host for lines that carry none (combined logs).
	Domain string
	// Force imports files even if the ledger says they were imported.
	Force bool
	// BatchSize is the number of records per Append (default 5000).
	BatchSize int
	// MaxLineBytes is the longest line accepted (default 256 KiB); longer
	// lines are rejected with their file and line number.
	MaxLineBytes int
	// TimeWindow returns the oldest time still within retention and the
	// newest acceptable time (clock skew); nil accepts every time. Records
	// before oldest are skipped and counted, records at or after newest are
	// rejected.
	TimeWindow func(now time.Time) (oldest, newest time.Time)
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Stdin is read for the file name "-"; default os.Stdin.
	Stdin io.Reader
	// Progress receives progress updates; nil shows none.
	Progress Progress
}

// Importer imports files one after another and sums up the outcome.
type Importer struct {
	opts    Options
	sum     Summary
	stop    atomic.Bool
	oldest  time.Time
	newest  time.Time
	windowd bool
	// parseLine is parse.ParseLine; a benchmark swaps in one that does no
	// work to measure the importer's own cost.
	parseLine func(parse.Format, []byte, string) (record.Record, error)
}

// New returns an Importer. Options.Sink and Options.Ledger are required.
func New(opts Options) *Importer {
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = DefaultMaxLineBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Format == "auto" {
		opts.Format = ""
	}
	if opts.Progress == nil {
		opts.Progress = nopProgress{}
	}
	im := &Importer{opts: opts, parseLine: parse.ParseLine}
	if opts.TimeWindow != nil {
		im.oldest, im.newest = opts.TimeWindow(opts.Now())
		im.windowd = true
	}
	return im
}

// Stop makes the import end after the batch in flight is acknowledged (or
// abandoned while waiting out back-pressure), so that no batch is left with
// an unknown outcome. ImportFile then returns ErrInterrupted.
func (im *Importer) Stop() { im.stop.Store(true) }

// Summary returns the totals so far.
func (im *Importer) Summary() *Summary { return &im.sum }

// rewind asks for another pass over a file without the candidate entry whose
// head matched but whose later content did not.
type rewind struct{ entry *Entry }

func (r *rewind) Error() string { return "content differs from earlier import " + r.entry.Name }

// ImportFile imports one file ("-" for stdin). It returns ErrAlreadyImported
// (wrapped, with a message naming the earlier import) when the ledger shows
// the whole content was imported before and Force is off.
func (im *Importer) ImportFile(ctx context.Context, name string) error {
	if im.opts.Sink == nil || im.opts.Ledger == nil {
		return errors.New("importer: Sink and Ledger are required")
	}
	var cands []*Entry
	if !im.opts.Force {
		cands = im.opts.Ledger.candidates(im.opts.Dest)
	}
	for {
		err := im.pass(ctx, name, cands)
		var rw *rewind
		if !errors.As(err, &rw) {
			if err == nil {
				im.sum.Files++
			}
			return err
		}
		cands = removeEntry(cands, rw.entry)
	}
}

func removeEntry(es []*Entry, e *Entry) []*Entry {
	out := make([]*Entry, 0, len(es))
	for _, x := range es {
		if x != e {
			out = append(out, x)
		}
	}
	return out
}

// pending is a line read during the head phase, kept until the importer
// knows whether it was imported before.
type pending struct {
	line []byte
	no   int64
	end  int64 // content offset after the line
	err  error // errLineTooLong
}

// fileRun is the state of one pass over one file.
type fileRun struct {
	im      *Importer
	name    string
	lr      *lineReader
	in      *input
	format  parse.Format
	entry   *Entry
	batch   []record.Record
	lines   []int64 // file line of each record in batch
	handled int64   // lines handled in this pass (after any skipped prefix)
	// replaying is set while head-phase lines are handled (see importRest).
	replaying bool
}

// pass makes one pass over a file, in phases: read the head and match it
// against earlier imports (readHead), detect the format from the head
// (detectFormat), skip what the best matching import already covered
// (skipImported), start or continue the ledger entry (startEntry), import
// the rest (importRest) and record the file as complete (finish).
func (im *Importer) pass(ctx context.Context, name string, cands []*Entry) error {
	in, err := openInput(name, im.opts.Stdin)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	defer in.Close()
	lr := newLineReader(in.content, im.opts.MaxLineBytes)
	fr := &fileRun{im: im, name: name, lr: lr, in: in}
	im.opts.Progress.StartFile(name, in.size)
	defer im.opts.Progress.EndFile()

	head, matched, eof, err := fr.readHead(cands)
	if err != nil {
		return err
	}
	headLen, headSum := lr.offset, hexSum(lr.Sum())
	if empty, err := fr.detectFormat(head, eof, headLen); empty || err != nil {
		return err
	}
	prev := furthest(matched)
	if head, err = fr.skipImported(prev, head, headLen); err != nil {
		return err
	}
	fr.startEntry(prev, headLen, headSum)
	if err := fr.importRest(ctx, head); err != nil {
		return err
	}
	return fr.finish(ctx, prev)
}

// readHead is the head phase: it reads up to the first line boundary at or
// after headBytes, keeping the lines, and returns the earlier imports (of
// cands) whose head has the same length and hash. eof is set when the file
// ended within the head.
func (fr *fileRun) readHead(cands []*Entry) (head []pending, matched []*Entry, eof bool, err error) {
	lr := fr.lr
	byHeadLen := map[int64][]*Entry{}
	for _, c := range cands {
		byHeadLen[c.HeadLen] = append(byHeadLen[c.HeadLen], c)
	}
	for lr.offset < headBytes {
		line, err := lr.Next()
		if errors.Is(err, io.EOF) {
			return head, matched, true, nil
		}
		if err != nil && !errors.Is(err, errLineTooLong) {
			return nil, nil, false, fmt.Errorf("read %s: %w", fr.name, err)
		}
		head = append(head, pending{line: bytes.Clone(line), no: lr.line, end: lr.offset, err: err})
		if es := byHeadLen[lr.offset]; len(es) > 0 {
			sum := hexSum(lr.Sum())
			for _, e := range es {
				if e.HeadSHA256 == sum {
					matched = append(matched, e)
				}
			}
		}
	}
	return head, matched, false, nil
}

// detectFormat sets the run's format: Options.Format, else the one detected
// from the head's lines. empty is set (with a nil error) for an empty file,
// which has nothing to import and nothing to remember.
func (fr *fileRun) detectFormat(head []pending, eof bool, headLen int64) (empty bool, err error) {
	if fr.format = parse.Format(fr.im.opts.Format); fr.format != "" {
		return false, nil
	}
	var sample [][]byte
	for _, p := range head {
		if p.err == nil && len(bytes.TrimSpace(p.line)) > 0 && len(sample) < detectLines {
			sample = append(sample, p.line)
		}
	}
	if len(sample) == 0 {
		if eof {
			return true, nil
		}
		return false, fmt.Errorf("%s: no line in the first %d bytes to detect the format from; give --format", fr.name, headLen)
	}
	fr.format, err = parse.DetectFormat(sample)
	if err != nil {
		return false, fmt.Errorf("%s: detect format: %w (give --format)", fr.name, err)
	}
	return false, nil
}

// furthest returns the matching earlier import that got furthest, or nil.
func furthest(matched []*Entry) *Entry {
	var prev *Entry
	for _, e := range matched {
		if prev == nil || e.Offset > prev.Offset {
			prev = e
		}
	}
	return prev
}

// skipImported is the skip phase: it moves past the content prev already
// imported and returns the head lines still to handle. Beyond the head the
// content is hashed without parsing; if it then differs from prev's, the
// pass is refused (a stream cannot be read again) or, for a file, retried
// without prev (*rewind).
func (fr *fileRun) skipImported(prev *Entry, head []pending, headLen int64) ([]pending, error) {
	lr := fr.lr
	if prev == nil {
		return head, nil
	}
	if prev.Offset <= lr.offset {
		// prev is no longer than the head: it matched exactly at its end.
		i := 0
		for i < len(head) && head[i].end <= prev.Offset {
			i++
		}
		return head[i:], nil
	}
	for lr.offset < prev.Offset {
		_, err := lr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, errLineTooLong) {
			return nil, fmt.Errorf("read %s: %w", fr.name, err)
		}
	}
	if lr.offset != prev.Offset || hexSum(lr.Sum()) != prev.SHA256 {
		if !fr.in.reopen {
			return nil, fmt.Errorf("%s: its first %d bytes match the earlier import of %s but later content differs; import it from a file, or with --force",
				fr.name, headLen, prev.Name)
		}
		return nil, &rewind{entry: prev}
	}
	return nil, nil
}

// startEntry sets the ledger entry this run advances: a new one, a new one
// continuing a complete earlier import, or the interrupted earlier one.
func (fr *fileRun) startEntry(prev *Entry, headLen int64, headSum string) {
	im := fr.im
	now := im.opts.Now().UTC()
	switch {
	case prev == nil:
		fr.entry = &Entry{ID: newID(), Started: now}
	case prev.Complete:
		// Same content again, possibly grown since: a new run that starts
		// where the complete one ended. The complete entry stays, so the
		// original file is still recognised.
		fr.entry = &Entry{ID: newID(), Started: now, Offset: prev.Offset, Lines: prev.Lines, SHA256: prev.SHA256}
	default:
		// An interrupted run: continue its entry.
		fr.entry = prev
	}
	fr.entry.Dest, fr.entry.Name = im.opts.Dest, fr.name
	fr.entry.HeadLen, fr.entry.HeadSHA256 = headLen, headSum
	if prev != nil {
		im.sum.AlreadyImported += prev.Lines
	}
}

// importRest handles the remaining head lines, then every line after them.
// The head lines are handled without flushing: the reader is already past
// them, so an acknowledgement could not name their exact end.
func (fr *fileRun) importRest(ctx context.Context, head []pending) error {
	fr.replaying = true
	for _, p := range head {
		if err := fr.handle(ctx, p.line, p.no, p.err); err != nil {
			return err
		}
	}
	fr.replaying = false
	for {
		line, err := fr.lr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil && !errors.Is(err, errLineTooLong) {
			return fmt.Errorf("read %s: %w", fr.name, err)
		}
		if err := fr.handle(ctx, line, fr.lr.line, err); err != nil {
			return err
		}
	}
}

// finish refuses a file that only repeats a complete earlier import, else
// sends the last batch and marks the entry complete in the ledger.
func (fr *fileRun) finish(ctx context.Context, prev *Entry) error {
	im := fr.im
	if prev != nil && prev.Complete && fr.handled == 0 {
		// Nothing follows the end of a complete earlier import: the same
		// file again. Nothing was sent; the ledger stays as it was.
		im.sum.Refused++
		return fmt.Errorf("%s: %w: the same content (%d lines, sha256 %.12s…) went to %s on %s as %s; --force imports it again",
			fr.name, ErrAlreadyImported, prev.Lines, prev.SHA256, im.opts.Dest, prev.Updated.Local().Format(time.DateTime), prev.Name)
	}
	if err := fr.flush(ctx); err != nil {
		return err
	}
	fr.entry.Complete = true
	fr.entry.Updated = im.opts.Now().UTC()
	if err := im.opts.Ledger.put(fr.entry); err != nil {
		return err
	}
	im.opts.Progress.Update(fr.in.raw, im.sum.Lines)
	return nil
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// handle parses one line and adds its record to the batch, flushing it when
// full.
func (fr *fileRun) handle(ctx context.Context, line []byte, no int64, lineErr error) error {
	im := fr.im
	fr.handled++
	im.sum.Lines++
	if im.sum.Lines&4095 == 0 {
		im.opts.Progress.Update(fr.in.raw, im.sum.Lines)
	}
	if lineErr != nil {
		im.sum.reject(fmt.Sprintf("line longer than %d bytes", im.opts.MaxLineBytes),
			fmt.Sprintf("%s:%d: line longer than %d bytes", fr.name, no, im.opts.MaxLineBytes))
	} else if len(bytes.TrimSpace(line)) == 0 {
		im.sum.Blank++
	} else if rec, err := im.parseLine(fr.format, line, im.opts.Domain); err != nil {
		im.sum.reject(reasonOf(err), fmt.Sprintf("%s:%d: %v", fr.name, no, err))
	} else if im.windowd && rec.Time.Before(im.oldest) {
		im.sum.PastRetention++
	} else if im.windowd && !rec.Time.Before(im.newest) {
		im.sum.reject("time: in the future", fmt.Sprintf("%s:%d: time %s is in the future", fr.name, no, rec.Time.Format(time.RFC3339)))
	} else {
		fr.batch = append(fr.batch, rec)
		fr.lines = append(fr.lines, no)
	}
	// A long stretch of lines that yield no records (all expired, all
	// rejected) still checkpoints now and then, so that progress is saved
	// and Stop is noticed.
	if (len(fr.batch) >= im.opts.BatchSize || fr.handled&(1<<16-1) == 0) && !fr.replaying {
		return fr.flush(ctx)
	}
	return nil
}

// flush sends the batch and, once it is acknowledged, records in the ledger
// that the content up to the current offset is imported.
func (fr *fileRun) flush(ctx context.Context) error {
	im := fr.im
	if len(fr.batch) > 0 {
		rejs, err := im.send(ctx, fr.batch)
		if err != nil {
			return fmt.Errorf("%s: import lines up to %d: %w", fr.name, fr.lines[len(fr.lines)-1], err)
		}
		for _, r := range rejs {
			no := int64(0)
			if r.Index >= 0 && r.Index < len(fr.lines) {
				no = fr.lines[r.Index]
			}
			im.sum.reject(reasonOfText(r.Err), fmt.Sprintf("%s:%d: %s", fr.name, no, r.Err))
		}
		im.sum.Accepted += int64(len(fr.batch) - len(rejs))
		fr.batch, fr.lines = fr.batch[:0], fr.lines[:0]
	}
	e := fr.entry
	if fr.lr.offset > e.Offset {
		e.Offset, e.Lines, e.SHA256 = fr.lr.offset, fr.lr.line, hexSum(fr.lr.Sum())
		e.Updated = im.opts.Now().UTC()
		if err := im.opts.Ledger.put(e); err != nil {
			return err
		}
	}
	if im.stop.Load() {
		return fmt.Errorf("%s: %w after line %d", fr.name, ErrInterrupted, e.Lines)
	}
	return ctx.Err()
}

// send delivers one batch, waiting out back-pressure.
func (im *Importer) send(ctx context.Context, recs []record.Record) ([]Rejection, error) {
	for {
		var rejs []Rejection
		var err error
		if ps, ok := im.opts.Sink.(PartialSink); ok {
			rejs, err = ps.AppendPartial(ctx, recs)
		} else {
			err = im.opts.Sink.Append(ctx, recs)
		}
		var re RetryableError
		if err == nil || !errors.As(err, &re) {
			return rejs, err
		}
		if im.stop.Load() {
			return nil, ErrInterrupted
		}
		wait := min(max(re.RetryAfter(), 50*time.Millisecond), maxRetryWait)
		im.sum.Retries++
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// reasonOf groups errors for the summary: a field error by field and
// reason, anything else by its text without quoted values.
func reasonOf(err error) string {
	var fe *record.FieldError
	if errors.As(err, &fe) {
		return fe.Field + ": " + fe.Reason
	}
	return reasonOfText(err.Error())
}

func reasonOfText(s string) string {
	if i := strings.IndexAny(s, "\"`'"); i > 0 {
		s = s[:i]
	}
	s = strings.TrimRight(strings.TrimSpace(s), ":")
	return record.Shorten(s)
}
