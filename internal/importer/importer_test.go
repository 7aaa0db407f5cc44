package importer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/retentiond/retentiond/internal/loggen"
	"github.com/retentiond/retentiond/internal/record"
)

// memSink keeps what it is given. failAfter > 0 makes it fail every batch
// after that many acknowledged ones, like a daemon that went away.
type memSink struct {
	mu        sync.Mutex
	recs      []record.Record
	batches   int
	failAfter int
}

var errSinkDown = errors.New("sink down")

func (s *memSink) Append(_ context.Context, recs []record.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failAfter > 0 && s.batches >= s.failAfter {
		return errSinkDown
	}
	s.batches++
	s.recs = append(s.recs, recs...)
	return nil
}

// parseTestJSON is a small, strict parser of the API's NDJSON rows. The
// mechanics tests use it so that they test this package alone; the tests
// with real log formats use the ingest parsers.
// genNDJSON returns n generated records and their NDJSON.
func genNDJSON(n int, seed int64) ([]record.Record, []byte) {
	g := loggen.New(loggen.Options{Seed: seed, Total: n, Days: 3})
	var recs []record.Record
	var b []byte
	for !g.Done() {
		r := g.Next()
		recs = append(recs, r)
		b = loggen.AppendNDJSON(b, &r)
	}
	return recs, b
}

func writeFile(t *testing.T, path string, content []byte, compression string) string {
	t.Helper()
	var buf bytes.Buffer
	switch compression {
	case "gzip":
		zw := gzip.NewWriter(&buf)
		zw.Write(content)
		zw.Close()
	case "zstd":
		zw, _ := zstd.NewWriter(&buf)
		zw.Write(content)
		zw.Close()
	default:
		buf.Write(content)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type env struct {
	t      *testing.T
	dir    string
	ledger string
}

func newEnv(t *testing.T) *env {
	dir := t.TempDir()
	return &env{t: t, dir: dir, ledger: filepath.Join(dir, "state", "imports.json")}
}

// run imports files into sink with a fresh Importer and ledger handle, as a
// new process would.
func (e *env) run(sink Sink, mod func(*Options), files ...string) (*Summary, []error) {
	e.t.Helper()
	l, err := OpenLedger(e.ledger)
	if err != nil {
		e.t.Fatal(err)
	}
	defer l.Close()
	opts := Options{Sink: sink, Ledger: l, Dest: "test", BatchSize: 1000}
	if mod != nil {
		mod(&opts)
	}
	im := New(opts)
	var errs []error
	for _, f := range files {
		if err := im.ImportFile(context.Background(), f); err != nil {
			errs = append(errs, err)
		}
	}
	return im.Summary(), errs
}

func sameRecords(t *testing.T, got, want []record.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestImportCompressions(t *testing.T) {
	want, content := genNDJSON(12_345, 1)
	for _, tc := range []struct{ name, compression string }{
		{"plain.ndjson", ""},
		{"gzip.ndjson.gz", "gzip"},
		{"zstd.ndjson.zst", "zstd"},
		{"gzip-without-suffix.log", "gzip"},
		{"zstd-without-suffix.log", "zstd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			f := writeFile(t, filepath.Join(e.dir, tc.name), content, tc.compression)
			sink := &memSink{}
			sum, errs := e.run(sink, nil, f)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			sameRecords(t, sink.recs, want)
			if sum.Accepted != int64(len(want)) || sum.Rejected != 0 || sum.Lines != int64(len(want)) || sum.Files != 1 {
				t.Fatalf("summary %+v", sum)
			}
		})
	}
}

func TestReimportRefused(t *testing.T) {
	want, content := genNDJSON(5000, 2)
	e := newEnv(t)
	plain := writeFile(t, filepath.Join(e.dir, "access.log.1"), content, "")
	sink := &memSink{}
	if _, errs := e.run(sink, nil, plain); len(errs) > 0 {
		t.Fatal(errs)
	}
	sameRecords(t, sink.recs, want)

	// The same file, and the same content compressed under another name
	// (what logrotate does with access.log.1), are refused and add nothing.
	gz := writeFile(t, filepath.Join(e.dir, "access.log.2.gz"), content, "gzip")
	for _, f := range []string{plain, gz} {
		t.Run(filepath.Base(f), func(t *testing.T) {
			sum, errs := e.run(sink, nil, f)
			if len(errs) != 1 || !errors.Is(errs[0], ErrAlreadyImported) {
				t.Fatalf("errors %v, want ErrAlreadyImported", errs)
			}
			if !strings.Contains(errs[0].Error(), "--force") || !strings.Contains(errs[0].Error(), "access.log.1") {
				t.Fatalf("message %q does not name the earlier import and --force", errs[0])
			}
			if len(sink.recs) != len(want) || sum.Refused != 1 || sum.Accepted != 0 {
				t.Fatalf("sink has %d records (want %d), summary %+v", len(sink.recs), len(want), sum)
			}
		})
	}
	t.Run("force", func(t *testing.T) {
		_, errs := e.run(sink, func(o *Options) { o.Force = true }, gz)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		sameRecords(t, sink.recs[len(want):], want)
	})
}

func TestResumeAfterInterruption(t *testing.T) {
	for _, tc := range []struct {
		name        string
		n           int
		failAfter   int
		compression string
	}{
		{"plain-after-3", 10_000, 3, ""},
		{"gzip-after-1", 10_000, 1, "gzip"},
		{"zstd-after-9", 10_000, 9, "zstd"},
		{"before-first-ack", 3000, -1, ""},
		{"small-file-within-head", 150, -1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, content := genNDJSON(tc.n, 3)
			e := newEnv(t)
			f := writeFile(t, filepath.Join(e.dir, "access.log"), content, tc.compression)
			sink := &memSink{failAfter: tc.failAfter}
			if tc.failAfter < 0 {
				sink.failAfter = 1 << 30
				sink.batches = 1 << 30 // fail at once
			}
			_, errs := e.run(sink, func(o *Options) { o.BatchSize = 997 }, f)
			if len(errs) != 1 || !errors.Is(errs[0], errSinkDown) {
				t.Fatalf("first run: errors %v, want the sink failure", errs)
			}
			got := len(sink.recs)
			sink.failAfter, sink.batches = 0, 0
			sum, errs := e.run(sink, func(o *Options) { o.BatchSize = 997 }, f)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			sameRecords(t, sink.recs, want)
			if sum.AlreadyImported != int64(got) {
				t.Fatalf("second run skipped %d lines, first run acknowledged %d", sum.AlreadyImported, got)
			}
			// And now it is complete: a third run is refused.
			if _, errs := e.run(sink, nil, f); len(errs) != 1 || !errors.Is(errs[0], ErrAlreadyImported) {
				t.Fatalf("third run: %v", errs)
			}
			if len(sink.recs) != len(want) {
				t.Fatalf("third run added records")
			}
		})
	}
}

func TestGrownFileImportsOnlyTheRest(t *testing.T) {
	want, content := genNDJSON(8000, 4)
	cut := bytes.Index(content[len(content)/2:], []byte("\n")) + len(content)/2 + 1
	first := bytes.Count(content[:cut], []byte("\n"))
	for _, tc := range []struct {
		name string
		cut  int
		n    int
	}{
		{"large", cut, first},
		{"tiny-first-part", bytes.IndexByte(content, '\n') + 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			path := filepath.Join(e.dir, "access.log")
			writeFile(t, path, content[:tc.cut], "")
			sink := &memSink{}
			if _, errs := e.run(sink, nil, path); len(errs) > 0 {
				t.Fatal(errs)
			}
			sameRecords(t, sink.recs, want[:tc.n])
			writeFile(t, path, content, "")
			sum, errs := e.run(sink, nil, path)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			sameRecords(t, sink.recs, want)
			if sum.AlreadyImported != int64(tc.n) {
				t.Fatalf("skipped %d lines, want %d", sum.AlreadyImported, tc.n)
			}
			// The original short file is still recognised.
			short := writeFile(t, filepath.Join(e.dir, "copy-of-short"), content[:tc.cut], "")
			if _, errs := e.run(sink, nil, short); len(errs) != 1 || !errors.Is(errs[0], ErrAlreadyImported) {
				t.Fatalf("short copy: %v", errs)
			}
		})
	}
}

func TestHeadMatchButDifferentContent(t *testing.T) {
	want, content := genNDJSON(4000, 5)
	e := newEnv(t)
	path := writeFile(t, filepath.Join(e.dir, "a.log"), content, "")
	sink := &memSink{}
	if _, errs := e.run(sink, nil, path); len(errs) > 0 {
		t.Fatal(errs)
	}
	// Same first 200 KiB, then different lines: everything after the
	// common prefix is new, but the file is not a continuation.
	other := bytes.Clone(content)
	i := bytes.Index(other[200<<10:], []byte(`"path":"/`)) + 200<<10 + len(`"path":"/`)
	other = append(other[:i:i], append([]byte("changed-"), other[i:]...)...)
	path2 := writeFile(t, filepath.Join(e.dir, "b.log"), other, "")
	sink2 := &memSink{}
	if _, errs := e.run(sink2, nil, path2); len(errs) > 0 {
		t.Fatal(errs)
	}
	if len(sink2.recs) != len(want) {
		t.Fatalf("changed file imported %d records, want all %d", len(sink2.recs), len(want))
	}
	// From stdin the importer cannot read again: it says so.
	_, errs := e.run(sink2, func(o *Options) { o.Stdin = bytes.NewReader(append(bytes.Clone(content[:i]), "x\n"...)) }, "-")
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "differs") {
		t.Fatalf("stdin: %v", errs)
	}
}

func TestStdin(t *testing.T) {
	want, content := genNDJSON(3000, 6)
	e := newEnv(t)
	sink := &memSink{}
	stdin := func(o *Options) { o.Stdin = bytes.NewReader(content) }
	if _, errs := e.run(sink, stdin, "-"); len(errs) > 0 {
		t.Fatal(errs)
	}
	sameRecords(t, sink.recs, want)
	if _, errs := e.run(sink, stdin, "-"); len(errs) != 1 || !errors.Is(errs[0], ErrAlreadyImported) {
		t.Fatalf("second stdin import: %v", errs)
	}
}

func TestRejectionsAndRetention(t *testing.T) {
	recs, content := genNDJSON(2000, 7)
	var b bytes.Buffer
	b.Write(content[:bytes.IndexByte(content, '\n')+1]) // line 1
	b.WriteString("not json at all\n")                  // line 2
	b.WriteString(`{"time":"2026-01-01T00:00:00Z","domain":"x.nl","path":"/","user_agent":"","ip":"1.2.3.4"}` + "\r\n")
	b.WriteString("{" + strings.Repeat("x", 5000) + "}\n") // line 4: too long
	b.WriteString("\n")                                    // line 5: blank
	b.WriteString(`{"time":"2020-01-01T00:00:00Z","domain":"x.nl","path":"/","user_agent":"","ip":"1.2.3.4"}` + "\n")
	b.WriteString(`{"time":"2099-01-01T00:00:00Z","domain":"x.nl","path":"/","user_agent":"","ip":"1.2.3.4"}` + "\n")
	b.WriteString(`{"time":"2026-01-01T00:00:00Z","path":"/no-domain","user_agent":"","ip":"1.2.3.4"}` + "\n")
	b.WriteString(`{"time":"2026-01-01T00:00:00Z","domain":"x.nl","path":"/","user_agent":"","ip":"1.2.3"}`) // last, no newline
	e := newEnv(t)
	f := writeFile(t, filepath.Join(e.dir, "mixed.log"), b.Bytes(), "")
	sink := &memSink{}
	sum, errs := e.run(sink, func(o *Options) {
		o.MaxLineBytes = 4096
		o.Domain = "default.example.nl"
		o.Now = func() time.Time { return time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) }
		o.TimeWindow = func(now time.Time) (time.Time, time.Time) { return now.AddDate(-2, 0, 0), now.Add(24 * time.Hour) }
	}, f)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if sum.Accepted != 3 || sum.Rejected != 4 || sum.PastRetention != 1 || sum.Blank != 1 || sum.Lines != 9 {
		t.Fatalf("summary %+v", sum)
	}
	if sink.recs[0] != recs[0] || sink.recs[1].Domain != "x.nl" || sink.recs[2].Domain != "default.example.nl" {
		t.Fatalf("records %+v", sink.recs)
	}
	var out bytes.Buffer
	sum.WriteText(&out)
	for _, want := range []string{"mixed.log:2: column 1: invalid JSON: not a JSON object", "mixed.log:4: line longer than 4096 bytes", "mixed.log:7: time 2099-01-01T00:00:00Z is in the future", "mixed.log:9: ip", "1 skipped as past retention"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

func TestLedgerDurableAndLocked(t *testing.T) {
	_, content := genNDJSON(2500, 8)
	e := newEnv(t)
	f := writeFile(t, filepath.Join(e.dir, "a.log"), content, "")
	if _, errs := e.run(&memSink{}, nil, f); len(errs) > 0 {
		t.Fatal(errs)
	}
	l, err := OpenLedger(e.ledger)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := OpenLedger(e.ledger); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second OpenLedger: %v, want in use", err)
	}
	es := l.Entries()
	sum := sha256.Sum256(content)
	if len(es) != 1 || !es[0].Complete || es[0].Offset != int64(len(content)) || es[0].SHA256 != hexSum(sum) || es[0].Lines != 2500 {
		t.Fatalf("ledger entries %+v", es)
	}
}

func TestStopFinishesBatchAndResumes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		n       int
		expired bool // every record past retention: no batch ever fills
	}{
		{"records", 5000, false},
		{"all-expired", 70_000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, content := genNDJSON(tc.n, 14)
			e := newEnv(t)
			f := writeFile(t, filepath.Join(e.dir, "a.log"), content, "")
			l, err := OpenLedger(e.ledger)
			if err != nil {
				t.Fatal(err)
			}
			sink := &memSink{}
			opts := Options{Sink: sink, Ledger: l, Dest: "test", Format: "json", BatchSize: 1000}
			if tc.expired {
				opts.TimeWindow = func(time.Time) (time.Time, time.Time) { return time.Now(), time.Now().Add(time.Hour) }
			}
			im := New(opts)
			im.Stop() // as if Ctrl-C came at once
			err = im.ImportFile(context.Background(), f)
			l.Close()
			if !errors.Is(err, ErrInterrupted) {
				t.Fatalf("err %v, want ErrInterrupted", err)
			}
			first := im.Summary().Lines
			if first == 0 || first >= int64(tc.n) {
				t.Fatalf("stopped after %d of %d lines", first, tc.n)
			}
			sum, errs := e.run(sink, func(o *Options) { o.TimeWindow = opts.TimeWindow }, f)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			if sum.AlreadyImported != first || sum.Lines != int64(tc.n)-first {
				t.Fatalf("resumed run: skipped %d and read %d lines; first run read %d of %d", sum.AlreadyImported, sum.Lines, first, tc.n)
			}
			if tc.expired {
				if len(sink.recs) != 0 || sum.PastRetention != sum.Lines {
					t.Fatalf("expired records stored: %d, summary %+v", len(sink.recs), sum)
				}
				return
			}
			sameRecords(t, sink.recs, want)
		})
	}
}
