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
	"slices"
	"testing"
	"time"

	"github.com/retentiond/retentiond/internal/keys"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/testkit"
)

// The encrypted fixture's key: the master key and the seed of the
// generator that draws the day key, its id and the file's salt. With them
// the writer reproduces the current version's testdata/vN-encrypted.seg
// byte for byte.
var (
	fixtureMaster = bytes.Repeat([]byte{0x5a}, keys.KeySize)
	fixtureSeed   = [32]byte{'r', 'e', 't', 'e', 'n', 't', 'i', 'o', 'n', 'd', ' ', 'f', 'i', 'x', 't', 'u', 'r', 'e'}
	fixtureDay    = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
)

// fixtureRing returns a fresh key ring in a temporary directory whose
// first key (KeyFor(fixtureDay)) and first salt are the fixture's.
func fixtureRing(t testing.TB) *keys.Ring {
	t.Helper()
	r, err := keys.Open(t.TempDir(), fixtureMaster, keys.Options{Rand: rand.NewChaCha8(fixtureSeed)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func fixtureKey(t testing.TB) (*keys.Ring, *keys.DayKey) {
	t.Helper()
	r := fixtureRing(t)
	k, err := r.KeyFor(fixtureDay)
	if err != nil {
		t.Fatal(err)
	}
	return r, k
}

// encryptedFixture is the encrypted fixture of format version v.
func encryptedFixture(v int) string {
	return filepath.Join("testdata", fmt.Sprintf("v%d-encrypted.seg", v))
}

// TestEncryptedFixture pins the encrypted layout: each committed fixture
// (one per format version since encryption, 2 on) decodes with the fixture
// key to the same records as the plain fixtures, and the writer reproduces
// the current version's byte for byte (regenerate only for a deliberate
// format change: go test ./internal/segment -run TestEncryptedFixture
// -update).
func TestEncryptedFixture(t *testing.T) {
	for v := 2; v <= Version; v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			seg := encryptedFixture(v)
			_, k := fixtureKey(t)
			if v == Version {
				if *testkit.Update {
					if _, err := Write(seg, fixtureRecords(), Options{BlockRows: 64, Key: k}); err != nil {
						t.Fatal(err)
					}
				}
				again := filepath.Join(t.TempDir(), "again.seg")
				if _, err := Write(again, fixtureRecords(), Options{BlockRows: 64, Key: k}); err != nil {
					t.Fatal(err)
				}
				a, _ := os.ReadFile(again)
				f, err := os.ReadFile(seg)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(a, f) {
					t.Fatalf("the writer no longer produces %s byte for byte: the encrypted format changed", seg)
				}
			}
			_, k2 := fixtureKey(t) // a second ring drawn from the same seed: the fixture key is reproducible
			r, err := OpenWith(seg, OpenOptions{Keys: keyRing{k2}})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.Version() != v {
				t.Fatalf("version %d, want %d", r.Version(), v)
			}
			if id, ok := r.KeyID(); !ok || id != k.ID() {
				t.Fatalf("KeyID = %s, %v; want %s", id, ok, k.ID())
			}
			var got []record.Record
			for rc, err := range r.Iter() {
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, rc)
			}
			golden := filepath.Join("testdata", fmt.Sprintf("v%d.golden.json", v))
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if gb, _ := json.MarshalIndent(got, "", " "); string(gb) != string(want) {
				t.Fatalf("the encrypted fixture does not decode to %s", golden)
			}
			checkRowCounts(t, r, got)
		})
	}
}

// TestEncryptedHidesContents: no domain, path, user agent or address of
// the records appears in an encrypted segment, as text or as the 4 or 16
// address bytes. Compression alone already scrambles most of them, so the
// test also requires that none of the compressed units of the plain
// segment of the same records (columns, IP pages, meta section), which
// are exactly what the encrypted writer seals, appears in the encrypted
// file: what hides the records is the cipher.
func TestEncryptedHidesContents(t *testing.T) {
	recs := genRecords(3, 500)
	recs = append(recs,
		rec(5000, "198.51.100.77", "needle-domain.example", "/needle/path/x", "NeedleAgent/1.0"),
		rec(5001, "2001:db8:feed:beef::77", "needle-domain.example", "/needle/path/y", "NeedleAgent/1.0"))
	needles := planted(recs[len(recs)-2:])
	dir := t.TempDir()
	_, k := fixtureKey(t)
	plain, sealed := filepath.Join(dir, "plain.seg"), filepath.Join(dir, "sealed.seg")
	if _, err := Write(plain, recs, Options{BlockRows: 64}); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(sealed, recs, Options{BlockRows: 64, Key: k}); err != nil {
		t.Fatal(err)
	}
	pb, _ := os.ReadFile(plain)
	sb, _ := os.ReadFile(sealed)
	for _, n := range needles {
		t.Run(n.name, func(t *testing.T) {
			if i := bytes.Index(sb, n.b); i >= 0 {
				t.Fatalf("the encrypted segment holds %s at offset %d", n.name, i)
			}
		})
	}
	pr, err := Open(plain)
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	var units [][]byte
	for _, b := range pr.blocks {
		off := b.off
		for _, c := range b.cols {
			units = append(units, pb[off:off+int64(c.clen)])
			off += int64(c.clen)
		}
	}
	for _, p := range pr.ipPages {
		units = append(units, pb[p.off:p.off+int64(p.clen)])
	}
	if len(units) < 5*8+1 {
		t.Fatalf("only %d units", len(units))
	}
	for i, u := range units {
		if len(u) >= 12 && bytes.Contains(sb, u) {
			t.Fatalf("compressed unit %d of the plain segment appears in the encrypted one", i)
		}
	}
	// Still searchable through the key: the filter and the index answer.
	r, err := OpenWith(sealed, OpenOptions{Keys: keyRing{k}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, ip := range []string{"198.51.100.77", "2001:db8:feed:beef::77"} {
		a := netip.MustParseAddr(ip)
		if !r.mayHoldIP(a) || len(r.blocksForIP(a)) != 1 {
			t.Fatalf("%s: filter %v, blocks %v", ip, r.mayHoldIP(a), r.blocksForIP(a))
		}
	}
	if !r.MayHoldPrefix(netip.MustParsePrefix("198.51.100.0/24")) {
		t.Fatal("the /24 of a stored address is ruled out")
	}
}

// needle is a byte string that must not appear in an encrypted file.
type needle struct {
	name string
	b    []byte
}

// planted returns the needles of recs: domain, path and user agent
// text, each address's text, its 4 or 16 bytes, and (IPv4) its
// IPv4-mapped 16 bytes.
func planted(recs []record.Record) []needle {
	var out []needle
	for _, r := range recs {
		out = append(out,
			needle{"domain " + r.Domain, []byte(r.Domain)},
			needle{"path " + r.Path, []byte(r.Path)},
			needle{"user agent " + r.UserAgent, []byte(r.UserAgent)},
			needle{"ip text " + r.IP.String(), []byte(r.IP.String())})
		if r.IP.Is4() {
			b4 := r.IP.As4()
			out = append(out, needle{"ip 4 bytes " + r.IP.String(), b4[:]})
		}
		b16 := r.IP.As16()
		out = append(out, needle{"ip 16 bytes " + r.IP.String(), b16[:]})
	}
	slices.SortFunc(out, func(a, b needle) int { return bytes.Compare([]byte(a.name), []byte(b.name)) })
	return slices.CompactFunc(out, func(a, b needle) bool { return a.name == b.name })
}

// keyRing is a KeySource of one key.
type keyRing struct{ k *keys.DayKey }

func (kr keyRing) Lookup(day time.Time) (*keys.DayKey, error) {
	if !day.Equal(kr.k.Day()) {
		return nil, keys.ErrNoKey
	}
	return kr.k, nil
}

// TestEncryptedNeedsItsKey: an encrypted segment without a key ring, with
// the wrong key of its day, or after its key was destroyed is an error
// that is not a CorruptionError (the file is intact and must not be
// quarantined).
func TestEncryptedNeedsItsKey(t *testing.T) {
	seg := encryptedFixture(Version)
	other, err := keys.Open(t.TempDir(), fixtureMaster, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.KeyFor(fixtureDay); err != nil {
		t.Fatal(err)
	}
	destroyed := fixtureRing(t)
	if _, err := destroyed.KeyFor(fixtureDay); err != nil {
		t.Fatal(err)
	}
	if _, err := destroyed.Destroy(fixtureDay); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		ks   KeySource
		want error
	}{
		{"no ring", nil, ErrNoKeys},
		{"another key of the day", other, keys.ErrNoKey},
		{"no key of the day", keyRing{mustKey(t, other, fixtureDay.AddDate(0, 0, 1))}, keys.ErrNoKey},
		{"destroyed key", destroyed, keys.ErrDestroyed},
	} {
		t.Run(c.name, func(t *testing.T) {
			var opts OpenOptions
			if c.ks != nil {
				opts.Keys = c.ks
			}
			r, err := OpenWith(seg, opts)
			if err == nil {
				r.Close()
				t.Fatal("opened")
			}
			var ce *CorruptionError
			if !errors.Is(err, c.want) || errors.As(err, &ce) {
				t.Fatalf("err = %v, want %v and no CorruptionError", err, c.want)
			}
		})
	}
	// A key destroyed while the file is open: reads fail, not as damage.
	ring, k := fixtureKey(t)
	r, err := OpenWith(seg, OpenOptions{Keys: keyRing{k}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := ring.Destroy(fixtureDay); err != nil {
		t.Fatal(err)
	}
	_, err = r.ReadBlock(0, ColAll)
	var ce *CorruptionError
	if !errors.Is(err, keys.ErrDestroyed) || errors.As(err, &ce) {
		t.Fatalf("read after destroy: %v", err)
	}
}

func mustKey(t *testing.T, r *keys.Ring, day time.Time) *keys.DayKey {
	t.Helper()
	k, err := r.KeyFor(day)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestEncryptedCorruption is TestCorruption for an encrypted segment:
// every flipped bit is a CorruptionError (the CRCs still cover every
// byte; what passes a CRC must also authenticate), never a panic and
// never other records.
func TestEncryptedCorruption(t *testing.T) {
	_, k := fixtureKey(t)
	recs := genRecords(9, 40)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.seg")
	if _, err := Write(good, recs, Options{BlockRows: 16, Key: k}); err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	opts := OpenOptions{Keys: keyRing{k}}
	bad := filepath.Join(dir, "bad.seg")
	for i := range orig {
		mod := slices.Clone(orig)
		mod[i] ^= 1 << (i % 8)
		if err := os.WriteFile(bad, mod, 0o644); err != nil {
			t.Fatal(err)
		}
		err := readEvery(bad, opts)
		var ce *CorruptionError
		switch {
		case i >= headerSize && i < headerSize+16:
			// The key id or the day: the file asks for a key it was not
			// sealed under, which is an error of its own kind.
			if err == nil {
				t.Fatalf("bit flip at byte %d (key header): opened", i)
			}
		case !errors.As(err, &ce) || ce.File != bad:
			t.Fatalf("bit flip at byte %d: err = %v, want a CorruptionError for %s", i, err, bad)
		}
	}
}

func readEvery(path string, opts OpenOptions) error {
	r, err := OpenWith(path, opts)
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
}

// FuzzOpenEncrypted is FuzzOpen for the encrypted decoders: the key
// header, sealed meta section, sealed IP pages and columns, and the keyed
// filter must fail on any input, never panic.
func FuzzOpenEncrypted(f *testing.F) {
	for v := 2; v <= Version; v++ {
		if b, err := os.ReadFile(encryptedFixture(v)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("RDSG\x03\x01\x00\x00"))
	_, k := fixtureKey(f)
	opts := OpenOptions{Keys: keyRing{k}}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "f.seg")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := OpenWith(path, opts)
		if err != nil {
			return
		}
		defer r.Close()
		var v BlockView
		for i := range r.NumBlocks() {
			r.ReadBlock(i, ColAll)
			r.DecodeBlock(i, ColAll, &v)
		}
		r.blocksForIP(netip.MustParseAddr("10.0.0.1"))
		r.MayHoldPrefix(netip.MustParsePrefix("10.0.0.0/24"))
		r.BlockRowsForPrefix(netip.MustParsePrefix("0.0.0.0/0"), true)
		r.BlocksForDomains([]uint32{0, 1, 2})
	})
}

// BenchmarkEncryption pairs plain and encrypted segments of the same
// 100,000 records: writing one (default level) and decoding every block
// of it in search form (DecodeBlock, all columns), each iteration doing
// both sides, alternating which goes first. It reports the time of each
// side and the ratios encrypted/plain, and the sizes.
func BenchmarkEncryption(b *testing.B) {
	recs := genRecords(4, 100_000)
	_, k := fixtureKey(b)
	dir := b.TempDir()
	write := func(key *keys.DayKey, name string) (time.Duration, string) {
		p := filepath.Join(dir, name)
		t0 := time.Now()
		if _, err := Write(p, recs, Options{Key: key}); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0), p
	}
	var v BlockView
	decode := func(r *Reader) time.Duration {
		t0 := time.Now()
		for i := range r.NumBlocks() {
			if err := r.DecodeBlock(i, ColAll, &v); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(t0)
	}
	open := func(p string) *Reader {
		r, err := OpenWith(p, OpenOptions{Keys: keyRing{k}})
		if err != nil {
			b.Fatal(err)
		}
		decode(r) // fault the mapping in: both sides then read from memory
		return r
	}
	var wPlain, wSealed, dPlain, dSealed time.Duration
	var pPath, sPath string
	i := 0
	for b.Loop() {
		var wp, ws time.Duration
		if i%2 == 0 {
			wp, pPath = write(nil, "plain.seg")
			ws, sPath = write(k, "sealed.seg")
		} else {
			ws, sPath = write(k, "sealed.seg")
			wp, pPath = write(nil, "plain.seg")
		}
		wPlain, wSealed = wPlain+wp, wSealed+ws
		pr, sr := open(pPath), open(sPath)
		for j := range 10 {
			if (i+j)%2 == 0 {
				dPlain += decode(pr)
				dSealed += decode(sr)
			} else {
				dSealed += decode(sr)
				dPlain += decode(pr)
			}
		}
		pr.Close()
		sr.Close()
		i++
	}
	n := float64(len(recs)) * float64(b.N)
	b.ReportMetric(float64(wPlain.Nanoseconds())/n, "plain_write_ns/record")
	b.ReportMetric(float64(wSealed.Nanoseconds())/n, "encrypted_write_ns/record")
	b.ReportMetric(float64(wSealed)/float64(wPlain), "write_ratio")
	b.ReportMetric(float64(dPlain.Nanoseconds())/n/10, "plain_decode_ns/record")
	b.ReportMetric(float64(dSealed.Nanoseconds())/n/10, "encrypted_decode_ns/record")
	b.ReportMetric(float64(dSealed)/float64(dPlain), "decode_ratio")
	ps, _ := os.Stat(pPath)
	ss, _ := os.Stat(sPath)
	b.ReportMetric(float64(ss.Size())/float64(ps.Size()), "bytes_ratio")
}
