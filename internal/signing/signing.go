// Package signing owns the daemon's one Ed25519 signing key: the key that
// signs purge and erasure reports, audit checkpoints (the witness) and,
// once wired, evidence bundles. One key means one public key to publish
// (`retentiond keys`), so that whoever holds a signed artefact checks it
// against the same fingerprint.
//
// The private key lives in the data directory (KeyPath), 0600, created on
// the daemon's first start. It must outlive everything it signed: a report
// kept for two years is checked with it. Its limits are documented in
// docs/security.md: a signature proves that a document was not changed
// after the daemon signed it; it cannot stop someone who holds the private
// key from signing a false one, which is why checkpoints also leave the
// host (journald) and the public key is published.
package signing

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/retentiond/retentiond/internal/fsutil"
)

// Names inside the data directory.
const (
	// KeyDir is the directory, relative to the data directory, that holds
	// the daemon's keys.
	KeyDir = "keys"
	// KeyFile is the private key's file name in KeyDir: PKCS#8 in PEM.
	KeyFile = "signing-key.pem"
)

// ErrNoKey means the data directory has no signing key yet: the daemon
// creates it on its first start.
var ErrNoKey = errors.New("no signing key yet: start the daemon once to create it")

// KeyPath returns the path of the private key in the data directory dataDir.
func KeyPath(dataDir string) string { return filepath.Join(dataDir, KeyDir, KeyFile) }

// Key is the daemon's signing key.
type Key struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
}

// legacyKeyPath is where the first evidence bundles' key was kept, before
// one key signed everything.
func legacyKeyPath(dataDir string) string { return filepath.Join(dataDir, "evidence", KeyFile) }

// LoadOrCreate reads the key of the data directory dataDir, or generates
// one there on first use (0600 in a 0700 directory, written through
// fsutil so that a crash never leaves half a key). A key an earlier
// version made for evidence bundles (<data_dir>/evidence/signing-key.pem)
// is moved to KeyPath and kept, so that bundles signed with it still
// verify against the published key.
func LoadOrCreate(dataDir string, fsys fsutil.FS) (*Key, error) {
	k, err := Load(dataDir)
	if !errors.Is(err, ErrNoKey) {
		return k, err
	}
	if _, err := os.Stat(legacyKeyPath(dataDir)); err == nil {
		if err := fsys.MkdirAll(filepath.Join(dataDir, KeyDir), 0o700); err != nil {
			return nil, fmt.Errorf("signing key directory: %w", err)
		}
		if err := fsys.Rename(legacyKeyPath(dataDir), KeyPath(dataDir)); err != nil {
			return nil, fmt.Errorf("adopt the evidence key: %w", err)
		}
		return Load(dataDir)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode signing key: %w", err)
	}
	if err := fsys.MkdirAll(filepath.Join(dataDir, KeyDir), 0o700); err != nil {
		return nil, fmt.Errorf("signing key directory: %w", err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := fsys.WriteFile(KeyPath(dataDir), b, 0o600); err != nil {
		return nil, fmt.Errorf("write signing key: %w", err)
	}
	return NewKey(priv), nil
}

// Load reads the key of the data directory dataDir; ErrNoKey when there is
// none. It never creates one, so a tool run as another user cannot leave a
// key the daemon cannot read.
func Load(dataDir string) (*Key, error) {
	path := KeyPath(dataDir)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (%s)", ErrNoKey, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("signing key %s: not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key %s: not an ed25519 key", path)
	}
	return NewKey(priv), nil
}

// NewKey wraps an existing private key (tests).
func NewKey(priv ed25519.PrivateKey) *Key {
	return &Key{priv: priv, pub: priv.Public().(ed25519.PublicKey)}
}

// Sign signs msg.
func (k *Key) Sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

// Public returns the public key.
func (k *Key) Public() ed25519.PublicKey { return k.pub }

// PublicText is the public key as published: base64 of the 32 key bytes.
func (k *Key) PublicText() string { return base64.StdEncoding.EncodeToString(k.pub) }

// Fingerprint is the hex SHA-256 of the public key bytes, short enough to
// read over the phone and compare with the one the daemon publishes.
func Fingerprint(pub ed25519.PublicKey) string {
	s := sha256.Sum256(pub)
	return hex.EncodeToString(s[:])
}

// ParsePublic reads a public key in the published form (base64 of 32
// bytes), surrounding white space ignored.
func ParsePublic(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key: want base64 of %d bytes", ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}
