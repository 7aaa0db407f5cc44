package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

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
	var dir, dataDir, expect string
	cmd := &cobra.Command{
		Use:   "verify [--dir D] [--expect-head SEQ:HASH]",
		Short: "Check the hash chain; exit 1 naming the first edited, deleted, inserted or reordered line",
		Long: `Check every line of the audit log against the hash chain and name the first line that was
edited, deleted, inserted, reordered or truncated. Exit status: 0 intact, 1 broken, 2 unreadable.

The chain alone cannot show that lines were cut off its end or that the whole log was
rewritten. Give --expect-head with a head recorded elsewhere (the daemon logs
"audit line written seq=N hash=H" for every line) to check that too. A witnessed
head that is not found is a failure (exit 1), also when it lies in files a purge
removed: it then cannot be confirmed, so record a new witness after each purge.`,
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
