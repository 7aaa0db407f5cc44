package keys

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

var (
	day1 = time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	day2 = time.Date(2026, 1, 11, 0, 0, 0, 0, time.UTC)
)

func master(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func open(t *testing.T, dir string, m []byte) *Ring {
	t.Helper()
	r, err := Open(dir, m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// sealUnit seals one unit with a new file cipher of k and returns the
// salt and the sealed bytes.
func sealUnit(t *testing.T, k *DayKey, plain []byte) ([SaltSize]byte, []byte) {
	t.Helper()
	c, salt, err := k.NewFile()
	if err != nil {
		t.Fatal(err)
	}
	return salt, c.Seal(nil, plain, 8, 1, 7)
}

func TestKeyForPersistsAndLookupFindsIt(t *testing.T) {
	dir := t.TempDir()
	r := open(t, dir, master(1))
	k, err := r.KeyFor(day1.Add(13 * time.Hour)) // any time of the day
	if err != nil {
		t.Fatal(err)
	}
	if !k.Day().Equal(day1) {
		t.Fatalf("day %s", k.Day())
	}
	again, err := r.KeyFor(day1)
	if err != nil || again != k {
		t.Fatalf("second KeyFor: %v, same key %v", err, again == k)
	}
	fi, err := os.Stat(filepath.Join(dir, "2026-01-10.key"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != keyFileSize || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %d bytes, mode %v", fi.Size(), fi.Mode())
	}
	salt, sealed := sealUnit(t, k, []byte("hello"))
	frame, err := k.SealFrame(nil, []byte{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}

	// A new ring (a restart) unwraps the same key from the file.
	r2 := open(t, dir, master(1))
	k2, err := r2.Lookup(day1)
	if err != nil {
		t.Fatal(err)
	}
	if k2.ID() != k.ID() {
		t.Fatalf("id %s after reopen, was %s", k2.ID(), k.ID())
	}
	c, err := k2.OpenFile(salt)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Open(nil, sealed, 8, 1, 7); err != nil || string(got) != "hello" {
		t.Fatalf("open after reopen: %q, %v", got, err)
	}
	d, p, err := r2.OpenFrame(frame)
	if err != nil || !d.Equal(day1) || !bytes.Equal(p, []byte{1, 2, 3}) {
		t.Fatalf("frame after reopen: %s %v %v", d, p, err)
	}
	if _, err := r2.Lookup(day2); !errors.Is(err, ErrNoKey) {
		t.Fatalf("lookup of a day without key: %v", err)
	}
	if raw, _ := os.ReadFile(filepath.Join(dir, "2026-01-10.key")); bytes.Contains(raw, k.key[:]) {
		t.Fatal("the key file holds the day key in clear")
	}
}

// TestDestroy: after Destroy, nothing sealed under the key opens again,
// neither through ciphers opened before nor through a reopened ring, and
// the key file is gone; the tombstone names the id until Forget.
func TestDestroy(t *testing.T) {
	dir := t.TempDir()
	r := open(t, dir, master(1))
	k := mustKeyFor(t, r, day1)
	other := mustKeyFor(t, r, day2)
	salt, sealed := sealUnit(t, k, []byte("secret"))
	c, err := k.OpenFile(salt)
	if err != nil {
		t.Fatal(err)
	}
	frame, err := k.SealFrame(nil, []byte("batch"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := r.Destroy(day1)
	if err != nil || id != k.ID() {
		t.Fatalf("Destroy = %s, %v; want %s", id, err, k.ID())
	}
	if _, err := os.Stat(filepath.Join(dir, "2026-01-10.key")); !os.IsNotExist(err) {
		t.Fatalf("key file after Destroy: %v", err)
	}
	if _, err := c.Open(nil, sealed, 8, 1, 7); !errors.Is(err, ErrDestroyed) {
		t.Fatalf("cipher opened before Destroy: %v", err)
	}
	if _, err := k.SealFrame(nil, []byte("x")); !errors.Is(err, ErrDestroyed) {
		t.Fatalf("sealing after Destroy: %v", err)
	}
	if k.key != [KeySize]byte{} {
		t.Fatal("key still in memory")
	}
	r2 := open(t, dir, master(1))
	if _, _, err := r2.OpenFrame(frame); !errors.Is(err, ErrDestroyed) {
		t.Fatalf("frame after Destroy: %v", err)
	}
	if got, ok := r2.Destroyed(day1); !ok || got != id {
		t.Fatalf("Destroyed = %s, %v", got, ok)
	}
	if again, err := r2.Destroy(day1); err != nil || !again.IsZero() {
		t.Fatalf("second Destroy = %s, %v", again, err)
	}
	if _, err := r2.Lookup(day2); err != nil {
		t.Fatalf("the other day's key: %v", err)
	}
	_ = other
	if err := r2.Forget(day1); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Lookup(day1); !errors.Is(err, ErrNoKey) {
		t.Fatalf("after Forget: %v", err)
	}
	entries, err := List(dir)
	if err != nil || len(entries) != 1 || !entries[0].Day.Equal(day2) {
		t.Fatalf("List = %+v, %v", entries, err)
	}
}

func mustKeyFor(t *testing.T, r *Ring, d time.Time) *DayKey {
	t.Helper()
	k, err := r.KeyFor(d)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestBinding: a sealed unit opens only with its own unit number, kind,
// index, file salt and day key; a sealed frame only unaltered.
func TestBinding(t *testing.T) {
	r := open(t, t.TempDir(), master(1))
	k := mustKeyFor(t, r, day1)
	k2 := mustKeyFor(t, r, day2)
	c, salt, err := k.NewFile()
	if err != nil {
		t.Fatal(err)
	}
	sealed := c.Seal(nil, []byte("column bytes"), 100, 1, 3)
	other, _, _ := k.NewFile()
	sameSalt2, _ := k2.OpenFile(salt)
	for _, tc := range []struct {
		name string
		c    *FileCipher
		unit uint64
		kind byte
		idx  uint32
	}{
		{"another offset", c, 101, 1, 3},
		{"another kind", c, 100, 2, 3},
		{"another block or column", c, 100, 1, 4},
		{"another file of the day", other, 100, 1, 3},
		{"the same salt under another day's key", sameSalt2, 100, 1, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.c.Open(nil, sealed, tc.unit, tc.kind, tc.idx); !errors.Is(err, ErrAuth) {
				t.Fatalf("err = %v, want ErrAuth", err)
			}
		})
	}
	if got, err := c.Open(nil, sealed, 100, 1, 3); err != nil || string(got) != "column bytes" {
		t.Fatalf("own place: %q %v", got, err)
	}
	if c.Mix(1) == other.Mix(1) || c.Mix(1) == c.Mix(2) {
		t.Fatal("Mix is not keyed per file")
	}

	frame, err := k.SealFrame(nil, []byte("a batch of records"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range frame {
		mod := slices.Clone(frame)
		mod[i] ^= 0x10
		if _, p, err := r.OpenFrame(mod); err == nil {
			t.Fatalf("frame with byte %d flipped opened as %q", i, p)
		}
	}
}

// TestWrongMasterAndVerify: a key directory opened with another master
// key refuses its keys, and Verify names each key that does not unwrap.
func TestWrongMasterAndVerify(t *testing.T) {
	dir := t.TempDir()
	r := open(t, dir, master(1))
	mustKeyFor(t, r, day1)
	mustKeyFor(t, r, day2)
	if _, err := open(t, dir, master(2)).Lookup(day1); !errors.Is(err, ErrWrongMaster) {
		t.Fatalf("lookup under another master: %v", err)
	}
	entries, err := Verify(dir, master(1))
	if err != nil || len(entries) != 2 || entries[0].Err != nil || entries[1].Err != nil {
		t.Fatalf("Verify with the right master: %+v, %v", entries, err)
	}
	// Damage one key file's sealed part, rename another's day.
	p1 := filepath.Join(dir, "2026-01-10.key")
	b, _ := os.ReadFile(p1)
	b[len(b)-1] ^= 1
	os.WriteFile(p1, b, 0o600)
	p2 := filepath.Join(dir, "2026-01-11.key")
	os.Rename(p2, filepath.Join(dir, "2026-01-12.key"))
	entries, err = Verify(dir, master(1))
	if err != nil || len(entries) != 2 {
		t.Fatalf("Verify: %+v, %v", entries, err)
	}
	for _, e := range entries {
		if !errors.Is(e.Err, ErrAuth) {
			t.Errorf("day %s: err = %v, want ErrAuth", e.Day, e.Err)
		}
	}
	if entries, _ := Verify(dir, master(2)); !errors.Is(entries[0].Err, ErrAuth) && !errors.Is(entries[0].Err, ErrWrongMaster) {
		t.Fatalf("Verify under another master: %v", entries[0].Err)
	}
}

// TestRotateMaster: after a rotation only the new master key opens the
// day keys, which are the same keys (old ciphertext opens), and a second
// run has nothing to do.
func TestRotateMaster(t *testing.T) {
	dir := t.TempDir()
	r := open(t, dir, master(1))
	k := mustKeyFor(t, r, day1)
	mustKeyFor(t, r, day2)
	if _, err := r.Destroy(day2); err != nil {
		t.Fatal(err)
	}
	frame, err := k.SealFrame(nil, []byte("before rotation"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RotateMaster(dir, master(1), master(1), Options{}); err == nil {
		t.Fatal("rotation to the same key accepted")
	}
	if _, err := RotateMaster(dir, master(3), master(2), Options{}); !errors.Is(err, ErrWrongMaster) {
		t.Fatalf("rotation from a wrong old key: %v", err)
	}
	n, err := RotateMaster(dir, master(1), master(2), Options{})
	if err != nil || n != 1 {
		t.Fatalf("RotateMaster = %d, %v", n, err)
	}
	if _, err := open(t, dir, master(1)).Lookup(day1); !errors.Is(err, ErrWrongMaster) {
		t.Fatalf("old master after rotation: %v", err)
	}
	if _, p, err := open(t, dir, master(2)).OpenFrame(frame); err != nil || string(p) != "before rotation" {
		t.Fatalf("new master: %q, %v", p, err)
	}
	if n, err := RotateMaster(dir, master(1), master(2), Options{}); err != nil || n != 0 {
		t.Fatalf("second run: %d, %v", n, err)
	}
}

func TestLoadMaster(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		size int
		ok   bool
	}{{"32 bytes", 32, true}, {"31 bytes", 31, false}, {"with a newline", 33, false}, {"empty", 0, false}} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name)
			os.WriteFile(p, bytes.Repeat([]byte{7}, c.size), 0o600)
			_, err := LoadMaster(p)
			if (err == nil) != c.ok {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// FuzzOpenFrame: the WAL envelope decoder fails on any input, never
// panics, and opens nothing but what was sealed.
func FuzzOpenFrame(f *testing.F) {
	r, err := Open(f.TempDir(), master(1), Options{})
	if err != nil {
		f.Fatal(err)
	}
	k, err := r.KeyFor(day1)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := k.SealFrame(nil, []byte("payload"))
	f.Add(good)
	f.Add([]byte{0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, p, err := r.OpenFrame(b)
		if err == nil && (!bytes.Equal(b, good) || string(p) != "payload") {
			t.Fatalf("opened a frame that was never sealed: %x", b)
		}
	})
}
