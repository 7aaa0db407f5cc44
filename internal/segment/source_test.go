package segment

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/retentiond/retentiond/internal/record"
)

// fileSource is a Source over a local file that counts the bytes it was
// asked for, standing in for an object read with range requests.
type fileSource struct {
	f     *os.File
	size  int64
	bytes atomic.Int64
	reads atomic.Int64
}

func openFileSource(t *testing.T, path string) *fileSource {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return &fileSource{f: f, size: fi.Size()}
}

func (s *fileSource) ReadAt(p []byte, off int64) (int, error) {
	s.reads.Add(1)
	s.bytes.Add(int64(len(p)))
	return s.f.ReadAt(p, off)
}
func (s *fileSource) Size() int64  { return s.size }
func (s *fileSource) Name() string { return "remote:" + filepath.Base(s.f.Name()) }

// TestOpenSource reads every fixture through a range source and requires the
// same records as the golden file, and an address lookup that reads a small
// part of the object, not all of it.
func TestOpenSource(t *testing.T) {
	for _, name := range []string{"v1", "v2", "v3", "v4"} {
		t.Run(name, func(t *testing.T) {
			src := openFileSource(t, filepath.Join("testdata", name+".seg"))
			r, err := OpenSource(src, OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var got []record.Record
			for rc, err := range r.Iter() {
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, rc)
			}
			b, err := os.ReadFile(filepath.Join("testdata", name+".golden.json"))
			if err != nil {
				t.Fatal(err)
			}
			gb, _ := json.MarshalIndent(got, "", " ")
			if string(gb) != string(b) {
				t.Fatalf("%s read through a source differs from its golden file", name)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := r.ReadBlock(0, ColAll); err == nil {
				t.Fatal("a read after Close succeeded")
			}
		})
	}
	t.Run("lookup reads ranges", func(t *testing.T) {
		src := openFileSource(t, filepath.Join("testdata", fmt.Sprintf("v%d.seg", Version)))
		r, err := OpenSource(src, OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		opened := src.bytes.Load()
		ip := fixtureRecords()[7].IP
		for _, b := range r.blocksForIP(ip) {
			if _, err := r.ReadBlock(b, ColIP); err != nil {
				t.Fatal(err)
			}
		}
		if read := src.bytes.Load(); read >= src.size || opened >= src.size {
			t.Fatalf("a lookup read %d of %d bytes (%d to open): not by ranges", read, src.size, opened)
		}
	})
	t.Run("truncated object", func(t *testing.T) {
		full, err := os.ReadFile(filepath.Join("testdata", fmt.Sprintf("v%d.seg", Version)))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "cut.seg")
		if err := os.WriteFile(p, full[:len(full)-3], 0o644); err != nil {
			t.Fatal(err)
		}
		_, err = OpenSource(openFileSource(t, p), OpenOptions{})
		var ce *CorruptionError
		if !errors.As(err, &ce) {
			t.Fatalf("OpenSource of a truncated object: %v, want a CorruptionError", err)
		}
	})
	t.Run("read error", func(t *testing.T) {
		src := &failingSource{fileSource: openFileSource(t, filepath.Join("testdata", fmt.Sprintf("v%d.seg", Version)))}
		r, err := OpenSource(src, OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		src.fail.Store(true)
		if _, err := r.ReadBlock(0, ColAll); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("ReadBlock over a failing source: %v, want the source's error", err)
		}
	})
}

type failingSource struct {
	*fileSource
	fail atomic.Bool
}

func (s *failingSource) ReadAt(p []byte, off int64) (int, error) {
	if s.fail.Load() {
		return 0, io.ErrUnexpectedEOF
	}
	return s.fileSource.ReadAt(p, off)
}

// TestMemorySegment builds the current fixture in memory: the bytes must be
// the fixture file's, and OpenBytes must read them back.
func TestMemorySegment(t *testing.T) {
	b, info, err := WriteMemory("mem:fixture", fixtureRecords(), Options{BlockRows: 64})
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("testdata", fmt.Sprintf("v%d.seg", Version)))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(want) || info.Bytes != int64(len(want)) {
		t.Fatalf("in-memory segment of %d bytes differs from the %d-byte fixture", len(b), len(want))
	}
	r, err := OpenBytes(b, "mem:fixture", OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, err := range r.Iter() {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != len(fixtureRecords()) {
		t.Fatalf("read %d records, wrote %d", n, len(fixtureRecords()))
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBytes(b[:len(b)-1], "mem:cut", OpenOptions{}); err == nil {
		t.Fatal("a truncated in-memory segment opened")
	}
}
