package store

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/retentiond/retentiond/internal/fsutil"
	"github.com/retentiond/retentiond/internal/keys"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/segment"
	"github.com/retentiond/retentiond/internal/testkit"
	"github.com/retentiond/retentiond/internal/wal"
)

var testMaster = bytes.Repeat([]byte{0x33}, keys.KeySize)

// openRing opens the key directory <dir>/keys, as the daemon does by
// default.
func openRing(t *testing.T, dir string) *keys.Ring {
	t.Helper()
	r, err := keys.Open(filepath.Join(dir, "keys"), testMaster, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func openEncrypted(t *testing.T, dir string, clk *testkit.Clock, in *fsutil.Injector) (*Store, *keys.Ring) {
	t.Helper()
	ring := openRing(t, dir)
	opts := Options{Now: clk.Now, FlushInterval: time.Hour, BlockRows: 64, Registerer: prometheus.NewRegistry(), Keys: ring}
	if in != nil {
		opts.FS = in.FS()
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return s, ring
}

// plantedRecords are records of two days whose domain, path, user agent
// and addresses (one IPv4, one IPv6) are distinctive byte strings, and
// the needles a scan looks for: each text, each address's text, its 4 or
// 16 bytes and, for the IPv4 address, its IPv4-mapped 16 bytes.
// inWAL marks the needles a plain WAL stores literally (the control that
// shows the scan finds what is there).
func plantedRecords() ([]record.Record, []plantNeedle) {
	var recs []record.Record
	for i, ip := range []string{"198.51.100.77", "2001:db8:feed:beef::77"} {
		for d := range 2 {
			r := record.Record{
				Time:      base.AddDate(0, 0, d).Add(time.Duration(i+1) * time.Hour),
				Domain:    "needle-domain.example",
				Path:      "/needle/secret-path/index.html",
				UserAgent: "NeedleAgent/7.0",
				IP:        netip.MustParseAddr(ip),
			}
			if err := r.Normalize(); err != nil {
				panic(err)
			}
			recs = append(recs, r)
		}
	}
	v4 := netip.MustParseAddr("198.51.100.77")
	v6 := netip.MustParseAddr("2001:db8:feed:beef::77")
	b4, m16, b16 := v4.As4(), netip.AddrFrom16(v4.As16()).As16(), v6.As16()
	return recs, []plantNeedle{
		{"domain", []byte("needle-domain.example"), true},
		{"path", []byte("/needle/secret-path/index.html"), true},
		{"user agent", []byte("NeedleAgent/7.0"), true},
		{"ipv4 text", []byte(v4.String()), false},
		{"ipv6 text", []byte(v6.String()), false},
		{"ipv4 4 bytes", b4[:], true},
		{"ipv4 mapped 16 bytes", m16[:], false},
		{"ipv6 16 bytes", b16[:], true},
	}
}

type plantNeedle struct {
	name  string
	b     []byte
	inWAL bool
}

// findNeedles returns "needle in file at offset" for every needle found in
// any file under dir.
func findNeedles(t *testing.T, dir string, needles []plantNeedle) map[string]string {
	t.Helper()
	found := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if i := bytes.Index(b, n.b); i >= 0 {
				rel, _ := filepath.Rel(dir, path)
				found[n.name] = rel + " at offset " + strconv.Itoa(i)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestEncryptedDataDirHoldsNoRecordInClear scans every file of the data
// directory (WAL, parts, merged segments, checkpoint, key files) for the
// planted domain, path, user agent and addresses (text, 4 and 16 bytes) at
// each stage of a record's life: in the WAL, flushed into parts, merged,
// and after a restart that replays the WAL. A plain store is scanned the
// same way and must show them (the scan finds what is there); the
// encrypted one must not, and must still return every record.
func TestEncryptedDataDirHoldsNoRecordInClear(t *testing.T) {
	recs, needles := plantedRecords()
	for _, encrypted := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "encrypted"}[encrypted]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			clk := testkit.NewClock(base.AddDate(0, 0, 3))
			open := func() *Store {
				if encrypted {
					s, _ := openEncrypted(t, dir, clk, nil)
					return s
				}
				return openTest(t, dir, clk)
			}
			s := open()
			ctx := context.Background()
			check := func(stage string, wantWAL bool) {
				t.Helper()
				found := findNeedles(t, dir, needles)
				for _, n := range needles {
					where, ok := found[n.name]
					switch {
					case encrypted && ok:
						t.Errorf("%s: %s in clear: %s", stage, n.name, where)
					case !encrypted && wantWAL && n.inWAL && !ok:
						t.Errorf("%s: the plain store does not hold %s; the scan would prove nothing", stage, n.name)
					}
				}
			}
			if err := s.Append(ctx, recs); err != nil {
				t.Fatal(err)
			}
			check("in the wal", true)
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := s.Append(ctx, recs); err != nil {
				t.Fatal(err)
			}
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			check("flushed into parts", false)
			if err := s.MergeDay(base); err != nil {
				t.Fatal(err)
			}
			check("merged", false)
			if err := s.Append(ctx, recs[:1]); err != nil {
				t.Fatal(err)
			}
			// A crash: the last record is only in the WAL of a copy.
			crashed := t.TempDir()
			copyTree(t, dir, crashed)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			dir = crashed
			s = open()
			defer s.Close()
			check("after a restart", false)
			snap, err := s.Snapshot(base, base.AddDate(0, 0, 2))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, v := range snap.Days {
				n += v.Head.Len()
				for _, sr := range v.Segments {
					for r, err := range sr.Iter() {
						if err != nil {
							t.Fatal(err)
						}
						if r.Domain != "needle-domain.example" || r.Path != "/needle/secret-path/index.html" {
							t.Fatalf("record read back as %+v", r)
						}
						n++
					}
				}
			}
			snap.Release()
			if n != 2*len(recs)+1 {
				t.Fatalf("%d records read back, want %d", n, 2*len(recs)+1)
			}
		})
	}
}

// TestPurgeShredsEveryCopy: copies of a day's segment files and WAL files
// taken before its purge (a backup) cannot be read with the keys left
// after the purge, while the other day's copies still can (so the
// failure is the destroyed key, not the copy).
func TestPurgeShredsEveryCopy(t *testing.T) {
	dir := t.TempDir()
	backup := t.TempDir()
	clk := testkit.NewClock(base.AddDate(0, 0, 3))
	s, ring := openEncrypted(t, dir, clk, nil)
	ctx := context.Background()
	var recs []record.Record
	for i := range 200 {
		recs = append(recs, rec(base.AddDate(0, 0, i%2).Add(time.Duration(i)*time.Minute), i))
	}
	if err := s.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	copyTree(t, filepath.Join(dir, walDirName), filepath.Join(backup, "wal"))
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	copyTree(t, filepath.Join(dir, daysDirName), filepath.Join(backup, "days"))
	k, err := ring.Lookup(base)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.DeleteDay(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	if info.KeyID != k.ID().String() || info.Records != 100 {
		t.Fatalf("DeleteDay = %+v, want key %s and 100 records", info, k.ID())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// What remains: the key directory after the purge, under the master key.
	left := openRing(t, dir)
	if es, _ := keys.List(left.Dir()); len(es) != 1 || !es[0].Day.Equal(base.AddDate(0, 0, 1)) {
		t.Fatalf("key directory after the purge: %+v", es)
	}
	segs, _, err := SegmentFiles(backup)
	if err != nil || len(segs) != 2 {
		t.Fatalf("backup segments %v, %v", segs, err)
	}
	for _, p := range segs {
		r, err := segment.OpenWith(p, segment.OpenOptions{Keys: left})
		purged := strings.Contains(p, record.DayString(base))
		switch {
		case purged && !errors.Is(err, keys.ErrNoKey):
			t.Errorf("copy of a purged segment %s: err = %v, want ErrNoKey", p, err)
		case !purged && err != nil:
			t.Errorf("copy of a kept segment %s: %v", p, err)
		}
		if err == nil {
			r.Close()
		}
	}
	w, err := wal.Open(filepath.Join(backup, "wal"), wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	opened, refused := 0, 0
	err = w.Replay(0, func(_ int, payload []byte) error {
		day, _ := keys.FrameDay(payload)
		_, _, err := left.OpenFrame(payload)
		switch {
		case day.Equal(base) && errors.Is(err, keys.ErrNoKey):
			refused++
		case !day.Equal(base) && err == nil:
			opened++
		default:
			t.Errorf("wal frame of %s: %v", record.DayString(day), err)
		}
		return nil
	})
	if err != nil || opened == 0 || refused == 0 {
		t.Fatalf("backup wal: %d frames of the kept day opened, %d of the purged day refused, %v", opened, refused, err)
	}
}

// TestDestroyedKeyBeforeRemovalIsFinished: a purge that destroyed the
// day's key but could not remove its files (the rename fails) leaves a day
// that start-up lists (its bytes, no records) without opening it, and the
// next purge removes the files and names the same key id.
func TestDestroyedKeyBeforeRemovalIsFinished(t *testing.T) {
	dir := t.TempDir()
	clk := testkit.NewClock(base.AddDate(0, 0, 3))
	in := &fsutil.Injector{}
	s, ring := openEncrypted(t, dir, clk, in)
	ctx := context.Background()
	if err := s.Append(ctx, batch(0, 50)); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, []record.Record{rec(base.AddDate(0, 0, 1), 99)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	k, _ := ring.Lookup(base)
	in.Add(fsutil.Rule{Op: fsutil.OpRename, Path: filepath.Join(daysDirName, record.DayString(base)), Err: syscall.EIO})
	if _, err := s.DeleteDay(ctx, base); !errors.Is(err, syscall.EIO) {
		t.Fatalf("DeleteDay = %v, want EIO", err)
	}
	in.Clear()
	s.Close()

	s, ring = openEncrypted(t, dir, clk, nil)
	defer s.Close()
	days := s.Days()
	if len(days) != 2 || !days[0].Day.Equal(base) || days[0].Records != 0 || days[0].Bytes == 0 {
		t.Fatalf("days after restart: %+v", days)
	}
	if got := collect(t, s, base, base.AddDate(0, 0, 2)); !slices.Equal(got, []int{99}) {
		t.Fatalf("records after restart: %v, want [99]", got)
	}
	info, err := s.DeleteDay(ctx, base)
	if err != nil || info.KeyID != k.ID().String() {
		t.Fatalf("second DeleteDay = %+v, %v; want key %s", info, err, k.ID())
	}
	if _, err := os.Stat(filepath.Join(dir, daysDirName, record.DayString(base))); !os.IsNotExist(err) {
		t.Fatalf("day directory: %v", err)
	}
	if _, destroyed := ring.Destroyed(base); destroyed {
		t.Fatal("the tombstone outlived the files")
	}
}

// TestEncryptionSwitchedOn: a plain data directory keeps working when
// encryption is switched on (old files are read, new ones sealed); an
// encrypted one refuses to start without its keys rather than skipping
// data.
func TestEncryptionSwitchedOn(t *testing.T) {
	dir := t.TempDir()
	clk := testkit.NewClock(base.AddDate(0, 0, 3))
	s := openTest(t, dir, clk)
	if err := s.Append(context.Background(), batch(0, 10)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, _ = openEncrypted(t, dir, clk, nil)
	if err := s.Append(context.Background(), batch(10, 20)); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, s, base, base.AddDate(0, 0, 1)); !slices.Equal(got, seqRange(0, 20)) {
		t.Fatalf("mixed directory: %v", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	sealed := 0
	segs, _, _ := SegmentFiles(dir)
	for _, p := range segs {
		if r, err := segment.Open(p); errors.Is(err, segment.ErrNoKeys) {
			sealed++
		} else if err == nil {
			r.Close()
		}
	}
	if len(segs) != 2 || sealed != 1 {
		t.Fatalf("%d segment files, %d sealed; want 2 and 1", len(segs), sealed)
	}
	if s, err := Open(dir, Options{Registerer: prometheus.NewRegistry()}); !errors.Is(err, segment.ErrNoKeys) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("open without keys: %v, want ErrNoKeys", err)
	}
}

// TestSealedFramesPerDay: with encryption a batch spanning midnight
// becomes one sealed frame per day, each opening (with the key of the day
// it names) to exactly that day's records in order; and encodeFrames
// leaves the room and capacity sealing in place needs, never more than
// max bytes of payload.
func TestSealedFramesPerDay(t *testing.T) {
	ring := openRing(t, t.TempDir())
	s := &Store{opts: Options{Keys: ring}}
	var recs []record.Record
	for i := range 30 {
		recs = append(recs, rec(base.Add(time.Duration(i-10)*time.Hour), i)) // 10 records of the day before
	}
	frames, err := s.frames(recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 2 {
		t.Fatalf("%d frames, want one per day (2)", len(frames))
	}
	var got []int
	for _, f := range frames {
		day, payload, err := ring.OpenFrame(f)
		if err != nil {
			t.Fatal(err)
		}
		batch, err := record.DecodeBatch(payload)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range batch {
			if !record.Day(r.Time).Equal(day) {
				t.Fatalf("record of %s in the frame of %s", r.Time, day)
			}
			n, _ := strconv.Atoi(strings.TrimPrefix(strings.SplitN(r.Path, "?", 2)[0], "/seq/"))
			got = append(got, n)
		}
	}
	if !slices.Equal(got, seqRange(0, 30)) {
		t.Fatalf("records %v", got)
	}
	for _, f := range encodeFrames(recs, 300, keys.FrameHeaderSize, keys.Overhead) {
		if len(f)-keys.FrameHeaderSize > 300 || cap(f) < len(f)+keys.Overhead {
			t.Fatalf("frame of %d bytes (cap %d) for max 300 plus %d of header", len(f), cap(f), keys.FrameHeaderSize)
		}
	}
}

// TestEraseOnEncryptedStore: an erasure rewrites the files of an
// encrypted day sealed again under the same day key (never plain), the
// address counts 0 afterwards and every other record stays; and the
// purge of that day still destroys the key the rewritten files use.
func TestEraseOnEncryptedStore(t *testing.T) {
	dir := t.TempDir()
	clk := testkit.NewClock(base.AddDate(0, 0, 3))
	s, ring := openEncrypted(t, dir, clk, nil)
	defer s.Close()
	target := netip.MustParseAddr("203.0.113.7")
	var recs []record.Record
	var keep []int
	for i := range 300 {
		r := rec(base.Add(time.Duration(i)*time.Second), i)
		if i%10 == 4 {
			r.IP = target
		} else {
			keep = append(keep, i)
		}
		recs = append(recs, r)
	}
	if err := s.Append(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	res, err := s.Erase(context.Background(), Erasure{Prefix: netip.PrefixFrom(target, 32), From: base, To: base.AddDate(0, 0, 1)})
	if err != nil || res.Records != 30 {
		t.Fatalf("Erase = %+v, %v; want 30 records", res, err)
	}
	if got := collect(t, s, base, base.AddDate(0, 0, 1)); !slices.Equal(got, keep) {
		t.Fatalf("after the erasure %d records, want %d", len(got), len(keep))
	}
	k, err := ring.Lookup(base)
	if err != nil {
		t.Fatal(err)
	}
	segs, _, err := SegmentFiles(dir)
	if err != nil || len(segs) == 0 {
		t.Fatalf("segments %v, %v", segs, err)
	}
	for _, p := range segs {
		if r, err := segment.Open(p); !errors.Is(err, segment.ErrNoKeys) {
			if err == nil {
				r.Close()
			}
			t.Fatalf("%s after the erasure: %v, want a sealed file", p, err)
		}
		r, err := segment.OpenWith(p, segment.OpenOptions{Keys: ring})
		if err != nil {
			t.Fatal(err)
		}
		if id, _ := r.KeyID(); id != k.ID() {
			t.Errorf("%s sealed under %s, the day's key is %s", p, id, k.ID())
		}
		r.Close()
	}
	info, err := s.DeleteDay(context.Background(), base)
	if err != nil || info.KeyID != k.ID().String() {
		t.Fatalf("DeleteDay = %+v, %v", info, err)
	}
}
