package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// TokenPrefix starts every token NewToken makes, so secret scanners (and
// people) can recognise a leaked retentiond token.
const TokenPrefix = "rtd_"

// NewToken returns a new API token, "rtd_" followed by 32 random bytes in
// unpadded base64url (256 bits of entropy, 47 characters), and the hex
// SHA-256 of the exact token string, which is what goes into the config. A
// fast hash is enough: the token is random, so there is nothing to
// brute-force that a slow hash would protect.
func NewToken() (token string, sha256hex string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("read random bytes: %w", err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashToken(token), nil
}

// HashToken returns the hex SHA-256 of the exact token string.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ValidName reports whether name is acceptable as a token name: 1 to 64
// characters from a-z, A-Z, 0-9, '.', '_', '-' and '@'. Names appear in
// logs, the audit log and YAML, so they are kept plain.
func ValidName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("token name must be 1 to 64 characters")
	}
	if strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-@", r))
	}) >= 0 {
		return fmt.Errorf("token name %q: use only letters, digits and . _ - @", name)
	}
	return nil
}
