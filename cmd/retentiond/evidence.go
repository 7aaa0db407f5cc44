package main

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"github.com/retentiond/retentiond/internal/signing"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/retentiond/retentiond/internal/evidence"
	"github.com/retentiond/retentiond/internal/fsutil"
)

func init() { register(newEvidenceCmd) }

func newEvidenceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "evidence",
		Short: "Check evidence bundles (signed zip exports of a search)",
	}
	var keyText, keyFile string
	verify := &cobra.Command{
		Use:   "verify [flags] FILE.zip",
		Short: "Check an evidence bundle offline; exit 0 when intact, 1 naming the altered member",
		Long: `Check an evidence bundle without the daemon: the ed25519 signature of manifest.json, then the
SHA-256 of every member against the manifest. Exit 0: intact. Exit 1: altered, and the altered
member is named. Exit 2: the file could not be read.

The bundle carries the public key that signed it, so without --key the check proves only that
nothing changed after someone signed it. Pin the daemon's key (GET /api/v1/evidence/key, or
'retentiond evidence key' on the daemon's host) with --key to prove that the daemon signed it.`,
		Example: `  retentiond evidence verify evidence-INC-42-20261206T101500Z.zip
  retentiond evidence verify --key "$(curl -s http://127.0.0.1:8080/api/v1/evidence/key | jq -r .public_key)" bundle.zip`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runEvidenceVerify(cmd.OutOrStdout(), args[0], keyText, keyFile)
		},
	}
	verify.Flags().StringVar(&keyText, "key", "", "trusted public key (base64, as /api/v1/evidence/key publishes it)")
	verify.Flags().StringVar(&keyFile, "key-file", "", "file holding the trusted public key")
	var dataDir string
	key := &cobra.Command{
		Use:   "key",
		Short: "Print the daemon's public signing key and fingerprint (reads the data directory; same as 'retentiond keys')",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := signing.Load(dataDir)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "public key:  %s\nfingerprint: %s\n", k.PublicText(), evidence.Fingerprint(k.Public()))
			return nil
		},
	}
	key.Flags().StringVar(&dataDir, "data-dir", "./data", "the daemon's data directory")
	cmd.AddCommand(verify, key)
	return cmd
}

func runEvidenceVerify(out io.Writer, path, keyText, keyFile string) error {
	var trusted ed25519.PublicKey
	if keyFile != "" {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("read --key-file: %w", err)}
		}
		keyText = string(b)
	}
	if keyText != "" {
		k, err := evidence.ParsePublic(keyText)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--key: %w", err)}
		}
		trusted = k
	}
	f, err := os.Open(path)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	res, err := evidence.Verify(f, fi.Size(), evidence.VerifyOptions{Trusted: trusted})
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if !res.OK() {
		for _, p := range res.Problems {
			fmt.Fprintln(out, "FAIL:", p)
		}
		if len(res.Altered) > 0 {
			return &exitError{code: 1, err: fmt.Errorf("%s: altered member(s): %v", path, res.Altered)}
		}
		return &exitError{code: 1, err: fmt.Errorf("%s: not signed by the trusted key", path)}
	}
	m := res.Meta
	fmt.Fprintf(out, "OK: %s is intact (%d members, signed by key %s", path, len(res.Manifest.Files), res.Fingerprint)
	if trusted != nil {
		fmt.Fprint(out, ", the trusted key")
	}
	fmt.Fprintln(out, ")")
	fmt.Fprintf(out, "case %s, %d records, query %q, range [%s, %s), exported by %q at %s, audit seq %d, %d earlier search(es) under the case\n",
		m.Case, m.Records, m.Query, m.From.Format("2006-01-02T15:04:05Z07:00"), m.To.Format("2006-01-02T15:04:05Z07:00"),
		m.ExportedBy, m.ExportedAt.Format("2006-01-02T15:04:05Z07:00"), m.AuditSeq, len(m.CaseSearches))
	if len(m.Skipped) > 0 {
		b, _ := json.Marshal(m.Skipped)
		fmt.Fprintf(out, "warning: the search left out damaged segment files %s: the records are incomplete\n", b)
	}
	return nil
}

// saveEvidence streams a bundle from the daemon into path through a
// temporary file, so that a failed export never leaves a file that looks
// like a bundle.
func saveEvidence(body io.Reader, path string) (int64, error) {
	f, err := fsutil.Create(path, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, body)
	if err != nil {
		f.Abort()
		return n, fmt.Errorf("receive evidence bundle: %w", err)
	}
	return n, f.Commit()
}
