package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/retentiond/retentiond/internal/record"
)

// TokenNameRule says which token names are accepted, for messages.
const TokenNameRule = "1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"

// tokenNameRE is the token-name rule. Names appear in logs, the audit log,
// YAML and on command lines, so they are kept plain; the first character is
// a letter or digit so that a name never reads as a command-line flag (-ops),
// a YAML indicator (@ops) or a hidden file (.ops).
var tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// ValidTokenName returns nil when name is acceptable as an API token's name,
// else an error saying what a name may hold. `token create`, the config check
// and the authenticator all use it, so a name one accepts the others accept.
func ValidTokenName(name string) error {
	if !tokenNameRE.MatchString(name) {
		return fmt.Errorf("token name %q: use %s", record.Shorten(name), TokenNameRule)
	}
	return nil
}

// Role is a permission an API token carries. Roles are independent: admin
// does not imply search, so that an automation token for purges cannot read
// records.
type Role string

// The roles a token can carry.
const (
	RoleSearch Role = "search" // search, count, stats, export
	RoleIngest Role = "ingest" // send records
	RoleAdmin  Role = "admin"  // administrative actions such as an on-demand purge
)

// Roles lists every role, in the order messages name them.
var Roles = []Role{RoleSearch, RoleIngest, RoleAdmin}

// RoleNames returns the roles for messages: "search, ingest, admin".
func RoleNames() string {
	names := make([]string, len(Roles))
	for i, r := range Roles {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

// ParseRole returns the Role named s, or an error for an unknown name. The
// config check, the authenticator and `token create` all use it.
func ParseRole(s string) (Role, error) {
	if r := Role(s); slices.Contains(Roles, r) {
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q (want %s)", record.Shorten(s), RoleNames())
}

// TokenHashRule says how a token's hash is written, for messages.
const TokenHashRule = "64 lower-case hex digits" //nolint:gosec // G101: a message naming the form of a hash, not a credential

// ParseTokenHash decodes a token's SHA-256 as the configuration holds it:
// exactly 64 lower-case hex digits, so that one hash has one spelling and a
// duplicate is found by comparing text. The config check and the
// authenticator both use it.
func ParseTokenHash(s string) (sum [sha256.Size]byte, err error) {
	if len(s) == 2*sha256.Size && strings.ToLower(s) == s {
		if _, err := hex.Decode(sum[:], []byte(s)); err == nil {
			return sum, nil
		}
	}
	return [sha256.Size]byte{}, fmt.Errorf("token hash: want %s (got %d characters)", TokenHashRule, len(s))
}
