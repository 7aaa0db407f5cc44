package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/retentiond/retentiond/internal/report"
)

func init() { register(newReportCmd) }

// newReportCmd is `retentiond report`: the signed purge and erasure
// reports. verify works offline on a file; list and get ask the daemon.
func newReportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "List, fetch and verify the signed purge and erasure reports",
	}
	var keyText, keyFile, dataDir string
	verify := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check a report's signature offline; exit 1 naming each field that was changed",
		Long: `Check a signed report (a file from DATA_DIR/reports or GET /api/v1/admin/reports/NAME)
without the daemon. Every field of a report carries a digest, and the digests are signed, so an
edited report fails and the fields that changed are named.
Exit status: 0 intact, 1 altered (or signed by another key than the trusted one), 2 unreadable.

Pin the daemon's published key ('retentiond keys') with --key or --key-file to prove who signed
it; without them the data directory's key is used when --data-dir has one, else only the key the
report carries (which proves that nothing changed after signing, not who signed).`,
		Example: `  retentiond report verify /var/lib/retentiond/reports/20260302T000500.123456789Z-purge.json
  retentiond report verify --key "$(cat published-key.txt)" report.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[0])
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			pub, from, err := trustedKey(keyText, keyFile, dataDir)
			if err != nil {
				return err
			}
			res, err := report.Verify(b, pub)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			out := cmd.OutOrStdout()
			if len(res.Problems) > 0 {
				for _, p := range res.Problems {
					fmt.Fprintf(out, "changed: %s\n", p)
				}
				return &exitError{code: 1, err: fmt.Errorf("report altered: %d problem(s), first: %s", len(res.Problems), res.Problems[0])}
			}
			fmt.Fprintf(out, "ok: %s\n", res.Describe())
			if from != "" {
				fmt.Fprintf(out, "trusted key from %s\n", from)
			}
			return nil
		},
	}
	verify.Flags().StringVar(&keyText, "key", "", "the daemon's published public key (base64)")
	verify.Flags().StringVar(&keyFile, "key-file", "", "file holding the daemon's published public key")
	verify.Flags().StringVar(&dataDir, "data-dir", "", "use the signing key of this data directory as the trusted key")

	var c apiClient
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the reports the daemon keeps (admin token)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := c.do(http.MethodGet, "/api/v1/admin/reports", nil, nil, "")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
			if err != nil {
				return err
			}
			if asJSON {
				_, err := cmd.OutOrStdout().Write(body)
				return err
			}
			var l struct {
				Fingerprint string        `json:"fingerprint"`
				Reports     []report.Info `json:"reports"`
			}
			if err := json.Unmarshal(body, &l); err != nil {
				return fmt.Errorf("decode report list: %w", err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tKIND\tCREATED\tBYTES")
			for _, r := range l.Reports {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", r.Name, r.Kind, r.Created.Format(time.RFC3339), r.Bytes)
			}
			tw.Flush()
			fmt.Fprintf(cmd.OutOrStdout(), "signed with key fingerprint %s\n", l.Fingerprint)
			return nil
		},
	}
	addClientFlags(list, &c)
	list.Flags().BoolVar(&asJSON, "json", false, "print the daemon's JSON answer")

	var gc apiClient
	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Print one report, byte for byte, for 'report verify' (admin token)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := gc.do(http.MethodGet, "/api/v1/admin/reports/"+url.PathEscape(args[0]), nil, nil, "")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			_, err = io.Copy(cmd.OutOrStdout(), resp.Body)
			return err
		},
	}
	addClientFlags(get, &gc)
	cmd.AddCommand(verify, list, get)
	return cmd
}
