package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/retentiond/retentiond/internal/audit"
	"github.com/spf13/cobra"
)

func init() { register(newAuditCmd) }

// newAuditCmd is `retentiond audit`: offline tools for the search audit
// log. They read the files directly, so they work with the daemon stopped
// and do not depend on the daemon being honest.
func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify and show the search audit log",
	}
	cmd.AddCommand(newAuditVerifyCmd(), newAuditShowCmd())
	return cmd
}

// auditDirFlags adds --dir and --data-dir; the audit directory defaults to
// DATA_DIR/audit.
func auditDirFlags(cmd *cobra.Command, dir, dataDir *string) {
	cmd.Flags().StringVar(dir, "dir", "", "audit log directory (default: DATA_DIR/audit)")
	cmd.Flags().StringVar(dataDir, "data-dir", "./data", "data directory whose audit/ subdirectory holds the log")
}

func auditDir(dir, dataDir string) string {
	if dir != "" {
		return dir
	}
	return filepath.Join(dataDir, "audit")
}

func newAuditVerifyCmd() *cobra.Command {
	var dir, dataDir, expect, checkpoints, keyText, keyFile string
	cmd := &cobra.Command{
		Use:   "verify [--dir D] [--expect-head SEQ:HASH] [--checkpoints FILE|-]",
		Short: "Check the hash chain; exit 1 naming the first edited, deleted, inserted or reordered line",
		Long: `Check every line of the audit log against the hash chain and name the first line that was
edited, deleted, inserted, reordered or truncated. Exit status: 0 intact, 1 broken, 2 unreadable.

The chain alone cannot show that lines were cut off its end or that the whole log was
rewritten. Give --expect-head with a head recorded elsewhere (the daemon logs
"audit line written seq=N hash=H" for every line) to check that too. A witnessed
head that is not found is a failure (exit 1), also when it lies in files a purge
removed: it then cannot be confirmed, so record a new witness after each purge.

--checkpoints reads the daemon's own log (FILE, or - for stdin) for the signed checkpoints
of the audit witness (audit.checkpoint_lines, audit.checkpoint_interval, start-up and
shutdown), checks their signatures with the daemon's key (--key, --key-file, or the signing
key of --data-dir), and checks the chain against each: a checkpoint beyond the chain's end
means lines were cut off or files deleted, one whose hash differs means the chain was
rewritten. It names the last checkpoint that still matches. Checkpoints of files a purge
removed are expected to be gone.

  journalctl -u retentiond -o cat | retentiond audit verify --checkpoints -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var opts audit.VerifyOptions
			if expect != "" {
				s, h, ok := strings.Cut(expect, ":")
				seq, err := strconv.ParseInt(s, 10, 64)
				if !ok || err != nil || seq < 1 || len(h) != 64 {
					return &exitError{code: 2, err: errors.New("--expect-head wants SEQ:HASH (a positive number and 64 hex digits)")}
				}
				opts.ExpectSeq, opts.ExpectHash = seq, strings.ToLower(h)
			}
			d := auditDir(dir, dataDir)
			if _, err := os.Stat(d); err != nil {
				// A mistyped --dir must not look like an intact, empty log.
				return &exitError{code: 2, err: fmt.Errorf("audit dir: %w", err)}
			}
			if checkpoints != "" {
				return verifyCheckpoints(cmd, d, checkpoints, keyText, keyFile, dataDir)
			}
			res, err := audit.VerifyWith(d, opts)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			out := cmd.OutOrStdout()
			for _, p := range res.Pending {
				fmt.Fprintf(out, "note: %s is older than the anchor (an interrupted purge); not verified\n", p)
			}
			if res.FirstBad != nil && res.FirstBad.Witness {
				return &exitError{code: 1, err: fmt.Errorf("witnessed head not confirmed (%d lines verified): %s", res.Lines, res.FirstBad)}
			}
			if res.FirstBad != nil {
				return &exitError{code: 1, err: fmt.Errorf("audit chain broken after %d intact lines: %s", res.Lines, res.FirstBad)}
			}
			if res.Files == 0 {
				fmt.Fprintf(out, "ok: no audit files in %s\n", d)
				return nil
			}
			start := "genesis"
			if res.Anchored {
				start = "purge anchor"
			}
			fmt.Fprintf(out, "ok: %d lines in %d files, chain from %s intact\nhead: %d:%s\n", res.Lines, res.Files, start, res.HeadSeq, res.HeadHash)
			return nil
		},
	}
	auditDirFlags(cmd, &dir, &dataDir)
	cmd.Flags().StringVar(&expect, "expect-head", "", "a witnessed head SEQ:HASH the chain must contain")
	cmd.Flags().StringVar(&checkpoints, "checkpoints", "", "the daemon's log holding signed audit checkpoints (- for stdin)")
	cmd.Flags().StringVar(&keyText, "key", "", "the daemon's published public key (default: the key of --data-dir)")
	cmd.Flags().StringVar(&keyFile, "key-file", "", "file holding the daemon's published public key")
	return cmd
}

func newAuditShowCmd() *cobra.Command {
	var dir, dataDir, caseID string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show --case ID [--dir D] [--json]",
		Short: "List every search attempt recorded for one case",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d := auditDir(dir, dataDir)
			res, err := audit.Verify(d)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if res.FirstBad != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: the audit chain is broken (%s); run 'retentiond audit verify'\n", res.FirstBad)
			}
			if asJSON {
				err = audit.ShowJSON(d, caseID, cmd.OutOrStdout())
			} else {
				err = audit.Show(d, caseID, cmd.OutOrStdout())
			}
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			return nil
		},
	}
	auditDirFlags(cmd, &dir, &dataDir)
	cmd.Flags().StringVar(&caseID, "case", "", "incident id (exact match)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the matching lines verbatim (JSON lines with their hashes)")
	_ = cmd.MarkFlagRequired("case")
	return cmd
}

// verifyCheckpoints is audit verify --checkpoints: exit 0 when every
// checkpoint matches, 1 naming the first that does not (and the last that
// does), 2 when the input or the key cannot be read.
func verifyCheckpoints(cmd *cobra.Command, dir, src, keyText, keyFile, dataDir string) error {
	pub, from, err := trustedKey(keyText, keyFile, dataDir)
	if err != nil {
		return err
	}
	if pub == nil {
		return &exitError{code: 2, err: errors.New("checkpoints are signed: give the daemon's public key with --key or --key-file ('retentiond keys' prints it), or --data-dir with its key")}
	}
	in := cmd.InOrStdin()
	if src != "-" {
		f, err := os.Open(src)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		defer f.Close()
		in = f
	}
	cps, invalid, err := audit.ReadCheckpoints(in, pub)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	out := cmd.OutOrStdout()
	if invalid > 0 {
		fmt.Fprintf(out, "warning: %d checkpoint(s) with a bad signature ignored (forged, damaged, or another key than %s)\n", invalid, from)
	}
	if len(cps) == 0 {
		return &exitError{code: 2, err: fmt.Errorf("no checkpoint signed by the key from %s found in %s", from, src)}
	}
	res, err := audit.VerifyCheckpoints(dir, cps)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	last := "none"
	if m := res.LastMatch; m != nil {
		last = fmt.Sprintf("seq %d hash %s of %s (%s)", m.Seq, m.Hash, m.Time.Format(time.RFC3339), m.Reason)
	}
	switch {
	case res.Chain.FirstBad != nil && !res.Chain.FirstBad.Witness:
		fmt.Fprintf(out, "last matching checkpoint: %s\n", last)
		return &exitError{code: 1, err: fmt.Errorf("audit chain broken after %d intact lines: %s", res.Chain.Lines, res.Chain.FirstBad)}
	case res.FirstBad != nil:
		fmt.Fprintf(out, "last matching checkpoint: %s\n", last)
		return &exitError{code: 1, err: fmt.Errorf("checkpoint of seq %d does not match: %s", res.FirstBad.Seq, res.Reason)}
	}
	fmt.Fprintf(out, "ok: %d checkpoints match the chain (%d lines in %d files), %d lie in purged files\nlast matching checkpoint: %s\n",
		res.Matched, res.Chain.Lines, res.Chain.Files, res.Purged, last)
	return nil
}
