// Package evidence writes and verifies evidence bundles: a zip file with the
// records of a search, what was asked (query, range, case, reason), who
// exported it and when, the audit-log sequence numbers of the searches made
// under the case, and a manifest with the SHA-256 of every member, signed
// with the daemon's ed25519 key. A bundle is handed to a regulator or the
// police; Verify checks it offline and names the member that was altered.
package evidence

import (
	"crypto/ed25519"

	"github.com/retentiond/retentiond/internal/signing"
)

// Key is the daemon's one signing key (internal/signing): evidence bundles
// are signed with the key that signs purge and erasure reports and the
// audit checkpoints, so there is one public key to publish ('retentiond
// keys', GET /api/v1/evidence/key). A key an earlier version kept in
// <data_dir>/evidence/ is adopted by signing.LoadOrCreate.
type Key = signing.Key

// NewKey wraps an existing private key (tests).
func NewKey(priv ed25519.PrivateKey) *Key { return signing.NewKey(priv) }

// Fingerprint is the hex SHA-256 of the public key bytes (signing.Fingerprint).
func Fingerprint(pub ed25519.PublicKey) string { return signing.Fingerprint(pub) }

// ParsePublic reads a public key in the published form, base64 of the 32
// key bytes (signing.ParsePublic).
func ParsePublic(s string) (ed25519.PublicKey, error) { return signing.ParsePublic(s) }
