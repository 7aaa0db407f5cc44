package audit

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/retentiond/retentiond/internal/testkit"
)

// writeChain writes n search lines, spread over days (a new UTC day every
// perDay lines), and returns the directory.
func writeChain(t testing.TB, n, perDay int) (string, *testkit.Clock) {
	t.Helper()
	dir := t.TempDir()
	c := testkit.NewClock(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	l, err := Open(dir, Options{Now: c.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if i > 0 && i%perDay == 0 {
			c.Add(24 * time.Hour)
		}
		if _, err := l.Append(Entry{Endpoint: "search", Outcome: OutcomeAllowed, Token: "alice", Source: "192.0.2.1",
			Case: fmt.Sprintf("INC-%d", i%3), Reason: "leak investigation", Query: fmt.Sprintf("ip:203.0.113.%d", i), Count: -1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, c
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.SplitAfter(string(b), "\n")[:strings.Count(string(b), "\n")]
}

func writeLines(t *testing.T, path string, lines []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyIntact(t *testing.T) {
	dir, _ := writeChain(t, 20, 7)
	res, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstBad != nil {
		t.Fatalf("intact chain reported bad: %s", res.FirstBad)
	}
	if res.Lines != 20 || res.Files != 3 || res.HeadSeq != 20 {
		t.Fatalf("lines %d files %d head %d, want 20, 3, 20", res.Lines, res.Files, res.HeadSeq)
	}
}

// TestTamper applies one tampering to a 20-line chain over three daily files
// (lines 1-7, 8-14, 15-20) and checks that Verify names the right line.
func TestTamper(t *testing.T) {
	const (
		f1 = "audit-2026-03-01.jsonl"
		f2 = "audit-2026-03-02.jsonl"
		f3 = "audit-2026-03-03.jsonl"
	)
	edit := func(file string, idx int, old, new string) func(*testing.T, string) {
		return func(t *testing.T, dir string) {
			p := filepath.Join(dir, file)
			ls := readLines(t, p)
			if !strings.Contains(ls[idx], old) {
				t.Fatalf("line %d has no %q: %s", idx+1, old, ls[idx])
			}
			ls[idx] = strings.Replace(ls[idx], old, new, 1)
			writeLines(t, p, ls)
		}
	}
	tests := []struct {
		name     string
		tamper   func(*testing.T, string)
		file     string
		line     int
		reason   string
		expected int64 // witnessed head seq, 0: none
	}{
		{"edit case", edit(f2, 2, `"case":"INC-`, `"case":"INX-`), f2, 3, "edited", 0},
		{"edit reason", edit(f1, 0, "leak investigation", "leak investigatioN"), f1, 1, "edited", 0},
		{"edit query", edit(f3, 5, "203.0.113.19", "203.0.113.91"), f3, 6, "edited", 0},
		{"edit token", edit(f2, 0, `"token":"alice"`, `"token":"bob"`), f2, 1, "edited", 0},
		{"edit source", edit(f1, 3, "192.0.2.1", "192.0.2.2"), f1, 4, "edited", 0},
		{"edit outcome", edit(f1, 6, `"outcome":"allowed"`, `"outcome":"refused"`), f1, 7, "edited", 0},
		{"edit time", edit(f2, 4, "2026-03-02T10", "2026-03-02T11"), f2, 5, "edited", 0},
		{"edit seq", edit(f1, 2, `"seq":3,`, `"seq":4,`), f1, 3, "edited", 0},
		{"edit prev", edit(f3, 1, `"prev":"`, `"prev":"0`), f3, 2, "", 0},
		{"edit hash", edit(f1, 4, `"hash":"`, `"hash":"0`), f1, 5, "", 0},
		{"add field", edit(f1, 1, `"event":"search",`, `"event":"search","note":"x",`), f1, 2, "edited", 0},
		{"delete line", func(t *testing.T, dir string) {
			p := filepath.Join(dir, f2)
			ls := readLines(t, p)
			writeLines(t, p, append(ls[:3:3], ls[4:]...))
		}, f2, 4, "deleted", 0},
		{"delete first line of a file", func(t *testing.T, dir string) {
			p := filepath.Join(dir, f3)
			writeLines(t, p, readLines(t, p)[1:])
		}, f3, 1, "deleted", 0},
		{"delete last line of a middle file", func(t *testing.T, dir string) {
			p := filepath.Join(dir, f1)
			ls := readLines(t, p)
			writeLines(t, p, ls[:len(ls)-1])
		}, f2, 1, "deleted", 0},
		{"delete first line of the chain", func(t *testing.T, dir string) {
			p := filepath.Join(dir, f1)
			writeLines(t, p, readLines(t, p)[1:])
		}, f1, 1, "deleted", 0},
		{"delete middle file", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, f2))
		}, f3, 1, "deleted", 0},
		{"delete oldest file without anchor", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, f1))
		}, f2, 1, "deleted", 0},
		{"insert copy of a line", func(t *testing.T, dir string) {
			p := filepath.Join(dir, f2)
			ls := readLines(t, p)
			out := append([]string{}, ls[:3]...)
			out = append(out, ls[1])
			writeLines(t, p, append(out, ls[3:]...))
		}, f2, 4, "out of order", 0},
		{"insert forged line", func(t *testing.T, dir string) {
			p := filepath.Join(dir, f1)
			ls := readLines(t, p)
			forged := `{"seq":3,"time":"2026-03-01T10:00:00Z","event":"search","prev":"` + Genesis + `","hash":"` + Genesis + `"}` + "\n"
			out := append([]string{}, ls[:2]...)
			out = append(out, forged)
			writeLines(t, p, append(out, ls[2:]...))
		}, f1, 3, "", 0},
		{"insert blank line", func(t *testing.T, dir string) {
			p := filepath.Join(dir, f3)
			ls := readLines(t, p)
			out := append([]string{}, ls[:2]...)
			out = append(out, "\n")
			writeLines(t, p, append(out, ls[2:]...))
		}, f3, 3, "malformed", 0},
		{"reorder two lines", func(t *testing.T, dir string) {
			p := filepath.Join(dir, f1)
			ls := readLines(t, p)
			ls[4], ls[5] = ls[5], ls[4]
			writeLines(t, p, ls)
		}, f1, 5, "deleted", 0},
		{"swap files' contents", func(t *testing.T, dir string) {
			a, _ := os.ReadFile(filepath.Join(dir, f1))
			b, _ := os.ReadFile(filepath.Join(dir, f2))
			os.WriteFile(filepath.Join(dir, f1), b, 0o600)
			os.WriteFile(filepath.Join(dir, f2), a, 0o600)
		}, f1, 1, "deleted", 0},
		{"truncate mid-line", func(t *testing.T, dir string) {
			p := filepath.Join(dir, f3)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)-40], 0o600)
		}, f3, 6, "incomplete", 0},
		{"truncate mid-line in a middle file", func(t *testing.T, dir string) {
			p := filepath.Join(dir, f2)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)-1], 0o600)
		}, f2, 7, "incomplete", 0},
		{"truncate whole lines at the end (witnessed head)", func(t *testing.T, dir string) {
			p := filepath.Join(dir, f3)
			writeLines(t, p, readLines(t, p)[:3])
		}, f3, 4, "removed from the end", 20},
		{"delete newest file (witnessed head)", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, f3))
		}, f2, 8, "removed from the end", 20},
		{"forged anchor", func(t *testing.T, dir string) {
			ls := readLines(t, filepath.Join(dir, f2))
			l, _, err := parseLine([]byte(strings.TrimSuffix(ls[0], "\n")))
			if err != nil {
				t.Fatal(err)
			}
			os.Remove(filepath.Join(dir, f1))
			a := fmt.Sprintf(`{"file":%q,"seq":%d,"prev":%q,"purged_files":1,"purged_before":"2026-03-02","time":"2026-03-05T00:00:00Z"}`, f2, l.Seq, l.Prev)
			os.WriteFile(filepath.Join(dir, AnchorName), []byte(a), 0o600)
		}, AnchorName, 0, "not confirmed", 0},
		{"garbage anchor", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, AnchorName), []byte("{"), 0o600)
		}, AnchorName, 0, "anchor", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := writeChain(t, 20, 7)
			if r, _ := Verify(dir); r.FirstBad != nil {
				t.Fatalf("untampered chain bad: %s", r.FirstBad)
			}
			tc.tamper(t, dir)
			opts := VerifyOptions{}
			if tc.expected > 0 {
				opts.ExpectSeq = tc.expected
			}
			res, err := VerifyWith(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			if res.FirstBad == nil {
				t.Fatal("tampering not detected")
			}
			if res.FirstBad.File != tc.file || res.FirstBad.Line != tc.line || !strings.Contains(res.FirstBad.Reason, tc.reason) {
				t.Fatalf("got %s; want %s line %d with %q", res.FirstBad, tc.file, tc.line, tc.reason)
			}
			// Open refuses a tampered log (a torn tail at the very end is
			// the one thing it repairs).
			if _, err := Open(dir, Options{Logger: slog.New(slog.DiscardHandler)}); err == nil && tc.name != "truncate mid-line" && tc.expected == 0 {
				t.Error("Open accepted a tampered log")
			}
		})
	}
}

func TestWitnessedHead(t *testing.T) {
	dir, _ := writeChain(t, 10, 100)
	res, _ := Verify(dir)
	if r, _ := VerifyWith(dir, VerifyOptions{ExpectSeq: res.HeadSeq, ExpectHash: res.HeadHash}); r.FirstBad != nil {
		t.Fatalf("own head refused: %s", r.FirstBad)
	}
	if r, _ := VerifyWith(dir, VerifyOptions{ExpectSeq: 10, ExpectHash: Genesis}); r.FirstBad == nil || r.FirstBad.Line != 10 {
		t.Fatalf("wrong witnessed hash not named at line 10: %+v", r.FirstBad)
	}
}

func TestPurgeKeepsChainVerifiable(t *testing.T) {
	dir, c := writeChain(t, 20, 7) // days 03-01..03-03
	c.Add(24 * time.Hour)          // now 03-04
	l, err := Open(dir, Options{Now: c.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	n, err := l.Purge(context.Background(), time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC))
	if err != nil || n != 2 {
		t.Fatalf("purge: %d files, %v; want 2", n, err)
	}
	res, err := Verify(dir)
	if err != nil || res.FirstBad != nil || !res.Anchored {
		t.Fatalf("after purge: %+v %v", res.FirstBad, err)
	}
	if res.HeadSeq != 21 { // 20 lines + the purge line
		t.Fatalf("head %d, want 21", res.HeadSeq)
	}
	// Appending and purging again (everything, including the purge line's
	// own file of a past day) keeps it verifiable.
	if _, err := l.Append(Entry{Endpoint: "count", Outcome: OutcomeRefused, Case: "X"}); err != nil {
		t.Fatal(err)
	}
	c.Add(48 * time.Hour)
	if n, err := l.Purge(context.Background(), c.Now()); err != nil || n != 2 {
		t.Fatalf("second purge: %d, %v; want 2", n, err)
	}
	if res, _ := Verify(dir); res.FirstBad != nil || res.HeadSeq != 23 {
		t.Fatalf("after second purge: %+v head %d", res.FirstBad, res.HeadSeq)
	}
	// Tampering after a purge is still found, and so is deleting the
	// anchored file.
	files, _ := listFiles(dir)
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	os.Remove(filepath.Join(dir, files[0]))
	if res, _ := Verify(dir); res.FirstBad == nil || !strings.Contains(res.FirstBad.Reason, "missing") {
		t.Fatalf("deleted anchored file not detected: %+v", res.FirstBad)
	}
}

func TestPurgeInterrupted(t *testing.T) {
	// A crash after the anchor was written but before the old files were
	// removed leaves pending files that verification skips.
	dir, c := writeChain(t, 20, 7)
	c.Add(24 * time.Hour)
	l, err := Open(dir, Options{Now: c.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	backup, _ := os.ReadFile(filepath.Join(dir, "audit-2026-03-01.jsonl"))
	if _, err := l.Purge(context.Background(), time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	os.WriteFile(filepath.Join(dir, "audit-2026-03-01.jsonl"), backup, 0o600) // as if not yet removed
	res, err := Verify(dir)
	if err != nil || res.FirstBad != nil || len(res.Pending) != 1 {
		t.Fatalf("interrupted purge: %+v pending %v err %v", res.FirstBad, res.Pending, err)
	}
}

func TestOpenRepairsTornTail(t *testing.T) {
	dir, _ := writeChain(t, 5, 100)
	p := filepath.Join(dir, "audit-2026-03-01.jsonl")
	f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"seq":6,"time":"2026-03-01T1`)
	f.Close()
	var logs bytes.Buffer
	l, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if seq, _ := l.Head(); seq != 6 { // 5 lines + the recovery line
		t.Fatalf("head %d, want 6", seq)
	}
	l.Close()
	res, _ := Verify(dir)
	if res.FirstBad != nil || res.Lines != 6 {
		t.Fatalf("after repair: %+v lines %d", res.FirstBad, res.Lines)
	}
	files, _ := listFiles(dir)
	if !strings.Contains(string(readFile(t, filepath.Join(dir, files[len(files)-1]))), `"event":"recovery"`) {
		t.Error("repair not recorded in the chain")
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppendAfterFailure(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(Entry{Case: "a"}); err != nil {
		t.Fatal(err)
	}
	l.f.Close() // make the next write fail
	if _, err := l.Append(Entry{Case: "b"}); err == nil {
		t.Fatal("append to a closed file succeeded")
	}
	if _, err := l.Append(Entry{Case: "c"}); err == nil || !strings.Contains(err.Error(), "failed earlier") {
		t.Fatalf("append after failure: %v, want ErrFailed", err)
	}
}

func FuzzVerify(f *testing.F) {
	dir, _ := writeChain(f, 4, 100)
	good := readFile(&testing.T{}, filepath.Join(dir, "audit-2026-03-01.jsonl"))
	f.Add(good, []byte(nil))
	f.Add(good[:len(good)/2], []byte(`{"file":"audit-2026-03-01.jsonl","seq":1,"prev":"`+Genesis+`"}`))
	f.Add([]byte("{}\n"), []byte("{"))
	f.Add([]byte(`{"seq":1,"time":"2026-03-01T00:00:00Z","event":"search","prev":"`+Genesis+`","hash":"`+Genesis+`"}`+"\n"), []byte(nil))
	f.Fuzz(func(t *testing.T, content, anchorContent []byte) {
		fsys := fstest.MapFS{"audit-2026-03-01.jsonl": {Data: content}}
		if anchorContent != nil {
			fsys[AnchorName] = &fstest.MapFile{Data: anchorContent}
		}
		res, err := VerifyFS(fsys, VerifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.FirstBad == nil && anchorContent == nil && len(content) > 0 {
			// Anything accepted must be a chain this package could have
			// written: re-verify line by line.
			for _, ln := range bytes.SplitAfter(content, []byte("\n")) {
				if len(ln) == 0 {
					continue
				}
				if _, _, err := parseLine(bytes.TrimSuffix(ln, []byte("\n"))); err != nil {
					t.Fatalf("accepted a bad line: %v", err)
				}
			}
		}
	})
}
