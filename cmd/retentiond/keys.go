package main

import (
	"crypto/ed25519"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/retentiond/retentiond/internal/signing"
)

func init() { register(newKeysCmd) }

// newKeysCmd is `retentiond keys`: the public half of the daemon's signing
// key, to publish so that anyone can check its reports and checkpoints.
func newKeysCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "keys [--data-dir D]",
		Short: "Print the daemon's public signing key and its fingerprint, to publish",
		Long: `Print the public half of the daemon's Ed25519 signing key, which signs purge and erasure
reports and the audit checkpoints, and its SHA-256 fingerprint. Publish both (a web page, a
ticket, the processing register) so that 'retentiond report verify --key' and
'retentiond audit verify --checkpoints --key' prove who signed what. The key is created at the
daemon's first start in DATA_DIR/keys/signing-key.pem (0600); this command never creates it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := signing.Load(dataDir)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "public key:  %s\nfingerprint: %s\nkey file:    %s\n",
				k.PublicText(), signing.Fingerprint(k.Public()), signing.KeyPath(dataDir))
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "./data", "the daemon's data directory")
	// Encryption at rest (encryption.go): the day keys.
	cmd.AddCommand(newKeysDaysCmd(), newKeysRotateMasterCmd())
	return cmd
}

// trustedKey returns the public key given by --key or --key-file, else the
// one of the data directory's signing key when dataDir is set and has one,
// else nil. from says where it came from.
func trustedKey(keyText, keyFile, dataDir string) (pub ed25519.PublicKey, from string, err error) {
	switch {
	case keyFile != "":
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, "", &exitError{code: 2, err: fmt.Errorf("read --key-file: %w", err)}
		}
		keyText, from = string(b), keyFile
	case keyText != "":
		from = "--key"
	case dataDir != "":
		k, err := signing.Load(dataDir)
		if err != nil {
			return nil, "", nil
		}
		return k.Public(), signing.KeyPath(dataDir), nil
	default:
		return nil, "", nil
	}
	pub, err = signing.ParsePublic(strings.TrimSpace(keyText))
	if err != nil {
		return nil, "", &exitError{code: 2, err: err}
	}
	return pub, from, nil
}
