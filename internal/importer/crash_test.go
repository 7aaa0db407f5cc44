package importer

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/loggen"
	"github.com/retentiond/retentiond/internal/record"
)

// fileSink stands in for a durable destination: it stores each batch
// atomically (its own file, written under a temporary name, fsynced,
// renamed) before acknowledging, like the store's WAL and the daemon do. A
// plain append would not do: SIGKILL can cut a write short.
type fileSink struct {
	dir   string
	delay time.Duration
}

func (s *fileSink) Append(_ context.Context, recs []record.Record) error {
	var b []byte
	for i := range recs {
		b = loggen.AppendNDJSON(b, &recs[i])
	}
	name := filepath.Join(s.dir, fmt.Sprintf("batch-%020d.ndjson", time.Now().UnixNano()))
	f, err := os.Create(name + ".tmp")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	f.Close()
	if err := os.Rename(name+".tmp", name); err != nil {
		return err
	}
	time.Sleep(s.delay) // widen the window in which the parent kills us
	return nil
}

const crashBatch = 100

// TestCrashChild is the child process of TestCrashResume; it does nothing
// unless started by it.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("IMPORTER_CRASH_DIR")
	if dir == "" {
		t.Skip("child of TestCrashResume only")
	}
	out := filepath.Join(dir, "stored")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := OpenLedger(filepath.Join(dir, "imports.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	im := New(Options{Sink: &fileSink{dir: out, delay: time.Millisecond}, Ledger: l, Dest: "crash", Format: "json",
		BatchSize: crashBatch})
	if err := im.ImportFile(context.Background(), filepath.Join(dir, "in.log.gz")); err != nil {
		t.Fatal(err)
	}
}

// TestCrashResume SIGKILLs an import several times at arbitrary points and
// then lets it finish: every record must be stored, in order, and at most
// the one batch in flight at a kill may be stored twice (the window between
// the destination's fsync and the ledger's, see docs/import.md).
func TestCrashResume(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	want, content := genNDJSON(20_000, 13)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "in.log.gz"), content, "gzip")
	stored := filepath.Join(dir, "stored")
	child := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "IMPORTER_CRASH_DIR="+dir)
		return cmd
	}
	// size is how many bytes of batches are stored.
	size := func() int64 {
		files, _ := filepath.Glob(filepath.Join(stored, "batch-*.ndjson"))
		var n int64
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil {
				n += fi.Size()
			}
		}
		return n
	}
	for kill := 1; kill <= 3; kill++ {
		cmd := child()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Let it store some more batches, then kill it without warning.
		target := size() + int64(kill)*int64(len(content))/10
		for size() < target {
			time.Sleep(time.Millisecond)
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
	if out, err := child().CombinedOutput(); err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}

	files, err := filepath.Glob(filepath.Join(stored, "batch-*.ndjson")) // sorted: in order of storing
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))...)
	}
	var wantLines [][]byte
	for i := range want {
		wantLines = append(wantLines, bytes.TrimSuffix(loggen.AppendNDJSON(nil, &want[i]), []byte("\n")))
	}
	// Walk the stored records against the file's. A re-sent batch shows up
	// as a jump back to an earlier record followed by a run that catches up
	// again; it may be at most one batch long (the first batch also holds
	// the lines of the first 64 KiB, which are handled before any flush).
	index := make(map[string]int, len(wantLines))
	for i, l := range wantLines {
		index[string(l)] = i
	}
	maxBatch := crashBatch + bytes.Count(content[:headBytes], []byte("\n")) + 1
	j, dups := 0, 0
	for i := 0; i < len(got); {
		if j < len(wantLines) && bytes.Equal(got[i], wantLines[j]) {
			i++
			j++
			continue
		}
		k, ok := index[string(got[i])]
		if !ok || k >= j {
			t.Fatalf("stored record %d is not the next record of the file (%d) nor a re-send", i, j)
		}
		if j-k > maxBatch || i+(j-k) > len(got) || !sameLines(got[i:i+(j-k)], wantLines[k:j]) {
			t.Fatalf("stored records %d.. re-send %d records from %d, more than one batch or out of order", i, j-k, k)
		}
		i += j - k
		dups++
	}
	if j != len(wantLines) {
		t.Fatalf("only %d of %d records stored", j, len(wantLines))
	}
	if dups > 3 {
		t.Errorf("%d re-sent batches after 3 kills; at most one per kill is allowed", dups)
	}
	t.Logf("%d records stored, %d batch(es) re-sent after 3 kills", len(got), dups)
}

func sameLines(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
