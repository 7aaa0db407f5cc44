package segment

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/testkit"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func rec(ms int64, ip, dom, path, ua string) record.Record {
	return record.Record{Time: t0.Add(time.Duration(ms) * time.Millisecond), Domain: dom, Path: path, UserAgent: ua, IP: netip.MustParseAddr(ip)}
}

func readAll(t testing.TB, path string) []record.Record {
	t.Helper()
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []record.Record
	for rc, err := range r.Iter() {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rc)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	many := genRecords(7, 3000)
	tests := []struct {
		name string
		recs []record.Record
		opts Options
	}{
		{"empty segment is valid", nil, Options{}},
		{"one record", []record.Record{rec(0, "192.0.2.1", "a.nl", "/", "")}, Options{}},
		{"exactly one block", many[:100], Options{BlockRows: 100}},
		{"block boundary plus one", many[:101], Options{BlockRows: 100}},
		{"many blocks", many, Options{BlockRows: 128}},
		{"v4 and v6 and mapped", []record.Record{
			rec(1, "192.0.2.1", "a.nl", "/x", "ua"), rec(1, "2001:db8::1", "a.nl", "/x", "ua"),
			rec(2, "::ffff:192.0.2.1", "b.nl", "/y", ""), rec(3, "::", "b.nl", "/y", ""), rec(3, "0.0.0.0", "c.nl", "/", "u"),
		}, Options{BlockRows: 2}},
		{"invalid utf-8 kept byte-exactly", []record.Record{
			rec(5, "10.0.0.1", "a.nl", "/\xff\xfe?q=\xc3", "bot \x80\x81"), rec(6, "10.0.0.1", "a.nl", "/\xff\xfe?q=\xc3\x28", "bot \x80\x81"),
		}, Options{}},
		{"equal times keep order", []record.Record{rec(9, "10.0.0.1", "a.nl", "/1", ""), rec(9, "10.0.0.2", "a.nl", "/2", ""), rec(9, "10.0.0.3", "a.nl", "/3", "")}, Options{BlockRows: 2}},
		{"level 1", many[:500], Options{Level: 1, BlockRows: 64}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.seg")
			info, err := Write(path, tt.recs, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if info.Records != int64(len(tt.recs)) {
				t.Errorf("info.Records = %d, want %d", info.Records, len(tt.recs))
			}
			got := readAll(t, path)
			if len(got) != len(tt.recs) || (len(got) > 0 && !reflect.DeepEqual(got, tt.recs)) {
				t.Fatalf("round trip mismatch:\n got %v\nwant %v", got, tt.recs)
			}
			r, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if ri := r.Info(); ri != info {
				t.Errorf("reader info %+v, writer info %+v", ri, info)
			}
			var rows int
			for i := range r.NumBlocks() {
				m := r.Block(i)
				rows += m.Rows
				if i > 0 && r.Block(i-1).MaxTime > m.MinTime {
					t.Errorf("block %d starts before block %d ends", i, i-1)
				}
			}
			if rows != len(tt.recs) {
				t.Errorf("blocks hold %d rows, want %d", rows, len(tt.recs))
			}
		})
	}
}

func TestReadBlockColumnSubsets(t *testing.T) {
	recs := genRecords(8, 700)
	path := filepath.Join(t.TempDir(), "s.seg")
	if _, err := Write(path, recs, Options{BlockRows: 256}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for cols := Columns(0); cols <= ColAll; cols++ {
		base := 0
		for i := range r.NumBlocks() {
			b, err := r.ReadBlock(i, cols)
			if err != nil {
				t.Fatalf("cols %05b block %d: %v", cols, i, err)
			}
			n := r.Block(i).Rows
			check := func(c Columns, length int) {
				if (cols&c != 0) != (length == n) || (cols&c == 0 && length != 0) {
					t.Fatalf("cols %05b: column %05b has %d rows, block %d rows", cols, c, length, n)
				}
			}
			check(ColTime, len(b.Times))
			check(ColIP, len(b.IPs))
			check(ColDomain, len(b.DomainIDs))
			check(ColUserAgent, len(b.UserAgentIDs))
			check(ColPath, len(b.Paths))
			for j := 0; j < n; j++ {
				want := recs[base+j]
				if cols&ColTime != 0 && b.Times[j] != want.Time.UnixMilli() ||
					cols&ColIP != 0 && b.IPs[j] != want.IP ||
					cols&ColDomain != 0 && r.Domains()[b.DomainIDs[j]] != want.Domain ||
					cols&ColUserAgent != 0 && r.UserAgents()[b.UserAgentIDs[j]] != want.UserAgent ||
					cols&ColPath != 0 && b.Paths[j] != want.Path {
					t.Fatalf("cols %05b block %d row %d differs", cols, i, j)
				}
			}
			base += n
		}
	}
	// The empty column set decodes nothing and is not counted.
	if got, want := r.decoded.Load(), int64(31*r.NumBlocks()); got != want {
		t.Errorf("blocks decoded = %d, want %d", got, want)
	}
}

func TestWriterErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.seg")
	w, err := NewWriter(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r1 := rec(10, "10.0.0.1", "a.nl", "/", "")
	if err := w.Add(&r1); err != nil {
		t.Fatal(err)
	}
	r0 := rec(9, "10.0.0.1", "a.nl", "/", "")
	if err := w.Add(&r0); err == nil {
		t.Error("time going backwards accepted")
	}
	noIP := rec(11, "10.0.0.1", "a.nl", "/", "")
	noIP.IP = netip.Addr{}
	if err := w.Add(&noIP); err == nil {
		t.Error("record without IP accepted")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("file visible before Close: %v", err)
	}
	w.Abort()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("Abort left %d files", len(ents))
	}
	if _, err := NewWriter(path, Options{BlockRows: MaxBlockRows + 1}); err == nil {
		t.Error("oversized BlockRows accepted")
	}
}

// TestIndexes compares blocksForIP, BlocksForPrefix and BlocksForDomains with
// a brute-force scan over many random addresses and prefixes.
func TestIndexes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var pool []netip.Addr
	for i := 0; i < 300; i++ {
		switch i % 4 {
		case 0:
			pool = append(pool, netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256))}))
		case 1:
			pool = append(pool, netip.AddrFrom4([4]byte{byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))}))
		case 2:
			var a [16]byte
			a[0], a[1], a[2] = 0x20, 0x01, byte(rng.IntN(3))
			for j := 3; j < 16; j++ {
				a[j] = byte(rng.IntN(256))
			}
			pool = append(pool, netip.AddrFrom16(a))
		case 3: // v4-mapped v6, never unmapped by the segment
			pool = append(pool, netip.AddrFrom16(netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(4)), byte(rng.IntN(256))}).As16()))
		}
	}
	doms := []string{"a.nl", "b.nl", "c.nl", "d.nl", "e.nl"}
	recs := make([]record.Record, 5000)
	for i := range recs {
		recs[i] = record.Record{Time: t0.Add(time.Duration(i) * time.Second), Domain: doms[min(rng.IntN(8), 4)],
			Path: "/", IP: pool[rng.IntN(len(pool))]}
	}
	path := filepath.Join(t.TempDir(), "i.seg")
	if _, err := Write(path, recs, Options{BlockRows: 50}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	brute := func(match func(record.Record) bool) []int {
		var out []int
		for i := range recs {
			if b := i / 50; match(recs[i]) && !slices.Contains(out, b) {
				out = append(out, b)
			}
		}
		return out
	}
	for _, a := range append(pool, netip.MustParseAddr("1.2.3.4"), netip.MustParseAddr("::1")) {
		if got, want := r.blocksForIP(a), brute(func(x record.Record) bool { return x.IP == a }); !slices.Equal(got, want) {
			t.Fatalf("blocksForIP(%v) = %v, want %v", a, got, want)
		}
	}
	prefixes := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0"),
		netip.MustParsePrefix("::ffff:0:0/96"), netip.MustParsePrefix("::ffff:10.0.0.0/104"), netip.MustParsePrefix("10.0.0.0/8")}
	for range 2000 {
		a := pool[rng.IntN(len(pool))]
		bits := rng.IntN(a.BitLen() + 1)
		prefixes = append(prefixes, netip.PrefixFrom(a, bits))
	}
	for _, p := range prefixes {
		if got, want := r.BlocksForPrefix(p), brute(func(x record.Record) bool { return p.Masked().Contains(x.IP) }); !slices.Equal(got, want) {
			t.Fatalf("BlocksForPrefix(%v) = %v, want %v", p, got, want)
		}
	}
	for range 50 {
		var ids []uint32
		for range rng.IntN(3) + 1 {
			ids = append(ids, uint32(rng.IntN(len(r.Domains())+1)))
		}
		want := brute(func(x record.Record) bool {
			return slices.ContainsFunc(ids, func(id uint32) bool { return int(id) < len(r.Domains()) && r.Domains()[id] == x.Domain })
		})
		if got := r.BlocksForDomains(ids); !slices.Equal(got, want) {
			t.Fatalf("BlocksForDomains(%v) = %v, want %v", ids, got, want)
		}
	}
}

// fixtureRecords are the records of the version fixtures: varied generated
// rows plus an IPv6 address and invalid UTF-8, which must survive exactly.
func fixtureRecords() []record.Record {
	recs := genRecords(42, 300)
	return append(recs, rec(1e9, "2001:db8::7", "x.nl", "/\xff", "ua \x80"))
}

// TestFixtures reads the committed segment of every format version this
// build reads and compares it with its golden JSON, so that an unintended
// format change fails here and old files stay readable. The current
// version's fixture must also be reproduced byte for byte by the writer.
// Regenerate only for a deliberate new version (then add its row here):
// go test ./internal/segment -run TestFixtures -update.
func TestFixtures(t *testing.T) {
	for v := MinVersion; v <= Version; v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			seg := filepath.Join("testdata", fmt.Sprintf("v%d.seg", v))
			golden := filepath.Join("testdata", fmt.Sprintf("v%d.golden.json", v))
			if *testkit.Update && v == Version { // rewrite the current version's fixture and its golden JSON
				recs := fixtureRecords()
				if _, err := Write(seg, recs, Options{BlockRows: 64}); err != nil {
					t.Fatal(err)
				}
				b, _ := json.MarshalIndent(recs, "", " ")
				if err := os.WriteFile(golden, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var want []record.Record
			b, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			got := readAll(t, seg)
			gb, _ := json.MarshalIndent(got, "", " ")
			if string(gb) != string(b) {
				t.Fatalf("fixture %s no longer decodes to %s", seg, golden)
			}
			if len(got) != 301 {
				t.Fatalf("fixture has %d records", len(got))
			}
			r, err := Open(seg)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.Version() != v {
				t.Fatalf("version %d, want %d", r.Version(), v)
			}
			if v < 2 {
				if r.DomainRows() != nil || r.UserAgentRows() != nil {
					t.Fatal("a v1 segment has no row counts")
				}
				return
			}
			checkRowCounts(t, r, got)
			if v == Version {
				again := filepath.Join(t.TempDir(), "again.seg")
				if _, err := Write(again, fixtureRecords(), Options{BlockRows: 64}); err != nil {
					t.Fatal(err)
				}
				a, _ := os.ReadFile(again)
				f, _ := os.ReadFile(seg)
				if !bytes.Equal(a, f) {
					t.Fatalf("the writer no longer produces %s byte for byte: the format changed without a new version", seg)
				}
			}
		})
	}
}

// checkRowCounts compares the footer's per-entry row counts with a count of
// the records themselves.
func checkRowCounts(t *testing.T, r *Reader, recs []record.Record) {
	t.Helper()
	doms, uas := map[string]uint64{}, map[string]uint64{}
	for _, x := range recs {
		doms[x.Domain]++
		uas[x.UserAgent]++
	}
	for _, c := range []struct {
		dict   []string
		counts []uint64
		want   map[string]uint64
	}{{r.Domains(), r.DomainRows(), doms}, {r.UserAgents(), r.UserAgentRows(), uas}} {
		if len(c.counts) != len(c.dict) || len(c.dict) != len(c.want) {
			t.Fatalf("%d counts for %d entries, %d distinct values", len(c.counts), len(c.dict), len(c.want))
		}
		for id, s := range c.dict {
			if c.counts[id] != c.want[s] {
				t.Fatalf("entry %q: footer says %d rows, records hold %d", s, c.counts[id], c.want[s])
			}
		}
	}
}

// TestCorruption flips one bit in every byte of a small segment: Open or
// ReadBlock must fail with a CorruptionError naming the file, never panic and
// never return different records.
func TestCorruption(t *testing.T) {
	recs := genRecords(9, 40)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.seg")
	if _, err := Write(good, recs, Options{BlockRows: 16}); err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.seg")
	for i := range orig {
		mod := slices.Clone(orig)
		mod[i] ^= 1 << (i % 8)
		if err := os.WriteFile(bad, mod, 0o644); err != nil {
			t.Fatal(err)
		}
		err := func() error {
			r, err := Open(bad)
			if err != nil {
				return err
			}
			defer r.Close()
			for j := range r.NumBlocks() {
				if _, err := r.ReadBlock(j, ColAll); err != nil {
					return err
				}
			}
			return nil
		}()
		var ce *CorruptionError
		if !errors.As(err, &ce) || ce.File != bad || ce.Offset < 0 || ce.Offset > int64(len(orig)) {
			t.Fatalf("bit flip at byte %d: err = %v, want a CorruptionError for %s", i, err, bad)
		}
	}
	for _, n := range []int{0, 10, len(orig) / 2, len(orig) - 1} {
		if err := os.WriteFile(bad, orig[:n], 0o644); err != nil {
			t.Fatal(err)
		}
		if r, err := Open(bad); err == nil {
			r.Close()
			t.Errorf("truncated to %d bytes: Open succeeded", n)
		}
	}
}

func FuzzOpen(f *testing.F) {
	for v := MinVersion; v <= Version; v++ {
		if b, err := os.ReadFile(filepath.Join("testdata", fmt.Sprintf("v%d.seg", v))); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("RDSG\x01\x00\x00\x00"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "f.seg")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Open(path)
		if err != nil {
			return
		}
		defer r.Close()
		var v BlockView
		for i := range r.NumBlocks() {
			r.ReadBlock(i, ColAll)
			r.ReadBlock(i, ColTime|ColPath)
			// The lazy accessors search uses must fail, not panic.
			if r.DecodeBlock(i, ColAll, &v) == nil {
				rows := make([]int, v.Rows)
				for k := range rows {
					rows[k] = v.Rows - 1 - k
					v.DomainID(k)
					v.UserAgentID(k)
				}
				v.PathsOfRows(rows)
				v.EachPath(func(int, []byte) {})
			}
		}
		for _, err := range r.Iter() {
			if err != nil {
				break
			}
		}
		r.blocksForIP(netip.MustParseAddr("10.0.0.1"))
		r.BlocksForPrefix(netip.MustParsePrefix("::/0"))
		r.BlockRowsForPrefix(netip.MustParsePrefix("0.0.0.0/0"), true)
		r.BlocksForDomains([]uint32{0, 1, 2})
	})
}

// TestConcurrentReads runs lookups and block reads from many goroutines on
// one Reader; with -race it proves the Reader shares no unsynchronised state.
func TestConcurrentReads(t *testing.T) {
	recs := genRecords(10, 2000)
	path := filepath.Join(t.TempDir(), "c.seg")
	if _, err := Write(path, recs, Options{BlockRows: 200}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := r.blocksForIP(recs[777].IP)
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range r.NumBlocks() {
				if _, err := r.ReadBlock((i+g)%r.NumBlocks(), ColAll); err != nil {
					errs <- err
					return
				}
				if got := r.blocksForIP(recs[777].IP); !slices.Equal(got, want) {
					errs <- errors.New("blocksForIP answer changed under concurrency")
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got, n := r.decoded.Load(), int64(8*r.NumBlocks()); got != n {
		t.Errorf("blocks decoded = %d, want %d", got, n)
	}
	if !slices.Contains(want, 777/200) {
		t.Errorf("blocksForIP misses block %d: %v", 777/200, want)
	}
}

// TestDecodeBlockView checks the dictionary form search uses against
// ReadBlock: one view is reused across blocks of different sizes, in a
// shuffled order and with columns requested one at a time, and must always
// resolve to exactly ReadBlock's rows. Stale contents of a previous block
// would show up as a wrong row here.
func TestDecodeBlockView(t *testing.T) {
	recs := genRecords(11, 5000)
	// IPv4-mapped IPv6 addresses stay IPv6 in a segment: IPRange must put
	// them under ::ffff:0:0/96 and never under an IPv4 prefix.
	for i, ip := range []string{"::ffff:192.0.2.1", "::ffff:192.0.2.200", "::ffff:10.0.0.1"} {
		recs = append(recs, rec(int64(i), ip, "x.nl", "/m", "ua")) // mid-day, inside a full block
	}
	p := filepath.Join(t.TempDir(), "v.seg")
	// Small blocks, and a path budget that closes some early, so blocks
	// differ in size.
	if _, err := Write(p, recs, Options{BlockRows: 700}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	order := rand.New(rand.NewPCG(1, 2)).Perm(r.NumBlocks())
	order = append(order, order[0], order[0]) // re-decoding the same block is fine
	var v BlockView
	for _, b := range order {
		want, err := r.ReadBlock(b, ColAll)
		if err != nil {
			t.Fatal(err)
		}
		before := r.decoded.Load()
		for _, c := range []Columns{ColPath, ColIP, ColTime | ColDomain, ColUserAgent, ColAll} {
			if err := r.DecodeBlock(b, c, &v); err != nil {
				t.Fatal(err)
			}
		}
		if got := r.decoded.Load() - before; got > 1 {
			t.Fatalf("block %d counted %d times in one view", b, got)
		}
		if v.Block != b || v.Rows != len(want.Times) || v.Have != ColAll {
			t.Fatalf("block %d: view says block %d, %d rows, columns %b", b, v.Block, v.Rows, v.Have)
		}
		doms, err1 := v.DomainIDs()
		uas, err2 := v.UserAgentIDs()
		pidx, err3 := v.PathIdx()
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatal(err)
		}
		rows := make([]int, len(want.Times))
		for i := range want.Times {
			rows[i] = i
			d, err1 := v.DomainID(i)
			u, err2 := v.UserAgentID(i)
			if err := errors.Join(err1, err2); err != nil {
				t.Fatal(err)
			}
			if v.Times[i] != want.Times[i] || v.IP(i) != want.IPs[i] || doms[i] != want.DomainIDs[i] || d != doms[i] ||
				uas[i] != want.UserAgentIDs[i] || u != uas[i] || v.Path(int(pidx[i])) != want.Paths[i] {
				t.Fatalf("block %d row %d differs from ReadBlock", b, i)
			}
		}
		// Rows in a shuffled order, some twice: each gets its own path.
		rand.New(rand.NewPCG(uint64(b), 3)).Shuffle(len(rows), func(x, y int) { rows[x], rows[y] = rows[y], rows[x] })
		rows = append(rows, rows[:len(rows)/3]...)
		paths, err := v.PathsOfRows(rows)
		if err != nil {
			t.Fatal(err)
		}
		for k, i := range rows {
			if paths[k] != want.Paths[i] {
				t.Fatalf("block %d: PathsOfRows gives row %d %q, want %q", b, i, paths[k], want.Paths[i])
			}
		}
		// Block 0's shared paths (format 4) and the block's own are each
		// sorted, and no path is in both.
		base := map[string]bool{}
		for j := 0; j < v.NumPaths(); j++ {
			if j < v.NumBasePaths() {
				base[string(v.pathBytes(j))] = true
			} else if base[string(v.pathBytes(j))] {
				t.Fatalf("block %d: path %d is also one of block 0's", b, j)
			}
			if j > 0 && j != v.NumBasePaths() && bytes.Compare(v.pathBytes(j-1), v.pathBytes(j)) >= 0 {
				t.Fatalf("block %d: path dictionary not sorted and distinct at %d", b, j)
			}
		}
		for j := 1; j < v.NumIPs(); j++ {
			a, c := v.IPAt(j-1), v.IPAt(j)
			if a.Is4() == c.Is4() && a.Compare(c) >= 0 || !a.Is4() && c.Is4() {
				t.Fatalf("block %d: IP dictionary not IPv4-then-IPv6 ascending at %d", b, j)
			}
		}
		// IPRange is the run of exactly the entries a prefix contains.
		prefixes := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0"),
			netip.MustParsePrefix("::ffff:0:0/96"), netip.MustParsePrefix("192.0.2.0/24")}
		for k := 0; k < v.NumIPs(); k += 7 {
			a := v.IPAt(k)
			bits := 24
			if !a.Is4() {
				bits = 48
			}
			prefixes = append(prefixes, netip.PrefixFrom(a, a.BitLen()), netip.PrefixFrom(a, bits).Masked())
		}
		for _, p := range prefixes {
			lo, hi := v.IPRange(p)
			for k := 0; k < v.NumIPs(); k++ {
				if in := k >= lo && k < hi; in != p.Contains(v.IPAt(k)) {
					t.Fatalf("block %d: IPRange(%s) = [%d,%d) but entry %d (%s) contained: %v", b, p, lo, hi, k, v.IPAt(k), !in)
				}
			}
		}
	}
	if err := r.DecodeBlock(r.NumBlocks(), ColTime, &v); err == nil {
		t.Fatal("block out of range: no error")
	}
}

// TestDecodeBlockViewAcrossReaders reuses one view for block 0 of two
// segments with equal block sizes: the view must not mistake the second
// segment's block for the first one's columns (a pooled view in search hit
// exactly this).
func TestDecodeBlockViewAcrossReaders(t *testing.T) {
	dir := t.TempDir()
	var rs []*Reader
	for i, seed := range []int64{21, 22} {
		p := filepath.Join(dir, fmt.Sprintf("%d.seg", i))
		if _, err := Write(p, genRecords(seed, 200), Options{BlockRows: 100}); err != nil {
			t.Fatal(err)
		}
		r, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		rs = append(rs, r)
	}
	var v BlockView
	if err := rs[0].DecodeBlock(0, ColAll, &v); err != nil {
		t.Fatal(err)
	}
	if err := rs[1].DecodeBlock(0, ColTime|ColPath, &v); err != nil {
		t.Fatal(err)
	}
	if v.Have != ColTime|ColPath {
		t.Fatalf("view says it holds columns %05b of the second segment, want only time and path", v.Have)
	}
	want, err := rs[1].ReadBlock(0, ColAll)
	if err != nil {
		t.Fatal(err)
	}
	pidx, err := v.PathIdx()
	if err != nil {
		t.Fatal(err)
	}
	for i := range want.Times {
		if v.Times[i] != want.Times[i] || v.Path(int(pidx[i])) != want.Paths[i] {
			t.Fatalf("row %d holds the first segment's values", i)
		}
	}
}

// TestBlockRowsForPrefix checks the index's per-block row counts (format
// 2) against the rows themselves, for exact addresses and prefixes of both
// families, and that a format-1 segment reports no counts.
func TestBlockRowsForPrefix(t *testing.T) {
	recs := genRecords(31, 3000)
	p := filepath.Join(t.TempDir(), "rows.seg")
	if _, err := Write(p, recs, Options{BlockRows: 100}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var blocks []*Block
	for i := 0; i < r.NumBlocks(); i++ {
		b, err := r.ReadBlock(i, ColIP)
		if err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, b)
	}
	var prefixes []netip.Prefix
	for i := 0; i < len(recs); i += 97 {
		a := recs[i].IP
		prefixes = append(prefixes, netip.PrefixFrom(a, a.BitLen()))
		bits := 24
		if !a.Is4() {
			bits = 48
		}
		prefixes = append(prefixes, netip.PrefixFrom(a, bits).Masked())
	}
	prefixes = append(prefixes, netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0"))
	for _, pfx := range prefixes {
		var wantBlocks, wantRows []int
		for i, b := range blocks {
			n := 0
			for _, a := range b.IPs {
				if pfx.Contains(a) {
					n++
				}
			}
			if n > 0 {
				wantBlocks = append(wantBlocks, i)
				wantRows = append(wantRows, n)
			}
		}
		gotBlocks, gotRows := r.BlockRowsForPrefix(pfx, true)
		if !slices.Equal(gotBlocks, wantBlocks) || !slices.Equal(gotRows, wantRows) {
			t.Fatalf("%s: index says blocks %v rows %v, rows hold %v %v", pfx, gotBlocks, gotRows, wantBlocks, wantRows)
		}
		if b, rows := r.BlockRowsForPrefix(pfx, false); !slices.Equal(b, wantBlocks) || rows != nil {
			t.Fatalf("%s without rows: %v %v", pfx, b, rows)
		}
	}
	old, err := Open(filepath.Join("testdata", "v1.seg"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if b, rows := old.BlockRowsForPrefix(netip.MustParsePrefix("0.0.0.0/0"), true); len(b) == 0 || rows != nil {
		t.Fatalf("v1 segment: blocks %v, rows %v; want blocks and no rows", b, rows)
	}
}

// TestAddressFilter checks the format-2 address filter: never a false
// negative, about 1% false positives, and an address it rules out costs no
// index page. A format-1 segment has no filter and rules nothing out.
func TestAddressFilter(t *testing.T) {
	recs := genRecords(41, 20000)
	p := filepath.Join(t.TempDir(), "f.seg")
	if _, err := Write(p, recs, Options{BlockRows: 1000}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	held := map[netip.Addr]bool{}
	for _, x := range recs {
		held[x.IP] = true
		if !r.mayHoldIP(x.IP) {
			t.Fatalf("filter rules out %s, which the segment holds", x.IP)
		}
	}
	rng := rand.New(rand.NewPCG(7, 8))
	absent, falsePos := 0, 0
	for absent < 20000 {
		var a netip.Addr
		if absent%2 == 0 {
			a = netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
		} else {
			var b [16]byte
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			a = netip.AddrFrom16(b)
		}
		if held[a] {
			continue
		}
		absent++
		before := r.pagesRead.Load()
		blocks := r.blocksForIP(a)
		if len(blocks) != 0 {
			t.Fatalf("absent %s: blocks %v", a, blocks)
		}
		if r.mayHoldIP(a) {
			falsePos++
		} else if r.pagesRead.Load() != before {
			t.Fatalf("absent %s ruled out by the filter, yet an index page was read", a)
		}
	}
	if rate := float64(falsePos) / float64(absent); rate > 0.03 {
		t.Fatalf("false-positive rate %.3f (%d of %d), want about 0.01", rate, falsePos, absent)
	} else {
		t.Logf("%d distinct addresses; false positives %d of %d absent (%.2f%%)", len(held), falsePos, absent, 100*rate)
	}
	if r.mayHoldIP(netip.Addr{}) {
		t.Fatal("the zero address may be held")
	}
	// Networks: never a false negative for a network holding an address,
	// whatever its length from /24 (/48) down to the address; few false
	// positives for networks holding none; no opinion on wider ones.
	heldNets := map[netip.Prefix]bool{}
	for a := range held {
		bits := []int{24, 28, 31}
		if !a.Is4() {
			bits = []int{48, 56, 64, 127}
		}
		for _, b := range bits {
			p := netip.PrefixFrom(a, b).Masked()
			if !r.MayHoldPrefix(p) {
				t.Fatalf("filter rules out %s, which holds %s", p, a)
			}
		}
		heldNets[netip.PrefixFrom(a, map[bool]int{true: 24, false: 48}[a.Is4()]).Masked()] = true
	}
	netsAbsent, netsFP := 0, 0
	for netsAbsent < 20000 {
		var p netip.Prefix
		if netsAbsent%2 == 0 {
			p = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), 0}), 24)
		} else {
			var b [16]byte
			for i := 0; i < 6; i++ {
				b[i] = byte(rng.Uint32())
			}
			p = netip.PrefixFrom(netip.AddrFrom16(b), 48)
		}
		if heldNets[p] {
			continue
		}
		netsAbsent++
		if r.MayHoldPrefix(p) {
			netsFP++
		} else if blocks := r.BlocksForPrefix(p); len(blocks) != 0 {
			t.Fatalf("%s ruled out by the filter, yet the index has blocks %v", p, blocks)
		}
	}
	if rate := float64(netsFP) / float64(netsAbsent); rate > 0.03 {
		t.Fatalf("network false-positive rate %.3f, want about 0.01", rate)
	}
	for _, wide := range []string{"10.0.0.0/16", "0.0.0.0/0", "2001:db8::/32", "::/0"} {
		if !r.MayHoldPrefix(netip.MustParsePrefix(wide)) {
			t.Fatalf("the filter has no opinion on %s, yet ruled it out", wide)
		}
	}
	old, err := Open(filepath.Join("testdata", "v1.seg"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if !old.mayHoldIP(netip.MustParseAddr("192.0.2.1")) || !old.MayHoldPrefix(netip.MustParsePrefix("192.0.2.0/24")) {
		t.Fatal("a v1 segment has no filter and must not rule an address out")
	}
}

// TestDomainsLowerCase: a segment whose domains are all stored lower-cased
// says so, and one holding a name an older ASCII-only rule kept
// ("bÜcher.example") does not, so that searches lower-case its names.
func TestDomainsLowerCase(t *testing.T) {
	for _, c := range []struct {
		domain string
		want   bool
	}{{"shop.example", true}, {"bÜcher.example", false}} {
		t.Run(c.domain, func(t *testing.T) {
			recs := genRecords(3, 100)
			recs[50].Domain = c.domain
			path := filepath.Join(t.TempDir(), "s.seg")
			if _, err := Write(path, recs, Options{}); err != nil {
				t.Fatal(err)
			}
			r, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := r.DomainsLowerCase(); got != c.want {
				t.Fatalf("DomainsLowerCase() = %v with %q stored, want %v", got, c.domain, c.want)
			}
		})
	}
}

// FuzzIPColumn feeds raw (decompressed) IP columns of every format to the
// decoder: a CRC makes whole-file fuzzing rarely reach it, and a forged
// checksum must still give an error, never a panic or an id beyond its
// dictionary. Seeds are the columns the writer produces.
func FuzzIPColumn(f *testing.F) {
	recs := genRecords(5, 300)
	var p parts
	ips := make([]netip.Addr, len(recs))
	dom, ua := make([]uint32, len(recs)), make([]uint32, len(recs))
	for i := range recs {
		ips[i], dom[i], ua[i] = recs[i].IP, uint32(i%7), uint32(i%3)
	}
	appendVisitors(&p, ips, dom, ua, &ipScratch{}, &visitors{}, nil)
	f.Add(p.buf, uint16(len(recs)), byte(3))
	p.reset()
	idx := appendIPs(&p, ips, &ipScratch{}, nil)
	p.buf = appendUints(p.buf, idx)
	f.Add(p.buf, uint16(len(recs)), byte(2))
	f.Fuzz(func(t *testing.T, raw []byte, rows uint16, version byte) {
		const nDom, nUA = 7, 3
		var d ipDict
		var du, uu uintCol
		if d.decode(raw, int(rows), version, nDom, nUA, &du, &uu) != nil {
			return
		}
		for i, k := range d.idx {
			if int(k) >= d.len() {
				t.Fatalf("row %d: address index %d of %d", i, k, d.len())
			}
			d.at(int(k))
		}
		if version < 3 {
			return
		}
		for i := range int(rows) {
			if v, err := du.at(i); err == nil && v >= nDom {
				t.Fatalf("row %d: domain id %d of %d", i, v, nDom)
			}
			if v, err := uu.at(i); err == nil && v >= nUA {
				t.Fatalf("row %d: user agent id %d of %d", i, v, nUA)
			}
		}
		du.values()
		uu.values()
	})
}

// TestPackedKeysOrder checks that the packed sort keys of a seal put the
// records in the order of sortedKeys, the general (time, run, position)
// sort, ties in time included, and that records spanning more time than
// the keys hold are left to sortedKeys.
func TestPackedKeysOrder(t *testing.T) {
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, span := range []time.Duration{time.Second, 24 * time.Hour, 37 * time.Hour, 38 * time.Hour} {
		t.Run(span.String(), func(t *testing.T) {
			var runs [][]record.Record
			for range 1 + rng.IntN(6) {
				run := make([]record.Record, rng.IntN(300))
				for i := range run {
					run[i].Time = day.Add(time.Duration(rng.Int64N(int64(span/time.Millisecond))) * time.Millisecond)
				}
				runs = append(runs, run)
			}
			if len(runs[0]) > 0 {
				runs[0][0].Time = day.Add(span - time.Millisecond) // the whole span
			}
			type at struct{ run, pos int }
			var want []at
			sortedKeys(runs, func(run, pos int) error { want = append(want, at{run, pos}); return nil })
			for i := 1; i < len(want); i++ {
				a, b := runs[want[i-1].run][want[i-1].pos].Time, runs[want[i].run][want[i].pos].Time
				if a.After(b) || a.Equal(b) && (want[i-1].run > want[i].run || want[i-1].run == want[i].run && want[i-1].pos > want[i].pos) {
					t.Fatalf("sortedKeys: record %d out of order", i)
				}
			}
			keys, ok := packedKeys(runs)
			if fits := span <= 37*time.Hour; ok != fits {
				t.Fatalf("packedKeys ok = %v for a span of %s", ok, span)
			}
			if !ok {
				return
			}
			slices.Sort(keys)
			if len(keys) != len(want) {
				t.Fatalf("%d keys for %d records", len(keys), len(want))
			}
			for i, k := range keys {
				if got := (at{int(k >> packPos & (1<<packRunBits - 1)), int(k & (1<<packPos - 1))}); got != want[i] {
					t.Fatalf("key %d names run %d record %d, want run %d record %d", i, got.run, got.pos, want[i].run, want[i].pos)
				}
			}
		})
	}
}

// TestAppendVisitors checks the block's (address, domain, user agent)
// combinations: each distinct one once, in order of first appearance, and
// each row's index naming its own, for ids that pack into one number and
// ids too large for it (a flood of distinct user agents), mixed in a block.
func TestAppendVisitors(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, big := range []bool{false, true} {
		t.Run(fmt.Sprintf("large ids %v", big), func(t *testing.T) {
			var ips []netip.Addr
			var dom, ua []uint32
			for i := range 5000 {
				if i > 0 && rng.IntN(2) == 0 { // runs of one visitor
					ips, dom, ua = append(ips, ips[i-1]), append(dom, dom[i-1]), append(ua, ua[i-1])
					continue
				}
				ip := netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(4)), byte(rng.IntN(40))})
				if rng.IntN(5) == 0 {
					ip = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(rng.IntN(30))})
				}
				d, u := uint32(rng.IntN(6)), uint32(rng.IntN(6))
				if big && rng.IntN(3) == 0 {
					d += 1<<24 - 3 // around the packing's bound
				}
				if big && rng.IntN(3) == 0 {
					u += 1<<24 - 3
				}
				ips, dom, ua = append(ips, ip), append(dom, d), append(ua, u)
			}
			var p parts
			var v visitors
			idx := appendVisitors(&p, ips, dom, ua, &ipScratch{}, &v, nil)
			type combo struct{ ip, dom, ua uint32 }
			seen := map[combo]bool{}
			var want []combo
			for i := range ips {
				c := combo{idx[i], dom[i], ua[i]}
				if !seen[c] {
					seen[c] = true
					want = append(want, c)
				}
				got := combo{v.ip[v.perRow[i]], v.dom[v.perRow[i]], v.ua[v.perRow[i]]}
				if got != c {
					t.Fatalf("row %d names combination %v, want %v", i, got, c)
				}
			}
			if len(v.ip) != len(want) {
				t.Fatalf("%d combinations, want %d", len(v.ip), len(want))
			}
			for i, c := range want {
				if got := (combo{v.ip[i], v.dom[i], v.ua[i]}); got != c {
					t.Fatalf("combination %d is %v, want %v", i, got, c)
				}
			}
			// The address dictionary: each row's index names its address.
			sorted := slices.Clone(ips)
			slices.SortFunc(sorted, netip.Addr.Compare)
			sorted = slices.Compact(sorted)
			for i, a := range ips {
				if sorted[idx[i]] != a {
					t.Fatalf("row %d: address index %d is %s, want %s", i, idx[i], sorted[idx[i]], a)
				}
			}
		})
	}
}
