package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/retentiond/retentiond/internal/record"
)

func payload(i int) []byte {
	return []byte(fmt.Sprintf("payload-%06d-%s", i, bytes.Repeat([]byte{byte('a' + i%26)}, i%97)))
}

func openT(t testing.TB, dir string, opts Options) *WAL {
	t.Helper()
	w, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return w
}

func replayAll(t testing.TB, w *WAL) [][]byte {
	t.Helper()
	var got [][]byte
	if err := w.Replay(0, func(_ int, p []byte) error {
		got = append(got, bytes.Clone(p))
		return nil
	}); err != nil {
		t.Fatalf("replay: %v", err)
	}
	return got
}

// reopened closes w, opens its directory again and returns the payloads
// it replays, as strings.
func reopened(t testing.TB, w *WAL) []string {
	t.Helper()
	w.Close()
	w = openT(t, w.dir, Options{})
	defer w.Close()
	var got []string
	for _, p := range replayAll(t, w) {
		got = append(got, string(p))
	}
	return got
}

func TestRoundTripRotationTruncate(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, dir, Options{SegmentSize: 512})
	segs := map[int]bool{}
	for i := 0; i < 100; i++ {
		seg, err := w.Append(payload(i))
		if err != nil {
			t.Fatal(err)
		}
		segs[seg] = true
	}
	if len(segs) < 5 {
		t.Fatalf("100 appends with 512-byte files used only %d files", len(segs))
	}
	rot, err := w.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	for s := range segs {
		if s >= rot {
			t.Fatalf("append went to file %d, not below the rotation's %d", s, rot)
		}
	}
	w.Close()

	w = openT(t, dir, Options{SegmentSize: 512})
	got := replayAll(t, w)
	if len(got) != 100 {
		t.Fatalf("replayed %d payloads, want 100", len(got))
	}
	for i, p := range got {
		if !bytes.Equal(p, payload(i)) {
			t.Fatalf("payload %d differs", i)
		}
	}
	// Reopening never appends to an old file.
	seg, _ := w.Append(payload(100))
	if seg <= rot {
		t.Fatalf("append after reopen went to file %d, want a new file after %d", seg, rot)
	}
	if err := w.Truncate(seg); err != nil {
		t.Fatal(err)
	}
	if segsLeft := w.Segments(); len(segsLeft) != 1 || segsLeft[0] != seg {
		t.Fatalf("after Truncate(%d): files %v", seg, segsLeft)
	}
	if got := replayAll(t, w); len(got) != 1 || !bytes.Equal(got[0], payload(100)) {
		t.Fatalf("after truncate replay = %d payloads", len(got))
	}
	w.Close()
	if _, err := w.Append(payload(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
}

// writeLog writes n payloads into a fresh log and returns the path of the
// single file holding them and the offsets where each frame starts.
func writeLog(t *testing.T, dir string, n int) (string, []int64) {
	t.Helper()
	w := openT(t, dir, Options{})
	var offs []int64
	off := int64(headerSize)
	for i := 0; i < n; i++ {
		if _, err := w.Append(payload(i)); err != nil {
			t.Fatal(err)
		}
		offs = append(offs, off)
		off += frameSize + int64(len(payload(i)))
	}
	w.Close()
	return filepath.Join(dir, fileName(1)), offs
}

// TestTornTailEveryOffset truncates the log at every byte offset inside its
// last records: reopening keeps exactly the records that are wholly before
// the cut and reports the repair.
func TestTornTailEveryOffset(t *testing.T) {
	src := t.TempDir()
	path, offs := writeLog(t, src, 12)
	orig, _ := os.ReadFile(path)
	for cut := offs[8]; cut < int64(len(orig)); cut++ {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, fileName(1)), orig[:cut], 0o644)
		reg := prometheus.NewRegistry()
		w := openT(t, dir, Options{Registerer: reg})
		got := replayAll(t, w)
		want := 0
		for want < len(offs) && offs[want]+frameSize+int64(len(payload(want))) <= cut {
			want++
		}
		if len(got) != want {
			t.Fatalf("cut at %d: replayed %d payloads, want %d", cut, len(got), want)
		}
		repaired := testutil.ToFloat64(w.m.repairs)
		if isBoundary := slicesContains(offs, cut); isBoundary == (repaired != 0) {
			t.Fatalf("cut at %d: repairs metric %v (boundary=%v)", cut, repaired, isBoundary)
		}
		// The repaired log accepts appends and keeps them.
		if _, err := w.Append([]byte("after")); err != nil {
			t.Fatal(err)
		}
		w.Close()
		w = openT(t, dir, Options{})
		if again := replayAll(t, w); len(again) != want+1 {
			t.Fatalf("cut at %d: after repair and append, %d payloads, want %d", cut, len(again), want+1)
		}
		w.Close()
	}
}

func slicesContains(s []int64, v int64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestBitFlipLastFile flips one bit at every offset of the last records:
// recovery keeps exactly the records before the damaged one.
func TestBitFlipLastFile(t *testing.T) {
	src := t.TempDir()
	path, offs := writeLog(t, src, 12)
	orig, _ := os.ReadFile(path)
	for pos := offs[9]; pos < int64(len(orig)); pos++ {
		dir := t.TempDir()
		b := bytes.Clone(orig)
		b[pos] ^= 1 << (pos % 8)
		os.WriteFile(filepath.Join(dir, fileName(1)), b, 0o644)
		w := openT(t, dir, Options{})
		got := replayAll(t, w)
		damaged := 0
		for damaged+1 < len(offs) && offs[damaged+1] <= pos {
			damaged++
		}
		if len(got) != damaged {
			t.Fatalf("flip at %d: replayed %d payloads, want the %d before the damaged one", pos, len(got), damaged)
		}
		for i, p := range got {
			if !bytes.Equal(p, payload(i)) {
				t.Fatalf("flip at %d: payload %d altered", pos, i)
			}
		}
		w.Close()
	}
}

// TestCorruptionBeforeTail: damage in a file that is not the last is an
// error naming the file and offset, never a silent cut.
func TestCorruptionBeforeTail(t *testing.T) {
	dir := t.TempDir()
	path, offs := writeLog(t, dir, 5)
	w := openT(t, dir, Options{}) // creates file 2, so file 1 is no longer last
	w.Append([]byte("x"))
	w.Close()
	b, _ := os.ReadFile(path)
	b[offs[2]+frameSize+1] ^= 0xff
	os.WriteFile(path, b, 0o644)
	w = openT(t, dir, Options{})
	defer w.Close()
	err := w.Replay(0, func(int, []byte) error { return nil })
	var ce *CorruptionError
	if !errors.As(err, &ce) || ce.File != path || ce.Offset != offs[2] {
		t.Fatalf("err = %v, want a CorruptionError for %s at %d", err, path, offs[2])
	}
}

func TestGroupCommitConcurrent(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, dir, Options{SegmentSize: 64 << 10})
	const writers, per = 64, 50
	var wg sync.WaitGroup
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				if _, err := w.Append(payload(g*per + i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	fsyncs, appends := testutil.ToFloat64(w.m.fsyncs), testutil.ToFloat64(w.m.appends)
	w.Close()
	if appends != writers*per {
		t.Fatalf("appends metric %v", appends)
	}
	if fsyncs >= appends {
		t.Errorf("%v fsyncs for %v appends: no group commit happened", fsyncs, appends)
	}
	w = openT(t, dir, Options{})
	defer w.Close()
	seen := map[string]bool{}
	for _, p := range replayAll(t, w) {
		if seen[string(p)] {
			t.Fatalf("payload replayed twice")
		}
		seen[string(p)] = true
	}
	if len(seen) != writers*per {
		t.Fatalf("replayed %d distinct payloads, want %d", len(seen), writers*per)
	}
}

func TestRejectsBadPayloadSizes(t *testing.T) {
	w := openT(t, t.TempDir(), Options{})
	defer w.Close()
	for _, n := range []int{0, MaxPayload + 1} {
		if _, err := w.Append(make([]byte, n)); err == nil {
			t.Errorf("append of %d bytes accepted", n)
		}
	}
}

// FuzzReplay feeds arbitrary bytes as the last WAL file: Open repairs it and
// Replay returns the intact prefix, never panicking.
func FuzzReplay(f *testing.F) {
	src := f.TempDir()
	w, _ := Open(src, Options{})
	w.Append([]byte("hello"))
	w.Append([]byte("world"))
	w.Close()
	good, _ := os.ReadFile(filepath.Join(src, fileName(1)))
	f.Add(good)
	f.Add([]byte("RWAL\x01\x00\x00\x00\xff\xff\xff\xff"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, fileName(1)), b, 0o644)
		w, err := Open(dir, Options{})
		if err != nil {
			return
		}
		defer w.Close()
		if err := w.Replay(0, func(int, []byte) error { return nil }); err != nil {
			t.Fatalf("replay after repair: %v", err)
		}
	})
}

// benchBatch is a realistic WAL payload: 50 access-log records encoded the
// way the store encodes them (about 10 KiB).
func benchBatch() []byte {
	recs := make([]record.Record, 50)
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for i := range recs {
		recs[i] = record.Record{
			Time:      t0.Add(time.Duration(i) * time.Millisecond),
			Domain:    fmt.Sprintf("shop-%03d.example.nl", i%7),
			Path:      fmt.Sprintf("/catalog/category-%d/product-%05d.html?utm_source=newsletter&page=%d&sort=price_asc&ref=%x", i%13, i*7919, i%5, uint64(i)*2654435761),
			UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
			IP:        netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}),
		}
	}
	return record.AppendBatch(nil, recs)
}

// BenchmarkAppend measures fsynced appends of a realistic 50-record batch
// from 1, 8 and 64 concurrent writers. The baseline sub-benchmark is what a
// log without group commit does: 64 writers taking turns at write+fsync on a
// plain file; compare records/s against it in the same run.
func BenchmarkAppend(b *testing.B) {
	p := benchBatch()
	b.Run("baseline=fsync-each/writers=64", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "baseline"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		var mu sync.Mutex
		b.SetBytes(int64(len(p)))
		runWriters(b, 64, func() error {
			mu.Lock()
			defer mu.Unlock()
			if _, err := f.Write(p); err != nil {
				return err
			}
			return f.Sync()
		})
		b.ReportMetric(1, "fsyncs/append")
	})
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			w := openT(b, b.TempDir(), Options{})
			defer w.Close()
			b.SetBytes(int64(len(p)))
			before := testutil.ToFloat64(w.m.fsyncs)
			runWriters(b, writers, func() error {
				_, err := w.Append(p)
				return err
			})
			b.ReportMetric((testutil.ToFloat64(w.m.fsyncs)-before)/float64(b.N), "fsyncs/append")
		})
	}
}

// runWriters calls fn b.N times in total from the given number of
// goroutines and reports records/s (50 records per call).
func runWriters(b *testing.B, writers int, fn func() error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := fn(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)*50/b.Elapsed().Seconds(), "records/s")
}

// TestLastFileHeader checks the one repair that touches a header: a last file
// shorter than a header whose bytes match one (torn while being created) gets
// a clean header, while a damaged or unknown-version header is reported and
// the file left as it is, because cutting there would drop all its records.
func TestLastFileHeader(t *testing.T) {
	good := header()
	damaged := append(bytes.Clone(good), appendFrameForTest([]byte("acked"))...)
	damaged[0] ^= 0x20
	newer := append(bytes.Clone(good), appendFrameForTest([]byte("acked"))...)
	newer[4] = version + 1
	tests := []struct {
		name    string
		content []byte
		wantErr bool
	}{
		{"empty", nil, false},
		{"torn header", good[:3], false},
		{"short garbage", []byte("XY"), true},
		{"bit flip in magic", damaged, true},
		{"unknown version", newer, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, fileName(1))
			if err := os.WriteFile(path, tc.content, 0o644); err != nil {
				t.Fatal(err)
			}
			w, err := Open(dir, Options{Logger: discardLogger()})
			if tc.wantErr {
				var ce *CorruptionError
				if !errors.As(err, &ce) || ce.File != path || ce.Offset != 0 {
					t.Fatalf("open = %v, want a CorruptionError for %s at 0", err, path)
				}
				if b, _ := os.ReadFile(path); !bytes.Equal(b, tc.content) {
					t.Fatal("open modified a file it refused to repair")
				}
				return
			}
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer w.Close()
			if b, _ := os.ReadFile(path); !bytes.Equal(b, good) {
				t.Fatalf("after repair file holds %q, want a clean header", b)
			}
			if got := replayAll(t, w); len(got) != 0 {
				t.Fatalf("replayed %d payloads from an empty file", len(got))
			}
		})
	}
}

func appendFrameForTest(p []byte) []byte {
	b := make([]byte, frameSize, frameSize+len(p))
	binary.LittleEndian.PutUint32(b, uint32(len(p)))
	binary.LittleEndian.PutUint32(b[4:], frameCRC(b[:4], p))
	return append(b, p...)
}
