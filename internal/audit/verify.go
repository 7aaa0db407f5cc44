package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

// AnchorName is the file, in the audit directory, that tells verification
// where the chain starts after old files were purged.
const AnchorName = "anchor.json"

// anchor is the content of anchor.json. It is confirmed by a purge line in
// the remaining chain that carries the same three values.
type anchor struct {
	File         string `json:"file"`          // oldest remaining audit file
	Seq          int64  `json:"seq"`           // seq of its first line
	Prev         string `json:"prev"`          // prev of its first line: the hash of the last purged line
	PurgedFiles  int    `json:"purged_files"`  // files removed by the purge that wrote this anchor
	PurgedBefore string `json:"purged_before"` // the purge removed files of days before this one
	Time         string `json:"time"`
}

var fileRE = regexp.MustCompile(`^audit-(\d{4}-\d{2}-\d{2})\.jsonl$`)

// fileName is the audit file for a UTC day.
func fileName(day string) string { return "audit-" + day + ".jsonl" }

// dayOf returns the UTC day of t as YYYY-MM-DD.
func dayOf(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// listFiles returns the audit files in dir in chain order (by day).
func listFiles(dir string) ([]string, error) { return listFilesFS(os.DirFS(dir)) }

func listFilesFS(fsys fs.FS) ([]string, error) {
	ents, err := fs.ReadDir(fsys, ".")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list audit dir: %w", err)
	}
	var names []string
	for _, e := range ents {
		if m := fileRE.FindStringSubmatch(e.Name()); m != nil && e.Type().IsRegular() {
			if _, err := time.Parse(time.DateOnly, m[1]); err == nil {
				names = append(names, e.Name())
			}
		}
	}
	sort.Strings(names)
	return names, nil
}

func readAnchor(fsys fs.FS) (*anchor, error) {
	b, err := fs.ReadFile(fsys, AnchorName)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read anchor: %w", err)
	}
	var a anchor
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return nil, errBadAnchor{fmt.Sprintf("anchor is not valid: %v", err)}
	}
	if !fileRE.MatchString(a.File) || a.Seq < 1 || len(a.Prev) != 64 || !isLowerHex(a.Prev) {
		return nil, errBadAnchor{"anchor has an invalid file, seq or prev"}
	}
	return &a, nil
}

type errBadAnchor struct{ msg string }

func (e errBadAnchor) Error() string { return e.msg }

// BadLine names the first place where the chain is broken.
type BadLine struct {
	File   string // audit file name (or anchor.json)
	Line   int    // 1-based line number in File; lines+1 when something is missing at the end
	Offset int64  // byte offset of that line in File
	Seq    int64  // the line's seq when it could be read, else 0
	Reason string
	// Witness is set when the lines are intact but the witnessed head
	// (VerifyOptions.ExpectSeq) was not found or did not match.
	Witness bool
	torn    bool // an incomplete last line of the newest file: the trace of a crash mid-write
}

func (b *BadLine) String() string {
	if b.Line == 0 {
		return fmt.Sprintf("%s: %s", b.File, b.Reason)
	}
	return fmt.Sprintf("%s line %d (offset %d): %s", b.File, b.Line, b.Offset, b.Reason)
}

// Result is the outcome of Verify.
type Result struct {
	Files    int      // files verified
	Lines    int      // lines verified and found intact (before FirstBad, if any)
	HeadSeq  int64    // seq of the last intact line (the anchor's seq-1, or 0, if none)
	HeadHash string   // hash of the last intact line (the anchor's prev, or Genesis, if none)
	Anchored bool     // the chain starts at an anchor left by a purge
	Pending  []string // files older than the anchor, left by an interrupted purge; not verified
	FirstBad *BadLine // nil when the chain is intact (and the witnessed head, if any, was found)
}

// VerifyOptions add checks to Verify.
type VerifyOptions struct {
	// ExpectSeq and ExpectHash are a head recorded elsewhere (a witness: the
	// daemon's log, a ticket, another host). The chain alone cannot show
	// that lines were cut off its end, or that it was rewritten wholesale;
	// a witnessed head can. Zero ExpectSeq: no check.
	ExpectSeq  int64
	ExpectHash string
	// onLine, when set, is told the seq and hash of every intact line
	// (checkpoint verification collects them).
	onLine func(seq int64, hash string)
}

// Verify checks the audit chain in dir and names the first line that was
// edited, deleted, inserted, reordered or truncated. An error is returned
// only when dir cannot be read; a broken chain is reported in
// Result.FirstBad.
func Verify(dir string) (Result, error) { return VerifyWith(dir, VerifyOptions{}) }

// VerifyWith is Verify with a witnessed head to check against.
func VerifyWith(dir string, opts VerifyOptions) (Result, error) {
	return VerifyFS(os.DirFS(dir), opts)
}

// VerifyFS is VerifyWith on any file system (the root of fsys is the audit
// directory), for example a copy of the log extracted from a backup.
func VerifyFS(fsys fs.FS, opts VerifyOptions) (Result, error) {
	res := Result{HeadHash: Genesis}
	files, err := listFilesFS(fsys)
	if err != nil {
		return res, err
	}
	expectSeq := int64(1)
	a, err := readAnchor(fsys)
	if err != nil {
		var ba errBadAnchor
		if errors.As(err, &ba) {
			res.FirstBad = &BadLine{File: AnchorName, Reason: ba.msg}
			return res, nil
		}
		return res, err
	}
	if a != nil {
		i := sort.SearchStrings(files, a.File)
		if i == len(files) || files[i] != a.File {
			res.FirstBad = &BadLine{File: a.File, Reason: "the anchor names this file as the oldest remaining one, but it is missing: it was deleted"}
			return res, nil
		}
		res.Pending = files[:i]
		files = files[i:]
		expectSeq = a.Seq
		res.HeadHash = a.Prev
		res.HeadSeq = a.Seq - 1
		res.Anchored = true
	}
	anchorConfirmed := false
	for fi, name := range files {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return res, fmt.Errorf("read %s: %w", name, err)
		}
		res.Files++
		last := fi == len(files)-1
		var off int64
		for n := 1; len(data) > 0; n++ {
			bad := func(seq int64, format string, args ...any) {
				res.FirstBad = &BadLine{File: name, Line: n, Offset: off, Seq: seq, Reason: fmt.Sprintf(format, args...)}
			}
			nl := bytes.IndexByte(data, '\n')
			if nl < 0 {
				bad(0, "incomplete last line (no newline): the file was truncated or a write was interrupted")
				res.FirstBad.torn = last
				return res, nil
			}
			raw := data[:nl]
			l, _, perr := parseLine(raw)
			if perr != nil {
				if errors.Is(perr, errHashMismatch) {
					bad(0, "%v", perr)
				} else {
					bad(0, "malformed line: %v", perr)
				}
				return res, nil
			}
			if l.Prev != res.HeadHash {
				switch {
				case l.Seq > expectSeq:
					bad(l.Seq, "prev does not match the line before: %d line(s) before this one were deleted (expected seq %d, found %d)", l.Seq-expectSeq, expectSeq, l.Seq)
				case l.Seq < expectSeq:
					bad(l.Seq, "prev does not match the line before: this line is out of order, duplicated or inserted (expected seq %d, found %d)", expectSeq, l.Seq)
				case n == 1 && res.HeadSeq == 0 && !res.Anchored && fi == 0:
					bad(l.Seq, "the first line does not start the chain at the genesis hash")
				default:
					bad(l.Seq, "prev does not match the hash of the line before: the line before was replaced, or this line was inserted")
				}
				return res, nil
			}
			if l.Seq != expectSeq {
				bad(l.Seq, "seq %d follows seq %d", l.Seq, expectSeq-1)
				return res, nil
			}
			if opts.ExpectSeq == l.Seq && opts.ExpectHash != "" && !strings.EqualFold(opts.ExpectHash, hashOf(raw)) {
				bad(l.Seq, "hash differs from the witnessed head for seq %d: the chain was rewritten up to here", l.Seq)
				res.FirstBad.Witness = true
				return res, nil
			}
			if l.Event == EventPurge && a != nil && l.AnchorFile == a.File && l.AnchorSeq == a.Seq && l.AnchorPrev == a.Prev {
				anchorConfirmed = true
			}
			res.HeadHash = hashOf(raw)
			res.HeadSeq = l.Seq
			if opts.onLine != nil {
				opts.onLine(l.Seq, res.HeadHash)
			}
			expectSeq = l.Seq + 1
			res.Lines++
			off += int64(nl) + 1
			data = data[nl+1:]
		}
	}
	if a != nil && !anchorConfirmed {
		res.FirstBad = &BadLine{File: AnchorName, Reason: "the anchor is not confirmed by a purge line in the chain: it was written or edited by hand"}
		return res, nil
	}
	if opts.ExpectSeq > 0 {
		switch {
		case a != nil && opts.ExpectSeq < a.Seq:
			// A witness exists to prove the chain was not rewritten; one
			// that cannot be found proves nothing, so it is a failure
			// even when a purge explains why it is gone.
			res.FirstBad = &BadLine{File: AnchorName, Witness: true, Reason: fmt.Sprintf(
				"witnessed head seq %d was not found: it lies in purged files (the chain now starts at seq %d, purged before %s), so it cannot be confirmed; use a witness recorded after the purge",
				opts.ExpectSeq, a.Seq, a.PurgedBefore)}
		case opts.ExpectSeq >= expectSeq:
			name := AnchorName
			line := 0
			if len(files) > 0 {
				name = files[len(files)-1]
				line = lineCount(fsys, name) + 1
			}
			res.FirstBad = &BadLine{File: name, Line: line, Witness: true, Reason: fmt.Sprintf(
				"witnessed head seq %d was not found: the chain ends at seq %d, so lines were removed from the end", opts.ExpectSeq, expectSeq-1)}
		}
	}
	return res, nil
}

func hashOf(raw []byte) string {
	return string(raw[len(raw)-66 : len(raw)-2])
}

func lineCount(fsys fs.FS, name string) int {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return 0
	}
	return bytes.Count(b, []byte{'\n'})
}
