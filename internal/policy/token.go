package policy

import (
	"fmt"
	"regexp"

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
