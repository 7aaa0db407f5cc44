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

func TestParseRole(t *testing.T) {
	for _, r := range Roles {
		if got, err := ParseRole(string(r)); err != nil || got != r {
			t.Errorf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	for _, s := range []string{"", "root", "Admin", " search", "search,ingest"} {
		if _, err := ParseRole(s); err == nil || !strings.Contains(err.Error(), RoleNames()) {
			t.Errorf("ParseRole(%q) = %v, want an error naming %s", s, err, RoleNames())
		}
	}
	if RoleNames() != "search, ingest, admin" {
		t.Errorf("RoleNames() = %q", RoleNames())
	}
}

func TestParseTokenHash(t *testing.T) {
	good := strings.Repeat("0f", 32)
	sum, err := ParseTokenHash(good)
	if err != nil || sum[0] != 0x0f || sum[31] != 0x0f {
		t.Fatalf("ParseTokenHash(%q) = %x, %v", good, sum, err)
	}
	// One hash, one spelling: upper case and surrounding space are refused
	// by the config check and the authenticator alike.
	for _, s := range []string{"", "rtd_abc", good[:62], good + "00", strings.ToUpper(good), " " + good[1:], good[:63] + "g"} {
		if _, err := ParseTokenHash(s); err == nil || !strings.Contains(err.Error(), TokenHashRule) {
			t.Errorf("ParseTokenHash(%q) = %v, want an error stating the rule", s, err)
		}
	}
}
