package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/retentiond/retentiond/internal/auth"
	"github.com/retentiond/retentiond/internal/config"
)

// runTokenCreate runs `retentiond token create --name name --role search`
// and returns the token and the config line it printed on standard output.
func runTokenCreate(t *testing.T, name string) (token, line string, err error) {
	t.Helper()
	cmd := newTokenCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetArgs([]string{"create", "--name", name, "--role", "search"})
	if err := cmd.Execute(); err != nil {
		return "", "", err
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("token create printed %d lines on stdout, want the token and the config line:\n%s", len(lines), out.String())
	}
	return lines[0], lines[1], nil
}

// TestTokenCreateLineLoads checks that whatever `token create` accepts, the
// daemon accepts too: the printed line, pasted under auth.tokens, loads
// through the real config loader with the same name, and the token matches
// the hash. A name the daemon would refuse must be refused at creation, with
// the daemon's reason. Names that YAML would read as something other than a
// string (true, null, 1e3, 0x1F) are in the table because an unquoted line
// would load a different name or fail.
func TestTokenCreateLineLoads(t *testing.T) {
	tests := []struct {
		name   string
		refuse bool
	}{
		{name: "alice"},
		{name: "ci-shipper_01"},
		{name: "bob@example.org"},
		{name: "true"},
		{name: "null"},
		{name: "no"},
		{name: "1e3"},
		{name: "0x1F"},
		{name: "007"},
		{name: "a.b"},
		{name: strings.Repeat("x", 64)},
		{name: "@ops", refuse: true},
		{name: ".ops", refuse: true},
		{name: "-ops", refuse: true},
		{name: "_ops", refuse: true},
		{name: "bob smith", refuse: true},
		{name: "a:b", refuse: true},
		{name: strings.Repeat("x", 65), refuse: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, line, err := runTokenCreate(t, tt.name)
			daemonErr := tokenNameErr(tt.name)
			if tt.refuse {
				if err == nil {
					t.Fatalf("token create accepted %q and printed %s; the daemon would refuse it", tt.name, line)
				}
				if daemonErr == nil {
					t.Fatalf("the daemon accepts %q, which the table says it refuses", tt.name)
				}
				if !strings.Contains(err.Error(), "token name") {
					t.Errorf("refusal does not say what is wrong: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("token create refused %q: %v", tt.name, err)
			}
			file := filepath.Join(t.TempDir(), "retentiond.yaml")
			if err := os.WriteFile(file, []byte("auth:\n  tokens:\n"+line+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := config.Load(file)
			if err != nil {
				t.Fatalf("the printed line does not load:\n%s\n%v", line, err)
			}
			if len(c.Auth.Tokens) != 1 || c.Auth.Tokens[0].Name != tt.name {
				t.Fatalf("loaded tokens %+v, want one named %q", c.Auth.Tokens, tt.name)
			}
			if got := c.Auth.Tokens[0].SHA256; got != auth.HashToken(tok) {
				t.Errorf("loaded sha256 %s is not the hash of the printed token", got)
			}
		})
	}
}

// tokenNameErr is the daemon's verdict on a token name: Validate of an
// otherwise valid configuration holding one token with that name.
func tokenNameErr(name string) error {
	c := config.Default()
	c.Auth.Tokens = []config.Token{{Name: name, SHA256: strings.Repeat("ab", 32), Roles: []string{"search"}}}
	return c.Validate()
}
