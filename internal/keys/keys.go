// Package keys holds the data keys of encryption at rest: one random AES-256
// key per UTC day, stored in a key directory wrapped (AES-256-GCM) by a master
// key that lives elsewhere (a systemd credential). Every byte of a day that
// the store writes while encryption is on (segment blocks and footers, WAL
// frames) is sealed under that day's key, so destroying the key (Destroy:
// overwrite, remove, fsync) makes every copy of the day unreadable: the
// files, their backups, old object versions and disk remnants alike. That
// is cryptographic erase, which NIST SP 800-88 counts as sanitisation.
//
// The package owns the crypto of the whole daemon, so that each rule lives
// in one place: the key file format (wrap, unwrap, rotation of the master
// key), the per-file cipher segment files use (FileCipher: a key derived
// from the day key and a per-file salt, nonces from file offsets, associated
// data binding every ciphertext to its day, key, file and unit), and the
// envelope of a WAL frame (SealFrame, OpenFrame). docs/format.md,
// docs/wal.md and docs/security.md describe the bytes.
package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/retentiond/retentiond/internal/fsutil"
	"github.com/retentiond/retentiond/internal/record"
)

// KeySize is the size of the master key and of every day key: AES-256.
const KeySize = 32

// Errors callers distinguish with errors.Is.
var (
	// ErrNoKey means the key directory holds no key for the day, and no
	// record that one was destroyed: the key directory is wrong or lost.
	ErrNoKey = errors.New("no key for this day in the key directory")
	// ErrDestroyed means the day's key was destroyed by a purge: its data
	// can never be read again, by design.
	ErrDestroyed = errors.New("day key destroyed")
	// ErrWrongMaster means a key file was wrapped by another master key.
	ErrWrongMaster = errors.New("key file wrapped by another master key")
	// ErrAuth means a ciphertext did not authenticate: it was altered,
	// moved to another place, or sealed under another key.
	ErrAuth = errors.New("ciphertext does not authenticate")
)

var errReadOnly = errors.New("key directory opened read-only")

// ID identifies one day key. It is random, carries no key material, and
// may be logged, counted and written into reports.
type ID [8]byte

// String returns the ID as 16 hex digits.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the zero ID (no key).
func (id ID) IsZero() bool { return id == ID{} }

// LoadMaster reads a master key file: exactly KeySize bytes, as
// `head -c 32 /dev/urandom > master.key` writes them. The bytes are
// returned as read; the caller passes them to Open.
func LoadMaster(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read master key: %w", err)
	}
	if len(b) != KeySize {
		return nil, fmt.Errorf("master key file %s holds %d bytes, want exactly %d (head -c 32 /dev/urandom)", path, len(b), KeySize)
	}
	return b, nil
}

// Options tune a Ring.
type Options struct {
	// FS performs every file effect (key creation, shredding, rotation);
	// the zero value is the real file system.
	FS fsutil.FS
	// Rand is the source of keys, ids, salts and WAL nonces; nil means
	// crypto/rand. Tests pass a seeded generator to get reproducible
	// files (the segment fixture); nothing else may.
	Rand io.Reader
	// ReadOnly opens the directory for reading keys only (retentiond
	// verify): Open neither creates it nor sweeps it, and KeyFor fails.
	ReadOnly bool
}

// Ring is an open key directory: the day keys, unwrapped on first use and
// kept in memory. Its methods are safe for concurrent use.
type Ring struct {
	dir      string
	fs       fsutil.FS
	rand     io.Reader
	randMu   sync.Mutex // a seeded test generator is not safe for concurrent use
	masterID ID
	wrap     cipher.AEAD
	readOnly bool

	mu   sync.Mutex
	keys map[int64]*DayKey // by day (unix seconds of midnight UTC)
}

// Open opens (creating it) the key directory dir with the master key. It
// reads no key yet: each day's key is unwrapped when first used, and a
// key wrapped by another master key is an error then (and in Verify).
func Open(dir string, master []byte, opts Options) (*Ring, error) {
	if len(master) != KeySize {
		return nil, fmt.Errorf("master key of %d bytes, want %d", len(master), KeySize)
	}
	if !opts.ReadOnly {
		if err := opts.FS.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create key directory: %w", err)
		}
		if _, err := opts.FS.SweepLeftovers(dir); err != nil {
			return nil, err
		}
	}
	r := &Ring{dir: dir, fs: opts.FS, rand: opts.Rand, readOnly: opts.ReadOnly, keys: map[int64]*DayKey{}}
	if r.rand == nil {
		r.rand = rand.Reader
	}
	var err error
	r.masterID, r.wrap, err = masterCipher(master)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Dir returns the key directory.
func (r *Ring) Dir() string { return r.dir }

// MasterID identifies the master key (a hash of it; it reveals nothing of
// the key). Key files name the master key that wrapped them.
func (r *Ring) MasterID() ID { return r.masterID }

// masterCipher returns the id of a master key and its wrapping AEAD.
func masterCipher(master []byte) (ID, cipher.AEAD, error) {
	var id ID
	sum := sha256.Sum256(append([]byte("retentiond master key id\x00"), master...))
	copy(id[:], sum[:])
	block, err := aes.NewCipher(master)
	if err != nil {
		return id, nil, fmt.Errorf("master key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return id, nil, fmt.Errorf("master key: %w", err)
	}
	return id, aead, nil
}

func (r *Ring) read(b []byte) error {
	r.randMu.Lock()
	defer r.randMu.Unlock()
	_, err := io.ReadFull(r.rand, b)
	return err
}

// File names in the key directory.
const (
	keySuffix       = ".key"
	tombstoneSuffix = ".destroyed"
)

func (r *Ring) keyPath(day time.Time) string {
	return filepath.Join(r.dir, record.DayString(day)+keySuffix)
}

func (r *Ring) tombstonePath(day time.Time) string {
	return filepath.Join(r.dir, record.DayString(day)+tombstoneSuffix)
}

// KeyFor returns the key of day (any time within it), creating it when the
// day has none: a random key and id, wrapped and written durably (temp
// file, fsync, rename, directory fsync) before it is returned, so no byte
// is ever sealed under a key that a crash could lose.
func (r *Ring) KeyFor(day time.Time) (*DayKey, error) {
	day = record.Day(day)
	r.mu.Lock()
	defer r.mu.Unlock()
	if k := r.keys[day.Unix()]; k != nil {
		return k, nil
	}
	k, err := r.loadLocked(day)
	if !errors.Is(err, ErrNoKey) && !errors.Is(err, ErrDestroyed) {
		if err == nil {
			r.keys[day.Unix()] = k
		}
		return k, err
	}
	if r.readOnly {
		return nil, fmt.Errorf("new day key: %w", errReadOnly)
	}
	k = &DayKey{day: day, ring: r}
	if err := r.read(k.id[:]); err != nil {
		return nil, fmt.Errorf("new day key: %w", err)
	}
	if err := r.read(k.key[:]); err != nil {
		return nil, fmt.Errorf("new day key: %w", err)
	}
	kf := keyFile{id: k.id, day: day, master: r.masterID}
	if err := r.read(kf.nonce[:]); err != nil {
		return nil, fmt.Errorf("new day key: %w", err)
	}
	b := kf.seal(r.wrap, k.key[:])
	if err := r.fs.WriteFile(r.keyPath(day), b, 0o600); err != nil {
		return nil, fmt.Errorf("write day key %s: %w", record.DayString(day), err)
	}
	if err := k.init(); err != nil {
		return nil, err
	}
	r.keys[day.Unix()] = k
	return k, nil
}

// Lookup returns the existing key of day. A day whose key was destroyed
// returns an error wrapping ErrDestroyed, one without a key at all
// ErrNoKey.
func (r *Ring) Lookup(day time.Time) (*DayKey, error) {
	day = record.Day(day)
	r.mu.Lock()
	defer r.mu.Unlock()
	if k := r.keys[day.Unix()]; k != nil {
		return k, nil
	}
	k, err := r.loadLocked(day)
	if err != nil {
		return nil, err
	}
	r.keys[day.Unix()] = k
	return k, nil
}

// loadLocked reads and unwraps day's key file. r.mu must be held.
func (r *Ring) loadLocked(day time.Time) (*DayKey, error) {
	b, err := os.ReadFile(r.keyPath(day))
	if errors.Is(err, fs.ErrNotExist) {
		if _, terr := os.Stat(r.tombstonePath(day)); terr == nil {
			return nil, fmt.Errorf("day %s: %w", record.DayString(day), ErrDestroyed)
		}
		return nil, fmt.Errorf("day %s: %w", record.DayString(day), ErrNoKey)
	}
	if err != nil {
		return nil, fmt.Errorf("read day key: %w", err)
	}
	k, err := unwrap(b, day, r.masterID, r.wrap)
	if err != nil {
		return nil, fmt.Errorf("day key %s: %w", r.keyPath(day), err)
	}
	k.ring = r
	return k, k.init()
}

// Destroy destroys day's key: it writes a tombstone naming the key id (no
// key material; it tells "destroyed by a purge" apart from "lost"), then
// overwrites, removes and fsyncs the key file (fsutil.Shred) and wipes the
// key from memory. Every byte sealed under the key is unreadable from then
// on, wherever a copy of it lies. It returns the id of the destroyed key,
// or the zero ID when the day had none. Forget removes the tombstone once
// the day's files are gone.
func (r *Ring) Destroy(day time.Time) (ID, error) {
	day = record.Day(day)
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.keys[day.Unix()]
	if k == nil {
		var err error
		k, err = r.loadLocked(day)
		switch {
		case errors.Is(err, ErrNoKey), errors.Is(err, ErrDestroyed):
			return ID{}, nil
		case err != nil && !errors.Is(err, ErrWrongMaster) && !errors.Is(err, ErrAuth):
			return ID{}, err
		case err != nil:
			// A key file that cannot be unwrapped is destroyed all the
			// same; its id is in the clear part of the file.
			k = &DayKey{day: day}
			if b, rerr := os.ReadFile(r.keyPath(day)); rerr == nil && len(b) >= keyFileSize {
				copy(k.id[:], b[8:16])
			}
		}
	}
	if err := r.fs.WriteFile(r.tombstonePath(day), []byte(k.id.String()+"\n"), 0o600); err != nil {
		return ID{}, fmt.Errorf("destroy day key %s: %w", record.DayString(day), err)
	}
	if err := r.fs.Shred(r.keyPath(day)); err != nil {
		return ID{}, fmt.Errorf("destroy day key %s: %w", record.DayString(day), err)
	}
	k.wipe()
	delete(r.keys, day.Unix())
	return k.id, nil
}

// Destroyed reports whether day's key was destroyed and its tombstone not
// yet removed by Forget, with the destroyed key's id.
func (r *Ring) Destroyed(day time.Time) (ID, bool) {
	b, err := os.ReadFile(r.tombstonePath(day))
	if err != nil {
		return ID{}, false
	}
	var id ID
	hex.Decode(id[:], []byte(strings.TrimSpace(string(b))))
	return id, true
}

// Forget removes day's tombstone. The store calls it once the day's files
// and WAL records are gone, so that nothing of the day remains but what
// the destroyed key made unreadable.
func (r *Ring) Forget(day time.Time) error {
	if err := r.fs.RemoveFile(r.tombstonePath(day)); err != nil {
		return fmt.Errorf("forget destroyed day key %s: %w", record.DayString(day), err)
	}
	return nil
}

// Entry is one file of a key directory, as List and Verify see it.
type Entry struct {
	Day time.Time
	ID  ID
	// Destroyed is set for a tombstone: the key was destroyed.
	Destroyed bool
	// Err is why the key cannot be used (Verify only): it cannot be read
	// or unwrapped with the master key.
	Err error
}

// List returns the key directory's keys and tombstones, oldest day first.
// It reads only the clear parts of the files.
func List(dir string) ([]Entry, error) {
	names, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list key directory: %w", err)
	}
	var out []Entry
	for _, e := range names {
		name := e.Name()
		stem, destroyed := strings.CutSuffix(name, tombstoneSuffix)
		if !destroyed {
			var ok bool
			if stem, ok = strings.CutSuffix(name, keySuffix); !ok {
				continue
			}
		}
		day, err := record.ParseDay(stem)
		if err != nil {
			continue
		}
		en := Entry{Day: day, Destroyed: destroyed}
		b, err := os.ReadFile(filepath.Join(dir, name))
		switch {
		case err != nil:
			en.Err = err
		case destroyed:
			hex.Decode(en.ID[:], []byte(strings.TrimSpace(string(b))))
		case len(b) >= keyFileSize:
			copy(en.ID[:], b[8:16])
		}
		out = append(out, en)
	}
	slices.SortFunc(out, func(a, b Entry) int { return a.Day.Compare(b.Day) })
	return out, nil
}

// Verify checks every key file of dir: that it unwraps with master and
// belongs to the day its name says. It returns every entry (tombstones
// included), each key's Err set when it fails.
func Verify(dir string, master []byte) ([]Entry, error) {
	entries, err := List(dir)
	if err != nil {
		return nil, err
	}
	mid, wrap, err := masterCipher(master)
	if err != nil {
		return nil, err
	}
	for i := range entries {
		en := &entries[i]
		if en.Destroyed || en.Err != nil {
			continue
		}
		path := filepath.Join(dir, record.DayString(en.Day)+keySuffix)
		b, err := os.ReadFile(path)
		if err != nil {
			en.Err = err
			continue
		}
		if k, err := unwrap(b, en.Day, mid, wrap); err != nil {
			en.Err = err
		} else {
			k.wipe()
		}
	}
	return entries, nil
}

// RotateMaster re-wraps every day key of dir from the master key old to
// the master key new, one file at a time, each atomically (temp file,
// fsync, rename). Keys already wrapped by new are left alone, so a rotation
// that was interrupted is finished by running it again. It returns how many
// files it re-wrapped. Tombstones hold no key and are not touched.
//
// The old master key must be kept until RotateMaster has returned nil;
// afterwards it can be destroyed, and the key files it wrapped (replaced by
// rename) are no longer in the directory.
func RotateMaster(dir string, old, new []byte, opts Options) (int, error) {
	oldID, oldWrap, err := masterCipher(old)
	if err != nil {
		return 0, fmt.Errorf("old master key: %w", err)
	}
	newID, newWrap, err := masterCipher(new)
	if err != nil {
		return 0, fmt.Errorf("new master key: %w", err)
	}
	if oldID == newID {
		return 0, errors.New("the new master key is the old one")
	}
	rnd := opts.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	entries, err := List(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, en := range entries {
		if en.Destroyed {
			continue
		}
		path := filepath.Join(dir, record.DayString(en.Day)+keySuffix)
		b, err := os.ReadFile(path)
		if err != nil {
			return n, fmt.Errorf("rotate %s: %w", path, err)
		}
		if _, err := unwrap(b, en.Day, newID, newWrap); err == nil {
			continue // done by an earlier, interrupted run
		}
		k, err := unwrap(b, en.Day, oldID, oldWrap)
		if err != nil {
			return n, fmt.Errorf("rotate %s: %w", path, err)
		}
		kf := keyFile{id: k.id, day: en.Day, master: newID}
		if _, err := io.ReadFull(rnd, kf.nonce[:]); err != nil {
			return n, fmt.Errorf("rotate %s: %w", path, err)
		}
		out := kf.seal(newWrap, k.key[:])
		k.wipe()
		if err := opts.FS.WriteFile(path, out, 0o600); err != nil {
			return n, fmt.Errorf("rotate %s: %w", path, err)
		}
		n++
	}
	return n, nil
}

// The key file (docs/security.md, "Key files"): a clear header that says
// which key of which day under which master key, and the day key sealed
// under the master key with the header as associated data.
//
//	0  4  magic "RKEY"
//	4  1  version 1
//	5  3  reserved, 0
//	8  8  key id
//	16 8  day: unix seconds of its midnight UTC, int64
//	24 8  master key id
//	32 12 nonce (random)
//	44 48 the day key sealed under the master key (32 bytes + 16-byte tag)
const (
	keyMagic    = "RKEY"
	keyVersion  = 1
	keyHeader   = 44
	keyFileSize = keyHeader + KeySize + 16
)

type keyFile struct {
	id     ID
	day    time.Time
	master ID
	nonce  [12]byte
}

func (kf keyFile) header() []byte {
	b := make([]byte, 0, keyFileSize)
	b = append(b, keyMagic...)
	b = append(b, keyVersion, 0, 0, 0)
	b = append(b, kf.id[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(kf.day.Unix()))
	b = append(b, kf.master[:]...)
	return append(b, kf.nonce[:]...)
}

func (kf keyFile) seal(wrap cipher.AEAD, key []byte) []byte {
	h := kf.header()
	return wrap.Seal(h, kf.nonce[:], key, h[:32])
}

// unwrap decodes a key file that must belong to day and to the master key
// masterID.
func unwrap(b []byte, day time.Time, masterID ID, wrap cipher.AEAD) (*DayKey, error) {
	if len(b) != keyFileSize || string(b[:4]) != keyMagic {
		return nil, fmt.Errorf("%w: not a key file", ErrAuth)
	}
	if b[4] != keyVersion || b[5] != 0 || b[6] != 0 || b[7] != 0 {
		return nil, fmt.Errorf("%w: unsupported key file version %d", ErrAuth, b[4])
	}
	k := &DayKey{day: day}
	copy(k.id[:], b[8:16])
	if got := int64(binary.LittleEndian.Uint64(b[16:24])); got != day.Unix() {
		return nil, fmt.Errorf("%w: key file of day %s", ErrAuth, record.DayString(time.Unix(got, 0)))
	}
	if ID(b[24:32]) != masterID {
		return nil, fmt.Errorf("%w (master key id %s, this one is %s)", ErrWrongMaster, ID(b[24:32]), masterID)
	}
	plain, err := wrap.Open(nil, b[32:44], b[keyHeader:], b[:32])
	if err != nil {
		return nil, fmt.Errorf("%w: key file", ErrAuth)
	}
	copy(k.key[:], plain)
	clear(plain)
	return k, nil
}

// DayKey is one day's unwrapped data key. It is never written anywhere
// unwrapped and never logged; only its ID is.
type DayKey struct {
	day       time.Time
	id        ID
	key       [KeySize]byte
	ring      *Ring // the source of salts and nonces; nil for Verify's keys
	wal       cipher.AEAD
	destroyed atomic.Bool
}

func (k *DayKey) init() error {
	aead, err := newAEAD(k.key[:], nil, "retentiond wal frame")
	if err != nil {
		return err
	}
	k.wal = aead
	return nil
}

// wipe zeroes the key in memory (ciphers derived from it stop working:
// they check destroyed). Go may have copied the bytes elsewhere in memory;
// the file is what Destroy guarantees.
func (k *DayKey) wipe() {
	k.destroyed.Store(true)
	clear(k.key[:])
}

// Day returns the key's day (midnight UTC).
func (k *DayKey) Day() time.Time { return k.day }

// ID returns the key's id.
func (k *DayKey) ID() ID { return k.id }

// newAEAD returns AES-256-GCM under the key derived from secret with
// HKDF-SHA256 (salt, info): every use of a day key gets its own subkey.
func newAEAD(secret, salt []byte, info string) (cipher.AEAD, error) {
	sub, err := hkdf.Key(sha256.New, secret, salt, info, KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	block, err := aes.NewCipher(sub)
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	return cipher.NewGCM(block)
}

// SaltSize is the size of a file's salt.
const SaltSize = 32

// NewFile starts the cipher of a new file sealed under k: it draws a
// random salt, which the file stores in its header and which OpenFile
// needs back.
func (k *DayKey) NewFile() (*FileCipher, [SaltSize]byte, error) {
	var salt [SaltSize]byte
	if k.ring == nil {
		return nil, salt, errors.New("new file: key not from a ring")
	}
	if err := k.ring.read(salt[:]); err != nil {
		return nil, salt, fmt.Errorf("new file salt: %w", err)
	}
	c, err := k.OpenFile(salt)
	return c, salt, err
}

// OpenFile returns the cipher of the file with the given salt.
func (k *DayKey) OpenFile(salt [SaltSize]byte) (*FileCipher, error) {
	if k.destroyed.Load() {
		return nil, fmt.Errorf("day %s: %w", record.DayString(k.day), ErrDestroyed)
	}
	aead, err := newAEAD(k.key[:], salt[:], "retentiond segment unit")
	if err != nil {
		return nil, err
	}
	prfKey, err := hkdf.Key(sha256.New, k.key[:], salt[:], "retentiond segment filter", KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	prf, err := aes.NewCipher(prfKey)
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	c := &FileCipher{key: k, aead: aead, prf: prf}
	c.ad = binary.LittleEndian.AppendUint64(c.ad, uint64(k.day.Unix()))
	c.ad = append(c.ad, k.id[:]...)
	c.ad = append(c.ad, salt[:]...)
	return c, nil
}

// FileCipher seals and opens the units of one file (a segment's columns,
// index pages and meta section). Its AES-256-GCM key is derived from the
// day key and the file's random salt, so no two files share a key; the
// nonce of a unit is its unit number (the file offset), unique in the file
// because a file is written once and never modified; the associated data
// is the day, the key id, the salt, the unit's kind and its index (block
// and column), so a ciphertext opens only in its own place of its own
// file of its own day. Its methods are safe for concurrent use.
type FileCipher struct {
	key  *DayKey
	aead cipher.AEAD
	prf  cipher.Block
	ad   []byte // day, key id, salt
}

// Overhead is the number of bytes a sealed unit adds: the GCM tag.
const Overhead = 16

// KeyID returns the id of the day key the file is sealed under.
func (c *FileCipher) KeyID() ID { return c.key.id }

func (c *FileCipher) nonceAD(unit uint64, kind byte, index uint32) (nonce [12]byte, ad []byte) {
	binary.LittleEndian.PutUint64(nonce[:], unit)
	nonce[8] = kind
	ad = make([]byte, 0, len(c.ad)+5)
	ad = append(ad, c.ad...)
	ad = append(ad, kind)
	return nonce, binary.LittleEndian.AppendUint32(ad, index)
}

// Seal appends the sealed form of plain to dst: len(plain)+Overhead bytes.
// unit must be unique within the file for each kind (the writer uses the
// unit's file offset); kind and index say what the unit is.
func (c *FileCipher) Seal(dst, plain []byte, unit uint64, kind byte, index uint32) []byte {
	nonce, ad := c.nonceAD(unit, kind, index)
	return c.aead.Seal(dst, nonce[:], plain, ad)
}

// Open appends the plaintext of sealed to dst. An error wraps ErrAuth
// (the bytes were altered or moved) or ErrDestroyed (the day's key was
// destroyed since the file was opened).
func (c *FileCipher) Open(dst, sealed []byte, unit uint64, kind byte, index uint32) ([]byte, error) {
	if c.key.destroyed.Load() {
		return nil, fmt.Errorf("day %s: %w", record.DayString(c.key.day), ErrDestroyed)
	}
	nonce, ad := c.nonceAD(unit, kind, index)
	out, err := c.aead.Open(dst, nonce[:], sealed, ad)
	if err != nil {
		return nil, ErrAuth
	}
	return out, nil
}

// Mix is a keyed pseudo-random permutation of 64-bit numbers (one AES
// block). A segment's address filter passes its hashes through it, so that
// without the day key the filter's bits say nothing about which addresses
// the file holds.
func (c *FileCipher) Mix(h uint64) uint64 {
	var b [aes.BlockSize]byte
	binary.LittleEndian.PutUint64(b[:], h)
	c.prf.Encrypt(b[:], b[:])
	return binary.LittleEndian.Uint64(b[:])
}

// The envelope of a sealed WAL frame payload (docs/wal.md):
//
//	0  1  0x00: no record batch starts with it (a batch holds at least one
//	          record, and its uvarint count's first byte is then not 0)
//	1  1  version 1
//	2  8  day: unix seconds of its midnight UTC, int64
//	10 8  key id
//	18 12 nonce (random)
//	30 -  the payload sealed with AES-256-GCM under the day key's WAL subkey
//	      (payload + 16-byte tag), associated data: bytes 0-29 and "RWAL"
const (
	frameMarker  = 0x00
	frameVersion = 1
	frameHeader  = 30
)

// FrameOverhead is the number of bytes SealFrame adds to a payload.
const FrameOverhead = frameHeader + Overhead

// FrameHeaderSize is the number of bytes SealFrameInPlace expects in front
// of the payload.
const FrameHeaderSize = frameHeader

// IsSealedFrame reports whether a WAL payload is a sealed envelope rather
// than a plain record batch.
func IsSealedFrame(payload []byte) bool { return len(payload) > 0 && payload[0] == frameMarker }

// SealFrame appends the sealed envelope of a WAL payload that holds only
// records of k's day. The nonce is random (96 bits; a day seals far fewer
// than the 2^32 frames under which random GCM nonces stay safe), because a
// WAL file's tail can be cut and rewritten, which rules out nonces from
// offsets.
func (k *DayKey) SealFrame(dst, payload []byte) ([]byte, error) {
	buf := append(dst, make([]byte, frameHeader)...)
	buf = append(buf, payload...)
	out, err := k.SealFrameInPlace(buf[len(dst):])
	if err != nil {
		return nil, err
	}
	return buf[:len(dst)+len(out)], nil
}

// SealFrameInPlace is SealFrame without a copy: buf holds FrameHeaderSize
// bytes (overwritten) followed by the payload, and the envelope is built in
// buf itself (it grows by Overhead bytes; give it the capacity to avoid a
// reallocation). The WAL path encodes every batch straight behind the room
// for the header.
func (k *DayKey) SealFrameInPlace(buf []byte) ([]byte, error) {
	if k.destroyed.Load() {
		return nil, fmt.Errorf("day %s: %w", record.DayString(k.day), ErrDestroyed)
	}
	if k.ring == nil {
		return nil, errors.New("seal frame: key not from a ring")
	}
	if len(buf) < frameHeader {
		return nil, errors.New("seal frame: no room for the header")
	}
	h := buf[:0:frameHeader]
	h = append(h, frameMarker, frameVersion)
	h = binary.LittleEndian.AppendUint64(h, uint64(k.day.Unix()))
	h = append(h, k.id[:]...)
	nonce := h[len(h):frameHeader] // buf[18:30]: h is built in buf
	if err := k.ring.read(nonce); err != nil {
		return nil, fmt.Errorf("seal frame: %w", err)
	}
	var ad [frameHeader + 4]byte
	copy(ad[:], buf[:frameHeader])
	copy(ad[frameHeader:], "RWAL")
	// The ciphertext replaces the payload exactly in place, which
	// crypto/cipher allows (dst's free capacity starts at the plaintext).
	out := k.wal.Seal(buf[:frameHeader], ad[18:30], buf[frameHeader:], ad[:])
	return out, nil
}

// FrameDay returns the day a sealed envelope says it belongs to, read
// from its clear header.
func FrameDay(frame []byte) (time.Time, error) {
	if len(frame) < frameHeader+Overhead || frame[0] != frameMarker || frame[1] != frameVersion {
		return time.Time{}, fmt.Errorf("%w: not a sealed wal frame", ErrAuth)
	}
	return time.Unix(int64(binary.LittleEndian.Uint64(frame[2:10])), 0).UTC(), nil
}

// OpenFrame opens a sealed envelope with the key of the day it names. An
// error wraps ErrDestroyed (the day was purged), ErrNoKey (the key
// directory lacks the key) or ErrAuth (the bytes were altered, or sealed
// under another key of the same day).
func (r *Ring) OpenFrame(frame []byte) (time.Time, []byte, error) {
	day, err := FrameDay(frame)
	if err != nil {
		return time.Time{}, nil, err
	}
	k, err := r.Lookup(day)
	if err != nil {
		return day, nil, err
	}
	if ID(frame[10:18]) != k.id {
		return day, nil, fmt.Errorf("%w: frame sealed under key %s, the day's key is %s", ErrAuth, ID(frame[10:18]), k.id)
	}
	if k.destroyed.Load() {
		return day, nil, fmt.Errorf("day %s: %w", record.DayString(day), ErrDestroyed)
	}
	ad := append(frame[:frameHeader:frameHeader], "RWAL"...)
	plain, err := k.wal.Open(nil, frame[18:30], frame[frameHeader:], ad)
	if err != nil {
		return day, nil, fmt.Errorf("%w: wal frame of day %s", ErrAuth, record.DayString(day))
	}
	return day, plain, nil
}
