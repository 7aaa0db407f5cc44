package policy

import (
	"strings"
	"testing"
)

func TestValidTokenName(t *testing.T) {
	ok := []string{"alice", "A", "0", "ci-shipper_01", "bob@example.org", "a.b", "true", "007", strings.Repeat("x", 64)}
	bad := []string{"", "@ops", ".ops", "-ops", "_ops", "bob smith", "a:b", "a/b", "ä", "a\nb", strings.Repeat("x", 65)}
	for _, n := range ok {
		if err := ValidTokenName(n); err != nil {
			t.Errorf("ValidTokenName(%q) = %v, want nil", n, err)
		}
	}
	for _, n := range bad {
		err := ValidTokenName(n)
		if err == nil {
			t.Errorf("ValidTokenName(%q) = nil, want an error", n)
			continue
		}
		if !strings.Contains(err.Error(), TokenNameRule) {
			t.Errorf("ValidTokenName(%q) = %v, which does not state the rule", n, err)
		}
	}
}
