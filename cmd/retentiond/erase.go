package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/retentiond/retentiond/internal/erasure"
)

func init() { register(newEraseCmd) }

// newEraseCmd is `retentiond erase`: a data subject's erasure request for
// one address or network, run by the daemon (admin token) so that it is
// audited and leaves a signed report.
func newEraseCmd() *cobra.Command {
	var (
		c        apiClient
		req      erasure.Request
		asJSON   bool
		hashOnly bool
		dataDir  string
	)
	cmd := &cobra.Command{
		Use:   "erase --ip ADDRESS|CIDR [--from DAY --to DAY] --case ID --reason TEXT",
		Short: "Erase every record of one IP address or network (GDPR Art. 17), with a signed report",
		Long: `Erase removes every record of the address (or CIDR network) from the segments, the head and
the WAL, at once for searches, and leaves a signed erasure report with the records removed per
day (see 'retentiond report'). The report, the audit line and the daemon's log name the address
only by a keyed hash (HMAC-SHA256 with DATA_DIR/keys/erasure-hmac.key), never in clear; the case
and reason must not contain it either. Days a legal hold keeps are left alone and listed.
--from and --to are UTC days (both included) or RFC 3339 times (--to excluded); without them
every day is searched. Records that arrive while the erasure runs are not erased.

--hash-only prints the keyed hash of the address (read from --data-dir's key) without erasing,
to find the report of an earlier erasure. Needs an admin token (--token or RETENTIOND_TOKEN).`,
		Example: `  retentiond erase --ip 203.0.113.7 --case GDPR-2026-014 --reason "Art. 17 request of 2026-03-09"`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := erasure.ParsePrefix(req.IP)
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("--ip: %w", err)}
			}
			if hashOnly {
				key, err := erasure.LoadKey(dataDir)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				fmt.Fprintln(cmd.OutOrStdout(), erasure.Subject(key, p))
				return nil
			}
			var ans struct {
				ReportFile string         `json:"report_file"`
				Report     erasure.Report `json:"report"`
			}
			if err := holdCall(&c, http.MethodPost, "/api/v1/admin/erase", req, &ans); err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(ans)
			}
			out := cmd.OutOrStdout()
			r := ans.Report
			fmt.Fprintf(out, "erased %d records of %s (/%d) on %d days\n", r.RecordsRemoved, r.Subject, r.PrefixBits, len(r.Days))
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "DAY\tREMOVED\tKEPT\tFILES REWRITTEN\tFILES REMOVED")
			for _, d := range r.Days {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", d.Day, d.RecordsRemoved, d.RecordsKept, d.FilesRewritten, d.FilesRemoved)
			}
			tw.Flush()
			for _, h := range r.Held {
				fmt.Fprintf(out, "left alone: %s, kept by legal hold %v\n", h.Day, h.Holds)
			}
			for _, f := range r.UncheckedFiles {
				fmt.Fprintf(out, "could not check damaged file %s\n", f)
			}
			fmt.Fprintf(out, "signed report: %s\n", ans.ReportFile)
			return nil
		},
	}
	addClientFlags(cmd, &c)
	cmd.Flags().StringVar(&req.IP, "ip", "", "the address or CIDR network to erase")
	cmd.Flags().StringVar(&req.From, "from", "", "first UTC day (YYYY-MM-DD) or time (RFC 3339)")
	cmd.Flags().StringVar(&req.To, "to", "", "last UTC day, included (YYYY-MM-DD), or end time, excluded (RFC 3339)")
	cmd.Flags().StringVar(&req.Case, "case", "", "case id of the erasure request")
	cmd.Flags().StringVar(&req.Reason, "reason", "", "the request being honoured (without the address)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the daemon's JSON answer")
	cmd.Flags().BoolVar(&hashOnly, "hash-only", false, "only print the keyed hash reports use for this address")
	cmd.Flags().StringVar(&dataDir, "data-dir", "./data", "data directory whose key --hash-only uses")
	_ = cmd.MarkFlagRequired("ip")
	return cmd
}
