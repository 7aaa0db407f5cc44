// Package evidence writes and verifies evidence bundles: a zip file with the
// records of a search, what was asked (query, range, case, reason), who
// exported it and when, the audit-log sequence numbers of the searches made
// under the case, and a manifest with the SHA-256 of every member, signed
// with the daemon's ed25519 key. A bundle is handed to a regulator or the
// police; Verify checks it offline and names the member that was altered.
package evidence

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

// Key is the daemon's signing key.
type Key struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
}

// KeyFile is the name of the private key file in the key directory.
const KeyFile = "signing-key.pem"

// LoadOrCreateKey reads the ed25519 key in dir, or generates one there on
// first use (mode 0600, written through fsutil so that a crash never leaves
// half a key). The key must outlive every bundle it signed: it lives in the
// data directory, which is backed up with the audit log.
func LoadOrCreateKey(dir string) (*Key, error) {
	path := filepath.Join(dir, KeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		_, priv, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return nil, fmt.Errorf("generate evidence key: %w", gerr)
		}
		der, merr := x509.MarshalPKCS8PrivateKey(priv)
		if merr != nil {
			return nil, fmt.Errorf("encode evidence key: %w", merr)
		}
		if err := fsutil.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("evidence key dir: %w", err)
		}
		b = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if err := fsutil.WriteFile(path, b, 0o600); err != nil {
			return nil, fmt.Errorf("write evidence key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("read evidence key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("evidence key %s: not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("evidence key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("evidence key %s: not an ed25519 key", path)
	}
	return &Key{priv: priv, pub: priv.Public().(ed25519.PublicKey)}, nil
}

// NewKey wraps an existing private key (tests).
func NewKey(priv ed25519.PrivateKey) *Key {
	return &Key{priv: priv, pub: priv.Public().(ed25519.PublicKey)}
}

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
