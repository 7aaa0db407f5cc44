package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
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
